//! The row structs of the tables (one per table, documented field by field) and the aggregation
//! of runs into cells across seeds. Aggregation is plain Rust over rows in run order, so cells
//! come out in a stable order and every statistic is computed the same way on every machine.

use std::collections::BTreeMap;

use crate::command::Scan;
use crate::config::{RunSpec, TrainSettings};
use crate::outcome::ProcessFacts;
use crate::preprocess::Prepared;
use crate::reference::norm;
use crate::train::{diagnose, epochs_to_converge, RunOutcome, Status};

/// One row of `runs.parquet`.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub run_id: String,
    pub run_index: u32,
    /// The scenario's name, when the config lists scenarios.
    pub scenario: Option<String>,
    pub settings: TrainSettings,
    pub data_seed: Option<u64>,
    pub status: Status,
    /// Panic message of a failed run, else null.
    pub message: Option<String>,
    pub epochs_run: u32,
    pub epochs_to_converge: Option<u32>,
    pub initial_train_mse: f64,
    pub final_train_mse: f64,
    pub final_train_r2: f64,
    pub best_train_r2: f64,
    /// `final_train_mse / ols_mse - 1`.
    pub excess_mse: f64,
    /// Final weight norm in training coordinates (what the per-epoch `weight_norm` tracks).
    pub weight_norm: f64,
    /// `|| w - w_ols ||` in the data set's (standardized) feature units.
    pub distance_to_ols: f64,
    pub ols_mse: f64,
    pub ols_r2: f64,
    /// See [`crate::spectral::Diagnosis`].
    pub slow_share: Option<f64>,
    pub slowest_signal_epochs: Option<f64>,
    /// A command run's process: exit code, signal, the command (`None` for built-in runs).
    pub process: Option<ProcessFacts>,
    /// A command run's other metrics: the last value of each (`final_<key>` columns).
    pub finals: BTreeMap<String, f64>,
}

impl RunRow {
    pub fn new(
        run: &RunSpec,
        scenario: Option<&str>,
        prep: &Prepared,
        outcome: &RunOutcome,
    ) -> RunRow {
        let fit = &prep.reference.fit;
        let d = prep.d();
        let final_train_mse = outcome.final_train_mse();
        let bound = (1.0 + run.settings.converge_tol) * fit.mse;
        let converged = outcome.status == Status::Converged;
        let diff: Vec<f64> = outcome
            .weights
            .iter()
            .zip(&fit.coefficients)
            .map(|(a, b)| a - b)
            .collect();
        let steps_per_epoch = prep
            .n()
            .div_ceil((run.settings.batch_size as usize).min(prep.n()));
        let steps = outcome.epochs.len() * steps_per_epoch;
        let diagnosis = diagnose(
            prep,
            &outcome.params,
            run.settings.learning_rate,
            steps,
            steps_per_epoch,
        );
        RunRow {
            run_id: run.id.clone(),
            run_index: run.index as u32,
            scenario: scenario.map(str::to_string),
            settings: run.settings.clone(),
            data_seed: run.data_seed,
            status: outcome.status,
            message: outcome.message.clone(),
            epochs_run: outcome.epochs.len() as u32,
            epochs_to_converge: if converged {
                epochs_to_converge(&outcome.epochs, bound)
            } else {
                None
            },
            initial_train_mse: outcome.initial_train_mse,
            final_train_mse,
            final_train_r2: outcome.epochs.last().map_or(f64::NAN, |e| e.train_r2),
            best_train_r2: outcome
                .epochs
                .iter()
                .map(|e| e.train_r2)
                .fold(f64::NAN, f64::max),
            excess_mse: final_train_mse / fit.mse - 1.0,
            weight_norm: if outcome.params.len() > d {
                norm(&outcome.params[..d])
            } else {
                f64::NAN
            },
            distance_to_ols: norm(&diff),
            ols_mse: fit.mse,
            ols_r2: fit.r2,
            slow_share: diagnosis.slow_share,
            slowest_signal_epochs: diagnosis.slowest_signal_epochs,
            process: None,
            finals: BTreeMap::new(),
        }
    }
}

impl RunRow {
    /// A command run that failed, timed out or was killed: no evidence either way, so it counts
    /// in no converged fraction (a built-in run that failed is a bug, and counts as not
    /// converged).
    pub fn incomplete(&self) -> bool {
        self.process.is_some() && self.status.incomplete()
    }

    /// A row as saved for `spec`, before its measured columns are read back: those start as NaN
    /// (null where optional), the count columns at zero.
    pub fn saved(spec: &RunSpec, scenario: Option<String>, status: Status) -> RunRow {
        RunRow {
            run_id: spec.id.clone(),
            run_index: spec.index as u32,
            scenario,
            settings: spec.settings.clone(),
            data_seed: spec.data_seed,
            status,
            message: None,
            epochs_run: 0,
            epochs_to_converge: None,
            initial_train_mse: f64::NAN,
            final_train_mse: f64::NAN,
            final_train_r2: f64::NAN,
            best_train_r2: f64::NAN,
            excess_mse: f64::NAN,
            weight_norm: f64::NAN,
            distance_to_ols: f64::NAN,
            ols_mse: f64::NAN,
            ols_r2: f64::NAN,
            slow_share: None,
            slowest_signal_epochs: None,
            process: None,
            finals: BTreeMap::new(),
        }
    }

    /// The row of a command run from what its metrics reported (NaN where they did not); the
    /// weights and the spectral figures are unknown to sweep, and so is the reference without a
    /// data set (`prep` is `None`).
    pub fn of_command(
        run: &RunSpec,
        scenario: Option<&str>,
        prep: Option<&Prepared>,
        outcome: &RunOutcome,
        scan: &Scan,
    ) -> RunRow {
        let (ols_mse, ols_r2) = prep.map_or((f64::NAN, f64::NAN), |p| {
            (p.reference.fit.mse, p.reference.fit.r2)
        });
        let mut row = RunRow::saved(run, scenario.map(str::to_string), outcome.status);
        row.message = outcome.message.clone();
        row.epochs_run = scan.last_epoch;
        row.epochs_to_converge = (outcome.status == Status::Converged)
            .then_some(scan.met_from)
            .flatten();
        row.initial_train_mse = outcome.initial_train_mse;
        row.final_train_mse = scan.last("train_mse").unwrap_or(f64::NAN);
        row.final_train_r2 = scan.last("train_r2").unwrap_or(f64::NAN);
        row.best_train_r2 = scan.best_train_r2;
        row.excess_mse = row.final_train_mse / ols_mse - 1.0;
        row.ols_mse = ols_mse;
        row.ols_r2 = ols_r2;
        row.process = outcome.process.clone();
        // Every metric's last value but those with a final column of their own.
        row.finals = scan
            .last
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "train_mse" | "train_r2"))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        row
    }
}

/// One row of `summary.parquet`: a cell (every setting but `seed`, on one data set) across seeds.
#[derive(Clone, Debug)]
pub struct SummaryRow {
    pub scenario: Option<String>,
    /// The data realization of the cell's runs (`None` for file data, and for cells pooled over
    /// realizations).
    pub data_seed: Option<u64>,
    /// The cell's settings (`seed` is meaningless here and left out of the table).
    pub settings: TrainSettings,
    pub n_runs: u32,
    pub converged_fraction: f64,
    pub diverged_fraction: f64,
    /// R² statistics over the runs that did not diverge or fail; null when there are none.
    pub r2_median: Option<f64>,
    pub r2_mean: Option<f64>,
    /// Sample standard deviation (n - 1); null with fewer than two runs.
    pub r2_std: Option<f64>,
    pub r2_min: Option<f64>,
    pub r2_max: Option<f64>,
    /// Over converged runs; null when none converged.
    pub epochs_to_converge_median: Option<f64>,
    /// Over the runs that did not diverge or fail.
    pub excess_mse_median: Option<f64>,
    /// Medians of the spectral figures over the runs where they are defined.
    pub slow_share_median: Option<f64>,
    pub slowest_signal_epochs_median: Option<f64>,
    /// In a command sweep, the cell's failed, timed-out and killed runs, which the fractions
    /// leave out; `None` in built-in sweeps.
    pub incomplete_runs: Option<u32>,
}

/// Median of a slice (average of the middle two for even lengths); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// The cell key of a run: its settings with the seed cleared.
pub fn cell_settings(settings: &TrainSettings) -> TrainSettings {
    TrainSettings {
        seed: 0,
        ..settings.clone()
    }
}

/// Aggregates run rows into cells (scenario, settings but the seed, data realization), in order
/// of first appearance.
pub fn summarize(rows: &[RunRow]) -> Vec<SummaryRow> {
    summarize_by(rows, |r| r.data_seed)
}

/// Aggregates run rows into cells pooled over data realizations (`data_seed` `None`).
pub fn summarize_pooled(rows: &[RunRow]) -> Vec<SummaryRow> {
    summarize_by(rows, |_| None)
}

fn summarize_by(rows: &[RunRow], realization: impl Fn(&RunRow) -> Option<u64>) -> Vec<SummaryRow> {
    type CellKey = (Option<String>, TrainSettings, Option<u64>);
    let mut cells: Vec<(CellKey, Vec<&RunRow>)> = Vec::new();
    for row in rows {
        let key = (
            row.scenario.clone(),
            cell_settings(&row.settings),
            realization(row),
        );
        match cells.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(row),
            None => cells.push((key, vec![row])),
        }
    }
    cells
        .into_iter()
        .map(|((scenario, settings, data_seed), members)| {
            // A command sweep's incomplete runs are no evidence: the fractions leave them out.
            let incomplete = members.iter().filter(|r| r.incomplete()).count();
            let n = (members.len() - incomplete) as f64;
            let fraction = |s: Status| members.iter().filter(|r| r.status == s).count() as f64 / n;
            let alive: Vec<&&RunRow> = members.iter().filter(|r| !r.status.ended_early()).collect();
            let r2: Vec<f64> = alive.iter().map(|r| r.final_train_r2).collect();
            let mean = (!r2.is_empty()).then(|| r2.iter().sum::<f64>() / r2.len() as f64);
            let std = (r2.len() >= 2).then(|| {
                let m = mean.expect("non-empty");
                (r2.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (r2.len() - 1) as f64).sqrt()
            });
            let epochs: Vec<f64> = members
                .iter()
                .filter_map(|r| r.epochs_to_converge.map(f64::from))
                .collect();
            let excess: Vec<f64> = alive.iter().map(|r| r.excess_mse).collect();
            SummaryRow {
                scenario,
                data_seed,
                settings,
                n_runs: members.len() as u32,
                converged_fraction: fraction(Status::Converged),
                diverged_fraction: fraction(Status::Diverged),
                r2_median: median(&r2),
                r2_mean: mean,
                r2_std: std,
                r2_min: r2.iter().copied().reduce(f64::min),
                r2_max: r2.iter().copied().reduce(f64::max),
                epochs_to_converge_median: median(&epochs),
                excess_mse_median: median(&excess),
                slow_share_median: median(
                    &members
                        .iter()
                        .filter_map(|r| r.slow_share)
                        .collect::<Vec<_>>(),
                ),
                slowest_signal_epochs_median: median(
                    &members
                        .iter()
                        .filter_map(|r| r.slowest_signal_epochs)
                        .collect::<Vec<_>>(),
                ),
                incomplete_runs: members
                    .iter()
                    .any(|r| r.process.is_some())
                    .then_some(incomplete as u32),
            }
        })
        .collect()
}
