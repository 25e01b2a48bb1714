//! What one run produced, whichever engine ran it: the status, the per-epoch statistics and the
//! final parameters of the built-in engine (`train`), or the metrics and process facts of a
//! command run (`command`). Planning, persistence and the tables read these types only.

use std::collections::BTreeMap;

use crate::enums::named_enum;

named_enum! {
    /// Outcome of a run.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Status {
        /// Final train MSE within `(1 + converge_tol)` of the OLS MSE.
        Converged => "converged",
        NotConverged => "not_converged",
        /// NaN, infinity, or a train MSE above 1e6 times its initial value; the run stopped there.
        Diverged => "diverged",
        /// The run could not finish: a built-in run that panicked (a bug), or a command that
        /// exited non-zero or wrote no metrics; the message says which.
        Failed => "failed",
        /// A command run ended by sweep at its `timeout`.
        Timeout => "timeout",
        /// A command run ended by a signal sweep did not send (the out-of-memory killer, say).
        Killed => "killed",
    }
}

impl Status {
    /// A command run that did not come to a judged end (failed, timed out or killed): what
    /// `--retry-failed` runs again.
    pub fn incomplete(self) -> bool {
        matches!(self, Status::Failed | Status::Timeout | Status::Killed)
    }

    /// A run that stopped before its end: diverged, failed, timed out or killed. Such runs count
    /// in no R² or excess-MSE statistic.
    pub fn ended_early(self) -> bool {
        matches!(
            self,
            Status::Diverged | Status::Failed | Status::Timeout | Status::Killed
        )
    }
}

/// Per-epoch diagnostics: means over the epoch's minibatches, then the train MSE over all rows.
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
    /// A command run's other metrics of this epoch, by name (empty for built-in runs).
    pub extra: BTreeMap<String, f64>,
}

impl EpochStats {
    /// The per-epoch metric columns of the epochs table, in its order; a command run's metrics
    /// line fills the one of its key's name, and its other keys become extra columns.
    pub const METRICS: [&'static str; 8] = [
        "weight_norm",
        "prediction",
        "loss",
        "gradient_norm",
        "update_ratio",
        "clipped_fraction",
        "train_mse",
        "train_r2",
    ];

    /// Epoch `epoch` with no metric reported: every fixed column NaN, no extra ones.
    pub fn unreported(epoch: u32) -> EpochStats {
        EpochStats {
            epoch,
            weight_norm: f64::NAN,
            prediction: f64::NAN,
            loss: f64::NAN,
            gradient_norm: f64::NAN,
            update_ratio: f64::NAN,
            clipped_fraction: f64::NAN,
            train_mse: f64::NAN,
            train_r2: f64::NAN,
            extra: BTreeMap::new(),
        }
    }

    /// The fixed column named `name`, if it is one of [`EpochStats::METRICS`].
    pub fn fixed_mut(&mut self, name: &str) -> Option<&mut f64> {
        Some(match name {
            "weight_norm" => &mut self.weight_norm,
            "prediction" => &mut self.prediction,
            "loss" => &mut self.loss,
            "gradient_norm" => &mut self.gradient_norm,
            "update_ratio" => &mut self.update_ratio,
            "clipped_fraction" => &mut self.clipped_fraction,
            "train_mse" => &mut self.train_mse,
            "train_r2" => &mut self.train_r2,
            _ => return None,
        })
    }

    /// Sets the metric `name`: its fixed column, else an extra one.
    pub fn set(&mut self, name: &str, value: f64) {
        match self.fixed_mut(name) {
            Some(slot) => *slot = value,
            None => {
                self.extra.insert(name.to_string(), value);
            }
        }
    }

    /// The fixed columns' values, in the order of [`EpochStats::METRICS`].
    fn fixed_values(&self) -> [f64; 8] {
        [
            self.weight_norm,
            self.prediction,
            self.loss,
            self.gradient_norm,
            self.update_ratio,
            self.clipped_fraction,
            self.train_mse,
            self.train_r2,
        ]
    }

    /// The value of metric `name` (NaN when a fixed column was not reported; `None` for an
    /// extra metric this epoch lacks).
    pub fn get(&self, name: &str) -> Option<f64> {
        match Self::METRICS.iter().position(|m| *m == name) {
            Some(i) => Some(self.fixed_values()[i]),
            None => self.extra.get(name).copied(),
        }
    }

    /// Every value of the epoch by its metric name: the fixed columns, then the extra metrics.
    pub fn values(&self) -> Vec<(String, f64)> {
        Self::METRICS
            .iter()
            .zip(self.fixed_values())
            .map(|(k, v)| (k.to_string(), v))
            .chain(self.extra.iter().map(|(k, v)| (k.clone(), *v)))
            .collect()
    }
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
    /// What a command run's process did (`None` for built-in runs).
    pub process: Option<ProcessFacts>,
}

/// A command run's process: how it ended, and the command it ran.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessFacts {
    /// The exit code, when the process exited.
    pub exit_code: Option<i64>,
    /// The signal that ended it, when one did.
    pub signal: Option<i64>,
    /// The command as a JSON list, with `{sweep.*}` placeholders left unrendered.
    pub argv: String,
    /// 1 for a run's first attempt; `--retry-failed` makes the next.
    pub attempt: u32,
}

impl RunOutcome {
    /// The train MSE over all rows after the last epoch run.
    pub fn final_train_mse(&self) -> f64 {
        self.epochs
            .last()
            .map_or(self.initial_train_mse, |e| e.train_mse)
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
