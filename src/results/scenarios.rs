//! The report's scenarios side by side with ours: for each `[[scenario]]`, the reported number,
//! our median and range across seeds of the chosen metric, and whether the report's number is
//! reproduced by the scenario's check (same sign and order of magnitude, an upper bound, or
//! never reaching the OLS loss).

use polars::prelude::*;

use super::rows::{median, RunRow};
use super::schema::{col, frame};
use crate::config::{Check, Metric, Scenario};
use crate::error::Result;
use crate::train::Status;

/// One row of `scenarios.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioRow {
    pub name: String,
    pub description: String,
    pub metric: Metric,
    pub check: Check,
    pub reported: f64,
    pub n_runs: u32,
    pub converged_fraction: f64,
    /// Median, min and max of the metric over the runs where it is defined.
    pub median: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub reproduced: bool,
}

fn metric_value(metric: Metric, row: &RunRow) -> Option<f64> {
    let finite = |v: f64| v.is_finite().then_some(v);
    match metric {
        Metric::FinalTrainR2 => finite(row.final_train_r2),
        Metric::BestTrainR2 => finite(row.best_train_r2),
        Metric::EpochsToConverge => row.epochs_to_converge.map(f64::from),
    }
}

/// Whether `value` has the sign of `reported` and lies within one order of magnitude of it.
pub fn same_sign_and_magnitude(value: f64, reported: f64) -> bool {
    value != 0.0
        && reported != 0.0
        && value.signum() == reported.signum()
        && (value.abs().log10() - reported.abs().log10()).abs() <= 1.0
}

/// True when a run ever got within `converge_tol` of the OLS loss: its best R² reached the R²
/// that corresponds to `(1 + tol)` times the OLS MSE.
fn ever_reached_ols(row: &RunRow) -> bool {
    let bound_r2 = 1.0 - (1.0 + row.settings.converge_tol) * (1.0 - row.ols_r2);
    row.best_train_r2 >= bound_r2
}

/// Evaluates one scenario on its runs.
pub fn evaluate(scenario: &Scenario, runs: &[&RunRow]) -> ScenarioRow {
    let values: Vec<f64> = runs
        .iter()
        .filter_map(|r| metric_value(scenario.metric, r))
        .collect();
    let n = runs.len().max(1) as f64;
    let converged = runs
        .iter()
        .filter(|r| r.status == Status::Converged)
        .count();
    let med = median(&values);
    let reproduced = !runs.is_empty()
        && match scenario.check {
            Check::Value => med.is_some_and(|m| same_sign_and_magnitude(m, scenario.reported)),
            Check::AtMost => {
                values.len() == runs.len() && med.is_some_and(|m| m <= scenario.reported)
            }
            Check::NeverConverges => !runs.iter().any(|r| ever_reached_ols(r)),
        };
    ScenarioRow {
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        metric: scenario.metric,
        check: scenario.check,
        reported: scenario.reported,
        n_runs: runs.len() as u32,
        converged_fraction: converged as f64 / n,
        median: med,
        min: values.iter().copied().reduce(f64::min),
        max: values.iter().copied().reduce(f64::max),
        reproduced,
    }
}

/// Evaluates every scenario on the sweep's run rows.
pub fn evaluate_all(scenarios: &[Scenario], rows: &[RunRow]) -> Vec<ScenarioRow> {
    scenarios
        .iter()
        .map(|s| {
            let runs: Vec<&RunRow> = rows
                .iter()
                .filter(|r| r.scenario.as_deref() == Some(s.name.as_str()))
                .collect();
            evaluate(s, &runs)
        })
        .collect()
}

/// `scenarios.parquet` as a frame.
pub fn scenarios_frame(rows: &[ScenarioRow]) -> Result<DataFrame> {
    frame(vec![
        col("scenario", rows, |r| r.name.clone()),
        col("description", rows, |r| r.description.clone()),
        col("metric", rows, |r| r.metric.as_str()),
        col("check", rows, |r| r.check.as_str()),
        col("reported", rows, |r| r.reported),
        col("n_runs", rows, |r| i64::from(r.n_runs)),
        col("converged_fraction", rows, |r| r.converged_fraction),
        col("median", rows, |r| r.median),
        col("min", rows, |r| r.min),
        col("max", rows, |r| r.max),
        col("reproduced", rows, |r| r.reproduced),
    ])
}
