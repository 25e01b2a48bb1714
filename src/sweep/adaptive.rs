//! Seeds only where they are needed (`[ablation] seeds = { min, max, step }`). Seeds `0..min` of
//! every cell run first. After each batch the verdict is computed from the saved runs, per data
//! realization, and the next `step` seeds go to the two cells (all-on and one-off) of every row
//! that is still open, up to `max` seeds per cell; the sweep ends when no row is open or every
//! open row's cells hold `max` seeds.
//!
//! A row is open when it is `unclear` and more seeds could still give it another label, judged
//! by the Clopper-Pearson 95% intervals of its two cells: it could become `necessary` when the
//! all-on interval reaches `converge_high` and the one-off interval reaches down to
//! `converge_low`, and `not_necessary` when the one-off interval reaches `converge_high`. So a
//! context where nothing works (both cells far below `converge_high`) is not run to the maximum.
//! The label's Fisher test uses `alpha` divided by the planned batches
//! ([`crate::config::Ablation::test_alpha`]).
//!
//! Added runs are ordinary grid runs: the ids the grid would give them, indexed after the runs
//! before them, batch by batch. Each batch is a function of the saved runs only, so a rerun into
//! the same folder replays the same batches (that is how an interrupted sweep resumes), and the
//! tables do not depend on the thread count.

use std::path::Path;

use super::finish::Tables;
use super::persist;
use crate::config::{Ablation, RunSpec, Sweep, TrainSettings};
use crate::error::Result;
use crate::results::{cell_settings, Label, VerdictRow};

/// Whether more seeds could still change this (per-realization) verdict row.
pub fn is_open(row: &VerdictRow, ablation: &Ablation) -> bool {
    let (high, low) = (ablation.converge_high, ablation.converge_low);
    let c = &row.certainty;
    let Some(off) = c.one_off else {
        return false;
    };
    let could_be_necessary = c.all_on.ci.1 >= high && off.ci.0 <= low;
    let could_be_not_necessary = off.ci.1 >= high;
    row.label == Label::Unclear && (could_be_necessary || could_be_not_necessary)
}

/// The runs of the next batch, given the verdict of the runs so far; empty when the sweep is done
/// (or not adaptive).
pub fn next_batch(sweep: &Sweep, verdict: &[VerdictRow]) -> Vec<RunSpec> {
    let (Some(ablation), Some(seeds)) = (sweep.ablation.as_ref(), sweep.adaptive_seeds()) else {
        return Vec::new();
    };
    let runs_of = |settings: &TrainSettings, data_seed: Option<u64>| -> Vec<usize> {
        sweep
            .runs
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.scenario.is_none()
                    && r.data_seed == data_seed
                    && cell_settings(&r.settings) == *settings
            })
            .map(|(i, _)| i)
            .collect()
    };
    // The cells of the open rows, each once, in the order of their first run.
    let mut cells: Vec<(usize, TrainSettings, Option<u64>)> = Vec::new();
    for row in verdict.iter().filter(|r| !r.pooled && is_open(r, ablation)) {
        let Some(factor) = ablation.factors.iter().find(|f| f.key == row.factor) else {
            continue;
        };
        let off = row.context.with_value(&factor.key, &factor.off);
        for settings in [row.context.clone(), off] {
            if let Some(&first) = runs_of(&settings, row.data_seed).first() {
                if !cells.iter().any(|(i, _, _)| *i == first) {
                    cells.push((first, settings, row.data_seed));
                }
            }
        }
    }
    cells.sort_by_key(|(first, _, _)| *first);
    let mut added: Vec<RunSpec> = Vec::new();
    for (_, settings, data_seed) in cells {
        let have = runs_of(&settings, data_seed).len() as u64;
        for seed in have..(have + seeds.step).min(seeds.max) {
            let mut run = sweep.grid_run(
                TrainSettings {
                    seed,
                    ..settings.clone()
                },
                data_seed,
            );
            run.index += added.len();
            added.push(run);
        }
    }
    added
}

/// The sweep with every batch the saved runs in `out` decide, as far as whole batches are saved:
/// the runs a finished adaptive sweep ran (the sweep unchanged when it is not adaptive).
pub fn replay(sweep: &Sweep, out: &Path) -> Result<Sweep> {
    let mut sweep = sweep.clone();
    if sweep.adaptive_seeds().is_none() {
        return Ok(sweep);
    }
    let saved = persist::saved_statuses(out)?;
    if !sweep.runs.iter().all(|r| saved.contains_key(&r.id)) {
        return Ok(sweep);
    }
    loop {
        let tables = Tables::from_saved(&sweep, out)?;
        let added = next_batch(&sweep, &tables.verdict);
        // Only whole batches: a batch interrupted before all its runs were saved is not part of
        // what the folder holds.
        if added.is_empty() || !added.iter().all(|r| saved.contains_key(&r.id)) {
            return Ok(sweep);
        }
        sweep.runs.extend(added);
    }
}

/// The round of an adaptive sweep its folder is at: every run through that round (the batches
/// the saved runs decide, then the round's own), its number (1 for the first batch), and
/// whether the sweep is settled (every run saved, no further batch).
pub struct Round {
    pub sweep: Sweep,
    pub number: usize,
    /// The index of the round's first run in `sweep.runs`.
    pub first: usize,
    pub settled: bool,
}

/// The first round of `sweep` whose runs are not all saved in `out`, or the last one when the
/// sweep is settled. Like [`replay`], a function of the saved runs only.
pub fn current_round(sweep: &Sweep, out: &Path) -> Result<Round> {
    let mut sweep = sweep.clone();
    let saved = persist::saved_statuses(out)?;
    let (mut number, mut first) = (1, 0);
    loop {
        if !sweep.runs.iter().all(|r| saved.contains_key(&r.id)) {
            return Ok(Round {
                sweep,
                number,
                first,
                settled: false,
            });
        }
        let tables = Tables::from_saved(&sweep, out)?;
        let added = next_batch(&sweep, &tables.verdict);
        if added.is_empty() {
            return Ok(Round {
                sweep,
                number,
                first,
                settled: true,
            });
        }
        first = sweep.runs.len();
        sweep.runs.extend(added);
        number += 1;
    }
}
