//! Spectral diagnosis of a run: where in the eigen-basis of the training covariance its excess
//! loss lies, against what plain gradient descent could have fixed in the steps it took.
//!
//! With `delta = w' - w'_ols` in the coordinates the run trained in and covariance eigenpairs
//! `(lambda_k, u_k)`, the excess training loss is `sum_k lambda_k (u_k . delta)^2` plus the bias
//! term `(delta_b + delta . mean(x'))^2`. Gradient descent with step `lr` shrinks the error along
//! `u_k` by `exp(-2 lr lambda_k)` per step, so after `steps` steps the directions with
//! `lambda_k < 1 / (2 lr steps)` have not completed one e-fold: they are "slow".

use crate::preprocess::Prepared;

/// Share of the OLS fit's explained variance a direction needs to count as carrying signal.
pub const SIGNAL_SHARE: f64 = 1e-3;

/// The two spectral figures of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diagnosis {
    /// Share of the excess loss in directions slower than `1 / (2 lr steps)`; `None` when the
    /// run sits exactly at OLS or its parameters are not finite.
    pub slow_share: Option<f64>,
    /// Epochs plain gradient descent needs for one e-fold along the slowest direction that
    /// carries at least [`SIGNAL_SHARE`] of the OLS fit's explained variance.
    pub slowest_signal_epochs: Option<f64>,
}

/// Projects `v` on eigenvector `k` (the identity basis when `vectors` is `None`).
fn project(prep: &Prepared, v: &[f64], k: usize) -> f64 {
    match &prep.train_eigenvectors {
        None => v[k],
        Some(u) => (0..v.len()).map(|j| u[(j, k)] * v[j]).sum(),
    }
}

/// Diagnoses final parameters `params` (weights, then bias; training coordinates) of a run that
/// took `steps` optimizer steps of size `lr`, `steps_per_epoch` per epoch.
pub fn diagnose(
    prep: &Prepared,
    params: &[f64],
    lr: f64,
    steps: usize,
    steps_per_epoch: usize,
) -> Diagnosis {
    let d = prep.d();
    let ols = &prep.ols_params;
    let lambdas = &prep.train_eigenvalues;

    let explained: Vec<f64> = (0..d)
        .map(|k| lambdas[k] * project(prep, &ols[..d], k).powi(2))
        .collect();
    let total_explained: f64 = explained.iter().sum();
    let slowest_signal = (0..d)
        .filter(|&k| {
            total_explained > 0.0
                && explained[k] >= SIGNAL_SHARE * total_explained
                && lambdas[k] > 0.0
        })
        .map(|k| lambdas[k])
        .reduce(f64::min);
    let slowest_signal_epochs =
        slowest_signal.map(|l| 1.0 / (2.0 * lr * l * steps_per_epoch as f64));

    if params.len() != d + 1 || params.iter().any(|p| !p.is_finite()) {
        return Diagnosis {
            slow_share: None,
            slowest_signal_epochs,
        };
    }
    let delta: Vec<f64> = (0..d).map(|j| params[j] - ols[j]).collect();
    let threshold = 1.0 / (2.0 * lr * steps as f64);
    let (mut slow, mut total) = (0.0, 0.0);
    for (k, &lambda) in lambdas.iter().enumerate() {
        let part = lambda * project(prep, &delta, k).powi(2);
        total += part;
        if lambda < threshold {
            slow += part;
        }
    }
    let shift: f64 = delta
        .iter()
        .zip(&prep.train_x_mean)
        .map(|(a, b)| a * b)
        .sum();
    total += (params[d] - ols[d] + shift).powi(2);
    let slow_share = (total > 0.0).then(|| slow / total);
    Diagnosis {
        slow_share,
        slowest_signal_epochs,
    }
}
