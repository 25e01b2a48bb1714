//! Which figures a results folder gets and where their data comes from: every run's curves
//! from `epochs.parquet`, cells from `runs.parquet`, the ablation's factors from the config in
//! the tables' metadata; `sweep plot` draws one run, one cell or the excess-MSE grid on request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::draw::{self, CellGrid, CellPanel, RunCurves, Series};
use super::{require, row_key, value_text, varying_columns};
use crate::config::{display_value, Bound};
use crate::error::{Error, Result};
use crate::outcome::EpochStats;
use crate::results::{epochs_from_frame, read_metadata_value, Judging, EXCESS_FLOOR};

/// Reads every run's epochs from `epochs.parquet`, keyed by run id.
fn read_epochs(dir: &Path) -> Result<BTreeMap<String, Vec<EpochStats>>> {
    epochs_from_frame(&require(dir, "epochs.parquet")?)
}

fn curves_from(epochs: &BTreeMap<String, Vec<EpochStats>>) -> BTreeMap<String, RunCurves> {
    epochs
        .iter()
        .map(|(id, stats)| (id.clone(), RunCurves::from_epochs(id, stats)))
        .collect()
}

/// Reads every run's curves from `epochs.parquet`, keyed by run id.
pub fn read_curves(dir: &Path) -> Result<BTreeMap<String, RunCurves>> {
    Ok(curves_from(&read_epochs(dir)?))
}

/// A cell of the sweep as the report sees it: its label, its runs (with seed labels), their OLS
/// MSE (each run's own data set), and its `converge_tol`.
struct Cell {
    label: String,
    run_ids: Vec<(String, String)>,
    ols_mse: Vec<f64>,
    converge_tol: f64,
}

fn cells(runs: &DataFrame, keys: &[String]) -> Vec<Cell> {
    let mut cells: Vec<Cell> = Vec::new();
    // Runs of several data realizations pool in a cell: their labels say which.
    let realizations = runs
        .column("data_seed")
        .is_ok_and(|c| c.n_unique().unwrap_or(1) > 1);
    for i in 0..runs.height() {
        // A scenario's name says what its cell is; its settings are in the cell table.
        let label = match keys.first() {
            None => "all runs".to_string(),
            Some(k) if k == "scenario" => value_text(runs, k, i),
            Some(_) => row_key(runs, keys, i),
        };
        let run = (
            value_text(runs, "run_id", i),
            if realizations {
                format!(
                    "seed {}, data {}",
                    value_text(runs, "seed", i),
                    value_text(runs, "data_seed", i)
                )
            } else {
                format!("seed {}", value_text(runs, "seed", i))
            },
        );
        let number = |column: &str| value_text(runs, column, i).parse().unwrap_or(f64::NAN);
        let ols_mse = runs
            .column("ols_mse")
            .ok()
            .and_then(|c| c.f64().ok().and_then(|v| v.get(i)))
            .unwrap_or(f64::NAN);
        match cells.iter_mut().find(|c| c.label == label) {
            Some(c) => {
                c.run_ids.push(run);
                c.ols_mse.push(ols_mse);
            }
            None => cells.push(Cell {
                label,
                run_ids: vec![run],
                ols_mse: vec![ols_mse],
                converge_tol: number("converge_tol"),
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

/// The panels of the excess-MSE grid, one per cell: each run's train MSE over its OLS MSE,
/// minus 1, floored at [`EXCESS_FLOOR`] (not finite for a diverged epoch, which is not drawn).
fn excess_cells(cells: &[Cell], curves: &BTreeMap<String, RunCurves>) -> Vec<CellPanel> {
    cells
        .iter()
        .map(|c| CellPanel {
            label: c.label.clone(),
            runs: c
                .run_ids
                .iter()
                .zip(&c.ols_mse)
                .filter_map(|((id, label), ols)| {
                    curves.get(id).map(|r| Series {
                        label: label.clone(),
                        points: r
                            .epoch
                            .iter()
                            .zip(&r.train_mse)
                            .map(|(e, mse)| {
                                let excess = mse / ols - 1.0;
                                (
                                    *e,
                                    if excess.is_finite() {
                                        excess.max(EXCESS_FLOOR)
                                    } else {
                                        f64::NAN
                                    },
                                )
                            })
                            .collect(),
                    })
                })
                .collect(),
            threshold: Some(c.converge_tol),
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
    let text = read_metadata_value(&dir.join("runs.parquet"), "sweep.config")?.unwrap_or_default();
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

/// Draws the figures the report links: the excess MSE over OLS by cell (when the runs have a
/// reference); for a command sweep (`command` its judging), every metric the runs reported by
/// cell; else the diagnostics of the key cells.
pub(super) fn report_figures(
    dir: &Path,
    runs: &DataFrame,
    keys: &[String],
    command: Option<&Judging>,
) -> Result<Vec<(String, PathBuf)>> {
    let fig_dir = dir.join("figures");
    std::fs::create_dir_all(&fig_dir)
        .map_err(|e| Error::io(format!("creating {}", fig_dir.display()), e))?;
    let epochs = read_epochs(dir)?;
    let curves = curves_from(&epochs);
    let cells = cells(runs, keys);
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut written = Vec::new();
    if cells
        .iter()
        .any(|c| c.ols_mse.iter().any(|v| v.is_finite()))
    {
        let panels = excess_cells(&cells, &curves);
        let title = format!("{name}: excess train MSE over OLS by cell");
        let files = draw::cell_grid(
            &fig_dir.join("excess_by_cell"),
            &excess_grid(&title, &panels),
        )?;
        written.push((
            "excess train MSE over OLS against epoch, every cell (log axis)".to_string(),
            files[1].clone(),
        ));
    }
    match command {
        Some(judging) => written.extend(metric_figures(&fig_dir, &name, &cells, &epochs, judging)?),
        None => written.extend(diagnostics_figures(
            dir, &fig_dir, &name, &cells, keys, &curves,
        )?),
    }
    Ok(written)
}

/// The excess-MSE figure of `cells`.
fn excess_grid<'a>(title: &'a str, cells: &'a [CellPanel]) -> CellGrid<'a> {
    CellGrid {
        title,
        y_name: "excess MSE over OLS (MSE / OLS - 1)",
        threshold_label: "converge_tol: converged below",
        cells,
    }
}

/// The diagnostics of the key cells: per context, all fixes on and all fixes off; else every
/// scenario; else the first and last cell.
fn diagnostics_figures(
    dir: &Path,
    fig_dir: &Path,
    name: &str,
    cells: &[Cell],
    keys: &[String],
    curves: &BTreeMap<String, RunCurves>,
) -> Result<Vec<(String, PathBuf)>> {
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
    let mut written = Vec::new();
    for cell in key_cells {
        let stem = fig_dir.join(format!("diagnostics_{}", file_stem(&cell.label)));
        let (files, _) = draw::diagnostics(
            &stem,
            &format!("{name}: {}", cell.label),
            &curves_of(curves, &cell.run_ids),
        )?;
        written.push((format!("diagnostics, {}", cell.label), files[1].clone()));
    }
    Ok(written)
}

/// The metrics a command sweep's runs reported, in the epochs table's order: the fixed columns
/// with a finite value in some epoch of some run, then the extra ones.
fn reported_metrics(epochs: &BTreeMap<String, Vec<EpochStats>>) -> Vec<String> {
    let all = || epochs.values().flatten();
    let fixed = EpochStats::METRICS
        .iter()
        .filter(|m| all().any(|e| e.get(m).is_some_and(f64::is_finite)))
        .map(|m| m.to_string());
    let extra: std::collections::BTreeSet<String> =
        all().flat_map(|e| e.extra.keys().cloned()).collect();
    fixed.chain(extra).collect()
}

/// For a command sweep, one figure per reported metric, every cell a panel and every run a line;
/// the judged metric's figure draws its `converged` bound.
fn metric_figures(
    fig_dir: &Path,
    name: &str,
    cells: &[Cell],
    epochs: &BTreeMap<String, Vec<EpochStats>>,
    judging: &Judging,
) -> Result<Vec<(String, PathBuf)>> {
    let mut written = Vec::new();
    for metric in reported_metrics(epochs) {
        let (threshold, threshold_label) = match judging {
            Judging::Bound { metric: m, bound } if *m == metric => match *bound {
                Bound::AtMost(x) => (Some(x), format!("converged: {metric} at most {x}")),
                Bound::AtLeast(x) => (Some(x), format!("converged: {metric} at least {x}")),
            },
            _ => (None, String::new()),
        };
        let panels: Vec<CellPanel> = cells
            .iter()
            .map(|c| CellPanel {
                label: c.label.clone(),
                runs: c
                    .run_ids
                    .iter()
                    .filter_map(|(id, label)| {
                        let points = epochs
                            .get(id)?
                            .iter()
                            .filter_map(|e| e.get(&metric).map(|v| (f64::from(e.epoch), v)));
                        Some(Series {
                            label: label.clone(),
                            points: points.collect(),
                        })
                    })
                    .collect(),
                threshold,
            })
            .collect();
        let files = draw::cell_grid(
            &fig_dir.join(format!("metric_{}", file_stem(&metric))),
            &CellGrid {
                title: &format!("{name}: {metric} by cell"),
                y_name: &metric,
                threshold_label: &threshold_label,
                cells: &panels,
            },
        )?;
        written.push((
            format!("{metric} against epoch, every cell"),
            files[1].clone(),
        ));
    }
    Ok(written)
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
            return Err(Error::Usage(format!(
                "--run {id}: no such run_id in {}/epochs.parquet",
                dir.display()
            )));
        };
        let (files, _) = draw::diagnostics(
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
                return Err(Error::Usage(format!(
                    "--cell {f}: expected KEY=VALUE, for example --cell whiten=zca"
                )));
            };
            if runs.column(k).is_err() {
                return Err(Error::Usage(format!(
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
            return Err(Error::Usage(format!(
                "--cell {}: no run matches",
                cell.join(" ")
            )));
        }
        let label = cell.join(" ");
        let (files, _) = draw::diagnostics(
            &fig_dir.join(format!("cell_{}", file_stem(&label))),
            &label,
            &curves_of(&curves, &matched),
        )?;
        return Ok(files);
    }
    let summary = require(dir, "summary.parquet")?;
    let keys = varying_columns(&summary);
    let panels = excess_cells(&cells(&runs, &keys), &curves);
    draw::cell_grid(
        &fig_dir.join("excess_by_cell"),
        &excess_grid("excess train MSE over OLS by cell", &panels),
    )
}
