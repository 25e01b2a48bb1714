//! A finished or sharded output folder read back: the sweep its manifest holds (with a command
//! sweep's recorded execution facts), `sweep merge` of the shards' parts into the tables, and
//! the sweep with its tables for `sweep report` and `sweep status`.

use std::path::{Path, PathBuf};

use super::adaptive::current_round;
use super::persist::{self, read_manifest, Manifest, MANIFEST};
use super::{command_facts, ranges, replay, shard_of_runs, Tables, TestHooks};
use crate::config::Sweep;
use crate::error::{Error, Result};

/// What `sweep merge` found.
pub struct Merged {
    pub sweep: Sweep,
    pub tables: Tables,
}

/// Builds the tables of a folder from the parts of all its shards, once every run is saved;
/// with runs missing, writes nothing and says which runs and which shards to run again (exit 3).
/// An adaptive sweep is merged round by round: once `round` (else the round at hand) is done
/// and the verdict asks for more seeds, nothing is written and the next round is named (exit 6).
pub fn merge(out: &Path, round: Option<usize>) -> Result<Merged> {
    let manifest = read_manifest(out)?.ok_or_else(|| {
        Error::Usage(format!(
            "{} holds no sweep (no {MANIFEST}): give the --out folder of the shards",
            out.display()
        ))
    })?;
    let mut sweep = sweep_of_manifest(out, &manifest)?;
    if sweep.adaptive_seeds().is_some() {
        let at = current_round(&sweep, out)?;
        let saved = persist::saved_statuses(out)?;
        let round_runs = &at.sweep.runs[at.first..];
        let started = round_runs.iter().any(|r| saved.contains_key(&r.id));
        let done = match round {
            Some(k) => at.number > k,
            None => at.number > 1 && !started,
        };
        if !at.settled && done {
            let to_run = round_runs.len();
            return Err(Error::NextRound(format!(
                "{}: round {} of the adaptive seeds is due: the verdict of the runs so far asks for more seeds, \
                 {to_run} runs in all; run its shards (`sweep run CONFIG --out {} --shards N --round {}`), then \
                 `sweep merge {} --round {}`; no table was written",
                out.display(),
                at.number,
                out.display(),
                at.number,
                out.display(),
                at.number
            )));
        }
        sweep = at.sweep;
    }
    let saved = persist::saved_statuses(out)?;
    let missing: Vec<usize> = sweep
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| !saved.contains_key(&r.id))
        .map(|(i, _)| i)
        .collect();
    if !missing.is_empty() {
        return Err(Error::Incomplete(missing_text(
            &sweep, &manifest, &missing, out,
        )));
    }
    let (builds, machines) = persist::part_provenance(out)?;
    let accepted = manifest.accepted_builds();
    if let Some(other) = builds.iter().find(|b| !accepted.contains(&b.as_str())) {
        return Err(Error::Results(format!(
            "{}: parts of build {other} sit beside the folder's build {}: a sweep must be merged from the parts \
             of one build; delete the other build's parts and rerun their shards",
            out.display(),
            manifest.build
        )));
    }
    if machines.len() > 1 {
        eprintln!(
            "warning: the parts ran on different CPU kinds ({}); their runs may differ from a single-machine run \
             in the last bits",
            machines.join("; ")
        );
    }
    let tables = Tables::from_saved(&sweep, out)?;
    tables.write(&sweep, out, &TestHooks::default())?;
    Ok(Merged { sweep, tables })
}

/// The sweep a finished folder holds (from its manifest) with its tables rebuilt from the parts;
/// `None` for folders of older versions, whose manifest does not hold the config.
pub fn saved_sweep(out: &Path) -> Result<Option<(Sweep, Tables)>> {
    let Some(manifest) = read_manifest(out)? else {
        return Ok(None);
    };
    if manifest.config.is_empty() {
        return Ok(None);
    }
    let sweep = replay(&sweep_of_manifest(out, &manifest)?, out)?;
    let tables = Tables::from_saved(&sweep, out)?;
    Ok(Some((sweep, tables)))
}

/// The sweep a folder's manifest holds (its resolved config, checked against its hash).
pub(super) fn sweep_of_manifest(out: &Path, manifest: &Manifest) -> Result<Sweep> {
    if manifest.config.is_empty() {
        return Err(Error::Results(format!(
            "{}/{MANIFEST} was written by an older sweep and does not hold the config: finish the sweep with \
             `sweep run CONFIG --out {}`",
            out.display(),
            out.display()
        )));
    }
    let path = out.join(MANIFEST);
    let config_dir = config_dir_of(manifest).unwrap_or_else(|| out.to_path_buf());
    let mut sweep = crate::config::from_text(&manifest.config, &path, &config_dir, out, &[])?;
    sweep.features = manifest.features.clone();
    sweep.run_facts = crate::reproduce::data_location(out, &sweep);
    if sweep.command.is_some() {
        let execution = &manifest.command_execution;
        let facts = command_facts::execution_facts(execution, &manifest.inputs_sha256);
        sweep.run_facts.extend(facts);
        sweep.run_facts.extend(command_facts::recorded(out)?);
    }
    if sweep.config_hash != manifest.config_hash {
        return Err(Error::Results(format!(
            "{}: the config it holds hashes to {}, not to its config_hash {}: the manifest was edited",
            path.display(),
            &sweep.config_hash[..16],
            manifest.short_hash()
        )));
    }
    Ok(sweep)
}

/// The folder the config's relative data path was resolved from: the manifest records the
/// resolved (absolute) path, so stripping the path as written from its end leaves that folder.
fn config_dir_of(manifest: &Manifest) -> Option<PathBuf> {
    let resolved = Path::new(manifest.data_path.as_ref()?);
    let table: toml::Table = manifest.config.parse().ok()?;
    let written = Path::new(table.get("data")?.get("path")?.as_str()?);
    if written.is_absolute() || !resolved.ends_with(written) {
        return None;
    }
    let mut dir = resolved.to_path_buf();
    for _ in written.components() {
        dir.pop();
    }
    Some(dir)
}

/// Which runs are missing, and which shards to run again.
fn missing_text(sweep: &Sweep, manifest: &Manifest, missing: &[usize], out: &Path) -> String {
    let mut text = format!(
        "{}: {} of {} runs are not saved yet (run indices {}); no table was written",
        out.display(),
        missing.len(),
        sweep.runs.len(),
        ranges(missing)
    );
    if let Some(count) = manifest.shards {
        let shard_of = shard_of_runs(sweep, count as usize);
        let mut shards: Vec<usize> = missing.iter().map(|&i| shard_of[i]).collect();
        shards.sort_unstable();
        shards.dedup();
        let list = ranges(&shards);
        text.push_str(&format!(
            ".\nThey belong to shards {list} of {count}: once those shards are done (or after resubmitting them, \
             e.g. `sbatch --array={list} JOB_SCRIPT`), run `sweep merge {}` again",
            out.display()
        ));
    } else {
        text.push_str(&format!(
            ": finish them with `sweep run CONFIG --out {}`",
            out.display()
        ));
    }
    text
}
