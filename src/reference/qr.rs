//! The Householder QR of the least-squares solver's scaled design `M` (`n x p`, column-major),
//! factored in place, and its thin `Q` applied from the Householder vectors (never formed).
//!
//! A small design is one block, factored as a whole. A big one (see [`parallelism`]) is split
//! into row blocks, a tall-skinny QR: each block is factored on its own, all at once on the
//! threads there are, then the blocks' stacked triangular factors are factored again, and `Q` is
//! the blocks' `Q`s times the stack's. The blocks are a function of the shape alone, and each
//! block's arithmetic its own, so the bits do not depend on the threads.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::householder;
use faer::linalg::qr::no_pivoting::factor as qr;
use faer::{Conj, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::ols::parallelism;

/// The most row blocks a big design is split into.
const MAX_BLOCKS: usize = 8;

/// Rows per block at the least, in multiples of the columns.
const ROWS_PER_COLUMN: usize = 8;

/// A factored design: `M = Q R`.
pub(super) struct Qr {
    /// Each block's Householder vectors in its rows, below a unit diagonal (faer's basis of Q).
    basis: Mat<f64>,
    /// The row where each block starts, then `n`.
    starts: Vec<usize>,
    /// Each block's block Householder factors.
    coeffs: Vec<Mat<f64>>,
    /// With more than one block, the QR of the blocks' stacked triangular factors: its basis and
    /// factors.
    stack: Option<(Mat<f64>, Mat<f64>)>,
    /// The `p x p` upper triangular factor.
    pub(super) r: Mat<f64>,
    par: Par,
}

impl Qr {
    /// Factors `m` (taken; it becomes the basis).
    pub(super) fn of(m: Mat<f64>) -> Qr {
        let (n, p) = m.shape();
        let par = parallelism(n, p);
        let blocks = if par == Par::Seq {
            1
        } else {
            (n / (ROWS_PER_COLUMN * p)).clamp(1, MAX_BLOCKS)
        };
        Qr::in_blocks(m, blocks, par)
    }

    /// Factors `m` in `blocks` row blocks of at least `p` rows each (one: as a whole, with `par`).
    fn in_blocks(m: Mat<f64>, blocks: usize, par: Par) -> Qr {
        let (n, p) = m.shape();
        assert!(
            n / blocks >= p,
            "each block has at least as many rows as columns"
        );
        let starts: Vec<usize> = (0..=blocks).map(|b| b * n / blocks).collect();
        let mut basis = m;
        let (coeffs, mut stack, r) = if blocks == 1 {
            let coeff = factor(basis.as_mut(), par);
            let r = upper(basis.as_ref());
            (vec![coeff], None, r)
        } else {
            let mut parts = Vec::with_capacity(blocks);
            let mut rest = basis.as_mut();
            for rows in starts.windows(2) {
                let (part, tail) = rest.split_at_row_mut(rows[1] - rows[0]);
                parts.push(part);
                rest = tail;
            }
            let coeffs: Vec<Mat<f64>> = parts
                .into_par_iter()
                .map(|part| factor(part, Par::Seq))
                .collect();
            // The blocks' triangular factors, one above the other.
            let mut stacked = Mat::zeros(blocks * p, p);
            for (b, &start) in starts[..blocks].iter().enumerate() {
                let r_b = upper(basis.as_ref().subrows(start, p));
                stacked.as_mut().subrows_mut(b * p, p).copy_from(&r_b);
            }
            let stack_par = parallelism(stacked.nrows(), p);
            let coeff = factor(stacked.as_mut(), stack_par);
            let r = upper(stacked.as_ref());
            (coeffs, Some((stacked, coeff)), r)
        };
        for &start in &starts[..blocks] {
            unit_diagonal(basis.as_mut().subrows_mut(start, p));
        }
        if let Some((stacked, _)) = stack.as_mut() {
            unit_diagonal(stacked.as_mut().subrows_mut(0, p));
        }
        Qr {
            basis,
            starts,
            coeffs,
            stack,
            r,
            par,
        }
    }

    /// `Q^T v`, the first `p` entries (thin Q).
    pub(super) fn qt(&self, v: &[f64]) -> Vec<f64> {
        let p = self.r.ncols();
        if self.coeffs.len() == 1 {
            return apply(self.basis.as_ref(), &self.coeffs[0], v, true, self.par)[..p].to_vec();
        }
        let tops: Vec<Vec<f64>> = (0..self.coeffs.len())
            .into_par_iter()
            .map(|b| {
                let (basis, rows) = self.block(b);
                apply(basis, &self.coeffs[b], &v[rows], true, Par::Seq)[..p].to_vec()
            })
            .collect();
        let (stacked, coeff) = self.stack.as_ref().expect("blocks are stacked");
        let par = parallelism(stacked.nrows(), p);
        apply(stacked.as_ref(), coeff, &tops.concat(), true, par)[..p].to_vec()
    }

    /// `Q u` (thin Q: `u` has `p` entries).
    pub(super) fn q(&self, u: &[f64]) -> Vec<f64> {
        let p = self.r.ncols();
        let padded = |u: &[f64], len: usize| -> Vec<f64> {
            let mut v = vec![0.0; len];
            v[..p].copy_from_slice(u);
            v
        };
        if self.coeffs.len() == 1 {
            let n = self.basis.nrows();
            return apply(
                self.basis.as_ref(),
                &self.coeffs[0],
                &padded(u, n),
                false,
                self.par,
            );
        }
        let (stacked, coeff) = self.stack.as_ref().expect("blocks are stacked");
        let par = parallelism(stacked.nrows(), p);
        let z = apply(
            stacked.as_ref(),
            coeff,
            &padded(u, stacked.nrows()),
            false,
            par,
        );
        (0..self.coeffs.len())
            .into_par_iter()
            .map(|b| {
                let (basis, rows) = self.block(b);
                let v = padded(&z[b * p..(b + 1) * p], rows.len());
                apply(basis, &self.coeffs[b], &v, false, Par::Seq)
            })
            .collect::<Vec<_>>()
            .concat()
    }

    /// Block `b`'s basis and rows.
    fn block(&self, b: usize) -> (MatRef<'_, f64>, std::ops::Range<usize>) {
        let (start, end) = (self.starts[b], self.starts[b + 1]);
        (self.basis.as_ref().subrows(start, end - start), start..end)
    }
}

/// faer's blocked Householder QR of `a` in place, returning the block Householder factors.
fn factor(mut a: MatMut<'_, f64>, par: Par) -> Mat<f64> {
    let (n, p) = a.shape();
    let block = qr::recommended_block_size::<f64>(n, p);
    let mut coeff = Mat::zeros(block, p);
    let scratch = qr::qr_in_place_scratch::<f64>(n, p, block, par, Default::default());
    qr::qr_in_place(
        a.as_mut(),
        coeff.as_mut(),
        par,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    );
    coeff
}

/// The upper triangle of the first `p` rows of a factored `n x p` matrix.
fn upper(a: MatRef<'_, f64>) -> Mat<f64> {
    let p = a.ncols();
    Mat::from_fn(p, p, |i, j| if i <= j { a[(i, j)] } else { 0.0 })
}

/// The first `p` rows of a basis as faer reads it: a unit diagonal, zeros above.
fn unit_diagonal(mut top: MatMut<'_, f64>) {
    for j in 0..top.ncols() {
        for i in 0..=j {
            top[(i, j)] = if i == j { 1.0 } else { 0.0 };
        }
    }
}

/// `Q^T v` (`transpose`) or `Q v` for the Q of `basis` and `coeff`, all of `v`'s entries.
fn apply(
    basis: MatRef<'_, f64>,
    coeff: &Mat<f64>,
    v: &[f64],
    transpose: bool,
    par: Par,
) -> Vec<f64> {
    let n = basis.nrows();
    let mut column = Mat::from_fn(n, 1, |i, _| v[i]);
    let (blocks, coeff) = (coeff.nrows(), coeff.as_ref());
    let scratch = if transpose {
        householder::apply_block_householder_sequence_transpose_on_the_left_in_place_scratch::<f64>
    } else {
        householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>
    }(n, blocks, 1);
    let mut buffer = MemBuffer::new(scratch);
    let (stack, conj, out) = (MemStack::new(&mut buffer), Conj::No, column.as_mut());
    if transpose {
        householder::apply_block_householder_sequence_transpose_on_the_left_in_place_with_conj(
            basis, coeff, conj, out, par, stack,
        );
    } else {
        householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            basis, coeff, conj, out, par, stack,
        );
    }
    column.col(0).iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 240 x 7 matrix of values in [-0.5, 0.5), columns of different scales.
    fn matrix() -> Mat<f64> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        Mat::from_fn(240, 7, |_, j| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * (j + 1) as f64
        })
    }

    #[test]
    fn row_blocks_factor_the_matrix_as_one_block_does() {
        let m = matrix();
        let (n, p) = m.shape();
        let whole = Qr::in_blocks(m.clone(), 1, Par::Seq);
        for blocks in [2, 3, 5] {
            let qr = Qr::in_blocks(m.clone(), blocks, Par::Seq);
            assert_eq!(qr.coeffs.len(), blocks);
            // The same R up to the signs of its rows: R^T R = M^T M has one Cholesky factor.
            for i in 0..p {
                let sign = qr.r[(i, i)].signum() * whole.r[(i, i)].signum();
                for j in 0..p {
                    let (a, b) = (qr.r[(i, j)], sign * whole.r[(i, j)]);
                    assert!(
                        (a - b).abs() <= 1e-13 * (1.0 + b.abs()),
                        "{blocks} blocks, R[{i},{j}]"
                    );
                }
            }
            // Q R x = M x, and Q^T Q u = u (orthonormal columns).
            let x: Vec<f64> = (0..p).map(|j| 1.0 / (j + 1) as f64 - 0.3).collect();
            let rx: Vec<f64> = (0..p)
                .map(|i| (i..p).map(|j| qr.r[(i, j)] * x[j]).sum())
                .collect();
            let qrx = qr.q(&rx);
            for i in 0..n {
                let mx: f64 = (0..p).map(|j| m[(i, j)] * x[j]).sum();
                assert!((qrx[i] - mx).abs() <= 1e-13, "{blocks} blocks, row {i}");
            }
            let back = qr.qt(&qr.q(&x));
            for (a, b) in back.iter().zip(&x) {
                assert!((a - b).abs() <= 1e-14, "{blocks} blocks: {back:?}");
            }
            // Q^T v is the same projection whatever the blocks: |Q^T v| is.
            let v: Vec<f64> = (0..n).map(|i| (i % 13) as f64 - 6.0).collect();
            let norm = |u: &[f64]| u.iter().map(|a| a * a).sum::<f64>().sqrt();
            let (a, b) = (norm(&qr.qt(&v)), norm(&whole.qt(&v)));
            assert!(
                (a - b).abs() <= 1e-12 * b,
                "{blocks} blocks: {a} against {b}"
            );
        }
    }

    #[test]
    fn a_small_matrix_is_one_block_and_a_big_one_several() {
        assert_eq!(Qr::of(matrix()).coeffs.len(), 1);
        // 100,000 x 1,001 (the scaling benchmark's): eight blocks of 12,500 rows.
        let (n, p) = (100_000, 1001);
        assert_eq!(parallelism(n, p), Par::rayon(super::super::ols::PARTS));
        assert_eq!((n / (ROWS_PER_COLUMN * p)).clamp(1, MAX_BLOCKS), 8);
    }
}
