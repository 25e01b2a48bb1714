//! The design matrix of the least-squares reference and the double-double products its
//! refinement needs: residuals `y - A x` and transposed products `A^T r`.
//!
//! Values are kept row-major, as the data set holds them, and shared with it rather than copied
//! (at 100,000 x 1,000 a copy is 800 MB). A value is an f64 `hi` plus an optional low part `lo`
//! (decimals parsed to double-double and polynomial terms formed in double-double, as the NIST
//! check needs). The products accumulate compensated sums (an error-free product by fused
//! multiply-add, an error-free sum, the errors summed apart) in a fixed order: residuals in
//! [`LANES`] partial sums per row, element `j` to sum `j % LANES`; transposed products one sum per
//! column, row after row. They are compiled once per [`SimdLevel`] and give the same bits at each.
//! Given threads (`Par::Rayon`), residuals split the rows and transposed products the columns
//! among them, so every sum keeps its order: the same bits at any thread count.

use std::sync::Arc;

use faer::Par;
use rayon::prelude::*;

use super::dd::DD;
use crate::simd::{dispatch, SimdLevel};

/// Rows per task of a threaded residual.
const ROWS_PER_TASK: usize = 1024;

pub use super::dd::LANES;

/// A design matrix `n x k`, without the intercept column.
#[derive(Clone, Debug)]
pub struct Design {
    pub n: usize,
    k: usize,
    /// Row-major `n x k`.
    hi: Arc<[f64]>,
    /// Low parts, row-major; `None` when every value is an f64.
    lo: Option<Arc<[f64]>>,
    pub names: Vec<String>,
    pub intercept: bool,
}

impl Design {
    /// From a row-major f64 matrix (copied).
    pub fn from_rows(x: &[f64], n: usize, d: usize, intercept: bool) -> Design {
        Design::shared(x.into(), n, d, intercept)
    }

    /// From a row-major f64 matrix shared with the data set (not copied).
    pub fn shared(x: Arc<[f64]>, n: usize, d: usize, intercept: bool) -> Design {
        assert_eq!(
            x.len(),
            n * d,
            "a design of {n} x {d} needs {} values",
            n * d
        );
        Design {
            n,
            k: d,
            hi: x,
            lo: None,
            names: (0..d).map(|j| format!("x{j}")).collect(),
            intercept,
        }
    }

    /// From double-double columns, each of `n` values.
    pub fn from_columns(
        columns: &[Vec<DD>],
        n: usize,
        names: Vec<String>,
        intercept: bool,
    ) -> Design {
        let k = columns.len();
        assert!(columns.iter().all(|c| c.len() == n) && names.len() == k);
        let at = |part: fn(&DD) -> f64| -> Arc<[f64]> {
            (0..n * k).map(|v| part(&columns[v % k][v / k])).collect()
        };
        let lo = at(|v| v.lo);
        Design {
            n,
            k,
            hi: at(|v| v.hi),
            lo: lo.iter().any(|v| *v != 0.0).then_some(lo),
            names,
            intercept,
        }
    }

    /// Whether the design's values are `x` itself (with no low parts).
    pub(super) fn shares(&self, x: &Arc<[f64]>) -> bool {
        Arc::ptr_eq(&self.hi, x) && self.lo.is_none()
    }

    /// Columns, the intercept not counted.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Whether some value has a low part (is not an f64).
    pub(super) fn has_low_parts(&self) -> bool {
        self.lo.is_some()
    }

    /// The f64 parts of the values, row-major.
    pub(super) fn rows(&self) -> &[f64] {
        &self.hi
    }

    /// Row `i`, column `j`.
    pub fn value(&self, i: usize, j: usize) -> DD {
        let at = i * self.k + j;
        DD {
            hi: self.hi[at],
            lo: self.lo.as_ref().map_or(0.0, |lo| lo[at]),
        }
    }

    /// Adds the powers `2..=degree` of column `j`, formed in double-double, after the last column.
    pub fn add_powers(&mut self, j: usize, degree: u32) {
        let column = |c: usize| -> Vec<DD> { (0..self.n).map(|i| self.value(i, c)).collect() };
        let mut columns: Vec<Vec<DD>> = (0..self.k).map(column).collect();
        let mut names = self.names.clone();
        for power in 2..=degree {
            columns.push(columns[j].iter().map(|v| v.powi(power)).collect());
            names.push(format!("{}^{power}", self.names[j]));
        }
        *self = Design::from_columns(&columns, self.n, names, self.intercept);
    }

    /// `y - A x` in double-double (A as given; `x` holds the intercept first when there is one).
    pub(super) fn residual(&self, y: &[DD], x: &[f64], par: Par) -> Vec<DD> {
        self.residual_at(SimdLevel::detect(), y, x, par)
    }

    pub(super) fn residual_at(&self, level: SimdLevel, y: &[DD], x: &[f64], par: Par) -> Vec<DD> {
        let offset = usize::from(self.intercept);
        let coefficients = &x[offset..];
        let k = self.k;
        let mut dots = vec![DD::ZERO; self.n];
        if k > 0 && par == Par::Seq {
            dispatch!(
                level,
                kernels::row_dots(&self.hi, k, coefficients, &mut dots)
            );
        } else if k > 0 {
            dots.par_chunks_mut(ROWS_PER_TASK)
                .zip(self.hi.par_chunks(ROWS_PER_TASK * k))
                .for_each(|(dots, rows)| {
                    dispatch!(level, kernels::row_dots(rows, k, coefficients, dots))
                });
        }
        if let Some(lo) = &self.lo {
            // The low parts' products are below the rounding of the high parts: f64 suffices.
            for (dot, row) in dots.iter_mut().zip(lo.chunks_exact(self.k)) {
                let extra: f64 = row.iter().zip(coefficients).map(|(a, b)| a * b).sum();
                *dot = dot.add_f64(extra);
            }
        }
        y.iter()
            .zip(dots)
            .map(|(yi, dot)| {
                let shifted = if self.intercept {
                    yi.add_f64(-x[0])
                } else {
                    *yi
                };
                shifted - dot
            })
            .collect()
    }

    /// `A^T r` in double-double, rounded to f64, preceded by `sum(r)` when there is an intercept.
    pub(super) fn transpose_times(&self, r: &[f64], par: Par) -> Vec<f64> {
        self.transpose_times_at(SimdLevel::detect(), r, par)
            .into_iter()
            .map(DD::to_f64)
            .collect()
    }

    pub(super) fn transpose_times_at(&self, level: SimdLevel, r: &[f64], par: Par) -> Vec<DD> {
        let (hi, k) = (&*self.hi, self.k);
        let mut columns = if k == 0 {
            Vec::new()
        } else if par == Par::Seq {
            dispatch!(level, kernels::transposed(hi, k, r, 0..k))
        } else {
            // One range of columns per thread, each as wide as can be: every task reads all the
            // rows, so the fewer the tasks, the longer the stretch of each row it reads.
            let width = k.div_ceil(rayon::current_num_threads()).next_multiple_of(8);
            (0..k.div_ceil(width))
                .into_par_iter()
                .map(|t| {
                    let columns = t * width..((t + 1) * width).min(k);
                    dispatch!(level, kernels::transposed(hi, k, r, columns))
                })
                .collect::<Vec<_>>()
                .concat()
        };
        if let Some(lo) = &self.lo {
            for (row, ri) in lo.chunks_exact(self.k).zip(r) {
                for (c, a) in columns.iter_mut().zip(row) {
                    *c = c.add_f64(a * ri);
                }
            }
        }
        let mut out = Vec::with_capacity(self.k + 1);
        if self.intercept {
            out.push(r.iter().fold(DD::ZERO, |acc, v| acc.add_f64(*v)));
        }
        out.extend(columns);
        out
    }

    /// Column sums in double-double.
    pub(super) fn column_sums(&self, par: Par) -> Vec<DD> {
        let ones = vec![1.0; self.n];
        let sums = self.transpose_times_at(SimdLevel::detect(), &ones, par);
        sums[usize::from(self.intercept)..].to_vec()
    }
}

/// The two products, compiled once per SIMD level.
mod kernels {
    use super::super::dd::{accumulate, normalized, Compensated};
    use super::{DD, LANES};
    use crate::simd::at_every_level;
    use std::ops::Range;

    /// `a . x` for every row `a` of the row-major `rows` (`k` columns), each in double-double,
    /// into `dots`. Plain loops, no closures: a closure would be compiled without the caller's
    /// target features.
    #[inline(always)]
    pub fn row_dots(rows: &[f64], k: usize, x: &[f64], dots: &mut [DD]) {
        let x = &x[..k];
        for (row, dot) in rows.chunks_exact(k).zip(dots) {
            let mut sums = Compensated::default();
            let (chunks, chunks_x) = (row.chunks_exact(LANES), x.chunks_exact(LANES));
            let (tail, tail_x) = (chunks.remainder(), chunks_x.remainder());
            for (a, b) in chunks.zip(chunks_x) {
                for l in 0..LANES {
                    sums.add(l, a[l], b[l]);
                }
            }
            for (l, (a, b)) in tail.iter().zip(tail_x).enumerate() {
                sums.add(l, *a, *b);
            }
            *dot = sums.total();
        }
    }

    /// `rows^T r` over `columns` of the `k`, one double-double sum per column, rows in order.
    #[inline(always)]
    pub fn transposed(rows: &[f64], k: usize, r: &[f64], columns: Range<usize>) -> Vec<DD> {
        let width = columns.len();
        let mut sum = vec![0.0; width];
        let mut err = vec![0.0; width];
        for (row, ri) in rows.chunks_exact(k).zip(r) {
            for ((s, e), a) in sum
                .iter_mut()
                .zip(err.iter_mut())
                .zip(&row[columns.clone()])
            {
                accumulate(s, e, *a, *ri);
            }
        }
        let mut columns = Vec::with_capacity(width);
        for (s, e) in sum.into_iter().zip(err) {
            columns.push(normalized(s, e));
        }
        columns
    }

    at_every_level! {
        fn row_dots(rows: &[f64], k: usize, x: &[f64], dots: &mut [DD]);
        fn transposed(rows: &[f64], k: usize, r: &[f64], columns: Range<usize>) -> Vec<DD>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_keep_what_f64_cancels_away() {
        // Row 0: 1e16 + 1 - 1e16 = 1 exactly; summed in f64 it is 0.
        let rows = [1e16, 1.0, -1e16, 3.0, 2.0, 1.0];
        let design = Design::from_rows(&rows, 2, 3, true);
        let y = [DD::new(3.5), DD::new(10.0)];
        // Intercept 0.5 first, then the coefficients.
        let residual = design.residual(&y, &[0.5, 1.0, 1.0, 1.0], Par::Seq);
        assert_eq!(residual[0], DD::new(2.0));
        assert_eq!(residual[1], DD::new(3.5));
        // Column 0 against r = (1, 1): 1e16 + 3, which f64 rounds to 1e16 + 4.
        let columns = design.transpose_times_at(SimdLevel::detect(), &[1.0, 1.0], Par::Seq);
        assert_eq!(columns[0], DD::new(2.0), "the intercept entry is sum(r)");
        let DD { hi, lo } = columns[1];
        assert!(lo != 0.0 && (hi - 1e16) + lo == 3.0, "{:?}", columns[1]);
        // One column, 1e16 + 1 - 1e16 down the rows: exactly 1.
        let single = Design::from_rows(&[1e16, 1.0, -1e16], 3, 1, false);
        assert_eq!(
            single.transpose_times(&[1.0, 1.0, 1.0], Par::Seq),
            vec![1.0]
        );
        assert_eq!(single.column_sums(Par::Seq), vec![DD::new(1.0)]);
    }

    #[test]
    fn low_parts_enter_both_products() {
        // 1/3 in double-double, times 3, is 1 to about 32 digits; the f64 1/3 alone is not.
        let third = DD::new(1.0) / DD::new(3.0);
        let design = Design::from_columns(&[vec![third, third]], 2, vec!["x".into()], false);
        assert!(design.has_low_parts());
        let residual = design.residual(&[DD::new(1.0), DD::new(1.0)], &[3.0], Par::Seq);
        assert!(
            residual.iter().all(|r| r.to_f64().abs() < 1e-31),
            "{residual:?}"
        );
        let column = design.transpose_times_at(SimdLevel::detect(), &[3.0, -3.0], Par::Seq);
        assert!(column[0].to_f64().abs() < 1e-31, "{column:?}");
    }

    #[test]
    fn every_simd_level_gives_the_same_bits() {
        // 37 x 29: rows longer than one block of lanes, with a tail; values over 12 decades.
        let (n, k) = (37, 29);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let columns: Vec<Vec<DD>> = (0..k)
            .map(|j| {
                (0..n)
                    .map(|_| DD::new(next() * 10f64.powi(j % 12 - 6)) / DD::new(3.0))
                    .collect()
            })
            .collect();
        let names = (0..k).map(|j| format!("x{j}")).collect();
        let design = Design::from_columns(&columns, n, names, true);
        let y: Vec<DD> = (0..n).map(|_| DD::new(next())).collect();
        let x: Vec<f64> = (0..=k).map(|_| next()).collect();
        let r: Vec<f64> = (0..n).map(|_| next()).collect();
        let bits = |v: Vec<DD>| -> Vec<(u64, u64)> {
            v.iter().map(|d| (d.hi.to_bits(), d.lo.to_bits())).collect()
        };
        let portable = (
            bits(design.residual_at(SimdLevel::Portable, &y, &x, Par::Seq)),
            bits(design.transpose_times_at(SimdLevel::Portable, &r, Par::Seq)),
        );
        for level in SimdLevel::ALL.iter().copied().filter(|l| l.is_available()) {
            let at_level = (
                bits(design.residual_at(level, &y, &x, Par::Seq)),
                bits(design.transpose_times_at(level, &r, Par::Seq)),
            );
            assert_eq!(at_level, portable, "level {level}");
        }
    }

    #[test]
    fn threads_split_the_products_without_changing_a_bit() {
        // 2500 x 70: three row tasks (the last short), and as many column tasks as threads.
        let (n, k) = (2500, 70);
        let values: Vec<f64> = (0..n * k)
            .map(|v| ((v * 7919 % 10007) as f64 - 5000.0) * 1e-3 * 10f64.powi((v % 9) as i32 - 4))
            .collect();
        let design = Design::from_rows(&values, n, k, true);
        let y: Vec<DD> = (0..n).map(|i| DD::new(i as f64 / 7.0)).collect();
        let x: Vec<f64> = (0..=k).map(|j| (j as f64 - 30.0) / 11.0).collect();
        let r: Vec<f64> = (0..n)
            .map(|i| ((i * 31 % 97) as f64 - 48.0) / 3.0)
            .collect();
        let bits = |v: Vec<DD>| -> Vec<(u64, u64)> {
            v.iter().map(|d| (d.hi.to_bits(), d.lo.to_bits())).collect()
        };
        let level = SimdLevel::detect();
        let one = (
            bits(design.residual_at(level, &y, &x, Par::Seq)),
            bits(design.transpose_times_at(level, &r, Par::Seq)),
        );
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let many = pool.install(|| {
                (
                    bits(design.residual_at(level, &y, &x, Par::rayon(0))),
                    bits(design.transpose_times_at(level, &r, Par::rayon(0))),
                )
            });
            assert!(many == one, "{threads} threads");
        }
    }
}
