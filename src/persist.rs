//! Incremental, atomic persistence of a sweep's runs, so that a killed sweep resumes with
//! nothing lost or repeated.
//!
//! The output folder holds `manifest.toml` (the config hash, the run count) and `parts/`.
//! Finished runs are grouped into parts: `part-<pid>-<seq>.epochs.parquet` then
//! `part-<pid>-<seq>.runs.parquet`, each written to a temporary name, synced and renamed; a part
//! counts once its runs file exists (an epochs file without one is ignored). The final tables
//! are always built from the parts read back from disk, so a resumed sweep and an uninterrupted
//! one write the same bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::config::{RunSpec, Sweep};
use crate::error::{Error, Result};
use crate::results::{self, RunRow};
use crate::train::{EpochStats, Status};

/// File names the sweep owns in its output folder.
pub const MANIFEST: &str = "manifest.toml";
pub const PARTS: &str = "parts";
pub const TABLES: &[&str] = &[
    "runs.parquet",
    "epochs.parquet",
    "summary.parquet",
    "reference.parquet",
    "verdict.parquet",
    "scenarios.parquet",
    "timing.toml",
    "report.md",
];

/// The persisted state of one output folder.
pub struct Store {
    pub out: PathBuf,
    parts: PathBuf,
    next: std::sync::atomic::AtomicUsize,
}

/// What `manifest.toml` records.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub config_hash: String,
    pub runs: u64,
    pub version: String,
}

/// Reads `OUT/manifest.toml`, if any.
pub fn read_manifest(out: &Path) -> Result<Option<Manifest>> {
    let path = out.join(MANIFEST);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map(Some).map_err(|e| {
            Error::Config(format!(
                "{} is not a sweep manifest: {}",
                path.display(),
                e.message()
            ))
        }),
        // No folder, or a file where the folder should be: no manifest (the writability check reports the latter).
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Checks, before anything is written, that `out` may hold this sweep: either it holds no
/// sweep, or the same config (or `fresh` is set).
pub fn check_compatible(out: &Path, sweep: &Sweep, fresh: bool) -> Result<()> {
    if fresh {
        return Ok(());
    }
    match read_manifest(out)? {
        Some(m) if m.config_hash != sweep.config_hash => Err(Error::Config(format!(
            "{} holds the results of another config (hash {}), not of this one (hash {}): rerun with --fresh to \
             delete them and start afresh, or choose another folder with --out",
            out.display(),
            &m.config_hash[..16],
            &sweep.config_hash[..16]
        ))),
        _ => Ok(()),
    }
}

impl Store {
    /// Opens `out` for `sweep` (see [`check_compatible`]); with `fresh`, deletes what an earlier
    /// sweep left there first. Writes the manifest when there is none.
    pub fn open(out: &Path, sweep: &Sweep, fresh: bool) -> Result<Store> {
        check_compatible(out, sweep, fresh)?;
        let parts = out.join(PARTS);
        if fresh {
            let remove = |p: PathBuf| match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io(format!("removing {}", p.display()), e))
                }
                _ => Ok(()),
            };
            for name in TABLES.iter().chain([&MANIFEST]) {
                remove(out.join(name))?;
            }
            for dir in [parts.clone(), out.join("figures")] {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
                }
            }
        }
        std::fs::create_dir_all(&parts)
            .map_err(|e| Error::io(format!("creating {}", parts.display()), e))?;
        if read_manifest(out)?.is_none() {
            let manifest = Manifest {
                config_hash: sweep.config_hash.clone(),
                runs: sweep.runs.len() as u64,
                version: crate::VERSION.into(),
            };
            let text = toml::to_string(&manifest).expect("manifest serializes");
            results::write_atomic(&out.join(MANIFEST), |f| {
                use std::io::Write;
                f.write_all(text.as_bytes())
                    .map_err(|e| Error::io("writing the manifest", e))
            })?;
        }
        Ok(Store {
            out: out.to_path_buf(),
            parts,
            next: 0.into(),
        })
    }

    /// Writes one part: the epochs file, then the runs file that commits it.
    pub fn write_part(&self, items: &[(RunRow, Vec<EpochStats>)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let seq = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stem = format!("part-{}-{seq:06}", std::process::id());
        let epochs: Vec<(&str, &[EpochStats])> = items
            .iter()
            .map(|(r, e)| (r.run_id.as_str(), e.as_slice()))
            .collect();
        let rows: Vec<RunRow> = items.iter().map(|(r, _)| r.clone()).collect();
        results::write_parquet(
            &self.parts.join(format!("{stem}.epochs.parquet")),
            &mut results::epochs_frame(&epochs)?,
            &[],
        )?;
        results::write_parquet(
            &self.parts.join(format!("{stem}.runs.parquet")),
            &mut results::runs_frame(&rows)?,
            &[],
        )
    }
}

/// The committed parts of a folder, in file-name order: (runs frame, epochs frame) pairs.
fn committed_parts(out: &Path) -> Result<Vec<(DataFrame, DataFrame)>> {
    let dir = out.join(PARTS);
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("part-") && n.ends_with(".runs.parquet"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
    };
    names.sort();
    names
        .iter()
        .map(|n| {
            let runs = results::read_parquet(&dir.join(n))?;
            let epochs =
                results::read_parquet(&dir.join(n.replace(".runs.parquet", ".epochs.parquet")))?;
            Ok((runs, epochs))
        })
        .collect()
}

fn column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column> {
    df.column(name)
        .map_err(|e| Error::table(format!("part column {name}"), e))
}

fn f64s(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    Ok(column(df, name)?
        .f64()
        .map_err(|e| Error::table(name, e))?
        .iter()
        .collect())
}

fn u32s(df: &DataFrame, name: &str) -> Result<Vec<Option<u32>>> {
    Ok(column(df, name)?
        .u32()
        .map_err(|e| Error::table(name, e))?
        .iter()
        .collect())
}

fn strs(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    Ok(column(df, name)?
        .str()
        .map_err(|e| Error::table(name, e))?
        .iter()
        .map(|s| s.map(str::to_string))
        .collect())
}

fn status(text: &str) -> Status {
    match text {
        "converged" => Status::Converged,
        "not_converged" => Status::NotConverged,
        "diverged" => Status::Diverged,
        _ => Status::Failed,
    }
}

/// Rebuilds run rows from a part's runs frame; the settings come from the sweep's own run specs.
fn rows_from_frame(
    df: &DataFrame,
    specs: &HashMap<&str, &RunSpec>,
    sweep: &Sweep,
) -> Result<Vec<RunRow>> {
    let ids = strs(df, "run_id")?;
    let (status_col, message) = (strs(df, "status")?, strs(df, "message")?);
    let (epochs_run, to_converge) = (u32s(df, "epochs_run")?, u32s(df, "epochs_to_converge")?);
    let names = [
        "initial_train_mse",
        "final_train_mse",
        "final_train_r2",
        "best_train_r2",
        "excess_mse",
        "weight_norm",
        "distance_to_ols",
        "ols_mse",
        "ols_r2",
        "slow_share",
        "slowest_signal_epochs",
    ];
    let values: Vec<Vec<Option<f64>>> = names.iter().map(|n| f64s(df, n)).collect::<Result<_>>()?;
    let v = |k: usize, i: usize| values[k][i].unwrap_or(f64::NAN);
    let mut rows = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(spec) = id.as_deref().and_then(|id| specs.get(id)) else {
            continue;
        };
        rows.push(RunRow {
            run_id: spec.id.clone(),
            run_index: spec.index as u32,
            scenario: spec.scenario.map(|s| sweep.scenarios[s].name.clone()),
            settings: spec.settings.clone(),
            data_seed: spec.data_seed,
            status: status(status_col[i].as_deref().unwrap_or("failed")),
            message: message[i].clone(),
            epochs_run: epochs_run[i].unwrap_or(0),
            epochs_to_converge: to_converge[i],
            initial_train_mse: v(0, i),
            final_train_mse: v(1, i),
            final_train_r2: v(2, i),
            best_train_r2: v(3, i),
            excess_mse: v(4, i),
            weight_norm: v(5, i),
            distance_to_ols: v(6, i),
            ols_mse: v(7, i),
            ols_r2: v(8, i),
            slow_share: values[9][i],
            slowest_signal_epochs: values[10][i],
        });
    }
    Ok(rows)
}

fn epochs_from_frame(df: &DataFrame) -> Result<BTreeMap<String, Vec<EpochStats>>> {
    let ids = strs(df, "run_id")?;
    let epoch = u32s(df, "epoch")?;
    let names = [
        "weight_norm",
        "prediction",
        "loss",
        "gradient_norm",
        "update_ratio",
        "clipped_fraction",
        "train_mse",
        "train_r2",
    ];
    let values: Vec<Vec<Option<f64>>> = names.iter().map(|n| f64s(df, n)).collect::<Result<_>>()?;
    let v = |k: usize, i: usize| values[k][i].unwrap_or(f64::NAN);
    let mut out: BTreeMap<String, Vec<EpochStats>> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        out.entry(id.clone().unwrap_or_default())
            .or_default()
            .push(EpochStats {
                epoch: epoch[i].unwrap_or(0),
                weight_norm: v(0, i),
                prediction: v(1, i),
                loss: v(2, i),
                gradient_norm: v(3, i),
                update_ratio: v(4, i),
                clipped_fraction: v(5, i),
                train_mse: v(6, i),
                train_r2: v(7, i),
            });
    }
    Ok(out)
}

/// Every saved run of this sweep, by run id (the first copy wins if a run was saved twice).
pub fn load(out: &Path, sweep: &Sweep) -> Result<BTreeMap<String, (RunRow, Vec<EpochStats>)>> {
    let specs: HashMap<&str, &RunSpec> = sweep.runs.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut saved = BTreeMap::new();
    for (runs, epochs) in committed_parts(out)? {
        let mut epochs = epochs_from_frame(&epochs)?;
        for row in rows_from_frame(&runs, &specs, sweep)? {
            let e = epochs.remove(&row.run_id).unwrap_or_default();
            saved.entry(row.run_id.clone()).or_insert((row, e));
        }
    }
    Ok(saved)
}

/// Counts for `sweep status`: (runs in the sweep, saved run ids with their status).
pub fn status_counts(out: &Path) -> Result<(Manifest, BTreeMap<String, String>)> {
    let manifest = read_manifest(out)?.ok_or_else(|| {
        Error::Config(format!(
            "{} holds no sweep (no {MANIFEST}): give the --out folder of a `sweep run`",
            out.display()
        ))
    })?;
    let mut saved = BTreeMap::new();
    for (runs, _) in committed_parts(out)? {
        for (id, st) in strs(&runs, "run_id")?
            .into_iter()
            .zip(strs(&runs, "status")?)
        {
            saved
                .entry(id.unwrap_or_default())
                .or_insert(st.unwrap_or_default());
        }
    }
    Ok((manifest, saved))
}
