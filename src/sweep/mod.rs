//! Running a validated sweep: plan (prepare every data set and preprocessing variant once,
//! check the folder, skip what is saved), execute (runs in parallel on a rayon pool, saved in
//! parts as they finish), finish (read every saved run back, aggregate, write the tables).
//!
//! The results of a run depend only on its settings, its seeds and the data, never on the
//! thread count or on which other runs share the sweep; tables are written in run order.

mod execute;
mod finish;
mod hooks;
mod persist;
mod plan;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use execute::{pool, PART_RUNS, PART_SECONDS};
pub use finish::Tables;
pub use hooks::TestHooks;
pub use persist::{read_manifest, status_counts, Manifest, MANIFEST, PARTS};
pub use plan::prepare;

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
    faer::set_global_parallelism(faer::Par::Seq);
    let start = Instant::now();
    let pool = pool(opts.jobs)?;
    // Every input check (config against the folder, data, batch size, whitening) comes before
    // anything is written.
    persist::check_compatible(&opts.out, sweep, opts.fresh)?;
    let prepared = pool.install(|| prepare(sweep))?;
    check_writable(&opts.out)?;
    let store = persist::Store::open(&opts.out, sweep, opts.fresh)?;
    // Only the runs files are read here; the tables are built from everything saved at the end.
    let saved: BTreeSet<String> = persist::saved_statuses(&opts.out)?.into_keys().collect();
    let resumed = sweep.runs.iter().filter(|r| saved.contains(&r.id)).count();
    let groups = plan::groups_to_do(sweep, &saved, prepared.max_rows(), &opts.hooks);

    let prepared_at = Instant::now();

    let bar = execute::progress_bar(sweep.runs.len(), opts.quiet);
    bar.set_position(resumed as u64);
    let execution = execute::Execution {
        sweep,
        prepared: &prepared,
        store: &store,
        hooks: &opts.hooks,
    };
    execution.run_all(&pool, &groups, &bar)?;
    bar.finish_and_clear();
    let ran_at = Instant::now();

    let tables = Tables::from_saved(sweep, &opts.out)?;
    tables.write(sweep, &opts.out, &prepared, &opts.hooks)?;
    let wall = start.elapsed();
    write_text(
        &opts.out.join("timing.toml"),
        &format!(
            "# Wall-clock figures of the last `sweep run` into this folder (kept out of the tables).\n\
             wall_seconds = {:.3}\n\
             # data, reference and preprocessing; the runs; reading the parts back and writing the tables\n\
             prepare_seconds = {:.3}\nrun_seconds = {:.3}\nwrite_seconds = {:.3}\n\
             runs = {}\nruns_resumed = {}\njobs = {}\nsimd = \"{}\"\nversion = \"{VERSION}\"\n",
            wall.as_secs_f64(),
            (prepared_at - start).as_secs_f64(),
            (ran_at - prepared_at).as_secs_f64(),
            ran_at.elapsed().as_secs_f64(),
            tables.rows.len(),
            resumed,
            pool.current_num_threads(),
            crate::train::SimdLevel::detect(),
        ),
    )?;
    Ok(SweepResult {
        tables,
        prepared,
        wall,
        resumed,
    })
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
    vec![
        ("sweep.version".into(), VERSION.into()),
        ("sweep.config".into(), sweep.resolved_toml.clone()),
        ("sweep.config_hash".into(), sweep.config_hash.clone()),
    ]
}
