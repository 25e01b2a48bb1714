//! The verdict as a table: `verdict.parquet`'s columns (the margins and the label's interval
//! named for how the runs are judged, see [`Judging`]) and the shorter verdict `sweep run` and
//! `sweep report` print.

use polars::prelude::*;

use super::judging::Judging;
use super::schema::{col, frame, int, settings_columns};
use super::verdict::{Label, VerdictRow};
use crate::config::TrainSettings;
use crate::error::Result;

/// The verdict as `sweep run` and `sweep report` print it: the pooled rows when the grid varies
/// the data realization (with `by_realization`, how many realizations gave each label), else
/// every row; without the columns of [`CERTAINTY_COLUMNS`] and the realization keys.
pub fn printed_verdict(
    rows: &[VerdictRow],
    context_keys: &[&str],
    judging: &Judging,
) -> Result<DataFrame> {
    let pooled: Vec<VerdictRow> = rows.iter().filter(|r| r.pooled).cloned().collect();
    let shown = if pooled.is_empty() { rows } else { &pooled };
    let mut df = verdict_frame(shown, context_keys, judging)?.drop_many(
        CERTAINTY_COLUMNS
            .iter()
            .copied()
            .chain(["data_seed", "pooled", "realizations_agree"]),
    );
    if let Judging::Bound { .. } = judging {
        // The script's metric stands in for R², which such a sweep need not report.
        let no_r2 = ["all_on_r2_median", "one_off_r2_median"]
            .into_iter()
            .filter(|name| {
                df.column(name).is_ok_and(|c| {
                    c.f64()
                        .is_ok_and(|v| v.iter().all(|x| x.is_none_or(f64::is_nan)))
                })
            });
        df = df.drop_many(no_r2.collect::<Vec<_>>());
    }
    if !pooled.is_empty() {
        let tally = |p: &VerdictRow| {
            let labels: Vec<Label> = rows
                .iter()
                .filter(|r| !r.pooled && r.context == p.context && r.factor == p.factor)
                .map(|r| r.label)
                .collect();
            let mut parts = Vec::new();
            for l in [Label::Necessary, Label::NotNecessary, Label::Unclear] {
                let k = labels.iter().filter(|x| **x == l).count();
                if k > 0 {
                    parts.push(format!("{} x{k}", l.as_str()));
                }
            }
            parts.join(", ")
        };
        let column = col("by_realization", &pooled, tally);
        let at = df.get_column_index("label").map_or(0, |i| i + 1);
        df.insert_column(at, column)
            .map_err(|e| crate::error::Error::table("the printed verdict", e))?;
    }
    Ok(df)
}

/// The columns of `verdict.parquet` the printed verdict leaves out (`sweep report` and the end of
/// `sweep run` print the labels, the cell figures, the excess-MSE margins, Fisher's p, the
/// tolerance interval and the fragile flag; the counts, McNemar's p, the intervals and the
/// margins' ranges stay in the table).
pub const CERTAINTY_COLUMNS: &[&str] = &[
    "all_on_converged",
    "all_on_runs",
    "one_off_converged",
    "one_off_runs",
    "mcnemar_p",
    "all_on_ci_low",
    "all_on_ci_high",
    "one_off_ci_low",
    "one_off_ci_high",
    "all_on_excess_mse_min",
    "all_on_excess_mse_max",
    "one_off_excess_mse_min",
    "one_off_excess_mse_max",
    "all_on_margin_min",
    "all_on_margin_max",
    "one_off_margin_min",
    "one_off_margin_max",
];

/// The verdict's evidence: the converged counts, the tests' p-values, the Clopper-Pearson
/// intervals, the margins (past the OLS reference, or past a bound in the metric's units) and
/// the interval of the knob over which the label holds.
fn certainty_columns(rows: &[VerdictRow], judging: &Judging) -> Vec<Column> {
    let mut columns = Vec::new();
    let c = |r: &VerdictRow| r.certainty;
    let count = |v: u64| v as i64;
    columns.extend([
        col("all_on_converged", rows, |r| count(c(r).all_on.converged)),
        col("all_on_runs", rows, |r| count(c(r).all_on.runs)),
        col("one_off_converged", rows, |r| {
            c(r).one_off.map(|o| count(o.converged))
        }),
        col("one_off_runs", rows, |r| {
            c(r).one_off.map(|o| count(o.runs))
        }),
        col("fisher_p", rows, |r| c(r).fisher_p),
        col("mcnemar_p", rows, |r| c(r).mcnemar_p),
        col("all_on_ci_low", rows, |r| c(r).all_on.ci.0),
        col("all_on_ci_high", rows, |r| c(r).all_on.ci.1),
        col("one_off_ci_low", rows, |r| c(r).one_off.map(|o| o.ci.0)),
        col("one_off_ci_high", rows, |r| c(r).one_off.map(|o| o.ci.1)),
    ]);
    // Against a bound, the margins are the metric's distance past X and the interval is X's;
    // `fragile` (a factor 3 on a tolerance) has no meaning there and is left out.
    let reference = *judging == Judging::Reference;
    let m = if reference { "excess_mse" } else { "margin" };
    columns.extend([
        col(&format!("all_on_{m}_median"), rows, |r| {
            c(r).all_on.margin_median
        }),
        col(&format!("all_on_{m}_min"), rows, |r| c(r).all_on.margin_min),
        col(&format!("all_on_{m}_max"), rows, |r| c(r).all_on.margin_max),
        col(&format!("one_off_{m}_median"), rows, |r| {
            c(r).one_off.and_then(|o| o.margin_median)
        }),
        col(&format!("one_off_{m}_min"), rows, |r| {
            c(r).one_off.and_then(|o| o.margin_min)
        }),
        col(&format!("one_off_{m}_max"), rows, |r| {
            c(r).one_off.and_then(|o| o.margin_max)
        }),
    ]);
    if reference {
        columns.extend([
            col("tol_low", rows, |r| c(r).tol_low),
            col("tol_high", rows, |r| c(r).tol_high),
            col("fragile", rows, |r| c(r).fragile),
        ]);
    } else {
        let interval = |r: &VerdictRow| judging.reported_interval(c(r).tol_low, c(r).tol_high);
        columns.extend([
            col("bound_low", rows, |r| interval(r).0),
            col("bound_high", rows, |r| interval(r).1),
        ]);
    }
    columns
}

/// `verdict.parquet` as a frame: the context columns (`context_keys`, typed), then the figures.
pub fn verdict_frame(
    rows: &[VerdictRow],
    context_keys: &[&str],
    judging: &Judging,
) -> Result<DataFrame> {
    let contexts: Vec<&TrainSettings> = rows.iter().map(|r| &r.context).collect();
    let mut columns: Vec<Column> = settings_columns(&contexts, |k| context_keys.contains(&k));
    columns.extend([
        col("data_seed", rows, |r| r.data_seed.map(int)),
        col("pooled", rows, |r| r.pooled),
        col("factor", rows, |r| r.factor.clone()),
        col("label", rows, |r| r.label.as_str()),
        col("all_on_converged_fraction", rows, |r| {
            r.all_on.converged_fraction
        }),
        col("one_off_converged_fraction", rows, |r| {
            r.one_off.map(|o| o.converged_fraction)
        }),
        col("all_on_r2_median", rows, |r| r.all_on.r2_median),
        col("one_off_r2_median", rows, |r| {
            r.one_off.and_then(|o| o.r2_median)
        }),
        col("all_on_epochs_median", rows, |r| {
            r.all_on.epochs_to_converge_median
        }),
        col("one_off_epochs_median", rows, |r| {
            r.one_off.and_then(|o| o.epochs_to_converge_median)
        }),
        col("all_on_sufficient", rows, |r| r.all_on_sufficient),
    ]);
    columns.extend(certainty_columns(rows, judging));
    if rows.iter().any(|r| r.incomplete_runs.is_some()) {
        columns.push(col("incomplete_runs", rows, |r| {
            r.incomplete_runs.map(|n| n as i64)
        }));
    }
    columns.extend([col("realizations_agree", rows, |r| r.realizations_agree)]);
    frame(columns)
}
