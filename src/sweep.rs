//! Running a validated sweep: prepare every data set and preprocessing variant once, run the
//! runs in parallel on a rayon pool (faer sequential inside each run), show progress, catch a
//! panicking run as a `failed` row, then aggregate and write the tables.
//!
//! The results of a run depend only on its settings, its seeds and the data, never on the
//! thread count or on which other runs share the sweep; tables are written in run order.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ParallelProgressIterator, ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::config::{display_value, Sweep};
use crate::error::{Error, Result};
use crate::preprocess::Prepare;
use crate::results::{self, RunRow, SummaryRow};
use crate::scenarios::{self, ScenarioRow};
use crate::train::{self, RunOutcome, Status};
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
}

/// What a finished sweep produced.
pub struct SweepResult {
    pub rows: Vec<RunRow>,
    pub summary: Vec<SummaryRow>,
    pub verdict: Vec<VerdictRow>,
    pub scenarios: Vec<ScenarioRow>,
    pub prepared: Prepare,
    pub wall: Duration,
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

/// Runs every run of the sweep and writes the tables into `opts.out`.
pub fn run(sweep: &Sweep, opts: &RunOptions) -> Result<SweepResult> {
    faer::set_global_parallelism(faer::Par::Seq);
    let start = Instant::now();
    let pool = pool(opts.jobs)?;
    let (prepared, outcomes) = pool.install(|| -> Result<_> {
        // Every input check (data, batch size, whitening) comes before the output folder exists.
        let prepared = prepare(sweep)?;
        check_writable(&opts.out)?;
        let bar = progress_bar(sweep.runs.len(), opts.quiet);
        let outcomes: Vec<RunOutcome> = sweep
            .runs
            .par_iter()
            .progress_with(bar.clone())
            .map(|run| run_one(&run.settings, prepared.for_run(run), sweep.seed))
            .collect();
        bar.finish_and_clear();
        Ok((prepared, outcomes))
    })?;
    let rows: Vec<RunRow> = sweep
        .runs
        .iter()
        .zip(&outcomes)
        .map(|(run, o)| {
            let scenario = run.scenario.map(|i| sweep.scenarios[i].name.as_str());
            RunRow::new(run, scenario, prepared.for_run(run), o)
        })
        .collect();
    let summary = results::summarize(&rows);
    let verdict = sweep
        .ablation
        .as_ref()
        .map(|a| verdict::verdict(a, &summary))
        .unwrap_or_default();
    let scenarios = scenarios::evaluate_all(&sweep.scenarios, &rows);
    let epochs: Vec<(&str, &[train::EpochStats])> = sweep
        .runs
        .iter()
        .zip(&outcomes)
        .map(|(r, o)| (r.id.as_str(), o.epochs.as_slice()))
        .collect();
    write_tables(sweep, &opts.out, &rows, &summary, &epochs, &prepared)?;
    let meta = table_metadata(sweep);
    if sweep.ablation.is_some() {
        let mut df = verdict::verdict_frame(&verdict, &context_keys(sweep))?;
        results::write_parquet(&opts.out.join("verdict.parquet"), &mut df, &meta)?;
    }
    if !scenarios.is_empty() {
        let mut df = scenarios::scenarios_frame(&scenarios)?;
        results::write_parquet(&opts.out.join("scenarios.parquet"), &mut df, &meta)?;
    }
    let wall = start.elapsed();
    let timing = format!(
        "# Wall-clock figures of the last `sweep run` into this folder (kept out of the tables).\n\
         wall_seconds = {:.3}\nruns = {}\njobs = {}\nversion = \"{VERSION}\"\n",
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
    })
}

/// Trains one run; a panic becomes a `failed` outcome carrying its message.
fn run_one(
    settings: &crate::config::TrainSettings,
    prep: &crate::preprocess::Prepared,
    seed: u64,
) -> RunOutcome {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train::train(settings, prep, seed)
    })) {
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

fn write_tables(
    sweep: &Sweep,
    out: &Path,
    rows: &[RunRow],
    summary: &[SummaryRow],
    epochs: &[(&str, &[train::EpochStats])],
    prepared: &Prepare,
) -> Result<()> {
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
    results::write_parquet(
        &out.join("reference.parquet"),
        &mut results::reference_frame(&refs)?,
        &ref_meta,
    )?;
    results::write_parquet(
        &out.join("epochs.parquet"),
        &mut results::epochs_frame(epochs)?,
        &meta,
    )?;
    results::write_parquet(
        &out.join("summary.parquet"),
        &mut results::summary_frame(summary)?,
        &meta,
    )?;
    results::write_parquet(
        &out.join("runs.parquet"),
        &mut results::runs_frame(rows)?,
        &meta,
    )?;
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
        "\n{} runs: {} converged, {} not converged, {} diverged, {} failed; wall time {:.1} s\nwrote {}/{{runs,epochs,summary,reference}}.parquet\n",
        result.rows.len(),
        count(Status::Converged),
        count(Status::NotConverged),
        count(Status::Diverged),
        count(Status::Failed),
        result.wall.as_secs_f64(),
        out.display()
    );
    s
}
