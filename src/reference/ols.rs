//! The exact least-squares reference: OLS by Householder QR of a centred, column-scaled copy of
//! the design, then iterative refinement of the augmented system
//! `[I A; A^T 0] [r; x] = [y; 0]` (Björck) whose residuals are computed in double-double against
//! the design as given. Refining the residual together with the solution converges at a rate
//! of about `cond * eps`, where refining the solution alone would need `cond^2 * eps < 1`.
//!
//! Rank is decided from the singular values of the scaled design (documented tolerance
//! [`rank_tolerance`]); a rank-deficient design gets the minimum-norm solution (intercept not
//! penalized) and reports its rank. The normal equations are never formed.

use faer::prelude::*;
use faer::Mat;

use super::dd::DD;
use crate::error::{Error, Result};

/// A design matrix in double-double, column by column, without the intercept column.
#[derive(Clone, Debug)]
pub struct Design {
    pub n: usize,
    /// Column `j` holds feature `j` for every row.
    pub columns: Vec<Vec<DD>>,
    pub names: Vec<String>,
    pub intercept: bool,
}

impl Design {
    /// From a row-major f64 matrix.
    pub fn from_rows(x: &[f64], n: usize, d: usize, intercept: bool) -> Design {
        let columns = (0..d)
            .map(|j| (0..n).map(|i| DD::new(x[i * d + j])).collect())
            .collect();
        Design {
            n,
            columns,
            names: (0..d).map(|j| format!("x{j}")).collect(),
            intercept,
        }
    }

    /// Adds the powers `2..=degree` of column `j`, formed in double-double, after the last column.
    pub fn add_powers(&mut self, j: usize, degree: u32) {
        for k in 2..=degree {
            let column: Vec<DD> = self.columns[j].iter().map(|v| v.powi(k)).collect();
            self.columns.push(column);
            self.names.push(format!("{}^{k}", self.names[j]));
        }
    }

    fn k(&self) -> usize {
        self.columns.len()
    }

    /// `y - A x` in double-double (A as given; `x` includes the intercept first when there is one).
    fn residual(&self, y: &[DD], x: &[f64]) -> Vec<DD> {
        let offset = usize::from(self.intercept);
        (0..self.n)
            .map(|i| {
                let mut acc = y[i];
                if self.intercept {
                    acc = acc.add_f64(-x[0]);
                }
                for (j, column) in self.columns.iter().enumerate() {
                    acc = acc - column[i].mul_f64(x[j + offset]);
                }
                acc
            })
            .collect()
    }

    /// `A^T r` in double-double.
    fn transpose_times(&self, r: &[f64]) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.k() + 1);
        if self.intercept {
            out.push(r.iter().fold(DD::ZERO, |acc, v| acc.add_f64(*v)).to_f64());
        }
        for column in &self.columns {
            out.push(
                column
                    .iter()
                    .zip(r)
                    .fold(DD::ZERO, |acc, (a, ri)| acc + a.mul_f64(*ri))
                    .to_f64(),
            );
        }
        out
    }
}

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
    let scaled = Scaled::of(design);
    let (rank, condition_number) = rank_and_condition(&scaled.m, n, p)?;
    let (x, steps) = if rank == p {
        refine(design, &scaled, y)?
    } else {
        let y_f64: Vec<f64> = y.iter().map(|v| v.to_f64()).collect();
        (minimum_norm(design, &y_f64, &scaled.means, rank)?, 0)
    };
    let (sse, r2) = goodness_of_fit(design, y, &x);
    let offset = usize::from(design.intercept);
    let dof = n.saturating_sub(rank) as f64;
    Ok(Fit {
        coefficients: x[offset..].to_vec(),
        intercept: design.intercept.then(|| x[0]),
        mse: sse / n as f64,
        residual_sd: (sse / dof).sqrt(),
        r2,
        rank,
        condition_number,
        sse,
        n,
        p,
        refinement_steps: steps,
    })
}

/// OLS on a row-major `n x d` f64 design (each value exact in double-double).
pub fn fit_rows(x: &[f64], y: &[f64], n: usize, d: usize, intercept: bool) -> Result<Fit> {
    let design = Design::from_rows(x, n, d, intercept);
    let y: Vec<DD> = y.iter().map(|v| DD::new(*v)).collect();
    fit(&design, &y)
}

/// The design centred (with an intercept) and with unit-norm columns, `M = A T D`, and the maps
/// between its solution `z` and the design's `x = T D z`.
struct Scaled {
    m: Mat<f64>,
    means: Vec<f64>,
    scale: Vec<f64>,
    intercept: bool,
}

impl Scaled {
    fn of(design: &Design) -> Scaled {
        let (n, k) = (design.n, design.k());
        let offset = usize::from(design.intercept);
        let p = k + offset;
        let means: Vec<f64> = design
            .columns
            .iter()
            .map(|c| {
                if design.intercept {
                    c.iter().fold(DD::ZERO, |a, v| a + *v).to_f64() / n as f64
                } else {
                    0.0
                }
            })
            .collect();
        let centred = |j: usize, i: usize| (design.columns[j][i].add_f64(-means[j])).to_f64();
        let mut scale = vec![1.0 / (n as f64).sqrt(); p];
        for j in 0..k {
            let norm = (0..n).map(|i| centred(j, i).powi(2)).sum::<f64>().sqrt();
            scale[j + offset] = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        }
        let m = Mat::from_fn(n, p, |i, c| {
            if design.intercept && c == 0 {
                scale[0]
            } else {
                centred(c - offset, i) * scale[c]
            }
        });
        Scaled {
            m,
            means,
            scale,
            intercept: design.intercept,
        }
    }

    /// `x = T D z`.
    fn to_x(&self, z: &[f64]) -> Vec<f64> {
        let p = self.scale.len();
        let mut x: Vec<f64> = (0..p).map(|c| self.scale[c] * z[c]).collect();
        if self.intercept {
            x[0] -= (0..p - 1).map(|j| self.means[j] * x[j + 1]).sum::<f64>();
        }
        x
    }

    /// `M^T v = D T^T (A^T v)`, from `w = A^T v`.
    fn transpose_times_from(&self, w: &[f64]) -> Vec<f64> {
        (0..self.scale.len())
            .map(|c| {
                if self.intercept && c > 0 {
                    self.scale[c] * (w[c] - self.means[c - 1] * w[0])
                } else {
                    self.scale[c] * w[c]
                }
            })
            .collect()
    }
}

/// Rank (singular values above [`rank_tolerance`] of the largest) and condition number of the
/// scaled design.
fn rank_and_condition(m: &Mat<f64>, n: usize, p: usize) -> Result<(usize, f64)> {
    let svd = m
        .thin_svd()
        .map_err(|e| Error::Numerical(format!("singular value decomposition failed: {e:?}")))?;
    let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
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
fn goodness_of_fit(design: &Design, y: &[DD], x: &[f64]) -> (f64, f64) {
    let n = design.n;
    let residual = design.residual(y, x);
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

/// The thin QR factors of the scaled design and the four products refinement needs.
struct ThinQr {
    q: Mat<f64>,
    r: Mat<f64>,
}

impl ThinQr {
    fn of(m: &Mat<f64>) -> ThinQr {
        let qr = m.qr();
        ThinQr {
            q: qr.compute_thin_Q(),
            r: qr.thin_R().to_owned(),
        }
    }

    /// Solves `R u = v` by back substitution (R is p x p upper triangular).
    fn solve_r(&self, v: &[f64]) -> Vec<f64> {
        let p = self.r.ncols();
        let mut u = vec![0.0; p];
        for i in (0..p).rev() {
            let s: f64 = (i + 1..p).map(|j| self.r[(i, j)] * u[j]).sum();
            u[i] = (v[i] - s) / self.r[(i, i)];
        }
        u
    }

    /// Solves `R^T u = v` by forward substitution.
    fn solve_rt(&self, v: &[f64]) -> Vec<f64> {
        let p = self.r.ncols();
        let mut u = vec![0.0; p];
        for i in 0..p {
            let s: f64 = (0..i).map(|j| self.r[(j, i)] * u[j]).sum();
            u[i] = (v[i] - s) / self.r[(i, i)];
        }
        u
    }

    /// `Q^T v`.
    fn qt(&self, v: &[f64]) -> Vec<f64> {
        let (n, p) = (self.q.nrows(), self.q.ncols());
        (0..p)
            .map(|c| (0..n).map(|i| self.q[(i, c)] * v[i]).sum())
            .collect()
    }

    /// `Q u`.
    fn qv(&self, u: &[f64]) -> Vec<f64> {
        let (n, p) = (self.q.nrows(), self.q.ncols());
        (0..n)
            .map(|i| (0..p).map(|c| self.q[(i, c)] * u[c]).sum())
            .collect()
    }
}

/// QR of the scaled design, then augmented-system refinement with double-double residuals.
fn refine(design: &Design, scaled: &Scaled, y: &[DD]) -> Result<(Vec<f64>, usize)> {
    let (n, p) = (scaled.m.nrows(), scaled.m.ncols());
    let qr = ThinQr::of(&scaled.m);
    let mut x = vec![0.0; p];
    let mut r = vec![0.0; n];
    let mut last = f64::INFINITY;
    let mut steps = 0;
    for _ in 0..30 {
        // f = y - r - A x and g = -M^T r, in double-double against the design as given.
        let f: Vec<f64> = design
            .residual(y, &x)
            .iter()
            .zip(&r)
            .map(|(a, ri)| a.add_f64(-ri).to_f64())
            .collect();
        let g: Vec<f64> = scaled
            .transpose_times_from(&design.transpose_times(&r))
            .iter()
            .map(|v| -v)
            .collect();
        let h = qr.solve_rt(&g);
        let d1 = qr.qt(&f);
        let diff: Vec<f64> = d1.iter().zip(&h).map(|(a, b)| a - b).collect();
        let dz = qr.solve_r(&diff);
        let q_diff = qr.qv(&diff);
        let dx = scaled.to_x(&dz);
        // Norm-wise relative size of the correction.
        let scale_x = x
            .iter()
            .zip(&dx)
            .map(|(a, b)| (a + b).abs())
            .fold(0.0, f64::max);
        let size = dx.iter().map(|d| d.abs()).fold(0.0, f64::max) / scale_x.max(f64::MIN_POSITIVE);
        if !size.is_finite() || (steps > 0 && size >= last) {
            break;
        }
        x.iter_mut().zip(&dx).for_each(|(a, b)| *a += b);
        r.iter_mut()
            .zip(f.iter().zip(&q_diff))
            .for_each(|(ri, (fi, qi))| *ri += fi - qi);
        steps += 1;
        last = size;
        if size <= f64::EPSILON / 4.0 {
            break;
        }
    }
    Ok((x, steps))
}

/// Minimum-norm solution of a rank-deficient design: truncated pseudo-inverse of the centred
/// (unscaled) design; the intercept, unpenalized, follows from the means.
fn minimum_norm(design: &Design, y: &[f64], means: &[f64], rank: usize) -> Result<Vec<f64>> {
    let (n, k) = (design.n, design.k());
    let a = Mat::from_fn(n, k, |i, j| {
        design.columns[j][i].add_f64(-means[j]).to_f64()
    });
    let y_mean = if design.intercept {
        y.iter().sum::<f64>() / n as f64
    } else {
        0.0
    };
    let yc = Col::from_fn(n, |i| y[i] - y_mean);
    let svd = a
        .thin_svd()
        .map_err(|e| Error::Numerical(format!("singular value decomposition failed: {e:?}")))?;
    let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&i, &j| s[j].total_cmp(&s[i]));
    // The centred design has rank `rank - 1` with an intercept (the ones column is independent of it).
    let keep = rank - usize::from(design.intercept);
    let mut w = Col::<f64>::zeros(k);
    for &c in order.iter().take(keep) {
        let coef = svd.U().col(c).transpose() * &yc / s[c];
        w += svd.V().col(c) * coef;
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
