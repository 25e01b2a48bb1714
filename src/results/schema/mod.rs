//! Each table's schema: its row struct to a polars `DataFrame` and, for the tables that are read
//! back (`runs` and `epochs`, from parts and by the report), the frame back to rows. Every column
//! is named once, next to its field; decoders look columns up by name, never by position.
//!
//! Column types are the most widely readable: strings (written as plain Arrow strings, see
//! `parquet`), f64, booleans, and signed 64-bit integers for every count, index and seed.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::rows::{RunRow, SummaryRow};
use crate::config::{RunSpec, TrainSettings, TRAIN_KEYS};
use crate::error::{Error, Result};
use crate::outcome::ProcessFacts;
use crate::reference::Reference;
use crate::train::{EpochStats, Status};

/// Builds a frame from columns of equal length.
pub fn frame(columns: Vec<Column>) -> Result<DataFrame> {
    DataFrame::new_infer_height(columns).map_err(|e| Error::table("building a table", e))
}

/// A column named `name` with one value per item.
pub(crate) fn col<T, V>(name: &str, items: &[T], value: impl Fn(&T) -> V) -> Column
where
    Vec<V>: IntoColumn,
{
    items
        .iter()
        .map(value)
        .collect::<Vec<V>>()
        .into_column(name)
}

/// What a column can be built from (polars' `Column::new` is generic over many element types).
pub trait IntoColumn {
    fn into_column(self, name: &str) -> Column;
}

macro_rules! into_column {
    ($($t:ty),*) => {
        $(impl IntoColumn for Vec<$t> {
            fn into_column(self, name: &str) -> Column {
                Column::new(name.into(), self)
            }
        })*
    };
}
into_column!(
    f64,
    Option<f64>,
    i64,
    Option<i64>,
    bool,
    Option<bool>,
    String,
    Option<String>
);

impl IntoColumn for Vec<&str> {
    fn into_column(self, name: &str) -> Column {
        Column::new(name.into(), self)
    }
}

/// A count, index or seed as the tables store it.
pub(crate) fn int(v: impl Into<i128>) -> i64 {
    i64::try_from(v.into()).expect("counts and seeds fit in i64")
}

/// The column of one `[train]` key.
fn settings_column(key: &str, settings: &[&TrainSettings]) -> Column {
    match key {
        "epochs" => col(key, settings, |s| int(s.epochs)),
        "batch_size" => col(key, settings, |s| int(s.batch_size)),
        "learning_rate" => col(key, settings, |s| s.learning_rate),
        "whiten" => col(key, settings, |s| s.whiten.as_str()),
        "whiten_eps" => col(key, settings, |s| s.whiten_eps),
        "normalize_target" => col(key, settings, |s| s.normalize_target),
        "clip" => col(key, settings, |s| s.clip),
        "clip_norm" => col(key, settings, |s| s.clip_norm),
        "init" => col(key, settings, |s| s.init.as_str()),
        "init_scale" => col(key, settings, |s| s.init_scale),
        "init_zero_fraction" => col(key, settings, |s| s.init_zero_fraction),
        "weight_decay" => col(key, settings, |s| s.weight_decay),
        "optimizer" => col(key, settings, |s| s.optimizer.as_str()),
        "momentum" => col(key, settings, |s| s.momentum),
        "seed" => col(key, settings, |s| int(s.seed)),
        "converge_tol" => col(key, settings, |s| s.converge_tol),
        "dtype" => col(key, settings, |s| s.dtype.as_str()),
        "weight_decay_on" => col(key, settings, |s| s.weight_decay_on.as_str()),
        other => unreachable!("`{other}` is not a train key"),
    }
}

/// Typed columns for a list of settings, one per `[train]` key in canonical order, for the keys
/// `keep` accepts.
pub fn settings_columns(settings: &[&TrainSettings], keep: impl Fn(&str) -> bool) -> Vec<Column> {
    let mut columns: Vec<Column> = TRAIN_KEYS
        .iter()
        .filter(|k| keep(k))
        .map(|k| settings_column(k, settings))
        .collect();
    // A command sweep's params, after the train keys, typed by their values.
    let params = settings
        .first()
        .map(|s| s.params.keys())
        .into_iter()
        .flatten();
    columns.extend(
        params
            .filter(|k| keep(k))
            .map(|k| param_column(k, settings)),
    );
    columns
}

/// The column of one `[params]` key: i64, f64, bool or str (lists as compact JSON).
fn param_column(key: &str, settings: &[&TrainSettings]) -> Column {
    let value = |s: &&TrainSettings| s.params.get(key).cloned();
    match settings.first().and_then(value) {
        Some(toml::Value::Integer(_)) => {
            col(key, settings, |s| value(s).and_then(|v| v.as_integer()))
        }
        Some(toml::Value::Float(_)) => col(key, settings, |s| value(s).and_then(|v| v.as_float())),
        Some(toml::Value::Boolean(_)) => col(key, settings, |s| value(s).and_then(|v| v.as_bool())),
        _ => col(key, settings, |s| {
            value(s).map(|v| crate::config::param_text(&v))
        }),
    }
}

type F64Field<R> = (&'static str, fn(&R) -> f64, fn(&mut R, f64));
type OptionF64Field<R> = (&'static str, fn(&R) -> Option<f64>, fn(&mut R, Option<f64>));

/// `(column name, read the field, write the field)` for f64 fields named like their columns.
macro_rules! fields {
    ($row:ty, $t:ty: $($field:ident),+ $(,)?) => {
        [$((
            stringify!($field),
            (|r: &$row| r.$field) as fn(&$row) -> $t,
            (|r: &mut $row, v: $t| r.$field = v) as fn(&mut $row, $t),
        )),+]
    };
}

/// The measured f64 columns of `runs.parquet`, in column order (the optional ones follow).
const RUN_F64: [F64Field<RunRow>; 9] = fields!(RunRow, f64:
    initial_train_mse, final_train_mse, final_train_r2, best_train_r2, excess_mse, weight_norm,
    distance_to_ols, ols_mse, ols_r2,
);
const RUN_OPTION_F64: [OptionF64Field<RunRow>; 2] =
    fields!(RunRow, Option<f64>: slow_share, slowest_signal_epochs);

/// The f64 columns of `epochs.parquet`, in column order.
const EPOCH_F64: [F64Field<EpochStats>; 8] = fields!(EpochStats, f64:
    weight_norm, prediction, loss, gradient_norm, update_ratio, clipped_fraction, train_mse,
    train_r2,
);

/// `runs.parquet` as a frame.
pub fn runs_frame(rows: &[RunRow]) -> Result<DataFrame> {
    let mut columns = vec![
        col("run_id", rows, |r| r.run_id.clone()),
        col("run_index", rows, |r| int(r.run_index)),
        col("scenario", rows, |r| r.scenario.clone()),
    ];
    let settings: Vec<&TrainSettings> = rows.iter().map(|r| &r.settings).collect();
    columns.extend(settings_columns(&settings, |_| true));
    columns.extend([
        col("data_seed", rows, |r| r.data_seed.map(int)),
        col("status", rows, |r| r.status.as_str()),
        col("message", rows, |r| r.message.clone()),
        col("epochs_run", rows, |r| int(r.epochs_run)),
        col("epochs_to_converge", rows, |r| {
            r.epochs_to_converge.map(int)
        }),
    ]);
    columns.extend(RUN_F64.iter().map(|(name, get, _)| col(name, rows, get)));
    columns.extend(
        RUN_OPTION_F64
            .iter()
            .map(|(name, get, _)| col(name, rows, get)),
    );
    // Command runs only: how the process ended, the command, and the last value of every other
    // metric (null where a run did not report it), alphabetical.
    if rows.iter().any(|r| r.process.is_some()) {
        let process = |r: &RunRow| r.process.clone().unwrap_or_default();
        columns.extend([
            col("attempt", rows, |r| int(process(r).attempt)),
            col("exit_code", rows, |r| process(r).exit_code),
            col("signal", rows, |r| process(r).signal),
            col("argv", rows, |r| process(r).argv),
        ]);
        let keys: BTreeSet<&String> = rows.iter().flat_map(|r| r.finals.keys()).collect();
        columns.extend(keys.into_iter().map(|key| {
            col(&format!("{FINAL}{key}"), rows, |r| {
                r.finals.get(key).copied()
            })
        }));
    }
    frame(columns)
}

/// The prefix of a command run's last reported value of a metric in `runs.parquet`.
const FINAL: &str = "final_";

/// Rebuilds run rows from a runs frame (a part file). The settings come from the sweep's own
/// run specs, found by run id; rows of runs the sweep does not have are skipped. An unknown
/// status is an error: it means the file was not written by this version.
pub fn runs_from_frame(
    df: &DataFrame,
    specs: &BTreeMap<&str, &RunSpec>,
    scenario_name: impl Fn(usize) -> String,
) -> Result<Vec<RunRow>> {
    let reader = Reader { df };
    let ids = reader.strings("run_id")?;
    let status = reader.strings("status")?;
    let message = reader.strings("message")?;
    let epochs_run = reader.ints("epochs_run")?;
    let to_converge = reader.ints("epochs_to_converge")?;
    let f64s: Vec<Vec<Option<f64>>> = RUN_F64
        .iter()
        .map(|(name, _, _)| reader.f64s(name))
        .chain(RUN_OPTION_F64.iter().map(|(name, _, _)| reader.f64s(name)))
        .collect::<Result<_>>()?;
    let command = command_columns::CommandColumns::read(&reader)?;
    let mut rows = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(spec) = id.as_deref().and_then(|id| specs.get(id)) else {
            continue;
        };
        let status_text = status[i].as_deref().unwrap_or("");
        let status: Status = status_text
            .parse()
            .map_err(|e: String| Error::Results(format!("run {}: {e}", spec.id)))?;
        let mut row = RunRow::saved(spec, spec.scenario.map(&scenario_name), status);
        row.message = message[i].clone();
        row.epochs_run = epochs_run[i].map_or(0, |v| v as u32);
        row.epochs_to_converge = to_converge[i].map(|v| v as u32);
        for ((_, _, set), values) in RUN_F64.iter().zip(&f64s) {
            set(&mut row, values[i].unwrap_or(f64::NAN));
        }
        for ((_, _, set), values) in RUN_OPTION_F64.iter().zip(&f64s[RUN_F64.len()..]) {
            set(&mut row, values[i]);
        }
        if let Some(command) = &command {
            row.process = Some(ProcessFacts {
                exit_code: command.exit_codes[i],
                signal: command.signals[i],
                argv: command.argv[i].clone().unwrap_or_default(),
                attempt: command.attempts[i].map_or(1, |a| a as u32),
            });
            for (key, values) in &command.finals {
                if let Some(v) = values[i] {
                    row.finals.insert(key.clone(), v);
                }
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The run ids, statuses and attempts (1 where the frame has no `attempt` column) of a runs
/// frame; an unknown status is an error.
pub fn run_statuses(df: &DataFrame) -> Result<Vec<(String, Status, u32)>> {
    let reader = Reader { df };
    let ids = reader.strings("run_id")?;
    let statuses = reader.strings("status")?;
    let attempts = match df.column("attempt") {
        Ok(_) => reader.ints("attempt")?,
        Err(_) => vec![None; ids.len()],
    };
    ids.into_iter()
        .zip(statuses)
        .zip(attempts)
        .map(|((id, status), attempt)| {
            let id = id.unwrap_or_default();
            let status = status
                .unwrap_or_default()
                .parse()
                .map_err(|e: String| Error::Results(format!("run {id}: {e}")))?;
            Ok((id, status, attempt.map_or(1, |a| a as u32)))
        })
        .collect()
}

/// `epochs.parquet` as a frame: one row per (run, epoch), runs in the order given.
pub fn epochs_frame(runs: &[(&str, &[EpochStats])]) -> Result<DataFrame> {
    let rows: Vec<(&str, &EpochStats)> = runs
        .iter()
        .flat_map(|(id, epochs)| epochs.iter().map(move |e| (*id, e)))
        .collect();
    let extra: BTreeSet<String> = rows
        .iter()
        .flat_map(|(_, e)| e.extra.keys().cloned())
        .collect();
    epoch_rows_frame(&rows, &extra)
}

/// Epochs rows as a frame with the `extra` metric columns (alphabetical; null where a row has
/// no value), so that frames of the same part written in batches share one schema.
pub fn epoch_rows_frame(
    rows: &[(&str, &EpochStats)],
    extra: &BTreeSet<String>,
) -> Result<DataFrame> {
    let mut columns = vec![
        col("run_id", rows, |(id, _)| id.to_string()),
        col("epoch", rows, |(_, e)| int(e.epoch)),
    ];
    columns.extend(
        EPOCH_F64
            .iter()
            .map(|(name, get, _)| col(name, rows, |(_, e)| get(e))),
    );
    columns.extend(
        extra
            .iter()
            .map(|key| col(key, rows, |(_, e)| e.extra.get(key).copied())),
    );
    frame(columns)
}

/// Every run's epochs from an epochs frame, by run id, in the frame's order.
pub fn epochs_from_frame(df: &DataFrame) -> Result<BTreeMap<String, Vec<EpochStats>>> {
    let reader = Reader { df };
    let ids = reader.strings("run_id")?;
    let epoch = reader.ints("epoch")?;
    let f64s: Vec<Vec<Option<f64>>> = EPOCH_F64
        .iter()
        .map(|(name, _, _)| reader.f64s(name))
        .collect::<Result<_>>()?;
    let fixed: BTreeSet<&str> = EPOCH_F64
        .iter()
        .map(|(name, _, _)| *name)
        .chain(["run_id", "epoch"])
        .collect();
    let extra: Vec<(String, Vec<Option<f64>>)> = df
        .get_column_names()
        .into_iter()
        .filter(|name| !fixed.contains(name.as_str()))
        .map(|name| Ok((name.to_string(), reader.f64s(name)?)))
        .collect::<Result<_>>()?;
    let mut out: BTreeMap<String, Vec<EpochStats>> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let mut stats = EpochStats {
            epoch: epoch[i].map_or(0, |v| v as u32),
            ..EpochStats::default()
        };
        for ((_, _, set), values) in EPOCH_F64.iter().zip(&f64s) {
            set(&mut stats, values[i].unwrap_or(f64::NAN));
        }
        for (key, values) in &extra {
            if let Some(v) = values[i] {
                stats.extra.insert(key.clone(), v);
            }
        }
        out.entry(id.clone().unwrap_or_default())
            .or_default()
            .push(stats);
    }
    Ok(out)
}

/// `summary.parquet` as a frame.
pub fn summary_frame(rows: &[SummaryRow]) -> Result<DataFrame> {
    let mut columns = vec![
        col("scenario", rows, |r| r.scenario.clone()),
        col("data_seed", rows, |r| r.data_seed.map(int)),
    ];
    let settings: Vec<&TrainSettings> = rows.iter().map(|r| &r.settings).collect();
    columns.extend(settings_columns(&settings, |k| k != "seed"));
    columns.extend([
        col("n_runs", rows, |r| int(r.n_runs)),
        col("converged_fraction", rows, |r| r.converged_fraction),
        col("diverged_fraction", rows, |r| r.diverged_fraction),
        col("r2_median", rows, |r| r.r2_median),
        col("r2_mean", rows, |r| r.r2_mean),
        col("r2_std", rows, |r| r.r2_std),
        col("r2_min", rows, |r| r.r2_min),
        col("r2_max", rows, |r| r.r2_max),
        col("epochs_to_converge_median", rows, |r| {
            r.epochs_to_converge_median
        }),
        col("excess_mse_median", rows, |r| r.excess_mse_median),
        col("slow_share_median", rows, |r| r.slow_share_median),
        col("slowest_signal_epochs_median", rows, |r| {
            r.slowest_signal_epochs_median
        }),
    ]);
    if rows.iter().any(|r| r.incomplete_runs.is_some()) {
        columns.push(col("incomplete_runs", rows, |r| r.incomplete_runs.map(int)));
    }
    frame(columns)
}

/// One row of `reference.parquet`: a feature of one data set, with the data set's scalars.
struct ReferenceRow<'a> {
    data_seed: Option<u64>,
    feature_index: usize,
    feature: &'a str,
    reference: &'a Reference,
}

/// `reference.parquet` as a frame: per data set, one row per feature with its OLS coefficient
/// and the k-th largest eigenvalue of the feature covariance, plus the scalar figures.
pub fn reference_frame(refs: &[(Option<u64>, &[String], &Reference)]) -> Result<DataFrame> {
    let rows: Vec<ReferenceRow> = refs
        .iter()
        .flat_map(|(seed, names, reference)| {
            names.iter().enumerate().map(move |(j, name)| ReferenceRow {
                data_seed: *seed,
                feature_index: j,
                feature: name,
                reference,
            })
        })
        .collect();
    frame(vec![
        col("data_seed", &rows, |r| r.data_seed.map(int)),
        col("feature_index", &rows, |r| int(r.feature_index as u64)),
        col("feature", &rows, |r| r.feature.to_string()),
        col("coefficient", &rows, |r| {
            r.reference.fit.coefficients[r.feature_index]
        }),
        col("eigenvalue", &rows, |r| {
            r.reference.spectrum.eigenvalues[r.feature_index]
        }),
        col("intercept", &rows, |r| {
            r.reference.fit.intercept.unwrap_or(0.0)
        }),
        col("mse", &rows, |r| r.reference.fit.mse),
        col("r2", &rows, |r| r.reference.fit.r2),
        col("rank", &rows, |r| int(r.reference.fit.rank as u64)),
        col("condition_number", &rows, |r| {
            r.reference.fit.condition_number
        }),
        col("weight_norm", &rows, |r| r.reference.weight_norm),
        col("residual_sd", &rows, |r| r.reference.fit.residual_sd),
    ])
}

/// Reads typed columns of a frame by name; a missing column or a wrong type names the column.
struct Reader<'a> {
    df: &'a DataFrame,
}

impl Reader<'_> {
    fn column(&self, name: &str) -> Result<&Column> {
        self.df
            .column(name)
            .map_err(|e| Error::table(format!("column {name}"), e))
    }

    fn f64s(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let c = self.column(name)?;
        Ok(c.f64()
            .map_err(|e| Error::table(format!("column {name}"), e))?
            .iter()
            .collect())
    }

    /// An integer column (of any integer type) as i64 values.
    fn ints(&self, name: &str) -> Result<Vec<Option<i64>>> {
        let c = self
            .column(name)?
            .cast(&DataType::Int64)
            .map_err(|e| Error::table(format!("column {name}"), e))?;
        Ok(c.i64()
            .map_err(|e| Error::table(format!("column {name}"), e))?
            .iter()
            .collect())
    }

    fn strings(&self, name: &str) -> Result<Vec<Option<String>>> {
        let c = self.column(name)?;
        Ok(c.str()
            .map_err(|e| Error::table(format!("column {name}"), e))?
            .iter()
            .map(|s| s.map(str::to_string))
            .collect())
    }
}

mod command_columns;
#[cfg(test)]
mod tests;
