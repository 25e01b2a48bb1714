//! Before any run: the data sets and preprocessing variants the sweep needs (built once each),
//! the checks that depend on the data, and which runs are left to do, longest first.

use std::collections::{BTreeMap, BTreeSet};

use super::hooks::TestHooks;
use crate::config::{RunSpec, Sweep};
use crate::data;
use crate::error::{Error, Result};
use crate::preprocess::{PrepKey, Prepare};

/// Loads every data set and preprocessing variant the sweep needs, and checks the settings
/// that depend on the data (batch size against the row count).
pub fn prepare(sweep: &Sweep) -> Result<Prepare> {
    if sweep.data.source == crate::config::DataSource::None {
        return Ok(Prepare::nothing());
    }
    let prepared = Prepare::build(&sweep.runs, |seed| data::load_factored(&sweep.data, seed))?;
    let rows = prepared.min_rows();
    if let Some(run) = sweep
        .runs
        .iter()
        .find(|r| r.settings.batch_size as usize > rows)
    {
        return Err(Error::Config(format!(
            "train.batch_size = {} is not accepted: the data set has {rows} rows, so the batch size must be in [1, {rows}]",
            run.settings.batch_size
        )));
    }
    Ok(prepared)
}

/// The runs not saved yet, in groups that train together (see [`group_key`]), longest first
/// (cost ~ epochs x steps per epoch), so that no long group starts last on an otherwise idle
/// pool. Only the runs `mine` marks (this invocation's share, see `shard::in_share`) are
/// considered. Neither the grouping nor the order of execution reaches any result.
pub fn groups_to_do<'s>(
    sweep: &'s Sweep,
    saved: &BTreeSet<String>,
    rows: usize,
    hooks: &TestHooks,
    mine: &[bool],
) -> Vec<Vec<&'s RunSpec>> {
    let mut groups: BTreeMap<GroupKey, Vec<&RunSpec>> = BTreeMap::new();
    let to_do = sweep
        .runs
        .iter()
        .zip(mine)
        .filter(|(r, mine)| **mine && !saved.contains(&r.id));
    for (run, _) in to_do {
        // A run that the tests make panic trains alone, so that only it fails.
        let alone = (hooks.panic_run == Some(run.index)).then_some(run.index);
        groups.entry((group_key(run), alone)).or_default().push(run);
    }
    let mut groups: Vec<Vec<&RunSpec>> = groups.into_values().collect();
    groups.sort_by_key(|g| {
        let s = &g[0].settings;
        std::cmp::Reverse(u64::from(s.epochs) * (rows as u64).div_ceil(u64::from(s.batch_size)))
    });
    groups
}

type GroupKey = ((PrepKey, u32, u64, u32), Option<usize>);

/// Runs train together when they share training features (data set, whitening and its eps),
/// batch size, seed and epochs: they see the same rows in the same order.
pub(super) fn group_key(run: &RunSpec) -> (PrepKey, u32, u64, u32) {
    let s = &run.settings;
    let features = PrepKey {
        normalize_target: false,
        ..PrepKey::of(run)
    };
    (features, s.batch_size, s.seed, s.epochs)
}
