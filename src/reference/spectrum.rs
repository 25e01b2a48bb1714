//! The spectrum of the feature covariance and the whitening matrices built from it, on top of
//! faer. The spectrum comes from the SVD of the triangular QR factor of the centred design, the
//! factor the OLS reference computes anyway (never a formed covariance), so small eigenvalues
//! keep their accuracy. This module knows nothing of configs or training.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::svd::{self as svd_impl, ComputeSvdVectors};
use faer::{Mat, MatRef, Par};

use super::design::Design;
use super::ols::{rank_tolerance, Factored};
use crate::error::{Error, Result};

/// Eigen-decomposition of the feature covariance `Xc^T Xc / n`, from the thin SVD of the
/// centred design (more accurate for small eigenvalues than decomposing the covariance).
#[derive(Clone, Debug)]
pub struct Spectrum {
    /// Eigenvalues, descending.
    pub eigenvalues: Vec<f64>,
    /// Eigenvectors as columns, in the order of `eigenvalues` (`d x d`).
    pub eigenvectors: Mat<f64>,
    /// Numerical rank of the centred design (singular values above [`rank_tolerance`]).
    pub rank: usize,
}

impl Spectrum {
    /// The spectrum of a row-major `n x d` matrix's covariance.
    pub fn of(x: &[f64], n: usize, d: usize) -> Result<Spectrum> {
        let design = Design::from_rows(x, n, d, true);
        Spectrum::of_centred(&Factored::of(&design)?.centred_triangle(), n)
    }

    /// The spectrum from the triangular factor `R_c` of the centred design (`Xc = Q_c R_c`):
    /// `Xc` and `R_c` share singular values and right singular vectors, so the SVD of the small
    /// `d x d` factor gives the eigen-decomposition of `Xc^T Xc / n`.
    pub fn of_centred(r_c: &Mat<f64>, n: usize) -> Result<Spectrum> {
        let d = r_c.ncols();
        let (s, _, v) = svd(r_c.as_ref(), true)?;
        let scale = 1.0 / (n as f64);
        let eigenvalues: Vec<f64> = s.iter().map(|s| s * s * scale).collect();
        let rank = numerical_rank(&s, n, d);
        Ok(Spectrum {
            eigenvalues,
            eigenvectors: v,
            rank,
        })
    }
}

fn numerical_rank(s: &[f64], n: usize, d: usize) -> usize {
    let cutoff = s.first().copied().unwrap_or(0.0) * rank_tolerance(n, d);
    s.iter().filter(|&&v| v > cutoff).count()
}

/// SVD of an `m x n` matrix (`m >= n`): singular values (descending) and, with `vectors`, the
/// thin U (`m x n`) and V (`n x n`); without, both are empty. Always on one thread: faer's
/// bidiagonalization splits its products among as many parts as it is given threads, so its
/// bits depend on the thread count (the factorization and products do not).
pub(super) fn svd(a: MatRef<'_, f64>, vectors: bool) -> Result<(Vec<f64>, Mat<f64>, Mat<f64>)> {
    let par = Par::Seq;
    let (m, n) = a.shape();
    let size = m.min(n);
    let (compute, columns) = if vectors {
        (ComputeSvdVectors::Thin, size)
    } else {
        (ComputeSvdVectors::No, 0)
    };
    let (mut u, mut v) = (Mat::zeros(m, columns), Mat::zeros(n, columns));
    let mut s = Diag::zeros(size);
    let scratch = svd_impl::svd_scratch::<f64>(m, n, compute, compute, par, Default::default());
    svd_impl::svd(
        a,
        s.as_mut(),
        vectors.then_some(u.as_mut()),
        vectors.then_some(v.as_mut()),
        par,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    )
    .map_err(|e| Error::Numerical(format!("singular value decomposition failed: {e:?}")))?;
    let s: Vec<f64> = s.column_vector().iter().copied().collect();
    // faer returns singular values in non-increasing order; keep that as a checked assumption.
    debug_assert!(s.windows(2).all(|w| w[0] >= w[1]));
    Ok((s, u, v))
}

/// The whitening matrix `W` (`d x d`) for the covariance spectrum: ZCA `U D U^T` or PCA `D U^T`
/// with `D = diag(1 / sqrt(lambda + eps))`, together with `W^{-1}`.
pub fn whitening(spectrum: &Spectrum, zca: bool, eps: f64) -> Result<(Mat<f64>, Mat<f64>)> {
    let d = spectrum.eigenvalues.len();
    if eps == 0.0 && spectrum.rank < d {
        let smallest = spectrum.eigenvalues.last().copied().unwrap_or(0.0);
        return Err(Error::Numerical(format!(
            "the feature covariance is singular (rank {} of {d}, smallest eigenvalue {smallest:.3e}), so whitening \
             with whiten_eps = 0 would divide by zero: set train.whiten_eps > 0 (for example 1e-8), or drop the \
             redundant features",
            spectrum.rank
        )));
    }
    let u = &spectrum.eigenvectors;
    let scale: Vec<f64> = spectrum
        .eigenvalues
        .iter()
        .map(|l| 1.0 / (l.max(0.0) + eps).sqrt())
        .collect();
    // D U^T and its inverse U D^{-1}.
    let pca = Mat::from_fn(d, d, |k, j| scale[k] * u[(j, k)]);
    let pca_inv = Mat::from_fn(d, d, |j, k| u[(j, k)] / scale[k]);
    if zca {
        Ok((u * &pca, &pca_inv * u.transpose()))
    } else {
        Ok((pca, pca_inv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectrum_of_orthogonal_columns_is_their_variances() {
        // Centred columns (2, -2, 2, -2) and (1, 1, -1, -1) are orthogonal, variances 4 and 1;
        // the shifts 5 and -3 must be removed by the centring.
        let x = [7.0, -2.0, 3.0, -2.0, 7.0, -4.0, 3.0, -4.0];
        let spectrum = Spectrum::of(&x, 4, 2).unwrap();
        assert_eq!(spectrum.rank, 2);
        for (got, want) in spectrum.eigenvalues.iter().zip([4.0, 1.0]) {
            assert!((got - want).abs() < 1e-14, "{:?}", spectrum.eigenvalues);
        }
        // Eigenvectors e1 and e2, up to sign.
        let v = &spectrum.eigenvectors;
        assert!((v[(0, 0)].abs() - 1.0).abs() < 1e-14 && v[(1, 0)].abs() < 1e-14);
        assert!((v[(1, 1)].abs() - 1.0).abs() < 1e-14 && v[(0, 1)].abs() < 1e-14);
    }
}
