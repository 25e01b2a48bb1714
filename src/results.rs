//! Output tables: one documented row struct per table, converted to a polars `DataFrame` in
//! exactly one place, aggregation across seeds, and atomic Parquet writing with metadata.
//!
//! Aggregation is done here in plain Rust over rows in run order, so cells come out in a
//! stable order and every statistic is computed the same way on every machine. Files appear
//! by write-to-temporary, fsync, rename: a reader never sees a half-written table.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::config::{RunSpec, TrainSettings};
use crate::error::{Error, Result};
use crate::preprocess::{norm, Prepared};
use crate::spectral;
use crate::train::{epochs_to_converge, EpochStats, RunOutcome, Status};

/// One row of `runs.parquet`.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub run_id: String,
    pub run_index: u32,
    /// The scenario's name, when the config lists scenarios.
    pub scenario: Option<String>,
    pub settings: TrainSettings,
    pub data_seed: Option<u64>,
    pub status: Status,
    /// Panic message of a failed run, else null.
    pub message: Option<String>,
    pub epochs_run: u32,
    pub epochs_to_converge: Option<u32>,
    pub initial_train_mse: f64,
    pub final_train_mse: f64,
    pub final_train_r2: f64,
    pub best_train_r2: f64,
    /// `final_train_mse / ols_mse - 1`.
    pub excess_mse: f64,
    /// Final weight norm in training coordinates (what the per-epoch `weight_norm` tracks).
    pub weight_norm: f64,
    /// `|| w - w_ols ||` in the data set's (standardized) feature units.
    pub distance_to_ols: f64,
    pub ols_mse: f64,
    pub ols_r2: f64,
    /// See [`crate::spectral::Diagnosis`].
    pub slow_share: Option<f64>,
    pub slowest_signal_epochs: Option<f64>,
}

impl RunRow {
    pub fn new(
        run: &RunSpec,
        scenario: Option<&str>,
        prep: &Prepared,
        outcome: &RunOutcome,
    ) -> RunRow {
        let fit = &prep.reference.fit;
        let d = prep.d();
        let final_train_mse = outcome.final_train_mse();
        let bound = (1.0 + run.settings.converge_tol) * fit.mse;
        let converged = outcome.status == Status::Converged;
        let diff: Vec<f64> = outcome
            .weights
            .iter()
            .zip(&fit.coefficients)
            .map(|(a, b)| a - b)
            .collect();
        let steps_per_epoch = prep
            .n()
            .div_ceil((run.settings.batch_size as usize).min(prep.n()));
        let steps = outcome.epochs.len() * steps_per_epoch;
        let diagnosis = spectral::diagnose(
            prep,
            &outcome.params,
            run.settings.learning_rate,
            steps,
            steps_per_epoch,
        );
        RunRow {
            run_id: run.id.clone(),
            run_index: run.index as u32,
            scenario: scenario.map(str::to_string),
            settings: run.settings.clone(),
            data_seed: run.data_seed,
            status: outcome.status,
            message: outcome.message.clone(),
            epochs_run: outcome.epochs.len() as u32,
            epochs_to_converge: if converged {
                epochs_to_converge(&outcome.epochs, bound)
            } else {
                None
            },
            initial_train_mse: outcome.initial_train_mse,
            final_train_mse,
            final_train_r2: outcome.epochs.last().map_or(f64::NAN, |e| e.train_r2),
            best_train_r2: outcome
                .epochs
                .iter()
                .map(|e| e.train_r2)
                .fold(f64::NAN, f64::max),
            excess_mse: final_train_mse / fit.mse - 1.0,
            weight_norm: if outcome.params.len() > d {
                norm(&outcome.params[..d])
            } else {
                f64::NAN
            },
            distance_to_ols: norm(&diff),
            ols_mse: fit.mse,
            ols_r2: fit.r2,
            slow_share: diagnosis.slow_share,
            slowest_signal_epochs: diagnosis.slowest_signal_epochs,
        }
    }
}

/// One row of `summary.parquet`: a cell (every setting but `seed` and `data_seed`) across seeds.
#[derive(Clone, Debug)]
pub struct SummaryRow {
    pub scenario: Option<String>,
    /// The cell's settings (`seed` is meaningless here and left out of the table).
    pub settings: TrainSettings,
    pub n_runs: u32,
    pub converged_fraction: f64,
    pub diverged_fraction: f64,
    /// R² statistics over the runs that did not diverge or fail; null when there are none.
    pub r2_median: Option<f64>,
    pub r2_mean: Option<f64>,
    /// Sample standard deviation (n - 1); null with fewer than two runs.
    pub r2_std: Option<f64>,
    pub r2_min: Option<f64>,
    pub r2_max: Option<f64>,
    /// Over converged runs; null when none converged.
    pub epochs_to_converge_median: Option<f64>,
    /// Over the runs that did not diverge or fail.
    pub excess_mse_median: Option<f64>,
    /// Medians of the spectral figures over the runs where they are defined.
    pub slow_share_median: Option<f64>,
    pub slowest_signal_epochs_median: Option<f64>,
}

/// Median of a slice (average of the middle two for even lengths); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// The cell key of a run: its settings with the seed cleared.
pub fn cell_settings(settings: &TrainSettings) -> TrainSettings {
    TrainSettings {
        seed: 0,
        ..settings.clone()
    }
}

/// Aggregates run rows into cells, in order of first appearance.
pub fn summarize(rows: &[RunRow]) -> Vec<SummaryRow> {
    type CellKey = (Option<String>, TrainSettings);
    let mut cells: Vec<(CellKey, Vec<&RunRow>)> = Vec::new();
    for row in rows {
        let key = (row.scenario.clone(), cell_settings(&row.settings));
        match cells.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(row),
            None => cells.push((key, vec![row])),
        }
    }
    cells
        .into_iter()
        .map(|((scenario, settings), members)| {
            let n = members.len() as f64;
            let fraction = |s: Status| members.iter().filter(|r| r.status == s).count() as f64 / n;
            let alive: Vec<&&RunRow> = members
                .iter()
                .filter(|r| !matches!(r.status, Status::Diverged | Status::Failed))
                .collect();
            let r2: Vec<f64> = alive.iter().map(|r| r.final_train_r2).collect();
            let mean = (!r2.is_empty()).then(|| r2.iter().sum::<f64>() / r2.len() as f64);
            let std = (r2.len() >= 2).then(|| {
                let m = mean.expect("non-empty");
                (r2.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (r2.len() - 1) as f64).sqrt()
            });
            let epochs: Vec<f64> = members
                .iter()
                .filter_map(|r| r.epochs_to_converge.map(f64::from))
                .collect();
            let excess: Vec<f64> = alive.iter().map(|r| r.excess_mse).collect();
            SummaryRow {
                scenario,
                settings,
                n_runs: members.len() as u32,
                converged_fraction: fraction(Status::Converged),
                diverged_fraction: fraction(Status::Diverged),
                r2_median: median(&r2),
                r2_mean: mean,
                r2_std: std,
                r2_min: r2.iter().copied().reduce(f64::min),
                r2_max: r2.iter().copied().reduce(f64::max),
                epochs_to_converge_median: median(&epochs),
                excess_mse_median: median(&excess),
                slow_share_median: median(
                    &members
                        .iter()
                        .filter_map(|r| r.slow_share)
                        .collect::<Vec<_>>(),
                ),
                slowest_signal_epochs_median: median(
                    &members
                        .iter()
                        .filter_map(|r| r.slowest_signal_epochs)
                        .collect::<Vec<_>>(),
                ),
            }
        })
        .collect()
}

/// Typed columns for a list of settings, one per `[train]` key (optionally without `seed`).
pub fn settings_columns(settings: &[&TrainSettings], with_seed: bool) -> Vec<Column> {
    macro_rules! col {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), settings.iter().map($f).collect::<Vec<_>>())
        };
    }
    let mut columns = vec![
        col!("epochs", |s| s.epochs),
        col!("batch_size", |s| s.batch_size),
        col!("learning_rate", |s| s.learning_rate),
        col!("whiten", |s| s.whiten.as_str()),
        col!("whiten_eps", |s| s.whiten_eps),
        col!("normalize_target", |s| s.normalize_target),
        col!("clip", |s| s.clip),
        col!("clip_norm", |s| s.clip_norm),
        col!("init", |s| s.init.as_str()),
        col!("init_scale", |s| s.init_scale),
        col!("init_zero_fraction", |s| s.init_zero_fraction),
        col!("weight_decay", |s| s.weight_decay),
        col!("optimizer", |s| s.optimizer.as_str()),
        col!("momentum", |s| s.momentum),
        col!("seed", |s| s.seed),
        col!("converge_tol", |s| s.converge_tol),
    ];
    if !with_seed {
        columns.retain(|c| c.name().as_str() != "seed");
    }
    columns
}

pub fn frame(columns: Vec<Column>) -> Result<DataFrame> {
    DataFrame::new_infer_height(columns).map_err(|e| Error::table("building a table", e))
}

/// `runs.parquet` as a frame.
pub fn runs_frame(rows: &[RunRow]) -> Result<DataFrame> {
    macro_rules! col {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), rows.iter().map($f).collect::<Vec<_>>())
        };
    }
    let mut columns = vec![
        col!("run_id", |r| r.run_id.clone()),
        col!("run_index", |r| r.run_index),
        col!("scenario", |r| r.scenario.clone()),
    ];
    columns.extend(settings_columns(
        &rows.iter().map(|r| &r.settings).collect::<Vec<_>>(),
        true,
    ));
    columns.extend([
        col!("data_seed", |r| r.data_seed),
        col!("status", |r| r.status.as_str()),
        col!("message", |r| r.message.clone()),
        col!("epochs_run", |r| r.epochs_run),
        col!("epochs_to_converge", |r| r.epochs_to_converge),
        col!("initial_train_mse", |r| r.initial_train_mse),
        col!("final_train_mse", |r| r.final_train_mse),
        col!("final_train_r2", |r| r.final_train_r2),
        col!("best_train_r2", |r| r.best_train_r2),
        col!("excess_mse", |r| r.excess_mse),
        col!("weight_norm", |r| r.weight_norm),
        col!("distance_to_ols", |r| r.distance_to_ols),
        col!("ols_mse", |r| r.ols_mse),
        col!("ols_r2", |r| r.ols_r2),
        col!("slow_share", |r| r.slow_share),
        col!("slowest_signal_epochs", |r| r.slowest_signal_epochs),
    ]);
    frame(columns)
}

/// `epochs.parquet` as a frame: one row per (run, epoch), runs in run order.
pub fn epochs_frame(runs: &[(&str, &[EpochStats])]) -> Result<DataFrame> {
    let rows: Vec<(&str, &EpochStats)> = runs
        .iter()
        .flat_map(|(id, epochs)| epochs.iter().map(move |e| (*id, e)))
        .collect();
    macro_rules! col {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), rows.iter().map($f).collect::<Vec<_>>())
        };
    }
    frame(vec![
        col!("run_id", |(id, _)| id.to_string()),
        col!("epoch", |(_, e)| e.epoch),
        col!("weight_norm", |(_, e)| e.weight_norm),
        col!("prediction", |(_, e)| e.prediction),
        col!("loss", |(_, e)| e.loss),
        col!("gradient_norm", |(_, e)| e.gradient_norm),
        col!("update_ratio", |(_, e)| e.update_ratio),
        col!("clipped_fraction", |(_, e)| e.clipped_fraction),
        col!("train_mse", |(_, e)| e.train_mse),
        col!("train_r2", |(_, e)| e.train_r2),
    ])
}

/// `summary.parquet` as a frame.
pub fn summary_frame(rows: &[SummaryRow]) -> Result<DataFrame> {
    macro_rules! col {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), rows.iter().map($f).collect::<Vec<_>>())
        };
    }
    let mut columns = vec![col!("scenario", |r| r.scenario.clone())];
    columns.extend(settings_columns(
        &rows.iter().map(|r| &r.settings).collect::<Vec<_>>(),
        false,
    ));
    columns.extend([
        col!("n_runs", |r| r.n_runs),
        col!("converged_fraction", |r| r.converged_fraction),
        col!("diverged_fraction", |r| r.diverged_fraction),
        col!("r2_median", |r| r.r2_median),
        col!("r2_mean", |r| r.r2_mean),
        col!("r2_std", |r| r.r2_std),
        col!("r2_min", |r| r.r2_min),
        col!("r2_max", |r| r.r2_max),
        col!("epochs_to_converge_median", |r| r.epochs_to_converge_median),
        col!("excess_mse_median", |r| r.excess_mse_median),
        col!("slow_share_median", |r| r.slow_share_median),
        col!("slowest_signal_epochs_median", |r| r
            .slowest_signal_epochs_median),
    ]);
    frame(columns)
}

/// `reference.parquet` as a frame: per data set, one row per feature with its OLS coefficient
/// and the k-th largest eigenvalue of the feature covariance, plus the scalar figures.
pub fn reference_frame(
    refs: &[(Option<u64>, &[String], &crate::preprocess::Reference)],
) -> Result<DataFrame> {
    let mut data_seed = Vec::new();
    let mut index = Vec::new();
    let mut feature = Vec::new();
    let mut coefficient = Vec::new();
    let mut eigenvalue = Vec::new();
    let mut scalars: [Vec<f64>; 6] = Default::default();
    let mut rank = Vec::new();
    for (seed, names, r) in refs {
        for (j, name) in names.iter().enumerate() {
            data_seed.push(*seed);
            index.push(j as u32);
            feature.push(name.clone());
            coefficient.push(r.fit.coefficients[j]);
            eigenvalue.push(r.spectrum.eigenvalues[j]);
            let values = [
                r.fit.intercept.unwrap_or(0.0),
                r.fit.mse,
                r.fit.r2,
                r.fit.condition_number,
                r.weight_norm,
                r.fit.residual_sd,
            ];
            for (column, v) in scalars.iter_mut().zip(values) {
                column.push(v);
            }
            rank.push(r.fit.rank as u32);
        }
    }
    let [intercept, mse, r2, cond, wnorm, rsd] = scalars;
    frame(vec![
        Column::new("data_seed".into(), data_seed),
        Column::new("feature_index".into(), index),
        Column::new("feature".into(), feature),
        Column::new("coefficient".into(), coefficient),
        Column::new("eigenvalue".into(), eigenvalue),
        Column::new("intercept".into(), intercept),
        Column::new("mse".into(), mse),
        Column::new("r2".into(), r2),
        Column::new("rank".into(), rank),
        Column::new("condition_number".into(), cond),
        Column::new("weight_norm".into(), wnorm),
        Column::new("residual_sd".into(), rsd),
    ])
}

/// Writes `bytes`-producing `fill` to `path` atomically: temporary file, fsync, rename.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file =
            File::create(&tmp).map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        fill(&mut file)?;
        file.flush()
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        file.sync_all()
            .map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("renaming to {}", path.display()), e))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes a frame as Zstd-compressed Parquet with key-value metadata, atomically.
pub fn write_parquet(path: &Path, df: &mut DataFrame, metadata: &[(String, String)]) -> Result<()> {
    let kv = KeyValueMetadata::from_static(metadata.to_vec());
    write_atomic(path, |file| {
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(Some(kv))
            .finish(df)
            .map(|_| ())
            .map_err(|e| Error::table(format!("writing {}", path.display()), e))
    })
}

/// Writes a frame as CSV, atomically.
pub fn write_csv(path: &Path, df: &mut DataFrame) -> Result<()> {
    write_atomic(path, |file| {
        CsvWriter::new(file)
            .include_header(true)
            .finish(df)
            .map_err(|e| Error::table(format!("writing {}", path.display()), e))
    })
}

/// Reads a Parquet file into a frame.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| Error::table(format!("reading {}", path.display()), e))
}
