//! Dense linear algebra on top of faer: the least-squares reference (OLS with intercept), the
//! spectrum of the feature covariance, and the whitening matrices.
//!
//! OLS is delegated to the refined solver of [`crate::ols`] (never the normal equations); the
//! spectrum comes from the thin SVD of the centred design. This module knows nothing of configs
//! or training.

use faer::{Mat, MatRef};

use crate::error::{Error, Result};

/// Relative singular-value cut-off for rank decisions: `max(n, d) * f64::EPSILON`.
pub fn rank_tolerance(n: usize, d: usize) -> f64 {
    n.max(d) as f64 * f64::EPSILON
}

/// Builds a column-major faer matrix from a row-major `n x d` slice, subtracting `shift[j]`
/// from column `j`.
pub fn to_mat(x: &[f64], n: usize, d: usize, shift: &[f64]) -> Mat<f64> {
    Mat::from_fn(n, d, |i, j| x[i * d + j] - shift[j])
}

/// Column means of a row-major `n x d` matrix.
pub fn column_means(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut means = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for (m, v) in means.iter_mut().zip(row) {
            *m += v;
        }
    }
    means.iter_mut().for_each(|m| *m /= n as f64);
    means
}

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
        let means = column_means(x, n, d);
        let xc = to_mat(x, n, d, &means);
        let (s, _, v) = thin_svd(xc.as_ref())?;
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

/// Thin SVD: singular values (descending), U (`n x d`), V (`d x d`).
fn thin_svd(a: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>, Mat<f64>)> {
    let svd = a
        .thin_svd()
        .map_err(|e| Error::Numerical(format!("singular value decomposition failed: {e:?}")))?;
    let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
    // faer returns singular values in non-increasing order; keep that as a checked assumption.
    debug_assert!(s.windows(2).all(|w| w[0] >= w[1]));
    Ok((s, svd.U().to_owned(), svd.V().to_owned()))
}

/// The least-squares fit `y ~ b0 + X w` (or `X w` without intercept).
#[derive(Clone, Debug)]
pub struct OlsFit {
    pub coefficients: Vec<f64>,
    /// `None` when fitted without intercept.
    pub intercept: Option<f64>,
    /// Training mean squared error, `SSE / n`.
    pub mse: f64,
    /// `1 - SSE / SST`; SST is centred with an intercept, uncentred without.
    pub r2: f64,
    /// Residual standard deviation `sqrt(SSE / (n - rank))`, rank counting the intercept.
    pub residual_sd: f64,
    /// Rank of the design, the intercept column included.
    pub rank: usize,
    /// Condition number of the design, centred (with an intercept) and with unit-norm columns.
    pub condition_number: f64,
    pub sse: f64,
}

/// OLS on a row-major `n x d` design, by the refined reference solver of [`crate::ols`].
pub fn ols(x: &[f64], y: &[f64], n: usize, d: usize, intercept: bool) -> Result<OlsFit> {
    let design = crate::ols::Design::from_rows(x, n, d, intercept);
    let y: Vec<crate::dd::DD> = y.iter().map(|v| crate::dd::DD::new(*v)).collect();
    let fit = crate::ols::fit(&design, &y)?;
    Ok(OlsFit {
        coefficients: fit.coefficients,
        intercept: fit.intercept,
        mse: fit.sse / n as f64,
        r2: fit.r2,
        residual_sd: fit.residual_sd,
        rank: fit.rank,
        condition_number: fit.condition_number,
        sse: fit.sse,
    })
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
    fn ols_recovers_exact_line() {
        // y = 3 + 2 x exactly: OLS must return the line and zero residual.
        let x = [0.0, 1.0, 2.0, 3.0, 4.0];
        let y: Vec<f64> = x.iter().map(|v| 3.0 + 2.0 * v).collect();
        let fit = ols(&x, &y, 5, 1, true).unwrap();
        assert!((fit.coefficients[0] - 2.0).abs() < 1e-14);
        assert!((fit.intercept.unwrap() - 3.0).abs() < 1e-13);
        assert!(fit.mse < 1e-28);
        assert!((fit.r2 - 1.0).abs() < 1e-14);
    }
}
