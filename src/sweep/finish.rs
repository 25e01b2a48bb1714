//! After the runs: every saved run read back from the parts (whether this process ran it or an
//! earlier one), aggregated into cells, the verdict and the scenarios, and the tables written.

use std::path::Path;

use polars::prelude::DataFrame;

use super::hooks::TestHooks;
use super::persist;
use super::{context_keys, table_metadata};
use crate::config::Sweep;
use crate::error::{Error, Result};
use crate::preprocess::Prepare;
use crate::results::{self, EffectRow, PathRow, RunRow, ScenarioRow, SummaryRow, VerdictRow};
use crate::train::EpochStats;

/// The tables of a finished sweep, in run order.
pub struct Tables {
    pub rows: Vec<RunRow>,
    pub epochs: Vec<(String, Vec<EpochStats>)>,
    pub summary: Vec<SummaryRow>,
    pub verdict: Vec<VerdictRow>,
    /// The factorial effects and ablation paths of the fixes (with `[ablation]`).
    pub effects: Vec<EffectRow>,
    pub paths: Vec<PathRow>,
    pub scenarios: Vec<ScenarioRow>,
}

impl Tables {
    /// Reads every run of the sweep back from `out` and computes the tables; a run that is not
    /// saved there is a failure of the tool.
    pub fn from_saved(sweep: &Sweep, out: &Path) -> Result<Tables> {
        let mut saved = persist::load(out, sweep)?;
        let mut rows = Vec::with_capacity(sweep.runs.len());
        let mut epochs = Vec::with_capacity(sweep.runs.len());
        for run in &sweep.runs {
            let (row, e) = saved.remove(&run.id).ok_or_else(|| {
                Error::Tool(format!(
                    "run {} ({}) was not saved in {}",
                    run.index,
                    run.id,
                    out.display()
                ))
            })?;
            rows.push(row);
            epochs.push((run.id.clone(), e));
        }
        let summary = results::summarize(&rows);
        let verdict = sweep
            .ablation
            .as_ref()
            .map(|a| results::verdict(a, &summary, &rows, &results::Judging::of(sweep)))
            .unwrap_or_default();
        let (effects, paths) = match &sweep.ablation {
            Some(a) => {
                let designs = results::judged_designs(a, &rows, &results::Judging::of(sweep));
                (
                    results::effects_of(a, &designs, sweep.seed, results::BOOTSTRAP_SAMPLES),
                    results::paths_of(a, &designs),
                )
            }
            None => (Vec::new(), Vec::new()),
        };
        let scenarios = results::evaluate_all(&sweep.scenarios, &rows);
        Ok(Tables {
            rows,
            epochs,
            summary,
            verdict,
            effects,
            paths,
            scenarios,
        })
    }

    /// The names of the tables [`Tables::write`] writes, without `.parquet`, for messages.
    pub fn written(&self, sweep: &Sweep) -> Vec<&'static str> {
        let mut names = vec!["runs", "epochs", "summary"];
        if sweep.data.source != crate::config::DataSource::None {
            names.push("reference");
        }
        if sweep.ablation.is_some() {
            names.extend(["verdict", "effects", "paths"]);
        }
        if !self.scenarios.is_empty() {
            names.push("scenarios");
        }
        names
    }

    /// Writes every table into `out`, `runs.parquet` last (its presence means the sweep is done);
    /// `reference.parquet` is a copy of the folder's reference part.
    pub fn write(&self, sweep: &Sweep, out: &Path, hooks: &TestHooks) -> Result<()> {
        let meta = table_metadata(sweep);
        // No reference without a data set (`source = "none"`).
        if sweep.data.source != crate::config::DataSource::None {
            let part = out.join(persist::PARTS).join(persist::REFERENCE_PART);
            let reference = std::fs::read(&part).map_err(|e| {
                Error::io(
                    format!(
                        "reading {} (written by every `sweep run` into this folder)",
                        part.display()
                    ),
                    e,
                )
            })?;
            results::write_atomic(&out.join("reference.parquet"), |f| {
                use std::io::Write;
                f.write_all(&reference)
                    .map_err(|e| Error::io("writing reference.parquet", e))
            })?;
        }
        let epochs: Vec<(&str, &[EpochStats])> = self
            .epochs
            .iter()
            .map(|(id, e)| (id.as_str(), e.as_slice()))
            .collect();
        type Metadata = [(String, String)];
        let mut tables: Vec<(&str, DataFrame, &Metadata)> = vec![
            ("epochs.parquet", results::epochs_frame(&epochs)?, &meta),
            (
                "summary.parquet",
                results::summary_frame(&self.summary)?,
                &meta,
            ),
        ];
        if sweep.ablation.is_some() {
            let keys = context_keys(sweep);
            let frame = results::verdict_frame(&self.verdict, &keys, &results::Judging::of(sweep))?;
            tables.push(("verdict.parquet", frame, &meta));
            let frame = results::effects_frame(&self.effects, &keys)?;
            tables.push(("effects.parquet", frame, &meta));
            let frame = results::paths_frame(&self.paths, &keys)?;
            tables.push(("paths.parquet", frame, &meta));
        }
        if !self.scenarios.is_empty() {
            let frame = results::scenarios_frame(&self.scenarios)?;
            tables.push(("scenarios.parquet", frame, &meta));
        }
        tables.push(("runs.parquet", results::runs_frame(&self.rows)?, &meta));
        for (name, mut df, metadata) in tables {
            results::write_parquet(&out.join(name), &mut df, metadata)?;
            if let Some(delay) = hooks.final_write_delay {
                std::thread::sleep(delay);
            }
        }
        Ok(())
    }
}

/// The reference table of the prepared data sets and its metadata.
pub fn reference_table(
    sweep: &Sweep,
    prepared: &Prepare,
) -> Result<(DataFrame, Vec<(String, String)>)> {
    let refs: Vec<_> = prepared
        .datasets
        .iter()
        .map(|(seed, (d, r))| (*seed, d.feature_names.as_slice(), &**r))
        .collect();
    Ok((
        results::reference_frame(&refs)?,
        reference_metadata(&table_metadata(sweep), prepared),
    ))
}

/// The tables' metadata plus one `reference.<data set>` entry per data set.
fn reference_metadata(meta: &[(String, String)], prepared: &Prepare) -> Vec<(String, String)> {
    let mut out = meta.to_vec();
    for (seed, (_, r)) in &prepared.datasets {
        let tag = seed.map_or("file".to_string(), |s| format!("data_seed={s}"));
        out.push((
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
    out
}

/// `timing.toml`'s peak memory lines: after the run phase (preparation and runs) and at the
/// end (the table write included); none where the peak cannot be read.
pub(super) fn peak_memory_lines(after_runs: Option<f64>) -> String {
    match (after_runs, crate::peak_memory_mb()) {
        (Some(runs), Some(end)) => format!(
            "# peak resident memory (MB): after the run phase, and at the end\n\
             peak_memory_mb_runs = {runs:.1}\npeak_memory_mb = {end:.1}\n"
        ),
        _ => String::new(),
    }
}
