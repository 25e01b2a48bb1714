//! The command line (clap): one argument struct per subcommand, dispatched to one function each
//! in `commands`; the output formats of `sweep ols` live in `ols_output`. Errors are printed once,
//! as `error: ...`, and mapped to the exit code: 0 success, 1 failure of the tool (a panic outside
//! a run included), 2 bad input, 3 a merge with runs still missing.

mod commands;
mod launch;
mod ols_output;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use commands::{list_text, status_text};

#[derive(Parser, Debug)]
#[command(
    name = "sweep",
    version,
    about = "Parallel, deterministic ablation sweeps of SGD-trained linear regression against an exact OLS reference",
    long_about = "Expands a TOML grid of training settings into runs, trains each run by seeded minibatch SGD on \
                  the built-in data set or your CSV/Parquet file, compares it with the exact least-squares \
                  solution, and writes runs.parquet, epochs.parquet, summary.parquet and reference.parquet."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every run of the grid and write the tables.
    Run(RunArgs),
    /// Tell how many runs of a sweep folder are done, missing, diverged or failed.
    Status(DirArgs),
    /// Build the tables of a sharded sweep from the parts of all its shards (exit 3, writing
    /// nothing, while runs are missing: it names them and the shards to run again; exit 6 when an
    /// adaptive sweep's round is done and its verdict asks for another round).
    Merge(MergeArgs),
    /// Print a bash launcher that submits the sweep as a Slurm job array and its merge.
    Slurm(SlurmArgs),
    /// Print a Kubernetes manifest: the config, an Indexed Job of shards, and a merging Job.
    K8s(K8sArgs),
    /// Print the expanded grid (index, run_id, the settings that vary) and the run count; run nothing.
    List(ListArgs),
    /// Print the verdict, scenario and cell tables of a finished sweep; write report.md and figures.
    Report(DirArgs),
    /// Re-run a results folder, or one of its tables, from the config its metadata records and
    /// compare (exit 0 when every table is reproduced, 4 when one is not).
    Reproduce(ReproduceArgs),
    /// Draw figures (SVG and PNG) into DIR/figures: the excess MSE over OLS by cell, or the diagnostics of a run or cell.
    Plot(PlotArgs),
    /// Fit OLS on a CSV or Parquet file with the exact reference solver and print the fit.
    Ols(OlsArgs),
    /// Print the LRE table of the OLS reference on the 11 NIST StRD linear-regression datasets.
    Nist(NistArgs),
    /// Write the data set exactly as the runs see it before whitening (features, then the target).
    Data(DataArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The sweep's TOML config.
    config: PathBuf,
    /// Output folder [default: results/<name from the config>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Worker threads [default: all cores]. Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Override a config key by its dotted path, e.g. train.epochs=50 or grid.batch_size=[1,32].
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// No progress bar and no summary on stdout.
    #[arg(long)]
    quiet: bool,
    /// Delete the results an earlier sweep left in the output folder and start afresh
    /// (without it, a rerun resumes: saved runs are skipped).
    #[arg(long)]
    fresh: bool,
    /// Resume a folder whose runs another build made, adding this build's runs to them (refused
    /// without it, since another build's numbers may differ; the manifest records both builds).
    /// A shard may use it only on a folder of a version that recorded no build (recorded as
    /// "unknown").
    #[arg(long, conflicts_with = "fresh")]
    allow_build_change: bool,
    /// Run a command sweep's failed, timed-out and killed runs again, each as its next attempt
    /// (its folder runs/<id>/attempt-N beside the earlier ones; the tables keep the last).
    #[arg(long, conflicts_with = "fresh")]
    retry_failed: bool,
    /// End the command runs that a killed sweep left alive on this host (recorded in OUT/live/)
    /// before starting; without it, sweep refuses to start beside them.
    #[arg(long)]
    kill_stale: bool,
    /// Run only shard I of N (0-based) and write its parts, not the tables; `sweep merge` builds
    /// them once every shard is done. Runs that train together stay in one shard.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    shard: Option<String>,
    /// Run one shard of N, its index taken from SLURM_ARRAY_TASK_ID (Slurm job arrays) or
    /// JOB_COMPLETION_INDEX (Kubernetes indexed jobs).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// With adaptive seeds, the round this shard belongs to: it runs nothing once that round is
    /// done, and is refused while an earlier round is not [default: the round at hand].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    round: Option<u64>,
}

#[derive(Args, Debug)]
struct MergeArgs {
    /// The output folder of the shards.
    dir: PathBuf,
    /// With adaptive seeds, the round just run: runs of it still missing exit 3; once it is
    /// done, exit 6 names the next round, or the tables are written when the verdict is settled
    /// [default: the round at hand].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    round: Option<u64>,
}

#[derive(Args, Debug)]
struct DirArgs {
    /// The output folder of a `sweep run`.
    dir: PathBuf,
}

#[derive(Args, Debug)]
struct ListArgs {
    /// The sweep's TOML config.
    config: PathBuf,
    /// Override a config key by its dotted path.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Print every run's command (a command sweep), shell-quoted: the settings rendered, the
    /// paths that depend on the output folder left as {sweep.*}.
    #[arg(long)]
    argv: bool,
}

#[derive(Args, Debug)]
struct ReproduceArgs {
    /// A results folder, or one of its Parquet tables.
    path: PathBuf,
    /// Re-run into this folder and keep it [default: a temporary folder, removed afterwards].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The data file of a file-backed sweep, when it has moved (its SHA-256 must match).
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Re-run only the K smallest run ids and compare their rows of runs and epochs.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    runs: Option<u64>,
    /// Numbers within this relative difference count as reproduced (strings, labels, statuses
    /// must still be identical).
    #[arg(long, value_name = "R")]
    rtol: Option<f64>,
    /// Numbers within this absolute difference count as reproduced.
    #[arg(long, value_name = "A")]
    atol: Option<f64>,
    /// Worker threads [default: all cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// A command sweep's working folder, when its script has moved from where the tables say
    /// (the `inputs` under it are checked against their recorded SHA-256 first).
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct PlotArgs {
    /// The output folder of a `sweep run`.
    dir: PathBuf,
    /// The five diagnostics of one run.
    #[arg(long, value_name = "RUN_ID", conflicts_with = "cell")]
    run: Option<String>,
    /// The five diagnostics of the runs matching every KEY=VALUE (one line per seed).
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    cell: Vec<String>,
}

#[derive(Args, Debug)]
struct OlsArgs {
    /// A .csv (with header) or .parquet file.
    file: PathBuf,
    /// The target column.
    #[arg(long)]
    target: String,
    /// Feature columns, comma-separated [default: every numeric column but the target].
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// The character between a CSV file's fields, as data.separator [default: ,].
    #[arg(long, value_name = "CHAR")]
    separator: Option<String>,
    /// A cell text read as missing, besides the empty cell, as data.missing (repeatable).
    #[arg(long, value_name = "TEXT")]
    missing: Vec<String>,
    /// Fit without an intercept (R² is then uncentred: 1 - SSE / sum y²).
    #[arg(long)]
    no_intercept: bool,
    /// Standardize each feature to mean 0, variance 1 before fitting.
    #[arg(long)]
    standardize: bool,
    /// Add COL^2..COL^DEG as features (formed in double-double precision), e.g. --poly x:10.
    #[arg(long, value_name = "COL:DEG")]
    poly: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print the seconds spent reading the file and fitting on stderr (for benchmarks).
    #[arg(long)]
    timing: bool,
}

#[derive(Args, Debug)]
struct NistArgs {
    /// A folder of NIST's own files, Norris.dat ... Wampler5.dat [default: $SWEEP_NIST_DIR when
    /// set, else the copy of NIST's data and certified values built into sweep].
    dir: Option<PathBuf>,
    /// Write the data sets (from DIR, $SWEEP_NIST_DIR or the built-in copy) into this folder as
    /// .dat files, for the Python cross-checks, instead of printing the table.
    #[arg(long, value_name = "OUT")]
    export: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct SlurmArgs {
    /// The sweep's TOML config.
    config: PathBuf,
    /// Array tasks, one shard each.
    #[arg(long, value_name = "N")]
    array: usize,
    /// Output folder, on a file system every node sees [default: results/<name>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// CPUs per task (the task's worker threads).
    #[arg(long, value_name = "C", default_value_t = 1)]
    cpus_per_task: usize,
    /// Slurm partition.
    #[arg(long, value_name = "P")]
    partition: Option<String>,
    /// Time limit per task, e.g. 01:00:00.
    #[arg(long, value_name = "T")]
    time: Option<String>,
    /// Node constraint (for example one CPU kind, so that every shard gives the same bits).
    #[arg(long, value_name = "C")]
    constraint: Option<String>,
    /// Override a config key by its dotted path (passed on to every task).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// An #SBATCH option of the array job, e.g. --gres=gpu:1, --mem=8G, --account=A (repeatable);
    /// the merge job gets the --account, --qos and --reservation ones.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    sbatch_arg: Vec<String>,
    /// A shell line each task runs before sweep, e.g. 'source ~/venv/bin/activate' or
    /// 'module load cuda' (repeatable, in order).
    #[arg(long, value_name = "CMD")]
    prelude: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct K8sArgs {
    /// The sweep's TOML config.
    config: PathBuf,
    /// Shards (the Indexed Job's completions).
    #[arg(long, value_name = "N")]
    completions: usize,
    /// Shards running at once.
    #[arg(long, value_name = "P")]
    parallelism: usize,
    /// Container image with `sweep` on its PATH (see the Dockerfile).
    #[arg(long, value_name = "IMG")]
    image: String,
    /// A ReadWriteMany PersistentVolumeClaim, mounted at /results.
    #[arg(long, value_name = "PVC")]
    claim: String,
    /// Output folder inside the containers [default: /results/<name>].
    #[arg(long, value_name = "DIR")]
    out: Option<String>,
    /// Override a config key by its dotted path (passed on to every shard).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A shell line each shard runs before sweep, e.g. 'source /app/venv/bin/activate'
    /// (repeatable, in order; the shard then runs `sh -c`).
    #[arg(long, value_name = "CMD")]
    prelude: Vec<String>,
    /// With adaptive seeds, the round the manifest runs (its Jobs are named after it); when its
    /// merge Job says the next round is due, apply the manifest of that round [default: 1].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    round: Option<u64>,
}

#[derive(Args, Debug)]
struct DataArgs {
    /// The sweep's TOML config.
    config: PathBuf,
    /// Output file, .parquet or .csv.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Override a config key by its dotted path.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Output format of `sweep ols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Runs the command line; returns the process exit code. A panic outside a run (a bug) is a
/// failure of the tool: exit code 1, after the panic message.
pub fn main() -> i32 {
    // `sweep list | head` ends quietly, as other command-line tools do, instead of panicking on
    // the closed pipe (Rust ignores SIGPIPE by default). Command runs inherit the default too.
    // SAFETY: setting a signal's disposition to its default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // faer on one thread in every command: the sweep parallelizes over runs, and the reference
    // (`sweep ols`, `sweep nist`, the data generator) then gives the same bits on any core count.
    faer::set_global_parallelism(faer::Par::Seq);
    match std::panic::catch_unwind(|| dispatch(cli.command)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
        Err(_) => {
            eprintln!(
                "error: sweep failed on an internal error (the message above); please report it"
            );
            1
        }
    }
}

fn dispatch(command: Command) -> crate::error::Result<()> {
    match command {
        Command::Run(args) => commands::run(args),
        Command::Reproduce(args) => commands::reproduce(args),
        Command::Status(args) => commands::status(args),
        Command::Merge(args) => commands::merge(args),
        Command::Slurm(args) => {
            print!("{}", launch::slurm_script(&args)?);
            Ok(())
        }
        Command::K8s(args) => {
            print!("{}", launch::k8s_manifest(&args)?);
            Ok(())
        }
        Command::List(args) => commands::list(args),
        Command::Report(args) => commands::report(args),
        Command::Plot(args) => commands::plot(args),
        Command::Ols(args) => commands::ols(args),
        Command::Nist(args) => commands::nist(args),
        Command::Data(args) => commands::data(args),
    }
}
