//! The per-epoch train MSE without a pass over the rows. In original units the sum of squared
//! errors is a quadratic in the parameters `theta = (w', b')`:
//! `sse = s^2 theta' G theta + 2 s theta' c + k0`, with `A = [X' 1]` the training design,
//! `G = A'A`, `c = A'(m 1 - y)`, `k0 = |m 1 - y|^2`, and `y = s y' + m` the target's scaling.
//!
//! `G` (once per set of training features, `O(n d^2)`), `c` and `k0` (once per target, `O(n d)`)
//! are accumulated from error-free products and sums, so they hold about 30 significant digits;
//! an evaluation takes `O(d^2)` in the same compensated arithmetic. So the figure carries the
//! cancellation of the three terms (large when the features are collinear) with digits to spare,
//! and lands closer to the exact value than a pass in f64, which rounds every residual (tested
//! against a double-double pass), unless the residuals are some 1e13 times smaller than
//! `|x'| |theta|`, where the f64 pass is itself off in the second digit. Evaluated in plain f64 the
//! same identity loses about six digits on the un-whitened built-in data. Every sum has a fixed
//! order (each entry of `G`, `c` and `k0` one compensated sum over the rows in order; the
//! evaluation [`LANES`] partial sums along a row of `G`) and uses fused multiply-adds, so each
//! SIMD level gives the same bits.
//!
//! Building `G` costs about as much as `d` passes (16 ms against 0.12 ms per pass at 9259 x 121
//! here), so runs use the identity only when they have at least `d` epochs ([`pays_off`]); the
//! choice depends on the run's own settings only, never on the sweep it is part of, so a run's
//! numbers do not depend on its neighbours.

use super::kernel::Real;
use crate::reference::{accumulate, normalized, two_sum, Compensated, DD, LANES};
use crate::simd::{dispatch, SimdLevel};

/// Whether a run of `epochs` epochs on `d` features computes its per-epoch train MSE by the
/// identity: building `G` costs about `d` passes over the rows, each evaluation a few
/// microseconds.
pub fn pays_off(epochs: u32, d: usize) -> bool {
    epochs as usize >= d
}

/// `G = A'A` of a training design `A = [X' 1]`, `k x k` (`k = d + 1`, weights then bias, as the
/// parameters), full and row-major, each entry a high part and the rounding error below it.
#[derive(Debug)]
pub struct Gram {
    k: usize,
    hi: Vec<f64>,
    lo: Vec<f64>,
}

/// The target's terms: `c = A'(m 1 - y)` (high and low parts) and `k0 = |m 1 - y|^2`.
#[derive(Debug)]
pub struct TargetTerms {
    c_hi: Vec<f64>,
    c_lo: Vec<f64>,
    k0: DD,
}

impl Gram {
    /// `G` of the first `d` columns of the row-major `rows` (`stride` values per row), widened
    /// exactly to f64, at `level`.
    pub fn of<T: Real>(level: SimdLevel, rows: &[T], d: usize, stride: usize) -> Gram {
        dispatch!(level, kernels::gram(rows, d, stride))
    }

    /// The sum of squared errors, in original units, of the parameters `theta` (weights, then
    /// bias) under the target scaling `y = scale y' + mean` whose terms are `target`.
    #[inline(always)]
    pub fn sse(&self, target: &TargetTerms, theta: &[f64], scale: f64) -> f64 {
        let k = self.k;
        assert_eq!(theta.len(), k, "one parameter per column of the design");
        // theta' G theta = sum_j theta_j (G theta)_j, each (G theta)_j a compensated dot product.
        let mut quadratic = Compensated::default();
        let rows = self.hi.chunks_exact(k).zip(self.lo.chunks_exact(k));
        for (j, (hi, lo)) in rows.enumerate() {
            let g_theta = compensated_dot(hi, lo, theta);
            quadratic.add_dd(j % LANES, theta[j], g_theta.hi, g_theta.lo);
        }
        let mut linear = Compensated::default();
        for (j, (c_hi, c_lo)) in target.c_hi.iter().zip(&target.c_lo).enumerate() {
            linear.add_dd(j % LANES, theta[j], *c_hi, *c_lo);
        }
        let sse = quadratic.total().mul_f64(scale).mul_f64(scale)
            + linear.total().mul_f64(2.0 * scale)
            + target.k0;
        let value = sse.to_f64();
        if value < 0.0 {
            // A sum of squares near zero can round below it; zero is the nearer value.
            0.0
        } else if value.is_finite() || theta.iter().any(|t| t.is_nan()) {
            value
        } else {
            // Parameters so large that a term overflows leave NaN in the error terms: the sum of
            // squares is infinite (a pass may give NaN there, from inf - inf; both mark the run
            // diverged). NaN parameters give NaN.
            f64::INFINITY
        }
    }
}

impl TargetTerms {
    /// The terms of the target `y` scaled by `y = scale y' + mean`, on the first `d` columns of
    /// the row-major `rows` (`stride` values per row).
    pub fn of<T: Real>(
        level: SimdLevel,
        rows: &[T],
        d: usize,
        stride: usize,
        y: &[f64],
        mean: f64,
    ) -> TargetTerms {
        dispatch!(level, kernels::target(rows, d, stride, y, mean))
    }
}

/// The two builders, compiled once per SIMD level.
mod kernels {
    pub(super) use super::{gram_rows as gram, target_rows as target};
    use super::{Gram, Real, TargetTerms};
    use crate::simd::at_every_level;

    at_every_level! {
        fn gram[T: Real](rows: &[T], d: usize, stride: usize) -> Gram;
        fn target[T: Real](rows: &[T], d: usize, stride: usize, y: &[f64], mean: f64) -> TargetTerms;
    }
}

/// `G`: the upper triangle of `X'X` accumulated row after row (one compensated sum per entry,
/// packed), the column sums, then `n`; mirrored into the full matrix.
#[inline(always)]
fn gram_rows<T: Real>(rows: &[T], d: usize, stride: usize) -> Gram {
    let k = d + 1;
    let packed = d * (d + 1) / 2;
    let (mut sum, mut err) = (vec![0.0; packed], vec![0.0; packed]);
    let (mut column_sum, mut column_err) = (vec![0.0; d], vec![0.0; d]);
    let mut row = vec![0.0; d];
    let mut n = 0usize;
    for values in rows.chunks_exact(stride) {
        for (wide, v) in row.iter_mut().zip(&values[..d]) {
            *wide = v.wide();
        }
        let mut offset = 0;
        for j in 0..d {
            let a = row[j];
            let (s, e) = (
                &mut sum[offset..offset + d - j],
                &mut err[offset..offset + d - j],
            );
            for ((s, e), b) in s.iter_mut().zip(e.iter_mut()).zip(&row[j..]) {
                accumulate(s, e, a, *b);
            }
            offset += d - j;
            let (total, rounding) = two_sum(column_sum[j], a);
            column_sum[j] = total;
            column_err[j] += rounding;
        }
        n += 1;
    }
    let (mut hi, mut lo) = (vec![0.0; k * k], vec![0.0; k * k]);
    let mut set = |j: usize, l: usize, value: DD| {
        for (a, b) in [(j, l), (l, j)] {
            hi[a * k + b] = value.hi;
            lo[a * k + b] = value.lo;
        }
    };
    let mut offset = 0;
    for j in 0..d {
        for l in j..d {
            set(j, l, normalized(sum[offset], err[offset]));
            offset += 1;
        }
        set(j, d, normalized(column_sum[j], column_err[j]));
    }
    set(d, d, DD::new(n as f64));
    Gram { k, hi, lo }
}

/// `c = A'(m 1 - y)` and `k0 = |m 1 - y|^2`, rows in order, with `m - y_i` kept exactly as a
/// pair of f64.
#[inline(always)]
fn target_rows<T: Real>(rows: &[T], d: usize, stride: usize, y: &[f64], mean: f64) -> TargetTerms {
    let (mut sum, mut err) = (vec![0.0; d + 1], vec![0.0; d + 1]);
    let (mut k0_sum, mut k0_err) = (0.0, 0.0);
    for (values, yi) in rows.chunks_exact(stride).zip(y) {
        let (t, t_low) = two_sum(mean, -yi);
        for ((s, e), v) in sum.iter_mut().zip(err.iter_mut()).zip(&values[..d]) {
            let a = v.wide();
            accumulate(s, e, a, t);
            *e = a.mul_add(t_low, *e);
        }
        let (total, rounding) = two_sum(sum[d], t);
        sum[d] = total;
        err[d] += rounding + t_low;
        accumulate(&mut k0_sum, &mut k0_err, t, t);
        k0_err = (2.0 * t).mul_add(t_low, k0_err);
    }
    let c: Vec<DD> = sum
        .into_iter()
        .zip(err)
        .map(|(s, e)| normalized(s, e))
        .collect();
    TargetTerms {
        c_hi: c.iter().map(|v| v.hi).collect(),
        c_lo: c.iter().map(|v| v.lo).collect(),
        k0: normalized(k0_sum, k0_err),
    }
}

/// `sum_l (hi_l + lo_l) theta_l`, compensated over [`LANES`] partial sums.
#[inline(always)]
fn compensated_dot(hi: &[f64], lo: &[f64], theta: &[f64]) -> DD {
    let mut sums = Compensated::default();
    let chunks = hi
        .chunks(LANES)
        .zip(lo.chunks(LANES))
        .zip(theta.chunks(LANES));
    for ((h, l), t) in chunks {
        if h.len() == LANES {
            for lane in 0..LANES {
                sums.add_dd(lane, t[lane], h[lane], l[lane]);
            }
        } else {
            for lane in 0..h.len() {
                sums.add_dd(lane, t[lane], h[lane], l[lane]);
            }
        }
    }
    sums.total()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(rows: &[f64], y: &[f64], theta: &[f64], scale: f64, mean: f64) -> f64 {
        let level = SimdLevel::detect();
        let d = theta.len() - 1;
        let target = TargetTerms::of(level, rows, d, d, y, mean);
        Gram::of(level, rows, d, d).sse(&target, theta, scale)
    }

    #[test]
    fn the_identity_gives_the_sum_of_squares_of_a_small_fit_exactly() {
        // A = [x 1] with x = 1, 2, 3; y = 1, 2, 2; w = b = 0.5 predicts 1, 1.5, 2.
        let (x, y) = ([1.0, 2.0, 3.0], [1.0, 2.0, 2.0]);
        assert_eq!(sse(&x, &y, &[0.5, 0.5], 1.0, 0.0), 0.25);
        // Scaled target y = 2 y' + 1: w = 0.5, b = 0 predicts 2, 3, 4 in original units.
        assert_eq!(sse(&x, &y, &[0.5, 0.0], 2.0, 1.0), 6.0);
        // At zero parameters the sum of squares is |m 1 - y|^2.
        assert_eq!(sse(&x, &y, &[0.0, 0.0], 3.0, 0.5), 0.25 + 2.25 + 2.25);
    }

    #[test]
    fn the_identity_keeps_what_f64_cancels_away() {
        // A feature collinear with the intercept: x = 1e8 + i. w = 1, b = -1e8 predicts 1, 2, 3;
        // theta' G theta is about 3e16 and the terms cancel to 0.25, which f64 cannot resolve.
        let x = [1e8 + 1.0, 1e8 + 2.0, 1e8 + 3.0];
        let y = [1.0, 2.0, 2.5];
        assert_eq!(sse(&x, &y, &[1.0, -1e8], 1.0, 0.0), 0.25);
        let naive: f64 = {
            let g = [
                [x.iter().map(|v| v * v).sum::<f64>(), x.iter().sum()],
                [x.iter().sum(), 3.0],
            ];
            let c = [
                -x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>(),
                -y.iter().sum::<f64>(),
            ];
            let t = [1.0, -1e8];
            let quadratic: f64 = (0..2)
                .map(|j| (0..2).map(|l| t[j] * g[j][l] * t[l]).sum::<f64>())
                .sum();
            quadratic + 2.0 * (t[0] * c[0] + t[1] * c[1]) + y.iter().map(|v| v * v).sum::<f64>()
        };
        assert!((naive - 0.25).abs() > 0.1, "plain f64 gives {naive}");
    }

    #[test]
    fn f32_rows_and_several_columns_match_a_direct_sum() {
        // Small integers: every product and sum below is exact in f64.
        let (n, d) = (7, 3);
        let rows: Vec<f32> = (0..n * d).map(|v| ((v * 5) % 11) as f32 - 5.0).collect();
        let y: Vec<f64> = (0..n).map(|i| (i % 4) as f64).collect();
        let theta = [1.0, -2.0, 0.5, 3.0];
        let direct: f64 = rows
            .chunks_exact(d)
            .zip(&y)
            .map(|(r, yi)| {
                let u: f64 = r
                    .iter()
                    .zip(&theta)
                    .map(|(a, t)| f64::from(*a) * t)
                    .sum::<f64>()
                    + theta[d];
                (2.0 * u + 1.0 - yi).powi(2)
            })
            .sum();
        let level = SimdLevel::detect();
        let target = TargetTerms::of(level, &rows, d, d, &y, 1.0);
        assert_eq!(
            Gram::of(level, &rows, d, d).sse(&target, &theta, 2.0),
            direct
        );
    }

    #[test]
    fn every_simd_level_builds_the_same_terms() {
        let (n, d) = (37, 19);
        let rows: Vec<f64> = (0..n * d)
            .map(|v| ((v * 7919 % 1013) as f64 / 97.0 - 5.0) * 1.1f64.powi((v % 9) as i32))
            .collect();
        let y: Vec<f64> = (0..n)
            .map(|i| (i as f64 * 0.37).sin() * 1e-3 + 0.1)
            .collect();
        let theta: Vec<f64> = (0..=d).map(|j| (j as f64 - 9.0) * 0.013).collect();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let reference = (
            Gram::of(SimdLevel::Portable, &rows, d, d),
            TargetTerms::of(SimdLevel::Portable, &rows, d, d, &y, 0.1),
        );
        for level in SimdLevel::ALL.iter().filter(|l| l.is_available()) {
            let (gram, target) = (
                Gram::of(*level, &rows, d, d),
                TargetTerms::of(*level, &rows, d, d, &y, 0.1),
            );
            assert_eq!(bits(&gram.hi), bits(&reference.0.hi), "{level}");
            assert_eq!(bits(&gram.lo), bits(&reference.0.lo), "{level}");
            assert_eq!(bits(&target.c_hi), bits(&reference.1.c_hi), "{level}");
            assert_eq!(bits(&target.c_lo), bits(&reference.1.c_lo), "{level}");
            assert_eq!(target.k0, reference.1.k0, "{level}");
            assert_eq!(
                gram.sse(&target, &theta, 1.5).to_bits(),
                reference.0.sse(&reference.1, &theta, 1.5).to_bits()
            );
        }
    }

    #[test]
    fn a_sum_of_squares_never_comes_out_negative() {
        // An exact fit, y = 2 x + 1 (every value exact): at w = 2, b = 1 the sum of squares is 0,
        // and at a hair from there it is tiny but not negative.
        let x = [0.5, 1.5, 2.0, 3.25];
        let y: Vec<f64> = x.iter().map(|v| 2.0 * v + 1.0).collect();
        assert_eq!(sse(&x, &y, &[2.0, 1.0], 1.0, 0.0), 0.0);
        let near = sse(&x, &y, &[2.0 + 1e-15, 1.0 - 1e-15], 1.0, 0.0);
        assert!((0.0..1e-28).contains(&near), "{near}");
    }

    #[test]
    fn an_overflowing_quadratic_reports_infinity() {
        let (x, y) = ([1.0, 2.0, 3.0], [1.0, 2.0, 2.0]);
        assert_eq!(sse(&x, &y, &[1e200, 0.0], 1.0, 0.0), f64::INFINITY);
    }

    #[test]
    fn the_identity_pays_off_from_as_many_epochs_as_columns() {
        assert!(!pays_off(120, 121));
        assert!(pays_off(121, 121));
        assert!(pays_off(500, 121));
        assert!(!pays_off(100, 1000));
    }
}
