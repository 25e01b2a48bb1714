//! `sweep reproduce PATH`: re-runs a results folder, or one of its Parquet files, from the config
//! its metadata records, and compares every table with the recorded one ([`compare`]). A table is
//! reproduced when it has the same schema, the same rows, the same values bit for bit (or within
//! `--rtol`/`--atol` for numbers) and the same recorded config and hash; the provenance (build,
//! compiler, library versions, machine) is reported, never compared.
//!
//! A file-backed sweep needs its data file with the SHA-256 the tables record: `--data`, or the
//! first place [`data_file`] finds it with that hash. `--runs K` re-runs only the K lexicographically smallest run ids of the recorded
//! config's runs (with adaptive seeds: of its first batch) and compares their rows of
//! `runs.parquet` and `epochs.parquet`.

mod command;
mod compare;
mod data_file;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use polars::prelude::{BooleanChunked, DataFrame};

pub use compare::{compare, first_epoch_difference, ColumnDiff, Comparison, Tolerance};
pub use data_file::data_location;

use crate::config::{self, Sweep};
use crate::error::{Error, Result};
use crate::results::{read_metadata_value, read_parquet, write_parquet};
use crate::sweep::{self, RunOptions, TestHooks, MANIFEST, TABLES};
use command::{runnable_text, volatile_columns};

/// What `sweep reproduce` was asked.
#[derive(Clone, Debug)]
pub struct Request {
    /// A results folder or one of its tables.
    pub path: PathBuf,
    /// Where to re-run (kept); a temporary folder, removed afterwards, when `None`.
    pub out: Option<PathBuf>,
    /// The data file of a file-backed sweep, when it moved.
    pub data: Option<PathBuf>,
    /// Re-run only this many runs (the smallest run ids).
    pub runs: Option<usize>,
    pub tolerance: Option<Tolerance>,
    pub jobs: Option<usize>,
    /// A command sweep's working folder, when the script is no longer where the tables say.
    pub workdir: Option<PathBuf>,
}

/// What `sweep reproduce` found: its report, and whether every table was reproduced.
pub struct Reproduction {
    pub text: String,
    pub reproduced: bool,
}

/// One recorded table: its file and which table it is.
struct Recorded {
    path: PathBuf,
    name: &'static str,
}

/// Re-runs and compares; see the module documentation.
pub fn reproduce(request: &Request) -> Result<Reproduction> {
    let recorded = recorded_tables(&request.path)?;
    let folder = if request.path.is_dir() {
        request.path.as_path()
    } else {
        request.path.parent().unwrap_or(Path::new("."))
    };
    let data = data_file::find(folder, &recorded[0].path, request.data.clone())?;
    let (sweep, hash) = recorded_sweep(&recorded, data.as_deref(), request.workdir.as_deref())?;
    let ids: Option<BTreeSet<String>> = request.runs.map(|k| {
        let mut ids: Vec<&String> = sweep.runs.iter().map(|r| &r.id).collect();
        ids.sort();
        ids.into_iter().take(k).cloned().collect()
    });
    let checked: Vec<&Recorded> = recorded
        .iter()
        .filter(|t| ids.is_none() || matches!(t.name, "runs.parquet" | "epochs.parquet"))
        .collect();
    if checked.is_empty() {
        return Err(Error::Usage(format!(
            "--runs compares rows of runs.parquet and epochs.parquet, and {} holds neither",
            request.path.display()
        )));
    }
    let (out, temporary) = match &request.out {
        Some(out) => {
            let holds = |name: &str| out.join(name).exists();
            if holds(MANIFEST) || holds(sweep::PARTS) || TABLES.iter().any(|t| holds(t)) {
                return Err(Error::Usage(format!(
                    "--out {} already holds a sweep: a reproduction re-runs into a new or empty folder (else it \
                     would compare saved runs with themselves)",
                    out.display()
                )));
            }
            (out.clone(), false)
        }
        None => (temporary_folder(), true),
    };
    let result = rerun_and_compare(&sweep, &hash, &checked, ids.as_ref(), &out, request);
    if temporary {
        let _ = std::fs::remove_dir_all(&out);
    }
    result
}

/// The tables at `path`: every table of a folder, or the one file.
fn recorded_tables(path: &Path) -> Result<Vec<Recorded>> {
    if path.is_dir() {
        let found: Vec<Recorded> = TABLES
            .iter()
            .map(|name| Recorded {
                path: path.join(name),
                name,
            })
            .filter(|t| t.path.exists())
            .collect();
        if found.is_empty() {
            return Err(Error::Usage(format!(
                "{} holds no table of a finished sweep ({})",
                path.display(),
                TABLES.join(", ")
            )));
        }
        return Ok(found);
    }
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    // A supplement may prefix the names (ablation_runs.parquet): the table is the longest match.
    let mut names: Vec<&'static str> = TABLES.to_vec();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let name = names
        .into_iter()
        .find(|name| file.ends_with(name))
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} is not a sweep table: give a results folder or a file named like one of {}",
                path.display(),
                TABLES.join(", ")
            ))
        })?;
    if !path.exists() {
        return Err(Error::Usage(format!("{} does not exist", path.display())));
    }
    Ok(vec![Recorded {
        path: path.to_path_buf(),
        name,
    }])
}

/// The recorded config as a sweep (its recorded text and hash kept), checked against every
/// table's metadata and, for file data, against the data file's hash.
fn recorded_sweep(
    recorded: &[Recorded],
    data: Option<&Path>,
    workdir: Option<&Path>,
) -> Result<(Sweep, String)> {
    let first = &recorded[0].path;
    let meta = |path: &Path, key: &str| -> Result<String> {
        read_metadata_value(path, key)?.ok_or_else(|| {
            Error::Results(format!(
                "{} records no `{key}` in its metadata: it was not written by `sweep`, or by a version \
                 that did not record it",
                path.display()
            ))
        })
    };
    let text = meta(first, "sweep.config")?;
    let hash = meta(first, "sweep.config_hash")?;
    for t in &recorded[1..] {
        if meta(&t.path, "sweep.config_hash")? != hash {
            return Err(Error::Results(format!(
                "{} and {} record different configs: they are not tables of one sweep",
                first.display(),
                t.path.display()
            )));
        }
    }
    let recorded_data = read_metadata_value(first, "sweep.data_sha256")?;
    if data.is_some() && recorded_data.is_none() {
        return Err(Error::Usage(
            "--data is for sweeps of a data file, and this one used the built-in generator".into(),
        ));
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io("current directory", e))?;
    let overrides: Vec<String> = data
        .map(|d| {
            vec![format!(
                "data.path={}",
                toml::Value::String(d.display().to_string())
            )]
        })
        .unwrap_or_default();
    let dir = first.parent().unwrap_or(Path::new("."));
    let runnable = runnable_text(first, &text, workdir)?;
    let mut sweep = config::from_text(&runnable, first, dir, &cwd, &overrides)?;
    if data.is_none() && sweep.config_hash != hash {
        return Err(Error::Results(format!(
            "{}: the recorded config hashes to {}, not to the recorded {}: the metadata was edited",
            first.display(),
            &sweep.config_hash[..16],
            &hash[..hash.len().min(16)]
        )));
    }
    match (&recorded_data, &sweep.data_sha256) {
        (Some(want), got) if got.as_ref() != Some(want) => {
            return Err(Error::Data(format!(
                "the data file {} has SHA-256 {}, and the tables were made from a file with SHA-256 {want}: \
                 give the original file with --data FILE",
                data.map_or_else(|| "named in the recorded config".to_string(), |d| d.display().to_string()),
                got.as_deref().unwrap_or("(not found or unreadable)"),
            )))
        }
        _ => {}
    }
    // The recorded text and hash, whatever path the data file now has.
    sweep.resolved_toml = text;
    sweep.config_hash = hash.clone();
    Ok((sweep, hash))
}

fn temporary_folder() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("sweep-reproduce-{}-{nanos}", std::process::id()))
}

/// Re-runs what the checked tables need into `out`, and compares them.
fn rerun_and_compare(
    sweep: &Sweep,
    hash: &str,
    checked: &[&Recorded],
    ids: Option<&BTreeSet<String>>,
    out: &Path,
    request: &Request,
) -> Result<Reproduction> {
    let mut sweep = sweep.clone();
    if let Some(ids) = ids {
        sweep.runs.retain(|r| ids.contains(&r.id));
        // Only these runs: no verdict, and so no seeds added.
        sweep.ablation = None;
    }
    let only_reference = checked.iter().all(|t| t.name == "reference.parquet");
    if only_reference {
        sweep::check_writable(out)?;
        let prepared = sweep::prepare(&sweep)?;
        let (mut frame, metadata) = sweep::reference_table(&sweep, &prepared)?;
        write_parquet(&out.join("reference.parquet"), &mut frame, &metadata)?;
    } else {
        let opts = RunOptions {
            out: out.to_path_buf(),
            jobs: request.jobs,
            quiet: true,
            fresh: false,
            allow_build_change: false,
            retry_failed: false,
            kill_stale: false,
            round: None,
            hooks: TestHooks::default(),
        };
        sweep::run(&sweep, &opts)?;
    }
    let mut text = format!(
        "reproducing {} (config {}, {} of its runs re-run in {}{})\n",
        request.path.display(),
        &hash[..hash.len().min(16)],
        if only_reference { 0 } else { sweep.runs.len() },
        out.display(),
        if request.out.is_none() {
            ", removed afterwards"
        } else {
            ""
        }
    );
    let mut differing = Vec::new();
    for table in checked {
        let (lines, reproduced) = compare_table(table, &sweep, ids, out, request.tolerance)?;
        text += &lines;
        if !reproduced {
            differing.push(table.name);
        }
    }
    let reproduced = differing.is_empty();
    text += &provenance(checked[0], &request.path, !reproduced)?;
    text += &if reproduced {
        format!(
            "reproduced: {} table(s) {}\n",
            checked.len(),
            if request.tolerance.is_some() {
                "within the tolerance (strings, labels and statuses identical)"
            } else {
                "identical"
            }
        )
    } else {
        format!(
            "not reproduced: {} of {} table(s) differ ({})\n",
            differing.len(),
            checked.len(),
            differing.join(", ")
        )
    };
    Ok(Reproduction { text, reproduced })
}

/// One recorded table against its re-run in `out` (the rows of `ids` only, when given; a command
/// sweep's volatile metrics left out): the report's lines, and whether it was reproduced.
fn compare_table(
    table: &Recorded,
    sweep: &Sweep,
    ids: Option<&BTreeSet<String>>,
    out: &Path,
    tolerance: Option<Tolerance>,
) -> Result<(String, bool)> {
    let mut expected = read_parquet(&table.path)?;
    if let Some(ids) = ids {
        expected = only_runs(&expected, ids)?;
    }
    let got_path = out.join(table.name);
    let mut got = read_parquet(&got_path)?;
    let volatile = sweep.command.as_ref().map_or(Vec::new(), |c| {
        volatile_columns(&c.reproducibility.volatile)
    });
    expected = expected.drop_many(volatile.iter().map(String::as_str));
    got = got.drop_many(volatile.iter().map(String::as_str));
    let mut comparison = compare(&expected, &got, tolerance)?;
    for key in ["sweep.config", "sweep.config_hash"] {
        if read_metadata_value(&table.path, key)? != read_metadata_value(&got_path, key)? {
            comparison.schema = Some(format!("the metadata key {key} differs"));
        }
    }
    let mut text = format!(
        "  {:<20} {}\n",
        table.name,
        verdict_line(&comparison, tolerance)
    );
    let reproduced = comparison.reproduced();
    if !reproduced && table.name == "epochs.parquet" && comparison.schema.is_none() {
        if let Some(first) = first_epoch_difference(&expected, &got, tolerance)? {
            text += &format!("  {:<20} {first}\n", "");
        }
    }
    Ok((text, reproduced))
}

/// The rows of `df` whose `run_id` is in `ids`, in their order.
fn only_runs(df: &DataFrame, ids: &BTreeSet<String>) -> Result<DataFrame> {
    let column = df
        .column("run_id")
        .and_then(|c| c.str().cloned())
        .map_err(|e| Error::table("reading run_id", e))?;
    let mask: BooleanChunked = column
        .iter()
        .map(|id| id.is_some_and(|id| ids.contains(id)))
        .collect();
    df.filter(&mask)
        .map_err(|e| Error::table("selecting runs", e))
}

/// One line: identical, within the tolerance, or what differs.
fn verdict_line(c: &Comparison, tolerance: Option<Tolerance>) -> String {
    if let Some(schema) = &c.schema {
        return format!("DIFFERS: {schema}");
    }
    if let Some((want, got)) = c.rows {
        return format!("DIFFERS: {want} rows recorded, {got} reproduced");
    }
    if !c.columns.is_empty() {
        let parts: Vec<String> = c
            .columns
            .iter()
            .map(|d| {
                let size = match (d.max_abs, d.max_rel) {
                    (Some(a), Some(r)) => format!("; largest difference {a:.3e}, relative {r:.3e}"),
                    _ => String::new(),
                };
                format!("{} ({} rows{size})", d.column, d.rows)
            })
            .collect();
        return format!("DIFFERS in {}: {}", c.columns.len(), parts.join(", "));
    }
    match tolerance {
        Some(t) if c.within_tolerance > 0 => format!(
            "reproduced within rtol {:e}, atol {:e} ({} values differ in their last bits)",
            t.rtol, t.atol, c.within_tolerance
        ),
        _ => "identical".to_string(),
    }
}

/// The builds (and, for a folder, the machines) of both sides: one line when they agree, side by
/// side when they differ or the tables do.
fn provenance(table: &Recorded, path: &Path, detail: bool) -> Result<String> {
    let mut rows = Vec::new();
    for (key, now) in crate::build_facts() {
        let then = read_metadata_value(&table.path, &key)?.unwrap_or_else(|| "not recorded".into());
        rows.push((key, then, now));
    }
    // A folder's manifest, or the one beside a single table.
    let folder = if path.is_dir() {
        Some(path)
    } else {
        path.parent()
    };
    let manifest = folder.and_then(|f| sweep::read_manifest(f).ok().flatten());
    let recorded = |f: fn(&sweep::Manifest) -> String| {
        manifest
            .as_ref()
            .map(f)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "not recorded".to_string())
    };
    // The CPU kind and SIMD level decide the last bits; the host name does not.
    let machine_then = recorded(|m| {
        if m.cpu.is_empty() {
            String::new()
        } else {
            format!("{} ({})", m.cpu, m.simd)
        }
    });
    let machine_now = format!(
        "{} ({})",
        crate::cpu_model(),
        crate::simd::SimdLevel::detect()
    );
    rows.push((
        format!("machine (from {MANIFEST})"),
        machine_then,
        machine_now,
    ));
    rows.push((
        "host".to_string(),
        recorded(|m| m.host.clone()),
        crate::host_name(),
    ));
    let same = rows.iter().all(|(key, a, b)| key == "host" || a == b);
    if same && !detail {
        return Ok(format!(
            "provenance: the same build and machine ({})\n",
            crate::BUILD
        ));
    }
    let mut text = String::from("provenance (recorded | this reproduction):\n");
    for (key, then, now) in rows {
        let mark = if then == now { " " } else { "*" };
        text += &format!("  {mark} {key:<28} {then} | {now}\n");
    }
    Ok(text)
}
