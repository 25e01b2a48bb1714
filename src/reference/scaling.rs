//! The centring and column scaling of a design before its QR factorization (`M = A T D`: centred
//! with an intercept, unit-norm columns), and the maps between the scaled problem's solution and
//! the design's. The scaled copy is what the least-squares solver factors; the design itself is
//! never changed.

use faer::Mat;

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
    pub(super) fn of(design: &Design) -> Scaling {
        let (n, k) = (design.n, design.k());
        let offset = usize::from(design.intercept);
        let means: Vec<f64> = if design.intercept {
            design
                .column_sums()
                .iter()
                .map(|s| s.to_f64() / n as f64)
                .collect()
        } else {
            vec![0.0; k]
        };
        let mut norm2 = vec![0.0; k];
        let mut row = vec![0.0; k];
        if design.has_low_parts() || k == 0 {
            for i in 0..n {
                centred_row(design, i, 0..k, &means, &mut row);
                norm2.iter_mut().zip(&row).for_each(|(s, c)| *s += c * c);
            }
        } else {
            // The same sums from the rows as they are stored (`centred_row`'s f64 route).
            for values in design.rows().chunks_exact(k) {
                for ((s, v), m) in norm2.iter_mut().zip(values).zip(&means) {
                    let c = v - m;
                    *s += c * c;
                }
            }
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

    /// `M`, column-major, written in blocks of eight columns so that each row's values are read
    /// from one cache line.
    pub(super) fn matrix(&self, design: &Design) -> Mat<f64> {
        const BLOCK: usize = 8;
        let (n, k) = (design.n, design.k());
        let offset = usize::from(self.intercept);
        let mut m = Mat::zeros(n, k + offset);
        if self.intercept {
            m.col_mut(0).fill(self.scale[0]);
        }
        if !design.has_low_parts() && k > 0 {
            // Column by column from the rows as they are stored: a block of eight columns of
            // every row stays in cache while its eight columns are written.
            let rows = design.rows();
            for start in (0..k).step_by(BLOCK) {
                for j in start..(start + BLOCK).min(k) {
                    let (mean, scale) = (self.means[j], self.scale[j + offset]);
                    let column = m.col_as_slice_mut(j + offset);
                    for (out, values) in column.iter_mut().zip(rows.chunks_exact(k)) {
                        *out = (values[j] - mean) * scale;
                    }
                }
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
