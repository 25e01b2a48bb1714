//! Running a validated sweep: prepare every data set and preprocessing variant once, run the
//! runs in parallel on a rayon pool (faer sequential inside each run), show progress, catch a
//! panicking run as a `failed` row, then aggregate and write the tables.
//!
//! The results of a run depend only on its settings, its seeds and the data, never on the
//! thread count or on which other runs share the sweep; tables are written in run order.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::collections::BTreeSet;
use std::sync::mpsc;

use indicatif::{ProgressBar, ProgressStyle};
use polars::prelude::DataFrame;
use rayon::prelude::*;

use crate::config::{display_value, RunSpec, Sweep};
use crate::error::{Error, Result};
use crate::persist::{self, Store};
use crate::preprocess::Prepare;
use crate::preprocess::Prepared;
use crate::results::{self, RunRow, SummaryRow};
use crate::scenarios::{self, ScenarioRow};
use crate::train::{self, EpochStats, RunOutcome, Status};
use crate::verdict::{self, VerdictRow};
use crate::{data, table, VERSION};

/// The varying settings that define a verdict context: every axis but the seeds and the fixes.
pub fn context_keys(sweep: &Sweep) -> Vec<&str> {
    let factors: Vec<&str> = sweep
        .ablation
        .iter()
        .flat_map(|a| a.factors.iter().map(|f| f.key.as_str()))
        .collect();
    sweep
        .axes
        .iter()
        .map(|a| a.key.as_str())
        .filter(|k| *k != "seed" && *k != "data_seed" && !factors.contains(k))
        .collect()
}

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
}

/// What a finished sweep produced.
pub struct SweepResult {
    pub rows: Vec<RunRow>,
    pub summary: Vec<SummaryRow>,
    pub verdict: Vec<VerdictRow>,
    pub scenarios: Vec<ScenarioRow>,
    pub prepared: Prepare,
    pub wall: Duration,
    /// Runs found saved in the folder (from an earlier, interrupted invocation).
    pub resumed: usize,
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

/// A thread pool of `jobs` threads (all cores when `None`).
pub fn pool(jobs: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(j) = jobs {
        builder = builder.num_threads(j);
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("--jobs: cannot start the thread pool: {e}")))
}

/// Loads every data set and preprocessing variant the sweep needs, and checks the settings
/// that depend on the data (batch size against the row count).
pub fn prepare(sweep: &Sweep) -> Result<Prepare> {
    let prepared = Prepare::build(&sweep.runs, |seed| data::load(&sweep.data, seed))?;
    let rows = prepared
        .datasets
        .values()
        .map(|(d, _)| d.n)
        .min()
        .unwrap_or(0);
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

/// Finished runs per part file, and the longest a finished run waits before it is saved.
pub const PART_RUNS: usize = 64;
pub const PART_SECONDS: Duration = Duration::from_secs(5);

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
    let store = Store::open(&opts.out, sweep, opts.fresh)?;
    let saved_ids: BTreeSet<String> = persist::load(&opts.out, sweep)?.into_keys().collect();
    let resumed = saved_ids.len();
    let mut todo: Vec<&RunSpec> = sweep
        .runs
        .iter()
        .filter(|r| !saved_ids.contains(&r.id))
        .collect();
    // Longest runs first (cost ~ epochs x steps per epoch) so that no long run starts last on an
    // otherwise idle pool; the order of execution does not reach any result.
    let rows = prepared
        .datasets
        .values()
        .map(|(d, _)| d.n)
        .max()
        .unwrap_or(1);
    todo.sort_by_key(|r| {
        std::cmp::Reverse(
            u64::from(r.settings.epochs) * (rows as u64).div_ceil(u64::from(r.settings.batch_size)),
        )
    });
    let inject_panic: Option<usize> = std::env::var("SWEEP_TEST_PANIC_RUN")
        .ok()
        .and_then(|v| v.parse().ok());

    let bar = progress_bar(sweep.runs.len(), opts.quiet);
    bar.set_position(resumed as u64);
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = mpsc::channel::<(RunRow, Vec<EpochStats>)>();
        let writer = scope.spawn(|| save_as_they_finish(&store, rx));
        pool.install(|| {
            todo.par_iter()
                .with_max_len(1)
                .for_each_with(tx, |tx, run| {
                    let prep = prepared.for_run(run);
                    let outcome = run_one(run, prep, sweep.seed, inject_panic);
                    let scenario = run.scenario.map(|i| sweep.scenarios[i].name.as_str());
                    let row = RunRow::new(run, scenario, prep, &outcome);
                    // A send fails only when the writer stopped on an error, which join reports.
                    let _ = tx.send((row, outcome.epochs));
                    bar.inc(1);
                })
        });
        writer.join().unwrap_or_else(|_| {
            Err(Error::Output {
                path: opts.out.clone(),
                message: "the writer thread panicked".into(),
            })
        })
    })?;
    bar.finish_and_clear();

    // The tables come from what is on disk, whether this process ran the runs or an earlier one.
    let saved = persist::load(&opts.out, sweep)?;
    let mut rows = Vec::with_capacity(sweep.runs.len());
    let mut epochs = Vec::with_capacity(sweep.runs.len());
    for run in &sweep.runs {
        let (row, e) = saved.get(&run.id).ok_or_else(|| Error::Output {
            path: opts.out.clone(),
            message: format!("run {} ({}) was not saved", run.index, run.id),
        })?;
        rows.push(row.clone());
        epochs.push((run.id.as_str(), e.as_slice()));
    }
    let summary = results::summarize(&rows);
    let verdict = sweep
        .ablation
        .as_ref()
        .map(|a| verdict::verdict(a, &summary))
        .unwrap_or_default();
    let scenarios = scenarios::evaluate_all(&sweep.scenarios, &rows);
    let tables = Tables {
        rows: &rows,
        summary: &summary,
        verdict: &verdict,
        scenarios: &scenarios,
        epochs: &epochs,
    };
    write_tables(sweep, &opts.out, &tables, &prepared)?;
    let wall = start.elapsed();
    let timing = format!(
        "# Wall-clock figures of the last `sweep run` into this folder (kept out of the tables).\n\
         wall_seconds = {:.3}\nruns = {}\nruns_resumed = {resumed}\njobs = {}\nversion = \"{VERSION}\"\n",
        wall.as_secs_f64(),
        rows.len(),
        pool.current_num_threads(),
    );
    results::write_atomic(&opts.out.join("timing.toml"), |f| {
        use std::io::Write;
        f.write_all(timing.as_bytes())
            .map_err(|e| Error::io("writing timing.toml", e))
    })?;
    Ok(SweepResult {
        rows,
        summary,
        verdict,
        scenarios,
        prepared,
        wall,
        resumed,
    })
}

/// The writer thread: groups finished runs into parts of [`PART_RUNS`], and saves a partial
/// group once its oldest run has waited [`PART_SECONDS`].
fn save_as_they_finish(store: &Store, rx: mpsc::Receiver<(RunRow, Vec<EpochStats>)>) -> Result<()> {
    let mut buffer = Vec::new();
    let mut oldest: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(item) => {
                oldest.get_or_insert_with(Instant::now);
                buffer.push(item);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return store.write_part(&buffer),
        }
        if buffer.len() >= PART_RUNS || oldest.is_some_and(|t| t.elapsed() >= PART_SECONDS) {
            store.write_part(&buffer)?;
            buffer.clear();
            oldest = None;
        }
    }
}

/// Trains one run; a panic becomes a `failed` outcome carrying its message.
/// `inject_panic` (from `SWEEP_TEST_PANIC_RUN`, for tests) makes the run with that index panic.
fn run_one(run: &RunSpec, prep: &Prepared, seed: u64, inject_panic: Option<usize>) -> RunOutcome {
    let train = || {
        if let Some(ms) = std::env::var("SWEEP_TEST_RUN_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            // Test hook: slow every run down so that a test can kill the sweep half-way.
            std::thread::sleep(Duration::from_millis(ms));
        }
        if inject_panic == Some(run.index) {
            panic!("injected test panic in run {}", run.index);
        }
        train::train(&run.settings, prep, seed)
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(train)) {
        Ok(outcome) => outcome,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic with a non-text payload".into());
            RunOutcome {
                status: Status::Failed,
                message: Some(message),
                epochs: Vec::new(),
                initial_train_mse: f64::NAN,
                params: Vec::new(),
                weights: vec![f64::NAN; prep.d()],
            }
        }
    }
}

fn progress_bar(total: usize, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style =
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs  elapsed {elapsed}  ETA {eta}")
            .expect("valid template");
    let bar = ProgressBar::new(total as u64).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Key-value metadata carried by every table.
pub fn table_metadata(sweep: &Sweep) -> Vec<(String, String)> {
    vec![
        ("sweep.version".into(), VERSION.into()),
        ("sweep.config".into(), sweep.resolved_toml.clone()),
        ("sweep.config_hash".into(), sweep.config_hash.clone()),
    ]
}

/// The tables of a finished sweep, in run order.
struct Tables<'a> {
    rows: &'a [RunRow],
    summary: &'a [SummaryRow],
    verdict: &'a [VerdictRow],
    scenarios: &'a [ScenarioRow],
    epochs: &'a [(&'a str, &'a [EpochStats])],
}

fn write_tables(sweep: &Sweep, out: &Path, t: &Tables, prepared: &Prepare) -> Result<()> {
    let meta = table_metadata(sweep);
    let refs: Vec<_> = prepared
        .datasets
        .iter()
        .map(|(seed, (d, r))| (*seed, d.feature_names.as_slice(), &**r))
        .collect();
    let mut ref_meta = meta.clone();
    for (seed, _, r) in &refs {
        let tag = seed.map_or("file".to_string(), |s| format!("data_seed={s}"));
        ref_meta.push((
            format!("reference.{tag}"),
            format!(
                "intercept = {:e}\nmse = {:e}\nr2 = {}\nrank = {}\ncondition_number = {:e}\nweight_norm = {}\n",
                r.fit.intercept.unwrap_or(0.0),
                r.fit.mse,
                r.fit.r2,
                r.fit.rank,
                r.fit.condition_number,
                r.weight_norm
            ),
        ));
    }
    type Metadata = [(String, String)];
    let mut tables: Vec<(&str, DataFrame, &Metadata)> = vec![
        (
            "reference.parquet",
            results::reference_frame(&refs)?,
            &ref_meta,
        ),
        ("epochs.parquet", results::epochs_frame(t.epochs)?, &meta),
        ("summary.parquet", results::summary_frame(t.summary)?, &meta),
    ];
    if sweep.ablation.is_some() {
        tables.push((
            "verdict.parquet",
            verdict::verdict_frame(t.verdict, &context_keys(sweep))?,
            &meta,
        ));
    }
    if !t.scenarios.is_empty() {
        tables.push((
            "scenarios.parquet",
            scenarios::scenarios_frame(t.scenarios)?,
            &meta,
        ));
    }
    tables.push(("runs.parquet", results::runs_frame(t.rows)?, &meta));
    // Test hook: SWEEP_TEST_FINAL_WRITE_DELAY_MS pauses after each table, so that a test can kill
    // the process in the middle of the final write.
    let delay = std::env::var("SWEEP_TEST_FINAL_WRITE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    for (name, mut df, metadata) in tables {
        results::write_parquet(&out.join(name), &mut df, metadata)?;
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
    }
    Ok(())
}

/// The label of a cell: the values of the axes that vary, other than the seeds.
pub fn cell_label(sweep: &Sweep, settings: &crate::config::TrainSettings) -> String {
    let parts: Vec<String> = sweep
        .axes
        .iter()
        .filter(|a| a.key != "seed" && a.key != "data_seed")
        .map(|a| {
            format!(
                "{}={}",
                a.key,
                settings
                    .value_of(&a.key)
                    .map(|v| display_value(&v))
                    .unwrap_or_default()
            )
        })
        .collect();
    if parts.is_empty() {
        "(single cell)".into()
    } else {
        parts.join(" ")
    }
}

/// The short summary printed at the end of `sweep run`.
pub fn summary_text(sweep: &Sweep, result: &SweepResult, out: &Path) -> String {
    let mut s = String::new();
    for (seed, (data, r)) in &result.prepared.datasets {
        let tag = seed.map_or(String::new(), |s| format!(" (data_seed {s})"));
        s += &format!(
            "OLS reference{tag}: {} rows x {} features, MSE {:.4e}, R² {:.4}, rank {} of {} (intercept included), condition number {:.3e}, |w| {:.4}\n",
            data.n,
            data.d,
            r.fit.mse,
            r.fit.r2,
            r.fit.rank,
            data.d + 1,
            r.fit.condition_number,
            r.weight_norm
        );
    }
    let labels: Vec<String> = result
        .summary
        .iter()
        .map(|c| {
            match (
                &c.scenario,
                sweep
                    .axes
                    .iter()
                    .all(|a| a.key == "seed" || a.key == "data_seed"),
            ) {
                (Some(name), true) => name.clone(),
                (Some(name), false) => format!("{name}: {}", cell_label(sweep, &c.settings)),
                (None, _) => cell_label(sweep, &c.settings),
            }
        })
        .collect();
    let width = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    s += &format!(
        "\n{:<width$}  {:>5}  {:>9}  {:>8}  {:>10}\n",
        "cell", "runs", "converged", "diverged", "median R²"
    );
    for (label, cell) in labels.iter().zip(&result.summary) {
        let r2 = cell
            .r2_median
            .map_or("-".to_string(), |v| format!("{v:.4}"));
        s += &format!(
            "{label:<width$}  {:>5}  {:>9.2}  {:>8.2}  {:>10}\n",
            cell.n_runs, cell.converged_fraction, cell.diverged_fraction, r2
        );
    }
    if let Some(ablation) = &sweep.ablation {
        if let Ok(df) = verdict::verdict_frame(&result.verdict, &context_keys(sweep)) {
            s += &format!(
                "\nverdict (necessary: all-on converges in >= {} of seeds and one-off in <= {}):\n{}",
                ablation.converge_high,
                ablation.converge_low,
                table::text(&df)
            );
        }
    }
    if !result.scenarios.is_empty() {
        if let Ok(df) = scenarios::scenarios_frame(&result.scenarios) {
            s += &format!(
                "\nscenarios:\n{}",
                table::text(&df.drop("description").unwrap_or(df.clone()))
            );
        }
    }
    let count = |st: Status| result.rows.iter().filter(|r| r.status == st).count();
    s += &format!(
        "\n{} runs{}: {} converged, {} not converged, {} diverged, {} failed; wall time {:.1} s\nwrote {}/{{runs,epochs,summary,reference}}.parquet\n",
        result.rows.len(),
        if result.resumed > 0 { format!(" ({} resumed from an earlier run)", result.resumed) } else { String::new() },
        count(Status::Converged),
        count(Status::NotConverged),
        count(Status::Diverged),
        count(Status::Failed),
        result.wall.as_secs_f64(),
        out.display()
    );
    s
}
