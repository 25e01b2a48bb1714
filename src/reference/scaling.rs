//! The centring and column scaling of a design before its QR factorization (`M = A T D`: centred
//! with an intercept, unit-norm columns), and the maps between the scaled problem's solution and
//! the design's. The scaled copy is what the least-squares solver factors; the design itself is
//! never changed. Given threads, both passes split the columns among them: the same bits at any
//! thread count.

use faer::reborrow::ReborrowMut;
use faer::{Mat, MatMut, Par};
use rayon::prelude::*;

use super::design::Design;

/// The centring and column scaling `M = A T D` of a design, and the maps between the solution
/// `z` of `M` and the design's `x = T D z`.
pub(super) struct Scaling {
    pub(super) means: Vec<f64>,
    pub(super) scale: Vec<f64>,
    intercept: bool,
}

impl Scaling {
    /// Column means in double-double (with an intercept) and the inverse norms of the centred columns.
    pub(super) fn of(design: &Design, par: Par) -> Scaling {
        let (n, k) = (design.n, design.k());
        let offset = usize::from(design.intercept);
        let means: Vec<f64> = if design.intercept {
            design
                .column_sums(par)
                .iter()
                .map(|s| s.to_f64() / n as f64)
                .collect()
        } else {
            vec![0.0; k]
        };
        let mut norm2 = vec![0.0; k];
        if design.has_low_parts() || k == 0 {
            let mut row = vec![0.0; k];
            for i in 0..n {
                centred_row(design, i, 0..k, &means, &mut row);
                norm2.iter_mut().zip(&row).for_each(|(s, c)| *s += c * c);
            }
        } else if par == Par::Seq {
            centred_squares(design.rows(), k, &means, 0, &mut norm2);
        } else {
            norm2
                .par_chunks_mut(BLOCK)
                .enumerate()
                .for_each(|(b, sums)| centred_squares(design.rows(), k, &means, b * BLOCK, sums));
        }
        let mut scale = vec![1.0 / (n as f64).sqrt(); k + offset];
        for j in 0..k {
            let norm = norm2[j].sqrt();
            scale[j + offset] = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        }
        Scaling {
            means,
            scale,
            intercept: design.intercept,
        }
    }

    /// `M`, column-major: a transposing copy by tiles of [`TILE_ROWS`] rows (on the threads
    /// `par` gives), each written in blocks of eight columns, so that each row's values are read
    /// from one cache line and a tile's rows stay in cache over its blocks.
    pub(super) fn matrix(&self, design: &Design, par: Par) -> Mat<f64> {
        let (n, k) = (design.n, design.k());
        let offset = usize::from(self.intercept);
        let mut m = Mat::zeros(n, k + offset);
        if self.intercept {
            m.col_mut(0).fill(self.scale[0]);
        }
        if !design.has_low_parts() && k > 0 {
            let rows = design.rows();
            let tile = |first: usize, mut out: MatMut<'_, f64>| {
                let tile_rows = &rows[first * k..(first + out.nrows()) * k];
                for start in (0..k).step_by(BLOCK) {
                    for j in start..(start + BLOCK).min(k) {
                        let (mean, scale) = (self.means[j], self.scale[j + offset]);
                        let column = out.rb_mut().col_mut(j).try_as_col_major_mut();
                        let column = column.expect("a column-major matrix").as_slice_mut();
                        for (to, values) in column.iter_mut().zip(tile_rows.chunks_exact(k)) {
                            *to = (values[j] - mean) * scale;
                        }
                    }
                }
            };
            let mut features = m.as_mut().subcols_mut(offset, k);
            if par == Par::Seq {
                for first in (0..n).step_by(TILE_ROWS) {
                    let height = TILE_ROWS.min(n - first);
                    tile(first, features.rb_mut().subrows_mut(first, height));
                }
            } else {
                features
                    .par_row_chunks_mut(TILE_ROWS)
                    .enumerate()
                    .for_each(|(t, out)| tile(t * TILE_ROWS, out));
            }
            return m;
        }
        let mut row = vec![0.0; k];
        for start in (0..k).step_by(BLOCK) {
            let end = (start + BLOCK).min(k);
            for i in 0..n {
                centred_row(design, i, start..end, &self.means, &mut row);
                for j in start..end {
                    m[(i, j + offset)] = row[j] * self.scale[j + offset];
                }
            }
        }
        m
    }

    /// `x = T D z`.
    pub(super) fn to_x(&self, z: &[f64]) -> Vec<f64> {
        let p = self.scale.len();
        let mut x: Vec<f64> = (0..p).map(|c| self.scale[c] * z[c]).collect();
        if self.intercept {
            x[0] -= (0..p - 1).map(|j| self.means[j] * x[j + 1]).sum::<f64>();
        }
        x
    }

    /// `M^T v = D T^T (A^T v)`, from `w = A^T v`.
    pub(super) fn transpose_times_from(&self, w: &[f64]) -> Vec<f64> {
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

/// Columns per block of the scaled copy (one cache line of a row), and per task of the threaded
/// column sums.
const BLOCK: usize = 8;

/// Rows per tile of the scaled copy.
const TILE_ROWS: usize = 64;

/// `sum_i (a_ij - mean_j)^2` for the columns `start..start + sums.len()` of row-major `rows`.
fn centred_squares(rows: &[f64], k: usize, means: &[f64], start: usize, sums: &mut [f64]) {
    let means = &means[start..start + sums.len()];
    for values in rows.chunks_exact(k) {
        let values = &values[start..start + sums.len()];
        for ((s, v), m) in sums.iter_mut().zip(values).zip(means) {
            let c = v - m;
            *s += c * c;
        }
    }
}

/// Columns `columns` of row `i` of the design minus their means (into the same places of
/// `out`), each value rounded once from double-double.
fn centred_row(
    design: &Design,
    i: usize,
    columns: std::ops::Range<usize>,
    means: &[f64],
    out: &mut [f64],
) {
    if design.has_low_parts() {
        for j in columns {
            out[j] = design.value(i, j).add_f64(-means[j]).to_f64();
        }
    } else {
        // An f64 minus an f64, rounded once: the same value as the double-double route.
        let k = design.k();
        let row = &design.rows()[i * k..(i + 1) * k];
        for j in columns {
            out[j] = row[j] - means[j];
        }
    }
}
