//! One run: minibatch SGD (or momentum, or Adam) on `y' = w'.x' + b'` from a seeded
//! initialization, with per-epoch diagnostics and the final status against the OLS reference.
//!
//! The hot loop works on the shared training matrix in place: the permutation, gradient and
//! optimizer buffers are allocated once per run, nothing per step. Parameters are kept as one
//! vector, weights then bias, so the optimizers and the clipping treat `(w, b)` together.

mod init;
mod optimizer;
mod spectral;

pub use init::{initial_params, shuffle_epoch};
pub use spectral::{diagnose, Diagnosis, SIGNAL_SHARE};

use optimizer::OptimizerState;

use crate::config::TrainSettings;
use crate::enums::named_enum;
use crate::preprocess::Prepared;
use crate::reference::{dot, norm};
use crate::rng;

named_enum! {
    /// Outcome of a run.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Status {
        /// Final train MSE within `(1 + converge_tol)` of the OLS MSE.
        Converged => "converged",
        NotConverged => "not_converged",
        /// NaN, infinity, or a train MSE above 1e6 times its initial value; the run stopped there.
        Diverged => "diverged",
        /// The run panicked (a bug); the message is kept.
        Failed => "failed",
    }
}

/// Per-epoch diagnostics: means over the epoch's minibatches, then a full pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: u32,
    /// Mean norm of the weights (bias excluded) at the start of each step, training coordinates.
    pub weight_norm: f64,
    /// Mean minibatch prediction, original target units.
    pub prediction: f64,
    /// Mean minibatch loss as the optimizer sees it (normalized units when normalizing the target).
    pub loss: f64,
    /// Mean gradient norm over `(w, b)`, before clipping.
    pub gradient_norm: f64,
    /// `learning_rate * gradient_norm / weight_norm` from the epoch means.
    pub update_ratio: f64,
    /// Share of steps whose gradient was clipped.
    pub clipped_fraction: f64,
    /// Full-pass MSE at the end of the epoch, original units.
    pub train_mse: f64,
    pub train_r2: f64,
}

/// Everything one run produces.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub status: Status,
    pub message: Option<String>,
    pub epochs: Vec<EpochStats>,
    pub initial_train_mse: f64,
    /// Final parameters in training coordinates: weights, then bias.
    pub params: Vec<f64>,
    /// Final weights in the data set's feature units.
    pub weights: Vec<f64>,
}

impl RunOutcome {
    /// The full-pass train MSE after the last epoch run.
    pub fn final_train_mse(&self) -> f64 {
        self.epochs
            .last()
            .map_or(self.initial_train_mse, |e| e.train_mse)
    }
}

/// Full-pass MSE and R² in original units for training-coordinate parameters.
pub fn full_pass(prep: &Prepared, params: &[f64]) -> (f64, f64) {
    let d = prep.d();
    let (w, b) = params.split_at(d);
    let mut sse = 0.0;
    for (row, y) in prep.x.chunks_exact(d).zip(prep.data.y.iter()) {
        let pred = (dot(w, row) + b[0]) * prep.y_scale + prep.y_mean;
        sse += (pred - y).powi(2);
    }
    (sse / prep.n() as f64, 1.0 - sse / prep.sst)
}

/// Loss growth factor over the initial train MSE that counts as divergence.
pub const DIVERGENCE_FACTOR: f64 = 1e6;

/// Trains one run to the end (or to divergence).
pub fn train(s: &TrainSettings, prep: &Prepared, sweep_seed: u64) -> RunOutcome {
    let (n, d) = (prep.n(), prep.d());
    let x = &prep.x[..];
    let y = &prep.y[..];
    let mut params = initial_params(s, prep, sweep_seed);
    let mut grad = vec![0.0; d + 1];
    let mut optimizer = OptimizerState::new(s.optimizer, s.momentum, d + 1);
    let mut perm: Vec<u32> = (0..n as u32).collect();
    let mut shuffle_rng = rng::stream(sweep_seed, s.seed, "shuffle");
    let batch = (s.batch_size as usize).min(n);
    let (initial_train_mse, _) = full_pass(prep, &params);
    let mut epochs = Vec::with_capacity(s.epochs as usize);
    let mut status = Status::NotConverged;

    for epoch in 1..=s.epochs {
        shuffle_epoch(&mut perm, &mut shuffle_rng);
        let (mut sum_wnorm, mut sum_pred, mut sum_loss, mut sum_gnorm) = (0.0, 0.0, 0.0, 0.0);
        let (mut steps, mut clipped) = (0usize, 0usize);
        let mut blew_up = false;
        for idx in perm.chunks(batch) {
            grad.fill(0.0);
            let (gw, gb) = grad.split_at_mut(d);
            let (w, b) = params.split_at(d);
            let (mut loss, mut pred_sum, mut residual_sum) = (0.0, 0.0, 0.0);
            for &i in idx {
                let row = &x[i as usize * d..(i as usize + 1) * d];
                let pred = dot(w, row) + b[0];
                let r = pred - y[i as usize];
                loss += r * r;
                pred_sum += pred;
                residual_sum += r;
                for (g, xi) in gw.iter_mut().zip(row) {
                    *g += r * xi;
                }
            }
            let m = idx.len() as f64;
            let scale = 2.0 / m;
            gw.iter_mut()
                .zip(w)
                .for_each(|(g, wi)| *g = *g * scale + s.weight_decay * wi);
            gb[0] = residual_sum * scale;
            let gnorm = norm(&grad);
            let wnorm = norm(w);
            if s.clip && gnorm > s.clip_norm {
                let f = s.clip_norm / gnorm;
                grad.iter_mut().for_each(|g| *g *= f);
                clipped += 1;
            }
            optimizer.step(&mut params, &grad, s.learning_rate);
            steps += 1;
            sum_wnorm += wnorm;
            sum_pred += (pred_sum / m) * prep.y_scale + prep.y_mean;
            sum_loss += loss / m;
            sum_gnorm += gnorm;
            if !(loss.is_finite() && gnorm.is_finite()) {
                blew_up = true;
                break;
            }
        }
        let k = steps as f64;
        let (train_mse, train_r2) = full_pass(prep, &params);
        let (weight_norm, gradient_norm) = (sum_wnorm / k, sum_gnorm / k);
        epochs.push(EpochStats {
            epoch,
            weight_norm,
            prediction: sum_pred / k,
            loss: sum_loss / k,
            gradient_norm,
            update_ratio: s.learning_rate * gradient_norm / weight_norm,
            clipped_fraction: clipped as f64 / k,
            train_mse,
            train_r2,
        });
        if blew_up || !train_mse.is_finite() || train_mse > DIVERGENCE_FACTOR * initial_train_mse {
            status = Status::Diverged;
            break;
        }
    }
    if status != Status::Diverged {
        let bound = (1.0 + s.converge_tol) * prep.reference.fit.mse;
        if epochs.last().is_some_and(|e| e.train_mse <= bound) {
            status = Status::Converged;
        }
    }
    let weights = prep.weights_in_feature_units(&params[..d]);
    RunOutcome {
        status,
        message: None,
        epochs,
        initial_train_mse,
        params,
        weights,
    }
}

/// The first epoch from which the train MSE stays within `bound` to the end, if any.
pub fn epochs_to_converge(epochs: &[EpochStats], bound: f64) -> Option<u32> {
    let mut first = None;
    for e in epochs {
        if e.train_mse <= bound {
            first.get_or_insert(e.epoch);
        } else {
            first = None;
        }
    }
    first
}
