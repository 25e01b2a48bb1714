//! The ablation verdict: for every context (a combination of the varying settings that are
//! neither fixes nor seeds) and every declared fix, compare the all-on cell with the cell that
//! has only that fix off, and label the fix `necessary`, `not_necessary` or `unclear` from the
//! converged fractions across seeds. Works on summary rows only, so it can be tested on
//! hand-made tables.

use polars::prelude::*;

use super::rows::SummaryRow;
use super::schema::{col, frame, settings_columns};
use crate::config::{Ablation, TrainSettings};
use crate::enums::named_enum;
use crate::error::Result;

named_enum! {
    /// The label of one fix in one context.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Label {
        /// All-on converges in at least `converge_high` of seeds and the one-off cell in at most `converge_low`.
        Necessary => "necessary",
        /// The one-off cell converges in at least `converge_high` of seeds.
        NotNecessary => "not_necessary",
        Unclear => "unclear",
    }
}

/// The figures of one cell that the verdict compares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellFigures {
    pub converged_fraction: f64,
    pub r2_median: Option<f64>,
    pub epochs_to_converge_median: Option<f64>,
}

impl From<&SummaryRow> for CellFigures {
    fn from(r: &SummaryRow) -> Self {
        CellFigures {
            converged_fraction: r.converged_fraction,
            r2_median: r.r2_median,
            epochs_to_converge_median: r.epochs_to_converge_median,
        }
    }
}

/// One row of `verdict.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct VerdictRow {
    /// The all-on cell's settings; the context is its values on the context keys.
    pub context: TrainSettings,
    pub factor: String,
    pub label: Label,
    pub all_on: CellFigures,
    /// `None` when the grid has no one-off cell for this context (excluded).
    pub one_off: Option<CellFigures>,
    /// All-on converges in at least `converge_high` of seeds.
    pub all_on_sufficient: bool,
}

/// Labels one fix from the two converged fractions.
pub fn label(all_on: f64, one_off: Option<f64>, high: f64, low: f64) -> Label {
    match one_off {
        Some(off) if all_on >= high && off <= low => Label::Necessary,
        Some(off) if off >= high => Label::NotNecessary,
        _ => Label::Unclear,
    }
}

/// The verdict rows, contexts in order of first appearance, factors in declared order.
pub fn verdict(ablation: &Ablation, summary: &[SummaryRow]) -> Vec<VerdictRow> {
    let is_all_on = |s: &TrainSettings| {
        ablation
            .factors
            .iter()
            .all(|f| s.value_of(&f.key).as_ref() == Some(&f.on))
    };
    let mut rows = Vec::new();
    for on_cell in summary
        .iter()
        .filter(|c| c.scenario.is_none() && is_all_on(&c.settings))
    {
        for factor in &ablation.factors {
            let off_settings = on_cell.settings.with_value(&factor.key, &factor.off);
            let off_cell = summary
                .iter()
                .find(|c| c.scenario.is_none() && c.settings == off_settings);
            let off = off_cell.map(CellFigures::from);
            rows.push(VerdictRow {
                context: on_cell.settings.clone(),
                factor: factor.key.clone(),
                label: label(
                    on_cell.converged_fraction,
                    off.map(|o| o.converged_fraction),
                    ablation.converge_high,
                    ablation.converge_low,
                ),
                all_on: CellFigures::from(on_cell),
                one_off: off,
                all_on_sufficient: on_cell.converged_fraction >= ablation.converge_high,
            });
        }
    }
    rows
}

/// `verdict.parquet` as a frame: the context columns (`context_keys`, typed), then the figures.
pub fn verdict_frame(rows: &[VerdictRow], context_keys: &[&str]) -> Result<DataFrame> {
    let contexts: Vec<&TrainSettings> = rows.iter().map(|r| &r.context).collect();
    let mut columns: Vec<Column> = settings_columns(&contexts, |k| context_keys.contains(&k));
    columns.extend([
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
    frame(columns)
}
