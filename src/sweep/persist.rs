//! Incremental, atomic persistence of a sweep's runs, so that a killed sweep resumes with
//! nothing lost or repeated.
//!
//! The output folder holds `manifest.toml` (the config hash, the run count, the shard count of a
//! sharded sweep and the resolved config, so that `sweep merge` needs nothing else) and `parts/`.
//! Finished runs are grouped into parts: `part-<shard>-<attempt>-<seq>.epochs.parquet` then
//! `part-<shard>-<attempt>-<seq>.runs.parquet` (`<shard>` is `all` or e.g. `s03of08`,
//! `<attempt>` a random 64-bit id per process), each written to a temporary name, synced and
//! linked to its final name, which must not exist (so processes sharing the folder never clobber
//! each other); a part counts once its runs file exists (an epochs file without one is ignored).
//! The manifest is created once the same way, and `parts/reference.parquet` (the reference
//! table, the same from every process) too. The final tables are always built from the parts
//! read back from disk, so a resumed, a sharded and an uninterrupted sweep write the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::manifest::allow_this_build;
pub use super::manifest::{check_compatible, read_manifest, Manifest};
use super::shard::Shard;
use crate::command::MetricsFile;
use crate::config::{RunSpec, Sweep};
use crate::error::{Error, Result};
use crate::results::{self, RunRow};
use crate::train::{EpochStats, Status};

/// File names the sweep owns in its output folder.
pub const MANIFEST: &str = "manifest.toml";
pub const PARTS: &str = "parts";
/// The tables a finished sweep writes (those that apply to it), in the order they are checked.
pub const TABLES: &[&str] = &[
    "runs.parquet",
    "epochs.parquet",
    "summary.parquet",
    "verdict.parquet",
    "effects.parquet",
    "paths.parquet",
    "scenarios.parquet",
    "reference.parquet",
];
/// The other files a finished sweep leaves beside its tables.
const OTHER_FILES: &[&str] = &[
    "timing.toml",
    "report.md",
    super::command_facts::PROVENANCE,
    super::command_facts::DETERMINISM,
];

/// Epochs rows per batch of a part's epochs file: a command run may report millions of epochs,
/// which are never all in memory.
const EPOCH_BATCH_ROWS: usize = 1 << 14;

/// A finished run's epochs on their way to its part.
#[derive(Clone, Debug)]
pub enum Epochs {
    /// In memory (built-in runs).
    Held(Vec<EpochStats>),
    /// In a command run's metrics file, read again in batches as the part is written.
    Metrics(MetricsFile),
}

impl Epochs {
    /// The names of the extra metric columns.
    fn extra_keys(&self) -> BTreeSet<String> {
        match self {
            Epochs::Held(epochs) => epochs
                .iter()
                .flat_map(|e| e.extra.keys().cloned())
                .collect(),
            Epochs::Metrics(file) => file.extra_keys.clone(),
        }
    }

    /// Hands the epochs to `each` in batches of at most `rows`.
    fn for_each_batch(
        &self,
        rows: usize,
        each: &mut dyn FnMut(&[EpochStats]) -> Result<()>,
    ) -> Result<()> {
        match self {
            Epochs::Held(epochs) => epochs.chunks(rows).try_for_each(each),
            Epochs::Metrics(file) => file.for_each_batch(rows, each),
        }
    }
}

/// The persisted state of one output folder.
pub struct Store {
    parts: PathBuf,
    /// `part-<shard>-<attempt>`.
    stem: String,
    next: std::sync::atomic::AtomicUsize,
    /// Key-value metadata of every part file.
    metadata: Vec<(String, String)>,
}

/// The reference table, written once per folder beside the parts.
pub const REFERENCE_PART: &str = "reference.parquet";

impl Store {
    /// Opens `out` for `sweep` (see [`check_compatible`]); with `fresh`, deletes what an earlier
    /// sweep left there first. Writes the manifest when there is none.
    pub fn open(
        out: &Path,
        sweep: &Sweep,
        fresh: bool,
        shard: Option<Shard>,
        allow_build_change: bool,
    ) -> Result<Store> {
        check_compatible(out, sweep, fresh, shard, allow_build_change)?;
        let parts = out.join(PARTS);
        if fresh {
            remove_earlier_sweep(out)?;
        }
        std::fs::create_dir_all(&parts)
            .map_err(|e| Error::io(format!("creating {}", parts.display()), e))?;
        let manifest = Manifest::of(sweep, shard);
        let text = toml::to_string(&manifest).expect("manifest serializes");
        // Created once: a shard that started at the same moment may have created it first, and
        // then it must be the same sweep.
        let created = results::write_new(&out.join(MANIFEST), |f| {
            use std::io::Write;
            f.write_all(text.as_bytes())
                .map_err(|e| Error::io("writing the manifest", e))
        })?;
        if !created {
            check_compatible(out, sweep, false, shard, allow_build_change)?;
            if allow_build_change {
                allow_this_build(out)?;
            }
            if let Some(earlier) = read_manifest(out)? {
                super::commands::report_changed_inputs(
                    &earlier.inputs_sha256,
                    &manifest.inputs_sha256,
                );
            }
        }
        let tag = shard.map_or("all".to_string(), |s| s.tag());
        let attempt: u64 = rand::random();
        let mut metadata = super::table_metadata(sweep);
        metadata.push(("sweep.shard".into(), tag.clone()));
        metadata.push(("sweep.cpu".into(), crate::cpu_model()));
        metadata.push((
            "sweep.simd".into(),
            crate::simd::SimdLevel::detect().to_string(),
        ));
        Ok(Store {
            parts,
            stem: format!("part-{tag}-{attempt:016x}"),
            next: 0.into(),
            metadata,
        })
    }

    /// Adds key-value metadata to every part written from now on.
    pub fn add_metadata(&mut self, entries: &[(String, String)]) {
        self.metadata.extend(entries.iter().cloned());
    }

    /// Writes `parts/reference.parquet` unless a process sharing the folder did (it holds the
    /// same table: the reference depends only on the data).
    pub fn write_reference(
        &self,
        frame: &mut polars::prelude::DataFrame,
        metadata: &[(String, String)],
    ) -> Result<()> {
        results::write_parquet_new(&self.parts.join(REFERENCE_PART), frame, metadata).map(|_| ())
    }

    /// Writes one part: the epochs file (in batches of [`EPOCH_BATCH_ROWS`] rows), then the runs
    /// file that commits it.
    pub fn write_part(&self, items: &[(RunRow, Epochs)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let seq = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stem = format!("{}-{seq:06}", self.stem);
        let taken = |path: &Path| {
            Error::Tool(format!(
                "{} exists already: two processes drew the same random attempt id; rerun this shard",
                path.display()
            ))
        };
        let extra: BTreeSet<String> = items.iter().flat_map(|(_, e)| e.extra_keys()).collect();
        let schema = results::epoch_rows_frame(&[], &extra)?.schema().clone();
        let path = self.parts.join(format!("{stem}.epochs.parquet"));
        let created = results::write_parquet_batches_new(&path, &schema, &self.metadata, |sink| {
            let mut batch: Vec<(usize, EpochStats)> = Vec::new();
            let mut written = false;
            let mut flush = |batch: &mut Vec<(usize, EpochStats)>, last: bool| -> Result<()> {
                if batch.len() < EPOCH_BATCH_ROWS && !(last && (!batch.is_empty() || !written)) {
                    return Ok(());
                }
                let rows: Vec<(&str, &EpochStats)> = batch
                    .iter()
                    .map(|(i, e)| (items[*i].0.run_id.as_str(), e))
                    .collect();
                let mut frame = results::epoch_rows_frame(&rows, &extra)?;
                sink.write(&mut frame)
                    .map_err(|e| Error::table(format!("writing {}", path.display()), e))?;
                batch.clear();
                written = true;
                Ok(())
            };
            for (i, (_, epochs)) in items.iter().enumerate() {
                epochs.for_each_batch(EPOCH_BATCH_ROWS, &mut |rows| {
                    batch.extend(rows.iter().map(|e| (i, e.clone())));
                    flush(&mut batch, false)
                })?;
            }
            flush(&mut batch, true)
        })?;
        if !created {
            return Err(taken(&path));
        }
        let rows: Vec<RunRow> = items.iter().map(|(r, _)| r.clone()).collect();
        let path = self.parts.join(format!("{stem}.runs.parquet"));
        if !results::write_parquet_new(&path, &mut results::runs_frame(&rows)?, &self.metadata)? {
            return Err(taken(&path));
        }
        Ok(())
    }
}

/// `--fresh`: deletes what an earlier sweep left in `out`: its tables and files, parts, figures,
/// and a command sweep's data and run folders (its live-run records were checked before).
fn remove_earlier_sweep(out: &Path) -> Result<()> {
    let remove = |p: PathBuf| match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("removing {}", p.display()), e))
        }
        _ => Ok(()),
    };
    for name in TABLES.iter().chain(OTHER_FILES).chain([&MANIFEST]) {
        remove(out.join(name))?;
    }
    for dir in [PARTS, "figures", "data", "runs"].map(|d| out.join(d)) {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
        }
    }
    Ok(())
}

/// The runs files of the committed parts of a folder, in file-name order (each part's epochs
/// file sits beside it).
fn committed_parts(out: &Path) -> Result<Vec<PathBuf>> {
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
    Ok(names.iter().map(|n| dir.join(n)).collect())
}

/// The distinct builds and machine kinds (CPU model and SIMD level) the committed parts record.
pub fn part_provenance(out: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let (mut builds, mut machines) = (Vec::new(), Vec::new());
    for runs in committed_parts(out)? {
        let value = |key| results::read_metadata_value(&runs, key).map(Option::unwrap_or_default);
        builds.push(value("sweep.build")?);
        machines.push(format!(
            "{} ({})",
            value("sweep.cpu")?,
            value("sweep.simd")?
        ));
    }
    for list in [&mut builds, &mut machines] {
        list.sort();
        list.dedup();
    }
    Ok((builds, machines))
}

/// Every saved run id with its status (of its highest attempt), from the runs files only.
pub fn saved_statuses(out: &Path) -> Result<BTreeMap<String, Status>> {
    Ok(saved_attempts(out)?
        .into_iter()
        .map(|(id, (status, _))| (id, status))
        .collect())
}

/// Every saved run's status and attempt: of a run saved more than once, its highest attempt
/// (the first copy of it, when a run was saved twice at the same attempt).
pub fn saved_attempts(out: &Path) -> Result<BTreeMap<String, (Status, u32)>> {
    let mut saved: BTreeMap<String, (Status, u32)> = BTreeMap::new();
    for runs in committed_parts(out)? {
        for (id, status, attempt) in results::run_statuses(&results::read_parquet(&runs)?)? {
            match saved.get(&id) {
                Some((_, kept)) if *kept >= attempt => {}
                _ => {
                    saved.insert(id, (status, attempt));
                }
            }
        }
    }
    Ok(saved)
}

/// Every saved run of this sweep, by run id: of a command run retried, its highest attempt (the
/// first copy wins if a run was saved twice at the same attempt).
pub fn load(out: &Path, sweep: &Sweep) -> Result<BTreeMap<String, (RunRow, Vec<EpochStats>)>> {
    let specs: BTreeMap<&str, &RunSpec> = sweep.runs.iter().map(|r| (r.id.as_str(), r)).collect();
    let scenario_name = |i: usize| sweep.scenarios[i].name.clone();
    let mut saved = BTreeMap::new();
    for runs_path in committed_parts(out)? {
        let epochs_path = runs_path.with_file_name(
            runs_path
                .file_name()
                .map(|n| {
                    n.to_string_lossy()
                        .replace(".runs.parquet", ".epochs.parquet")
                })
                .unwrap_or_default(),
        );
        let runs = results::read_parquet(&runs_path)?;
        let mut epochs = results::epochs_from_frame(&results::read_parquet(&epochs_path)?)?;
        for row in results::runs_from_frame(&runs, &specs, scenario_name)? {
            let e = epochs.remove(&row.run_id).unwrap_or_default();
            let attempt = |r: &RunRow| r.process.as_ref().map_or(1, |p| p.attempt);
            match saved.get(&row.run_id) {
                Some((kept, _)) if attempt(kept) >= attempt(&row) => {}
                _ => {
                    saved.insert(row.run_id.clone(), (row, e));
                }
            }
        }
    }
    Ok(saved)
}

/// Counts for `sweep status`: the manifest, and every saved run id with its status.
pub fn status_counts(out: &Path) -> Result<(Manifest, BTreeMap<String, Status>)> {
    let manifest = read_manifest(out)?.ok_or_else(|| {
        Error::Usage(format!(
            "{} holds no sweep (no {MANIFEST}): give the --out folder of a `sweep run`",
            out.display()
        ))
    })?;
    let saved = saved_statuses(out)?;
    Ok((manifest, saved))
}
