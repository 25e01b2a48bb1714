//! Ablation paths on `log10_excess_mse` (`shortfall` in a sweep judged by a bound on a metric;
//! [`super::effects`]'s cell means): forward from the
//! all-off cell, switching on at each step the factor that lowers the response most; backward from
//! the all-on cell, switching off at each step the factor whose removal raises it most. Ties go to
//! the factor declared first. Only complete designs have paths.

use polars::prelude::*;

use super::effects::{cell_mean, designs, Design};
use super::judging::Judging;
use super::rows::RunRow;
use super::schema::{col, frame, int, settings_columns};
use crate::config::{Ablation, TrainSettings};
use crate::error::Result;

/// The response the paths follow: the first of the design's responses (lower is better).
pub fn path_response(judging: &Judging) -> &'static str {
    super::effects::responses(judging)[0]
}

/// One row of `paths.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct PathRow {
    pub context: TrainSettings,
    pub pooled: bool,
    pub data_seed: Option<u64>,
    /// The response followed (see [`path_response`]).
    pub response: &'static str,
    pub direction: &'static str,
    /// From 0 (the starting cell).
    pub step: u32,
    /// The factor switched at this step; `None` at step 0.
    pub factor: Option<String>,
    /// The response's cell mean after the step.
    pub value: f64,
}

/// The forward and backward path of every complete design.
pub fn paths(ablation: &Ablation, runs: &[RunRow]) -> Vec<PathRow> {
    paths_of(ablation, &designs(ablation, runs))
}

/// [`paths`] of designs already grouped.
pub fn paths_of(ablation: &Ablation, designs: &[Design]) -> Vec<PathRow> {
    let mut rows = Vec::new();
    for d in designs.iter().filter(|d| d.complete()) {
        let means: Vec<f64> = d
            .cells
            .iter()
            .map(|c| cell_mean(path_response(&d.judging), c, &d.judging))
            .collect();
        if means.iter().any(|m| m.is_nan()) {
            continue; // a run that stopped early has no shortfall
        }
        let all = (1usize << ablation.factors.len()) - 1;
        rows.extend(walk(ablation, d, &means, "forward", 0, all));
        rows.extend(walk(ablation, d, &means, "backward", all, all));
    }
    rows
}

/// One path from cell `start`: forward switches factors on (lowest mean next), backward off
/// (highest mean next).
fn walk(
    ablation: &Ablation,
    d: &Design,
    means: &[f64],
    direction: &'static str,
    start: usize,
    all: usize,
) -> Vec<PathRow> {
    let forward = direction == "forward";
    let row = |step: u32, factor: Option<String>, m: usize| PathRow {
        context: d.context.clone(),
        pooled: d.pooled,
        data_seed: d.data_seed,
        response: path_response(&d.judging),
        direction,
        step,
        factor,
        value: means[m],
    };
    let mut m = start;
    let mut out = vec![row(0, None, m)];
    for step in 1..=ablation.factors.len() as u32 {
        let candidates = (0..ablation.factors.len()).filter(|j| (m >> j & 1 == 0) == forward);
        let mut best: Option<(usize, f64)> = None;
        for j in candidates {
            let next = if forward {
                m | 1 << j
            } else {
                m & (all ^ 1 << j)
            };
            let better = best.is_none_or(|(_, v)| {
                if forward {
                    means[next] < v
                } else {
                    means[next] > v
                }
            });
            if better {
                best = Some((j, means[next]));
            }
        }
        let (j, _) = best.expect("a factor left to switch");
        m = if forward {
            m | 1 << j
        } else {
            m & (all ^ 1 << j)
        };
        out.push(row(step, Some(ablation.factors[j].key.clone()), m));
    }
    out
}

/// `paths.parquet` as a frame: the context columns, then the path.
pub fn paths_frame(rows: &[PathRow], context_keys: &[&str]) -> Result<DataFrame> {
    let contexts: Vec<&TrainSettings> = rows.iter().map(|r| &r.context).collect();
    let mut columns = settings_columns(&contexts, |k| context_keys.contains(&k));
    columns.extend([
        col("data_seed", rows, |r| r.data_seed.map(int)),
        col("pooled", rows, |r| r.pooled),
        col("response", rows, |r| r.response),
        col("direction", rows, |r| r.direction),
        col("step", rows, |r| int(r.step)),
        col("factor", rows, |r| r.factor.clone()),
        col("value", rows, |r| r.value),
    ]);
    frame(columns)
}
