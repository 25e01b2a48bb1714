//! The command line (clap): `sweep run`, `sweep list`, `sweep data`. Each subcommand turns its
//! arguments into library calls; errors are printed once, as `error: ...`, and mapped to the
//! exit code (2 for bad input, 1 for failures of the tool).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{self, display_value};
use crate::dd::DD;
use crate::error::{Error, Result};
use crate::ols::Design;
use crate::{data, nist, ols, report, results, sweep};

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
    Run {
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
    },
    /// Tell how many runs of a sweep folder are done, missing, diverged or failed.
    Status {
        /// The output folder of a `sweep run`.
        dir: PathBuf,
    },
    /// Print the expanded grid (index, run_id, the settings that vary) and the run count; run nothing.
    List {
        /// The sweep's TOML config.
        config: PathBuf,
        /// Override a config key by its dotted path.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Print the verdict, scenario and cell tables of a finished sweep; write report.md and figures.
    Report {
        /// The output folder of a `sweep run`.
        dir: PathBuf,
    },
    /// Draw figures (SVG and PNG) into DIR/figures: R² by cell, or the diagnostics of a run or cell.
    Plot {
        /// The output folder of a `sweep run`.
        dir: PathBuf,
        /// The five diagnostics of one run.
        #[arg(long, value_name = "RUN_ID", conflicts_with = "cell")]
        run: Option<String>,
        /// The five diagnostics of the runs matching every KEY=VALUE (one line per seed).
        #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
        cell: Vec<String>,
    },
    /// Fit OLS on a CSV or Parquet file with the exact reference solver and print the fit.
    Ols {
        /// A .csv (with header) or .parquet file.
        file: PathBuf,
        /// The target column.
        #[arg(long)]
        target: String,
        /// Feature columns, comma-separated [default: every numeric column but the target].
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
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
    },
    /// Print the LRE table of the OLS reference on the 11 NIST StRD linear-regression datasets.
    Nist {
        /// Folder holding Norris.dat ... Wampler5.dat [default: $SWEEP_NIST_DIR, else ../shared/data/nist-strd].
        dir: Option<PathBuf>,
    },
    /// Write the data set exactly as the runs see it before whitening (features, then the target).
    Data {
        /// The sweep's TOML config.
        config: PathBuf,
        /// Output file, .parquet or .csv.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Override a config key by its dotted path.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

/// Output format of `sweep ols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Run {
            config,
            out,
            jobs,
            set,
            quiet,
            fresh,
        } => {
            let sweep = config::load(&config, &set)?;
            let out = out.unwrap_or_else(|| Path::new("results").join(&sweep.name));
            let opts = sweep::RunOptions {
                out: out.clone(),
                jobs: jobs.map(usize::from),
                quiet,
                fresh,
            };
            let result = sweep::run(&sweep, &opts)?;
            if !quiet {
                print!("{}", sweep::summary_text(&sweep, &result, &out));
            }
            Ok(())
        }
        Command::List { config, set } => {
            let sweep = config::load(&config, &set)?;
            print!("{}", list_text(&sweep));
            Ok(())
        }
        Command::Ols {
            file,
            target,
            features,
            no_intercept,
            standardize,
            poly,
            format,
        } => {
            let features = (!features.is_empty()).then_some(features);
            let text = ols_text(
                &file,
                &target,
                features.as_deref(),
                !no_intercept,
                standardize,
                &poly,
                format,
            )?;
            print!("{text}");
            Ok(())
        }
        Command::Nist { dir } => {
            let dir = dir
                .or_else(|| std::env::var_os("SWEEP_NIST_DIR").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("../shared/data/nist-strd"));
            print!("{}", nist::table(&dir)?);
            Ok(())
        }
        Command::Status { dir } => {
            print!("{}", status_text(&dir)?);
            Ok(())
        }
        Command::Report { dir } => {
            print!("{}", report::report(&dir)?);
            Ok(())
        }
        Command::Plot { dir, run, cell } => {
            for file in report::plot(&dir, run.as_deref(), &cell)? {
                println!("wrote {}", file.display());
            }
            Ok(())
        }
        Command::Data { config, out, set } => {
            let sweep = config::load(&config, &set)?;
            write_data(&sweep, &out)
        }
    }
}

/// The text of `sweep list`.
pub fn list_text(sweep: &config::Sweep) -> String {
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
    s
}

fn write_data(sweep: &config::Sweep, out: &Path) -> Result<()> {
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
    let mut columns: Vec<polars::prelude::Column> = dataset
        .feature_names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let values: Vec<f64> = (0..dataset.n)
                .map(|i| dataset.x[i * dataset.d + j])
                .collect();
            polars::prelude::Column::new(name.as_str().into(), values)
        })
        .collect();
    columns.push(polars::prelude::Column::new(
        dataset.target_name.as_str().into(),
        dataset.y.to_vec(),
    ));
    let mut df = polars::prelude::DataFrame::new_infer_height(columns)
        .map_err(|e| Error::table("building the data table", e))?;
    if ext == "csv" {
        results::write_csv(out, &mut df)
    } else {
        results::write_parquet(out, &mut df, &sweep::table_metadata(sweep))
    }
}

fn json_number(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "null".into()
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            c if (c as u32) < 0x20 => out += &format!("\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out + "\""
}

/// `sweep ols`: fit a file with the reference solver; the text printed.
fn ols_text(
    file: &Path,
    target: &str,
    features: Option<&[String]>,
    intercept: bool,
    standardize: bool,
    poly: &[String],
    format: Format,
) -> Result<String> {
    let data = data::read_file(file, target, features, standardize)?;
    let mut design = Design::from_rows(&data.x, data.n, data.d, intercept);
    design.names = data.feature_names.clone();
    for spec in poly {
        let bad = |m: &str| {
            Error::Config(format!(
                "--poly {spec}: {m}; expected COL:DEG with DEG >= 2, e.g. --poly x:10"
            ))
        };
        let (column, degree) = spec.split_once(':').ok_or_else(|| bad("no ':'"))?;
        let degree: u32 = degree
            .parse()
            .ok()
            .filter(|d| *d >= 2)
            .ok_or_else(|| bad("DEG is not an integer >= 2"))?;
        let j = data
            .feature_names
            .iter()
            .position(|f| f == column)
            .ok_or_else(|| bad("COL is not a feature column"))?;
        design.add_powers(j, degree);
    }
    let y: Vec<DD> = data.y.iter().map(|v| DD::new(*v)).collect();
    let fit = ols::fit(&design, &y)?;
    Ok(match format {
        Format::Json => {
            let coefficients: Vec<String> = design
                .names
                .iter()
                .zip(&fit.coefficients)
                .map(|(n, c)| format!("{}: {}", json_string(n), json_number(*c)))
                .collect();
            format!(
                "{{\"intercept\": {}, \"coefficients\": {{{}}}, \"residual_sd\": {}, \"r2\": {}, \"rank\": {}, \"condition_number\": {}, \"n\": {}, \"p\": {}}}\n",
                fit.intercept.map_or("null".into(), json_number),
                coefficients.join(", "),
                json_number(fit.residual_sd),
                json_number(fit.r2),
                fit.rank,
                json_number(fit.condition_number),
                fit.n,
                fit.p
            )
        }
        Format::Table => {
            let width = design
                .names
                .iter()
                .map(|n| n.len())
                .max()
                .unwrap_or(9)
                .max(9);
            let mut s = format!("{:<width$}  {:>24}\n", "term", "coefficient");
            if let Some(b0) = fit.intercept {
                s += &format!("{:<width$}  {:>24.16e}\n", "intercept", b0);
            }
            for (n, c) in design.names.iter().zip(&fit.coefficients) {
                s += &format!("{n:<width$}  {c:>24.16e}\n");
            }
            s += &format!(
                "\nresidual SD {:.16e}\nR² {:.16}\nrank {} of {}\ncondition number {:.3e} (centred, unit-norm columns)\nn {}, p {}\n",
                fit.residual_sd, fit.r2, fit.rank, fit.p, fit.condition_number, fit.n, fit.p
            );
            s
        }
    })
}

/// The text of `sweep status`.
pub fn status_text(dir: &Path) -> Result<String> {
    let (manifest, saved) = crate::persist::status_counts(dir)?;
    let count = |s: &str| saved.values().filter(|v| v.as_str() == s).count();
    let done = saved.len() as u64;
    let tables = dir.join("runs.parquet").exists() && done >= manifest.runs;
    Ok(format!(
        "{}: {} runs, {done} done ({} converged, {} not converged, {} diverged, {} failed), {} missing\n\
         config {}; tables {}\n",
        dir.display(),
        manifest.runs,
        count("converged"),
        count("not_converged"),
        count("diverged"),
        count("failed"),
        manifest.runs.saturating_sub(done),
        &manifest.config_hash[..16],
        if tables { "written" } else { "not written yet: rerun the same `sweep run` to finish" }
    ))
}
