//! Before any run: the data sets and preprocessing variants the sweep needs (built once each),
//! the checks that depend on the data, and which runs are left to do, longest first.

use std::collections::BTreeSet;

use crate::config::{RunSpec, Sweep};
use crate::data;
use crate::error::{Error, Result};
use crate::preprocess::Prepare;

/// Loads every data set and preprocessing variant the sweep needs, and checks the settings
/// that depend on the data (batch size against the row count).
pub fn prepare(sweep: &Sweep) -> Result<Prepare> {
    let prepared = Prepare::build(&sweep.runs, |seed| data::load(&sweep.data, seed))?;
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

/// The runs not saved yet, longest first (cost ~ epochs x steps per epoch), so that no long
/// run starts last on an otherwise idle pool. The order of execution reaches no result.
pub fn runs_to_do<'s>(sweep: &'s Sweep, saved: &BTreeSet<String>, rows: usize) -> Vec<&'s RunSpec> {
    let mut todo: Vec<&RunSpec> = sweep
        .runs
        .iter()
        .filter(|r| !saved.contains(&r.id))
        .collect();
    todo.sort_by_key(|r| {
        std::cmp::Reverse(
            u64::from(r.settings.epochs) * (rows as u64).div_ceil(u64::from(r.settings.batch_size)),
        )
    });
    todo
}
