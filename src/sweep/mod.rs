//! Running a validated sweep: plan (prepare every data set and preprocessing variant once,
//! check the folder, skip what is saved), execute (runs in parallel on a rayon pool, saved in
//! parts as they finish), finish (read every saved run back, aggregate, write the tables).
//!
//! The results of a run depend only on its settings, its seeds and the data, never on the
//! thread count or on which other runs share the sweep; tables are written in run order.

mod adaptive;
mod claim;
mod command_facts;
mod commands;
mod execute;
mod finish;
mod folder;
mod hooks;
mod manifest;
mod persist;
mod plan;
mod shard;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use adaptive::{is_open, next_batch, replay};
pub use commands::input_hashes;
pub use execute::{pool, PART_RUNS, PART_SECONDS};
pub use finish::{reference_table, Tables};
pub use folder::{merge, saved_sweep, Merged};
pub use hooks::TestHooks;
pub use persist::{read_manifest, status_counts, Manifest, MANIFEST, PARTS, TABLES};
pub use plan::prepare;
pub use shard::{ranges, shard_of_runs, Shard, INDEX_VARIABLES};

use crate::config::Sweep;
use crate::error::{Error, Result};
use crate::preprocess::Prepare;
use crate::results::write_text;
use crate::VERSION;

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub out: PathBuf,
    /// Worker threads; `None` uses every core.
    pub jobs: Option<usize>,
    /// Hide the progress bar and the stdout summary.
    pub quiet: bool,
    /// Delete what an earlier sweep left in `out` and start afresh.
    pub fresh: bool,
    /// Add runs to a folder whose runs another build made (the manifest records both builds).
    pub allow_build_change: bool,
    /// Run a command sweep's failed, timed-out and killed runs again, as their next attempt.
    pub retry_failed: bool,
    /// End the runs a killed sweep left alive on this host before starting.
    pub kill_stale: bool,
    /// For a shard of an adaptive sweep: the round it belongs to (see [`run_shard`]).
    pub round: Option<usize>,
    /// Behaviour the tests ask for, read once at start-up.
    pub hooks: TestHooks,
}

/// What a finished sweep produced.
pub struct SweepResult {
    pub tables: Tables,
    pub prepared: Prepare,
    pub wall: Duration,
    /// Runs found saved in the folder (from an earlier, interrupted invocation).
    pub resumed: usize,
}

/// Runs every run of the sweep that `opts.out` does not hold yet, saving them in parts as they
/// finish, then builds and writes the tables from every saved run.
pub fn run(sweep: &Sweep, opts: &RunOptions) -> Result<SweepResult> {
    let start = Instant::now();
    // With adaptive seeds, batch after batch until the verdict is settled (see `adaptive`).
    let mut sweep = sweep.clone();
    let mut batch_opts = opts.clone();
    let (mut resumed, mut preparing, mut running) = (0, Duration::ZERO, Duration::ZERO);
    // Runs of the earlier batches of this invocation, saved by it.
    let mut earlier = 0;
    // The data sets and variants of the last batch, for the next one (new seeds need no new
    // preparation; a batch that needs a variant they lack prepares afresh).
    let mut reused: Option<Prepare> = None;
    // This process's claim on the folder, held until the tables are written.
    let mut claims = Vec::new();
    let (prepared, threads, settled) = loop {
        let batch_start = Instant::now();
        let ran = run_runs(&mut sweep, &batch_opts, None, reused.take())?;
        claims.push(ran.claim);
        preparing += ran.prepared_at - batch_start;
        running += ran.prepared_at.elapsed();
        resumed += ran.resumed - earlier;
        batch_opts.fresh = false;
        let deciding = Instant::now();
        let (added, tables) = match sweep.adaptive_seeds() {
            Some(_) => {
                let tables = Tables::from_saved(&sweep, &opts.out)?;
                (next_batch(&sweep, &tables.verdict), Some(tables))
            }
            None => (Vec::new(), None),
        };
        running += deciding.elapsed();
        if added.is_empty() {
            // The tables the last decision was made on are the sweep's tables.
            break (ran.prepared, ran.threads, tables);
        }
        earlier = sweep.runs.len();
        sweep.runs.extend(added);
        reused = Some(ran.prepared);
    };
    let sweep = &sweep;
    let ran_at = Instant::now();
    let peak_after_runs = crate::peak_memory_mb();

    let tables = match settled {
        Some(tables) => tables,
        None => Tables::from_saved(sweep, &opts.out)?,
    };
    tables.write(sweep, &opts.out, &opts.hooks)?;
    let wall = start.elapsed();
    write_text(
        &opts.out.join("timing.toml"),
        &format!(
            "# Wall-clock figures of the last `sweep run` into this folder (kept out of the tables).\n\
             wall_seconds = {:.3}\n\
             # data, reference and preprocessing; the runs; reading the parts back and writing the tables\n\
             prepare_seconds = {:.3}\nrun_seconds = {:.3}\nwrite_seconds = {:.3}\n\
             {}runs = {}\nruns_resumed = {}\njobs = {}\nsimd = \"{}\"\nversion = \"{VERSION}\"\nbuild = \"{}\"\n\
             cpu = \"{}\"\nhost = \"{}\"\n",
            wall.as_secs_f64(),
            preparing.as_secs_f64(),
            running.as_secs_f64(),
            ran_at.elapsed().as_secs_f64(),
            finish::peak_memory_lines(peak_after_runs),
            tables.rows.len(),
            resumed,
            threads,
            crate::train::SimdLevel::detect(),
            crate::BUILD,
            crate::cpu_model(),
            crate::host_name(),
        ),
    )?;
    Ok(SweepResult {
        tables,
        prepared,
        wall,
        resumed,
    })
}

/// What [`run_runs`] did.
struct Ran {
    prepared: Prepare,
    /// This process's claim on the folder (see `claim`), held until the tables are written.
    claim: claim::Claim,
    /// Runs of this invocation's share found saved already.
    resumed: usize,
    /// Runs of this invocation's share.
    share: usize,
    threads: usize,
    prepared_at: Instant,
}

/// Checks, prepares and runs every run of the share (all runs, or one shard's) that the folder
/// does not hold yet, saving them in parts; writes the reference part.
fn run_runs(
    sweep: &mut Sweep,
    opts: &RunOptions,
    shard: Option<Shard>,
    prepared: Option<Prepare>,
) -> Result<Ran> {
    faer::set_global_parallelism(faer::Par::Seq);
    let pool = pool(opts.jobs)?;
    // Every input check (config against the folder, data, batch size, whitening) comes before
    // anything is written.
    persist::check_compatible(&opts.out, sweep, opts.fresh, shard, opts.allow_build_change)?;
    let prepared = match prepared.filter(|p| sweep.runs.iter().all(|r| p.get(r).is_some())) {
        Some(p) => p,
        None => pool.install(|| prepare(sweep))?,
    };
    sweep.features = prepared.feature_names().to_vec();
    if let Some(spec) = &sweep.command {
        commands::gpu_slots(spec)?;
    }
    let (claim, store) = open_folder(sweep, opts, shard, &prepared)?;
    let sweep = &*sweep;
    let (saved, retries) = saved_and_retried(&opts.out, opts.retry_failed)?;
    let mine = shard::in_share(sweep, shard);
    let share = mine.iter().filter(|m| **m).count();
    let resumed = sweep
        .runs
        .iter()
        .zip(&mine)
        .filter(|(r, mine)| **mine && saved.contains(&r.id))
        .count();
    let groups = plan::groups_to_do(sweep, &saved, prepared.max_rows(), &opts.hooks, &mine);

    let prepared_at = Instant::now();
    let bar = execute::progress_bar(share, opts.quiet);
    bar.set_position(resumed as u64);
    if let Some(spec) = &sweep.command {
        let runs: Vec<&crate::config::RunSpec> = groups.iter().flatten().copied().collect();
        commands::write_data_files(&opts.out, &runs, &prepared)?;
        let execution = commands::CommandExecution {
            sweep,
            spec,
            prepared: &prepared,
            store: &store,
            out: &opts.out,
            attempts: &retries,
        };
        // Without --jobs, one run per GPU slot when there are slots, else one per core.
        let slots = spec.gpus.len();
        let jobs = opts.jobs.unwrap_or(if slots > 0 {
            slots
        } else {
            pool.current_num_threads()
        });
        execution.run_all(&runs, jobs, &bar)?;
    } else {
        let execution = execute::Execution {
            sweep,
            prepared: &prepared,
            store: &store,
            hooks: &opts.hooks,
        };
        execution.run_all(&pool, &groups, &bar)?;
    }
    bar.finish_and_clear();
    Ok(Ran {
        claim,
        prepared,
        resumed,
        share,
        threads: pool.current_num_threads(),
        prepared_at,
    })
}

/// Once every input is checked: claims the folder's share, opens its store (the manifest, the
/// parts' metadata with the run facts) and writes the reference part.
fn open_folder(
    sweep: &mut Sweep,
    opts: &RunOptions,
    shard: Option<Shard>,
    prepared: &Prepare,
) -> Result<(claim::Claim, persist::Store)> {
    check_writable(&opts.out)?;
    let claim = claim::claim(&opts.out, shard, || match &sweep.command {
        Some(spec) => crate::command::check_stale(&opts.out, opts.kill_stale, spec.grace),
        None => Ok(()),
    })?;
    let mut store =
        persist::Store::open(&opts.out, sweep, opts.fresh, shard, opts.allow_build_change)?;
    let mut facts = crate::reproduce::data_location(&opts.out, sweep);
    if sweep.command.is_some() {
        facts.extend(command_facts::prepare_folder(&opts.out, sweep, prepared)?);
    }
    sweep.run_facts = facts;
    store.add_metadata(&sweep.run_facts);
    if !prepared.datasets.is_empty() {
        let (mut reference, metadata) = finish::reference_table(sweep, prepared)?;
        store.write_reference(&mut reference, &metadata)?;
    }
    Ok((claim, store))
}

/// The runs saved in the folder that are done, and the runs to run again as their next attempt
/// (with `--retry-failed`, the incomplete ones). Only the runs files are read here; the tables
/// are built from everything saved at the end.
fn saved_and_retried(
    out: &Path,
    retry_failed: bool,
) -> Result<(BTreeSet<String>, BTreeMap<String, u32>)> {
    let attempts = persist::saved_attempts(out)?;
    let retries: BTreeMap<String, u32> = attempts
        .iter()
        .filter(|(_, (status, _))| retry_failed && status.incomplete())
        .map(|(id, (_, attempt))| (id.clone(), attempt + 1))
        .collect();
    let saved = attempts
        .into_keys()
        .filter(|id| !retries.contains_key(id))
        .collect();
    Ok((saved, retries))
}

/// What one shard did.
pub struct ShardResult {
    pub shard: Shard,
    /// Runs of the shard.
    pub runs: usize,
    /// Of them, found saved already (a re-run after a requeue or a kill).
    pub resumed: usize,
    pub wall: Duration,
}

/// Runs one shard's runs that the folder does not hold yet, saving them in parts. Writes no
/// table: `sweep merge` builds them once every shard is done.
pub fn run_shard(sweep: &Sweep, opts: &RunOptions, shard: Shard) -> Result<ShardResult> {
    if opts.fresh {
        return Err(Error::Usage(
            "--fresh is not accepted with --shard or --shards: it would delete the parts of the other shards; \
             delete the folder once, before starting the shards"
                .into(),
        ));
    }
    let start = Instant::now();
    let mut sweep = sweep.clone();
    if sweep.adaptive_seeds().is_some() && opts.out.join(MANIFEST).exists() {
        let round = adaptive::current_round(&sweep, &opts.out)?;
        match opts.round {
            Some(k) if k < round.number || round.settled => {
                eprintln!(
                    "sweep: round {k} of {} is done: nothing for this shard to run",
                    opts.out.display()
                );
                return Ok(ShardResult {
                    shard,
                    runs: 0,
                    resumed: 0,
                    wall: start.elapsed(),
                });
            }
            Some(k) if k > round.number => {
                return Err(Error::Usage(format!(
                    "--round {k}: {} is at round {} of its adaptive seeds, whose runs are not all saved; run \
                     that round's shards first (`sweep merge {}` names them)",
                    opts.out.display(),
                    round.number,
                    opts.out.display()
                )))
            }
            _ => sweep = round.sweep,
        }
    }
    let ran = run_runs(&mut sweep, opts, Some(shard), None)?;
    Ok(ShardResult {
        shard,
        runs: ran.share,
        resumed: ran.resumed,
        wall: start.elapsed(),
    })
}

/// Whether the sweep recorded in a folder's manifest adds seeds adaptively (false when the
/// manifest is of an older version and does not hold the config).
pub fn is_adaptive(out: &Path, manifest: &Manifest) -> bool {
    folder::sweep_of_manifest(out, manifest).is_ok_and(|s| s.adaptive_seeds().is_some())
}

/// For a sharded folder, each shard's saved and total run counts, in shard order.
pub fn shard_progress(
    out: &Path,
    manifest: &Manifest,
    saved: &std::collections::BTreeMap<String, crate::train::Status>,
) -> Result<Option<Vec<(usize, usize)>>> {
    let Some(count) = manifest.shards else {
        return Ok(None);
    };
    let sweep = folder::sweep_of_manifest(out, manifest)?;
    let mut progress = vec![(0, 0); count as usize];
    for (run, shard) in sweep.runs.iter().zip(shard_of_runs(&sweep, count as usize)) {
        progress[shard].1 += 1;
        if saved.contains_key(&run.id) {
            progress[shard].0 += 1;
        }
    }
    Ok(Some(progress))
}

/// The varying settings that define a verdict context: every axis but the seeds and the fixes.
pub fn context_keys(sweep: &Sweep) -> Vec<&str> {
    let factors: Vec<&str> = sweep
        .ablation
        .iter()
        .flat_map(|a| a.factors.iter().map(|f| f.key.as_str()))
        .collect();
    sweep
        .grid
        .axes
        .iter()
        .map(|a| a.key.as_str())
        .filter(|k| *k != "seed" && *k != "data_seed" && !factors.contains(k))
        .collect()
}

/// Fails early, before any run, when `dir` cannot be created or written.
pub fn check_writable(dir: &Path) -> Result<()> {
    let output = |message: String| Error::Output {
        path: dir.to_path_buf(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| output(e.to_string()))?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| output(e.to_string()))?;
    std::fs::remove_file(&probe).map_err(|e| output(e.to_string()))?;
    Ok(())
}

/// Key-value metadata carried by every table.
pub fn table_metadata(sweep: &Sweep) -> Vec<(String, String)> {
    let mut meta = crate::build_facts();
    meta.push(("sweep.config".into(), sweep.resolved_toml.clone()));
    meta.push(("sweep.config_hash".into(), sweep.config_hash.clone()));
    if let Some(sha) = &sweep.data_sha256 {
        meta.push(("sweep.data_sha256".into(), sha.clone()));
    }
    if !sweep.features.is_empty() {
        let list = serde_json::to_string(&sweep.features).expect("names serialize");
        meta.push(("sweep.features".into(), list));
    }
    // A command sweep: how its runs were executed, the inputs' hashes, and what it recorded.
    meta.extend(sweep.run_facts.iter().cloned());
    meta
}
