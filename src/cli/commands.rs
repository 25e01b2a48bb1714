//! One function per subcommand: turn the parsed arguments into library calls and print the
//! result on stdout.

use std::path::Path;

use super::{
    DataArgs, DirArgs, ListArgs, MergeArgs, NistArgs, OlsArgs, PlotArgs, ReproduceArgs, RunArgs,
};
use crate::config::{self, display_value, Sweep};
use crate::error::{Error, Result};
use crate::reference::nist;
use crate::train::Status;
use crate::{data, report, results, sweep};

/// `sweep run`.
pub(super) fn run(args: RunArgs) -> Result<()> {
    let shard = match (&args.shard, args.shards) {
        (Some(text), _) => Some((sweep::Shard::parse(text)?, "--shard")),
        (None, Some(count)) => Some(sweep::Shard::from_env(count, |v| std::env::var(v).ok())?),
        (None, None) => None,
    };
    let sweep = config::load(&args.config, &args.set)?;
    check_program(&sweep)?;
    let out = args
        .out
        .unwrap_or_else(|| Path::new("results").join(&sweep.name));
    let opts = sweep::RunOptions {
        out: out.clone(),
        jobs: args.jobs.map(usize::from).or_else(slurm_cpus),
        quiet: args.quiet,
        fresh: args.fresh,
        allow_build_change: args.allow_build_change,
        retry_failed: args.retry_failed,
        kill_stale: args.kill_stale,
        round: args.round.map(|k| k as usize),
        hooks: sweep::TestHooks::from_env(),
    };
    if args.round.is_some() && (shard.is_none() || sweep.adaptive_seeds().is_none()) {
        return Err(Error::Usage(
            "--round is for the shards of a sweep with adaptive seeds (with --shard or --shards)"
                .into(),
        ));
    }
    if args.retry_failed && sweep.command.is_none() {
        return Err(Error::Usage(
            "--retry-failed runs a command sweep's failed runs again; this config has no [command] section (a \
             built-in run fails only on a bug, which a retry would meet again)"
                .into(),
        ));
    }
    if let Some((shard, source)) = shard {
        eprintln!(
            "shard {} of {} (index from {source}) into {}",
            shard.index,
            shard.count,
            out.display()
        );
        let done = sweep::run_shard(&sweep, &opts, shard)?;
        if !args.quiet {
            println!(
                "shard {} of {}: {} runs ({} found saved), wall time {:.1} s; `sweep merge {}` builds the tables \
                 once every shard is done",
                shard.index,
                shard.count,
                done.runs,
                done.resumed,
                done.wall.as_secs_f64(),
                out.display()
            );
        }
        return Ok(());
    }
    let result = sweep::run(&sweep, &opts)?;
    if !args.quiet {
        print!("{}", report::summary_text(&sweep, &result, &out));
    }
    Ok(())
}

/// Worker threads from Slurm's `SLURM_CPUS_PER_TASK`, when set.
fn slurm_cpus() -> Option<usize> {
    std::env::var("SLURM_CPUS_PER_TASK")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n >= 1)
}

/// `sweep merge`.
pub(super) fn merge(args: MergeArgs) -> Result<()> {
    let merged = sweep::merge(&args.dir, args.round.map(|k| k as usize))?;
    println!(
        "merged the {} runs of sweep \"{}\" into {}/{{{}}}.parquet",
        merged.tables.rows.len(),
        merged.sweep.name,
        args.dir.display(),
        merged.tables.written(&merged.sweep).join(",")
    );
    Ok(())
}

/// A command sweep's program must resolve to an executable (checked by `run` and `list`, not by
/// the launchers, whose jobs may set up their environment first).
fn check_program(sweep: &Sweep) -> Result<()> {
    match &sweep.command {
        Some(spec) => crate::command::check_program(spec).map_err(Error::Config),
        None => Ok(()),
    }
}

/// `sweep list`.
pub(super) fn list(args: ListArgs) -> Result<()> {
    let sweep = config::load(&args.config, &args.set)?;
    check_program(&sweep)?;
    if !args.argv {
        print!("{}", list_text(&sweep));
        return Ok(());
    }
    let Some(spec) = &sweep.command else {
        return Err(Error::Usage(
            "--argv lists the commands of a command sweep, and this config has no [command] section".into(),
        ));
    };
    for run in &sweep.runs {
        let argv = crate::command::listed_argv(spec, run, sweep.seed);
        let words: Vec<String> = argv.iter().map(|w| super::launch::shell_quote(w)).collect();
        println!("{:>6}  {:<16}  {}", run.index, run.id, words.join(" "));
    }
    Ok(())
}

/// `sweep reproduce`: the report on stdout; exit 4 when a table is not reproduced.
pub(super) fn reproduce(args: ReproduceArgs) -> Result<()> {
    for (name, v) in [("--rtol", args.rtol), ("--atol", args.atol)] {
        if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(Error::Usage(format!(
                "{name} {v} is not accepted: give a finite number >= 0"
            )));
        }
    }
    let tolerance =
        (args.rtol.is_some() || args.atol.is_some()).then(|| crate::reproduce::Tolerance {
            rtol: args.rtol.unwrap_or(0.0),
            atol: args.atol.unwrap_or(0.0),
        });
    let request = crate::reproduce::Request {
        path: args.path,
        out: args.out,
        data: args.data,
        runs: args.runs.map(|k| k as usize),
        tolerance,
        jobs: args.jobs.map(usize::from),
        workdir: args.workdir,
    };
    let done = crate::reproduce::reproduce(&request)?;
    print!("{}", done.text);
    if done.reproduced {
        Ok(())
    } else {
        Err(Error::NotReproduced(
            "not reproduced (the report above says which tables and columns differ)".into(),
        ))
    }
}

/// `sweep status`.
pub(super) fn status(args: DirArgs) -> Result<()> {
    print!("{}", status_text(&args.dir)?);
    Ok(())
}

/// `sweep report`.
pub(super) fn report(args: DirArgs) -> Result<()> {
    print!("{}", report::report(&args.dir)?);
    Ok(())
}

/// `sweep plot`.
pub(super) fn plot(args: PlotArgs) -> Result<()> {
    for file in report::plot(&args.dir, args.run.as_deref(), &args.cell)? {
        println!("wrote {}", file.display());
    }
    Ok(())
}

/// `sweep ols`.
pub(super) fn ols(args: OlsArgs) -> Result<()> {
    print!("{}", super::ols_output::ols_text(&args)?);
    Ok(())
}

/// `sweep nist`.
pub(super) fn nist(args: NistArgs) -> Result<()> {
    let source = nist::Source::resolve(args.dir);
    let Some(out) = args.export else {
        print!("{}", nist::table(&source)?);
        return Ok(());
    };
    // Every file is read before the first is written: a bad source writes nothing.
    let files = nist::DATASETS
        .iter()
        .map(|(name, _)| source.read(name))
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(&out).map_err(|e| Error::Output {
        path: out.clone(),
        message: e.to_string(),
    })?;
    for file in &files {
        results::write_text(&out.join(format!("{}.dat", file.name)), &file.dat_text())?;
    }
    println!("wrote {} NIST StRD files to {}", files.len(), out.display());
    Ok(())
}

/// `sweep data`: writes the data set (features, then the target) as CSV or Parquet.
pub(super) fn data(args: DataArgs) -> Result<()> {
    let sweep = config::load(&args.config, &args.set)?;
    let out = &args.out;
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "csv" && ext != "parquet" {
        return Err(Error::Config(format!(
            "--out {}: the file must end in .csv or .parquet",
            out.display()
        )));
    }
    let seed = sweep.runs.first().and_then(|r| r.data_seed);
    let dataset = data::load(&sweep.data, seed)?;
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        sweep::check_writable(dir)?;
    }
    let mut df = dataset.to_frame()?;
    if ext == "csv" {
        results::write_csv(out, &mut df)
    } else {
        results::write_parquet(out, &mut df, &sweep::table_metadata(&sweep))
    }
}

/// The text of `sweep list`.
pub fn list_text(sweep: &Sweep) -> String {
    let keys = sweep.varying_keys();
    let mut s = format!("{:>6}  {:<16}  settings that vary\n", "index", "run_id");
    for run in &sweep.runs {
        s += &format!("{:>6}  {:<16}", run.index, run.id);
        if let Some(i) = run.scenario {
            s += &format!("  scenario={}", sweep.scenarios[i].name);
        }
        for k in &keys {
            let v = if *k == "data_seed" {
                run.data_seed.map_or("-".into(), |v| v.to_string())
            } else {
                run.settings
                    .value_of(k)
                    .map(|v| display_value(&v))
                    .unwrap_or_default()
            };
            s += &format!("  {k}={v}");
        }
        s += "\n";
    }
    s += &format!("{} runs\n", sweep.runs.len());
    if let (Some(seeds), Some(a)) = (sweep.adaptive_seeds(), &sweep.ablation) {
        let grid_runs = sweep.runs.iter().filter(|r| r.scenario.is_none()).count() as u64;
        let most = (grid_runs / seeds.min) * seeds.max + (sweep.runs.len() as u64 - grid_runs);
        s += &format!(
            "adaptive seeds: these are the first batch (seeds 0..{}); after each batch {} more seeds go to the \
             cells of the verdict rows still open, up to {} seeds per cell ({} batches at most, Fisher's test at \
             alpha {} / {} = {:.4}); at most {} runs\n",
            seeds.min,
            seeds.step,
            seeds.max,
            seeds.batches(),
            a.alpha,
            seeds.batches(),
            a.test_alpha(),
            most
        );
    }
    s
}

/// The text of `sweep status`.
pub fn status_text(dir: &Path) -> Result<String> {
    let (manifest, saved) = sweep::status_counts(dir)?;
    let count = |s: Status| saved.values().filter(|v| **v == s).count();
    let done = saved.len() as u64;
    let tables = dir.join("runs.parquet").exists() && done >= manifest.runs;
    let shards = sweep::shard_progress(dir, &manifest, &saved)?;
    let finish = if shards.is_some() {
        "not written yet: `sweep merge` once every shard is done"
    } else {
        "not written yet: rerun the same `sweep run` to finish"
    };
    let mut text = format!(
        "{}: {} runs, {done} done ({} converged, {} not converged, {} diverged, {} failed{}), {} missing\n\
         config {}; build {}; tables {}\n",
        dir.display(),
        manifest.runs,
        count(Status::Converged),
        count(Status::NotConverged),
        count(Status::Diverged),
        count(Status::Failed),
        report::ended_by_process(count(Status::Timeout), count(Status::Killed)),
        manifest.runs.saturating_sub(done),
        manifest.short_hash(),
        manifest.builds_text(),
        if tables { "written" } else { finish }
    );
    if sweep::is_adaptive(dir, &manifest) {
        text.push_str(&format!(
            "adaptive seeds: {} runs is the first batch; later batches add seeds where the verdict is open, so \
             more runs may be done and `missing` counts the first batch only; an interrupted sweep finishes by \
             rerunning the same `sweep run`\n",
            manifest.runs
        ));
    }
    if let Some(progress) = shards {
        let incomplete: Vec<usize> = (0..progress.len())
            .filter(|&s| progress[s].0 < progress[s].1)
            .collect();
        text.push_str(&format!(
            "shards: {} of {} complete",
            progress.len() - incomplete.len(),
            progress.len()
        ));
        if !incomplete.is_empty() {
            let detail: Vec<String> = incomplete
                .iter()
                .map(|&s| format!("{s} ({} of {} runs)", progress[s].0, progress[s].1))
                .collect();
            text.push_str(&format!(
                "; incomplete: {} (array indices {})",
                detail.join(", "),
                sweep::ranges(&incomplete)
            ));
        }
        text.push('\n');
    }
    Ok(text)
}
