//! `sweep report` and `sweep plot`: read a finished sweep's tables back, print the verdict, the
//! scenario table and the cell table, write `report.md` beside them, and draw the figures.
//! Everything here reads Parquet files only, so it works on any results folder, however old.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::config::{display_value, TRAIN_KEYS};
use crate::error::{Error, Result};
use crate::plot::{self, CellCurves, RunCurves};
use crate::results::{read_parquet, write_atomic};
use crate::table;

fn read_optional(path: &Path) -> Result<Option<DataFrame>> {
    if path.exists() {
        read_parquet(path).map(Some)
    } else {
        Ok(None)
    }
}

fn require(dir: &Path, name: &str) -> Result<DataFrame> {
    let path = dir.join(name);
    if !path.exists() {
        return Err(Error::Config(format!(
            "{} has no {name}: give the output folder of a finished `sweep run`",
            dir.display()
        )));
    }
    read_parquet(&path)
}

fn value_text(df: &DataFrame, column: &str, row: usize) -> String {
    df.column(column)
        .ok()
        .and_then(|c| c.get(row).ok())
        .map(|v| table::cell(&v))
        .unwrap_or_default()
}

/// The settings columns of `summary.parquet` that take more than one value, plus `scenario`
/// when present: what tells cells apart.
fn varying_columns(summary: &DataFrame) -> Vec<String> {
    let mut keys = Vec::new();
    if summary
        .column("scenario")
        .is_ok_and(|c| c.null_count() < c.len())
    {
        keys.push("scenario".to_string());
    }
    for key in TRAIN_KEYS.iter().filter(|k| **k != "seed") {
        if let Ok(c) = summary.column(key) {
            if c.n_unique().unwrap_or(1) > 1 {
                keys.push(key.to_string());
            }
        }
    }
    keys
}

fn row_key(df: &DataFrame, keys: &[String], row: usize) -> String {
    keys.iter()
        .map(|k| format!("{k}={}", value_text(df, k, row)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads every run's curves from `epochs.parquet`, keyed by run id.
pub fn read_curves(dir: &Path) -> Result<BTreeMap<String, RunCurves>> {
    let epochs = require(dir, "epochs.parquet")?;
    let ids = epochs
        .column("run_id")
        .and_then(|c| c.str().cloned())
        .map_err(|e| Error::table("epochs.run_id", e))?;
    let f64s = |name: &str| -> Result<Vec<f64>> {
        let c = epochs
            .column(name)
            .map_err(|e| Error::table(format!("epochs.{name}"), e))?;
        let c = c
            .cast(&DataType::Float64)
            .map_err(|e| Error::table(format!("epochs.{name}"), e))?;
        Ok(c.f64()
            .map_err(|e| Error::table(format!("epochs.{name}"), e))?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    };
    let epoch = f64s("epoch")?;
    let columns: Vec<Vec<f64>> = plot::DIAGNOSTICS
        .iter()
        .map(|n| f64s(n))
        .collect::<Result<_>>()?;
    let mut out: BTreeMap<String, RunCurves> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let id = id.unwrap_or_default();
        let curves = out.entry(id.to_string()).or_insert_with(|| RunCurves {
            label: id.to_string(),
            ..Default::default()
        });
        curves.epoch.push(epoch[i]);
        let values: Vec<f64> = columns.iter().map(|c| c[i]).collect();
        curves.weight_norm.push(values[0]);
        curves.prediction.push(values[1]);
        curves.loss.push(values[2]);
        curves.gradient_norm.push(values[3]);
        curves.update_ratio.push(values[4]);
        curves.train_r2.push(values[5]);
    }
    Ok(out)
}

/// A cell of the sweep as the report sees it: its label, its runs (with seed labels), its OLS R².
struct Cell {
    label: String,
    run_ids: Vec<(String, String)>,
    ols_r2: f64,
}

fn cells(runs: &DataFrame, keys: &[String]) -> Vec<Cell> {
    let mut cells: Vec<Cell> = Vec::new();
    for i in 0..runs.height() {
        // A scenario's name says what its cell is; its settings are in the cell table.
        let label = match keys.first() {
            None => "all runs".to_string(),
            Some(k) if k == "scenario" => value_text(runs, k, i),
            Some(_) => row_key(runs, keys, i),
        };
        let run = (
            value_text(runs, "run_id", i),
            format!("seed {}", value_text(runs, "seed", i)),
        );
        let ols_r2 = value_text(runs, "ols_r2", i).parse().unwrap_or(f64::NAN);
        match cells.iter_mut().find(|c| c.label == label) {
            Some(c) => c.run_ids.push(run),
            None => cells.push(Cell {
                label,
                run_ids: vec![run],
                ols_r2,
            }),
        }
    }
    cells
}

fn curves_of(all: &BTreeMap<String, RunCurves>, runs: &[(String, String)]) -> Vec<RunCurves> {
    runs.iter()
        .filter_map(|(id, label)| {
            all.get(id).map(|c| RunCurves {
                label: label.clone(),
                ..c.clone()
            })
        })
        .collect()
}

/// The panels of the R² grid, one per cell.
fn grid_cells(cells: &[Cell], curves: &BTreeMap<String, RunCurves>) -> Vec<CellCurves> {
    cells
        .iter()
        .map(|c| CellCurves {
            label: c.label.clone(),
            runs: curves_of(curves, &c.run_ids),
            ols_r2: c.ols_r2,
        })
        .collect()
}

fn file_stem(label: &str) -> String {
    // No dots: `Path::with_extension` would cut the name at the last one.
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The "on" values of the ablation factors, from the config stored in the tables' metadata.
fn factor_values(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut file = std::fs::File::open(dir.join("runs.parquet"))
        .map_err(|e| Error::io("opening runs.parquet", e))?;
    let mut reader = ParquetReader::new(&mut file);
    let meta = reader
        .get_metadata()
        .map_err(|e| Error::table("reading runs.parquet metadata", e))?;
    let text = meta
        .key_value_metadata()
        .as_ref()
        .and_then(|kv| {
            kv.iter()
                .find(|k| k.key == "sweep.config")
                .and_then(|k| k.value.clone())
        })
        .unwrap_or_default();
    let config: toml::Table = toml::from_str(&text).unwrap_or_default();
    let factors = config
        .get("ablation")
        .and_then(|a| a.get("factors"))
        .and_then(|f| f.as_table())
        .cloned()
        .unwrap_or_default();
    Ok(factors
        .iter()
        .map(|(k, on)| (k.clone(), display_value(on)))
        .collect())
}

/// Draws the figures the report links: R² by cell, and the diagnostics of the key cells (per
/// context, all fixes on and all fixes off; else every scenario; else the first and last cell).
fn figures(dir: &Path, runs: &DataFrame, keys: &[String]) -> Result<Vec<(String, PathBuf)>> {
    let fig_dir = dir.join("figures");
    std::fs::create_dir_all(&fig_dir)
        .map_err(|e| Error::io(format!("creating {}", fig_dir.display()), e))?;
    let curves = read_curves(dir)?;
    let cells = cells(runs, keys);
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut written = Vec::new();
    let grid: Vec<CellCurves> = grid_cells(&cells, &curves);
    let files = plot::r2_grid(
        &fig_dir.join("r2_by_cell"),
        &format!("{name}: train R² by cell"),
        &grid,
    )?;
    written.push((
        "train R² against epoch, every cell".to_string(),
        files[1].clone(),
    ));

    let factors = factor_values(dir)?;
    let key_cells: Vec<&Cell> = if !factors.is_empty() {
        let all_state = |c: &Cell, on: bool| {
            factors
                .iter()
                .all(|(k, v)| c.label.split(' ').any(|part| part == format!("{k}={v}")) == on)
        };
        cells
            .iter()
            .filter(|c| all_state(c, true) || all_state(c, false))
            .take(12)
            .collect()
    } else if keys.first().is_some_and(|k| k == "scenario") {
        cells.iter().take(12).collect()
    } else {
        let mut v: Vec<&Cell> = cells.iter().take(1).collect();
        v.extend(cells.iter().skip(1).last());
        v
    };
    for cell in key_cells {
        let stem = fig_dir.join(format!("diagnostics_{}", file_stem(&cell.label)));
        let (files, _) = plot::diagnostics(
            &stem,
            &format!("{name}: {}", cell.label),
            &curves_of(&curves, &cell.run_ids),
        )?;
        written.push((format!("diagnostics, {}", cell.label), files[1].clone()));
    }
    Ok(written)
}

/// `sweep report DIR`: returns the text printed; writes `report.md` and the figures.
pub fn report(dir: &Path) -> Result<String> {
    let summary = require(dir, "summary.parquet")?;
    let runs = require(dir, "runs.parquet")?;
    let verdict = read_optional(&dir.join("verdict.parquet"))?;
    let scenarios = read_optional(&dir.join("scenarios.parquet"))?;
    let keys = varying_columns(&summary);
    let mut cell_columns: Vec<String> = keys.clone();
    cell_columns.extend(
        [
            "n_runs",
            "converged_fraction",
            "diverged_fraction",
            "r2_median",
            "r2_min",
            "r2_max",
            "epochs_to_converge_median",
            "slow_share_median",
            "slowest_signal_epochs_median",
        ]
        .map(String::from),
    );
    let cell_table = summary
        .select(cell_columns.iter().map(|s| s.as_str()))
        .map_err(|e| Error::table("summary.parquet", e))?;

    let mut text = String::new();
    let mut md = format!(
        "# Report: {}\n\nGenerated by `sweep report` {} from the tables in this folder.\n",
        dir.display(),
        crate::VERSION
    );
    if let Some(v) = &verdict {
        text += &format!("verdict:\n{}\n", table::text(v));
        md += &format!(
            "\n## Verdict\n\nFor each context and fix: the all-on cell against the cell with only that fix off. \
             `necessary`: all-on converges in at least `converge_high` of seeds and one-off in at most `converge_low`; \
             `not_necessary`: one-off converges in at least `converge_high`; else `unclear`.\n\n{}",
            table::markdown(v)
        );
    }
    if let Some(s) = &scenarios {
        text += &format!(
            "scenarios:\n{}\n",
            table::text(&s.drop("description").unwrap_or(s.clone()))
        );
        md += &format!("\n## The report's scenarios\n\n{}", table::markdown(s));
    }
    text += &format!("cells:\n{}", table::text(&cell_table));
    md += &format!(
        "\n## Cells\n\n{}\n`slow_share`: the share of a run's excess loss (over OLS) that lies in eigen-directions of the \
         training covariance with eigenvalue below 1 / (2 lr steps), which plain gradient descent cannot fix in the \
         steps the run took; near 1, the run is stuck because of the spectrum, not because of noise. \
         `slowest_signal_epochs`: the epochs plain gradient descent needs for one e-fold along the slowest direction \
         carrying at least 0.1% of the OLS fit's explained variance; far above the epochs run, the OLS answer is out \
         of reach without changing the spectrum (whitening) or the step.\n",
        table::markdown(&cell_table)
    );

    let figures = figures(dir, &runs, &keys)?;
    md += "\n## Figures\n\n";
    for (title, path) in &figures {
        let rel = path.strip_prefix(dir).unwrap_or(path);
        md += &format!(
            "- [{title}]({}) ([svg]({}))\n",
            rel.display(),
            rel.with_extension("svg").display()
        );
    }
    let report_path = dir.join("report.md");
    write_atomic(&report_path, |f| {
        use std::io::Write;
        f.write_all(md.as_bytes())
            .map_err(|e| Error::io("writing report.md", e))
    })?;
    text += &format!(
        "\nwrote {} and {} figures in {}\n",
        report_path.display(),
        figures.len() * 2,
        dir.join("figures").display()
    );
    Ok(text)
}

/// `sweep plot DIR [--run ID | --cell KEY=VALUE...]`: returns the files written.
pub fn plot(dir: &Path, run: Option<&str>, cell: &[String]) -> Result<Vec<PathBuf>> {
    let runs = require(dir, "runs.parquet")?;
    let fig_dir = dir.join("figures");
    std::fs::create_dir_all(&fig_dir)
        .map_err(|e| Error::io(format!("creating {}", fig_dir.display()), e))?;
    let curves = read_curves(dir)?;
    if let Some(id) = run {
        let Some(c) = curves.get(id) else {
            return Err(Error::Config(format!(
                "--run {id}: no such run_id in {}/epochs.parquet",
                dir.display()
            )));
        };
        let (files, _) = plot::diagnostics(
            &fig_dir.join(format!("run_{}", file_stem(id))),
            &format!("run {id}"),
            std::slice::from_ref(c),
        )?;
        return Ok(files);
    }
    if !cell.is_empty() {
        let mut filters = Vec::new();
        for f in cell {
            let Some((k, v)) = f.split_once('=') else {
                return Err(Error::Config(format!(
                    "--cell {f}: expected KEY=VALUE, for example --cell whiten=zca"
                )));
            };
            if runs.column(k).is_err() {
                return Err(Error::Config(format!(
                    "--cell {f}: runs.parquet has no column `{k}`"
                )));
            }
            filters.push((k.to_string(), v.to_string()));
        }
        let same = |a: &str, b: &str| {
            a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
        };
        let matched: Vec<(String, String)> = (0..runs.height())
            .filter(|&i| {
                filters
                    .iter()
                    .all(|(k, v)| same(&value_text(&runs, k, i), v))
            })
            .map(|i| {
                (
                    value_text(&runs, "run_id", i),
                    format!("seed {}", value_text(&runs, "seed", i)),
                )
            })
            .collect();
        if matched.is_empty() {
            return Err(Error::Config(format!(
                "--cell {}: no run matches",
                cell.join(" ")
            )));
        }
        let label = cell.join(" ");
        let (files, _) = plot::diagnostics(
            &fig_dir.join(format!("cell_{}", file_stem(&label))),
            &label,
            &curves_of(&curves, &matched),
        )?;
        return Ok(files);
    }
    let summary = require(dir, "summary.parquet")?;
    let keys = varying_columns(&summary);
    let grid: Vec<CellCurves> = grid_cells(&cells(&runs, &keys), &curves);
    plot::r2_grid(&fig_dir.join("r2_by_cell"), "train R² by cell", &grid)
}
