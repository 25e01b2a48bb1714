//! The exact least-squares reference: OLS by Householder QR of a centred, column-scaled copy of
//! the design (factored in place, Q applied from its Householder vectors, never formed), then iterative refinement of the augmented system
//! `[I A; A^T 0] [r; x] = [y; 0]` (Björck) whose residuals are computed in double-double against
//! the design as given. Refining the residual together with the solution converges at a rate
//! of about `cond * eps`, where refining the solution alone would need `cond^2 * eps < 1`.
//!
//! Rank is decided from the singular values of the scaled design, taken from its triangular
//! factor (documented tolerance
//! [`rank_tolerance`]); a rank-deficient design gets the minimum-norm solution (intercept not
//! penalized) and reports its rank. The normal equations are never formed.
//!
//! A big design (see [`parallelism`]) is factored and refined on every thread: faer's QR and
//! products split into a fixed number of parts, whose bits depend on that number and not on the
//! threads that run them (tested at 1, 2, 3 and 8 threads), and the double-double passes split
//! rows or columns without changing any sum. A small one stays on one thread, in the order it
//! always had. The SVDs of the small triangular factor run on one thread: faer's bits there
//! depend on the threads.

use faer::prelude::*;
use faer::{Mat, Par};

use super::dd::DD;
use super::design::Design;
use super::qr::Qr;
use super::scaling::Scaling;
use super::spectrum::svd;
use crate::error::{Error, Result};

/// Relative singular-value cut-off for rank: `max(n, p) * f64::EPSILON` of the largest, on the
/// centred design with unit-norm columns.
pub fn rank_tolerance(n: usize, p: usize) -> f64 {
    n.max(p) as f64 * f64::EPSILON
}

/// The fit.
#[derive(Clone, Debug)]
pub struct Fit {
    /// One per design column, in design order.
    pub coefficients: Vec<f64>,
    pub intercept: Option<f64>,
    /// `sqrt(SSE / (n - rank))`, rank counting the intercept.
    pub residual_sd: f64,
    /// Centred with an intercept, uncentred (`1 - SSE / sum y^2`) without.
    pub r2: f64,
    /// Rank of the design, the intercept column included.
    pub rank: usize,
    /// `s_max / s_min` of the centred design with unit-norm columns.
    pub condition_number: f64,
    pub sse: f64,
    /// Training mean squared error, `SSE / n`.
    pub mse: f64,
    pub n: usize,
    /// Parameters, the intercept included.
    pub p: usize,
    /// Refinement steps taken.
    pub refinement_steps: usize,
}

/// Fits `y ~ [1] + A x`.
pub fn fit(design: &Design, y: &[DD]) -> Result<Fit> {
    Factored::of(design)?.fit(y)
}

/// The parts faer splits a big design's QR and products into, on however many threads.
pub const PARTS: usize = 16;

/// The work `n p^2` from which a design is factored in [`PARTS`] parts (about 0.05 s of QR on
/// one core); below it, on one thread. A rule of the shape alone, so that a data set gives the
/// same bits whether it is prepared alone, beside others, or in any shard, on any machine.
pub const PARALLEL_WORK: f64 = 1e9;

/// How an `n x p` design (or a product of that shape) is split: `Par::Seq` or [`PARTS`] parts.
pub fn parallelism(n: usize, p: usize) -> Par {
    if n as f64 * (p as f64).powi(2) >= PARALLEL_WORK {
        Par::rayon(PARTS)
    } else {
        Par::Seq
    }
}

/// OLS on a row-major `n x d` f64 design (each value exact in double-double).
pub fn fit_rows(x: &[f64], y: &[f64], n: usize, d: usize, intercept: bool) -> Result<Fit> {
    let design = Design::from_rows(x, n, d, intercept);
    let y: Vec<DD> = y.iter().map(|v| DD::new(*v)).collect();
    fit(&design, &y)
}

/// A design scaled and factored once: the Householder QR of its centred copy with unit-norm
/// columns `M = A T D`, factored in place (Q is never formed: it is applied from its Householder
/// vectors), with the rank and condition number. Fits any target against the design. Holds the
/// design (shared, not copied) and its [`parallelism`].
pub struct Factored {
    design: Design,
    par: Par,
    scaling: Scaling,
    /// `M = Q R`.
    qr: Qr,
    rank: usize,
    condition_number: f64,
}

impl Factored {
    pub fn of(design: &Design) -> Result<Factored> {
        let n = design.n;
        let k = design.k();
        let p = k + usize::from(design.intercept);
        if n <= k {
            return Err(Error::Data(format!(
                "{n} rows cannot determine {k} coefficients: least squares needs more rows than features"
            )));
        }
        if p == 0 {
            return Err(Error::Data(
                "the design has no column and no intercept".into(),
            ));
        }
        let par = parallelism(n, p);
        let scaling = Scaling::of(design, par);
        let m = scaling.matrix(design, par);
        let qr = Qr::of(m);
        let (rank, condition_number) = rank_and_condition(&qr.r, n, p)?;
        Ok(Factored {
            design: design.clone(),
            par,
            scaling,
            qr,
            rank,
            condition_number,
        })
    }

    /// Whether this is the factorization of the design whose values are `x` (shared, not a copy).
    pub fn factors(&self, x: &std::sync::Arc<[f64]>) -> bool {
        self.design.shares(x)
    }

    /// The least-squares fit of `y` (one value per row).
    pub fn fit(&self, y: &[DD]) -> Result<Fit> {
        let design = &self.design;
        let (n, p) = (design.n, self.qr.r.ncols());
        assert_eq!(y.len(), n, "one target value per row");
        let (x, steps) = if self.rank == p {
            self.refine(y)
        } else {
            let y_f64: Vec<f64> = y.iter().map(|v| v.to_f64()).collect();
            (
                minimum_norm(design, &y_f64, &self.scaling.means, self.rank)?,
                0,
            )
        };
        let (sse, r2) = goodness_of_fit(design, y, &x, self.par);
        let offset = usize::from(design.intercept);
        let dof = n.saturating_sub(self.rank) as f64;
        Ok(Fit {
            coefficients: x[offset..].to_vec(),
            intercept: design.intercept.then(|| x[0]),
            mse: sse / n as f64,
            residual_sd: (sse / dof).sqrt(),
            r2,
            rank: self.rank,
            condition_number: self.condition_number,
            sse,
            n,
            p,
            refinement_steps: steps,
        })
    }

    /// The triangular factor `R_c` of the centred design in its own units (`A_c = Q_c R_c`,
    /// `k x k`): the trailing block of `R`, its columns scaled back. Needs an intercept, since
    /// only then is the design centred.
    pub fn centred_triangle(&self) -> Mat<f64> {
        assert!(
            self.design.intercept,
            "the centred factor needs an intercept"
        );
        let k = self.design.k();
        let scale = &self.scaling.scale;
        Mat::from_fn(k, k, |i, j| {
            let s = scale[j + 1];
            if i <= j && s > 0.0 {
                self.qr.r[(i + 1, j + 1)] / s
            } else {
                0.0
            }
        })
    }

    /// Augmented-system refinement with double-double residuals, from `x = 0`, `r = 0`.
    fn refine(&self, y: &[DD]) -> (Vec<f64>, usize) {
        let (design, scaling, par) = (&self.design, &self.scaling, self.par);
        let (n, p) = (design.n, self.qr.r.ncols());
        let mut x = vec![0.0; p];
        let mut r = vec![0.0; n];
        let mut last = f64::INFINITY;
        let mut steps = 0;
        for _ in 0..30 {
            // f = y - r - A x and g = -M^T r, in double-double against the design as given.
            let f: Vec<f64> = design
                .residual(y, &x, par)
                .iter()
                .zip(&r)
                .map(|(a, ri)| a.add_f64(-ri).to_f64())
                .collect();
            // With r = 0 (the first step) every entry of g is -0.0: no pass needed for it.
            let g: Vec<f64> = if steps == 0 {
                vec![-0.0; p]
            } else {
                scaling
                    .transpose_times_from(&design.transpose_times(&r, par))
                    .iter()
                    .map(|v| -v)
                    .collect()
            };
            let h = self.solve_rt(&g);
            let d1 = self.qr.qt(&f);
            let diff: Vec<f64> = d1.iter().zip(&h).map(|(a, b)| a - b).collect();
            let dz = self.solve_r(&diff);
            let dx = scaling.to_x(&dz);
            // Norm-wise relative size of the correction.
            let scale_x = x
                .iter()
                .zip(&dx)
                .map(|(a, b)| (a + b).abs())
                .fold(0.0, f64::max);
            let size =
                dx.iter().map(|d| d.abs()).fold(0.0, f64::max) / scale_x.max(f64::MIN_POSITIVE);
            if !size.is_finite() || (steps > 0 && size >= last) {
                break;
            }
            x.iter_mut().zip(&dx).for_each(|(a, b)| *a += b);
            steps += 1;
            last = size;
            if size <= f64::EPSILON / 4.0 {
                // Converged: the residual is not needed again.
                break;
            }
            let q_diff = self.qr.q(&diff);
            r.iter_mut()
                .zip(f.iter().zip(&q_diff))
                .for_each(|(ri, (fi, qi))| *ri += fi - qi);
        }
        (x, steps)
    }

    /// Solves `R u = v` by back substitution.
    fn solve_r(&self, v: &[f64]) -> Vec<f64> {
        let p = self.qr.r.ncols();
        let mut u = vec![0.0; p];
        for i in (0..p).rev() {
            let s: f64 = (i + 1..p).map(|j| self.qr.r[(i, j)] * u[j]).sum();
            u[i] = (v[i] - s) / self.qr.r[(i, i)];
        }
        u
    }

    /// Solves `R^T u = v` by forward substitution.
    fn solve_rt(&self, v: &[f64]) -> Vec<f64> {
        let p = self.qr.r.ncols();
        let mut u = vec![0.0; p];
        for i in 0..p {
            let s: f64 = (0..i).map(|j| self.qr.r[(j, i)] * u[j]).sum();
            u[i] = (v[i] - s) / self.qr.r[(i, i)];
        }
        u
    }
}

/// Rank (singular values above [`rank_tolerance`] of the largest) and condition number of the
/// scaled design, from its triangular factor (same singular values).
fn rank_and_condition(r: &Mat<f64>, n: usize, p: usize) -> Result<(usize, f64)> {
    let s = svd(r.as_ref(), false)?.0;
    let s_max = s.iter().copied().fold(0.0, f64::max);
    let cutoff = s_max * rank_tolerance(n, p);
    let rank = s.iter().filter(|&&v| v > cutoff).count();
    let s_min = s.iter().copied().fold(f64::INFINITY, f64::min);
    let condition_number = if s_min > 0.0 {
        s_max / s_min
    } else {
        f64::INFINITY
    };
    Ok((rank, condition_number))
}

/// SSE and R² of the solution `x`, both accumulated in double-double.
fn goodness_of_fit(design: &Design, y: &[DD], x: &[f64], par: Par) -> (f64, f64) {
    let n = design.n;
    let residual = design.residual(y, x, par);
    let sse = residual.iter().fold(DD::ZERO, |acc, r| acc + *r * *r);
    let sst = if design.intercept {
        let mean = y.iter().fold(DD::ZERO, |a, v| a + *v).to_f64() / n as f64;
        y.iter().fold(DD::ZERO, |acc, v| {
            let c = v.add_f64(-mean);
            acc + c * c
        })
    } else {
        y.iter().fold(DD::ZERO, |acc, v| acc + *v * *v)
    };
    // R² = (SST - SSE) / SST in double-double: no cancellation when R² is small.
    let r2 = if sst.hi > 0.0 {
        ((sst - sse) / sst).to_f64()
    } else {
        f64::NAN
    };
    (sse.to_f64(), r2)
}

/// Minimum-norm solution of a rank-deficient design: truncated pseudo-inverse of the centred
/// (unscaled) design; the intercept, unpenalized, follows from the means.
fn minimum_norm(design: &Design, y: &[f64], means: &[f64], rank: usize) -> Result<Vec<f64>> {
    let (n, k) = (design.n, design.k());
    let a = Mat::from_fn(n, k, |i, j| design.value(i, j).add_f64(-means[j]).to_f64());
    let y_mean = if design.intercept {
        y.iter().sum::<f64>() / n as f64
    } else {
        0.0
    };
    let yc = Col::from_fn(n, |i| y[i] - y_mean);
    let (s, u, v) = svd(a.as_ref(), true)?;
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&i, &j| s[j].total_cmp(&s[i]));
    // The centred design has rank `rank - 1` with an intercept (the ones column is independent of it).
    let keep = rank - usize::from(design.intercept);
    let mut w = Col::<f64>::zeros(k);
    for &c in order.iter().take(keep) {
        let coef = u.col(c).transpose() * &yc / s[c];
        w += v.col(c) * coef;
    }
    let mut x: Vec<f64> = Vec::with_capacity(k + 1);
    if design.intercept {
        x.push(y_mean - (0..k).map(|j| means[j] * w[j]).sum::<f64>());
    }
    x.extend(w.iter());
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intercept_only_design_fits_the_mean() {
        let y = [1.0, 2.0, 4.5, 0.5];
        let f = fit_rows(&[], &y, 4, 0, true).unwrap();
        assert_eq!(f.intercept, Some(2.0));
        assert!(f.coefficients.is_empty());
        assert_eq!(f.sse, 1.0 + 0.0 + 6.25 + 2.25);
    }

    #[test]
    fn exact_quadratic_is_recovered_to_the_last_digit() {
        let xs: Vec<f64> = (0..10).map(|i| i as f64 * 0.7 - 3.0).collect();
        let y: Vec<DD> = xs
            .iter()
            .map(|x| DD::new(1.5 - 2.0 * x + 0.25 * x * x))
            .collect();
        let mut design = Design::from_rows(&xs, 10, 1, true);
        design.add_powers(0, 2);
        let f = fit(&design, &y).unwrap();
        assert!((f.intercept.unwrap() - 1.5).abs() < 1e-14);
        assert!(
            (f.coefficients[0] + 2.0).abs() < 1e-14 && (f.coefficients[1] - 0.25).abs() < 1e-15
        );
        assert_eq!(f.rank, 3);
    }

    #[test]
    fn exact_line_from_rows_has_zero_residual() {
        // y = 3 + 2 x exactly: OLS must return the line and zero residual.
        let x = [0.0, 1.0, 2.0, 3.0, 4.0];
        let y: Vec<f64> = x.iter().map(|v| 3.0 + 2.0 * v).collect();
        let fit = fit_rows(&x, &y, 5, 1, true).unwrap();
        assert!((fit.coefficients[0] - 2.0).abs() < 1e-14);
        assert!((fit.intercept.unwrap() - 3.0).abs() < 1e-13);
        assert!(fit.mse < 1e-28 && (fit.mse - fit.sse / 5.0).abs() == 0.0);
        assert!((fit.r2 - 1.0).abs() < 1e-14);
    }
}
