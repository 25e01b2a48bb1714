//! How a sweep's runs count as converged, for the verdict, the effects and the paths: against
//! the exact OLS reference (final train MSE within `(1 + converge_tol)` of the OLS MSE: built-in
//! sweeps, and command sweeps judging `train_mse` on a data set), or by a command sweep's own
//! bound on a metric (`[command] converged = { at_most | at_least = X }`).
//!
//! Either way a run has a *threshold*: the least value of the verdict's knob at which it counts
//! as converged (`converge_tol` against the reference; X for `at_most`; -X for `at_least`, so
//! that a larger knob always admits more runs). The tolerance interval of a verdict row is an
//! interval of the knob, reported in the config's own terms.

use super::rows::RunRow;
use crate::config::{Bound, Sweep};

/// How runs are judged.
#[derive(Clone, Debug, PartialEq)]
pub enum Judging {
    /// Against the OLS reference, at each run's `converge_tol`.
    Reference,
    /// By `bound` on the final value of `metric`.
    Bound { metric: String, bound: Bound },
}

impl Judging {
    /// The judging of a sweep's runs.
    pub fn of(sweep: &Sweep) -> Judging {
        match &sweep.command {
            Some(spec) => match spec.converged {
                Some(bound) => Judging::Bound {
                    metric: spec.metric.clone(),
                    bound,
                },
                None => Judging::Reference,
            },
            None => Judging::Reference,
        }
    }

    /// The knob value the config sets (for a run with `converge_tol = tol`).
    pub fn knob(&self, tol: f64) -> f64 {
        match self {
            Judging::Reference => tol,
            Judging::Bound {
                bound: Bound::AtMost(x),
                ..
            } => *x,
            Judging::Bound {
                bound: Bound::AtLeast(x),
                ..
            } => -x,
        }
    }

    /// The least knob at which the run counts as converged; `None` for a run that stopped early
    /// (diverged, failed, timed out or killed) or reported no value.
    pub fn threshold(&self, run: &RunRow) -> Option<f64> {
        if run.status.ended_early() {
            return None;
        }
        match self {
            Judging::Reference => Some(run.final_train_mse / run.ols_mse - 1.0),
            Judging::Bound { metric, bound } => {
                let value = final_value(run, metric).filter(|v| !v.is_nan())?;
                Some(match bound {
                    Bound::AtMost(_) => value,
                    Bound::AtLeast(_) => -value,
                })
            }
        }
    }

    /// The run's margin at the config's knob: how far it is from the edge of converging, in the
    /// judged units (excess MSE against the reference, lower is better; the metric's distance
    /// past X with a bound, higher is better).
    pub fn margin(&self, run: &RunRow) -> Option<f64> {
        let threshold = self.threshold(run)?;
        Some(match self {
            Judging::Reference => run.excess_mse,
            Judging::Bound { .. } => self.knob(run.settings.converge_tol) - threshold,
        })
    }

    /// The knob's least value: 0 for a tolerance (every run at or below the OLS MSE converges
    /// there), none for a bound.
    pub fn knob_floor(&self) -> f64 {
        match self {
            Judging::Reference => 0.0,
            Judging::Bound { .. } => f64::NEG_INFINITY,
        }
    }

    /// A knob interval `[low, high)` in the config's terms: the tolerance's, X's for `at_most`,
    /// and for `at_least` the X interval `(-high, -low]`, given as (low end, high end); `None`
    /// is unbounded.
    pub fn reported_interval(&self, low: f64, high: Option<f64>) -> (Option<f64>, Option<f64>) {
        let finite = |v: f64| v.is_finite().then_some(v);
        match self {
            Judging::Bound {
                bound: Bound::AtLeast(_),
                ..
            } => (high.map(|h| -h), finite(-low)),
            _ => (finite(low), high),
        }
    }
}

/// A run's final value of a metric: its own column for `train_mse` and `train_r2`, else its
/// `final_<metric>`.
pub fn final_value(run: &RunRow, metric: &str) -> Option<f64> {
    match metric {
        "train_mse" => Some(run.final_train_mse),
        "train_r2" => Some(run.final_train_r2),
        other => run.finals.get(other).copied(),
    }
}
