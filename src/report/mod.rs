//! `sweep report` and `sweep plot`: read a finished sweep's tables back, print the verdict, the
//! scenario table and the cell table, write `report.md` beside them, and draw the figures
//! (`figures` chooses them, `draw` draws them with plotters). `table` renders any table as text
//! or Markdown; `run_summary` is what `sweep run` prints when it finishes. Everything here reads
//! Parquet files only, so it works on any results folder, however old.

mod canvas;
mod draw;
mod figures;
mod finding_figures;
mod paper;
mod run_summary;
mod table;

use std::path::{Path, PathBuf};

use polars::prelude::*;

pub use draw::{
    cell_grid, diagnostics, use_log, CellGrid, CellPanel, Plotted, RunCurves, Series, DIAGNOSTICS,
};
pub use figures::{plot, read_curves};
pub use finding_figures::{ablation_paths, labels_by_tolerance, LabelCurve, PathPanel};
pub use paper::{escape, tabular};
pub use run_summary::{cell_label, context_label, ended_by_process, judged_median, summary_text};
pub use table::{markdown, number, text};

use crate::error::{Error, Result};
use crate::results::{read_parquet, write_text};

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
        return Err(Error::Usage(format!(
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
    // The settings columns stand before `n_runs`: the train keys, then a command sweep's params.
    let names: Vec<String> = summary
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let settings_end = names
        .iter()
        .position(|n| n == "n_runs")
        .unwrap_or(names.len());
    for key in &names[..settings_end] {
        if ["scenario", "data_seed", "seed"].contains(&key.as_str()) {
            continue;
        }
        if let Ok(c) = summary.column(key) {
            if c.n_unique().unwrap_or(1) > 1 {
                keys.push(key.clone());
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

/// The summary columns of the cell table, after the keys that tell cells apart.
const CELL_FIGURES: [&str; 9] = [
    "n_runs",
    "converged_fraction",
    "diverged_fraction",
    "r2_median",
    "r2_min",
    "r2_max",
    "epochs_to_converge_median",
    "slow_share_median",
    "slowest_signal_epochs_median",
];

const VERDICT_NOTE: &str = "For each context and fix: the all-on cell against the cell with only that fix off. \
    `necessary`: all-on converges in at least `converge_high` of seeds, one-off in at most `converge_low`, and the \
    two-sided Fisher exact p of the two counts is below `alpha`; \
    `not_necessary`: one-off converges in at least `converge_high`; else `unclear`. `fisher_p`: two-sided Fisher \
    exact test of the two converged counts; `tol_low`, `tol_high`: the range of `converge_tol` over which the label \
    stays the same; `fragile`: that range does not reach a factor 3 on both sides of the chosen tolerance.";

const CELLS_NOTE: &str = "`slow_share`: the share of a run's excess loss (over OLS) that lies in eigen-directions of the \
    training covariance with eigenvalue below 1 / (2 lr steps), which plain gradient descent cannot fix in the \
    steps the run took; near 1, the run is stuck because of the spectrum, not because of noise. \
    `slowest_signal_epochs`: the epochs plain gradient descent needs for one e-fold along the slowest direction \
    carrying at least 0.1% of the OLS fit's explained variance; far above the epochs run, the OLS answer is out \
    of reach without changing the spectrum (whitening) or the step.";

/// The report as it is built: the terminal text and the Markdown of `report.md`.
struct Report {
    text: String,
    md: String,
}

impl Report {
    fn section(&mut self, text: String, md: String) {
        self.text += &text;
        self.md += &md;
    }
}

/// `sweep report DIR`: returns the text printed; writes `report.md` and the figures.
pub fn report(dir: &Path) -> Result<String> {
    let summary = require(dir, "summary.parquet")?;
    let runs = require(dir, "runs.parquet")?;
    let keys = varying_columns(&summary);
    let saved = crate::sweep::saved_sweep(dir)?;
    let cell_table = cell_table(&summary, &keys, saved.as_ref())?;
    let mut report = Report {
        text: String::new(),
        md: format!(
            "# Report: {}\n\nGenerated by `sweep report` {} from the tables in this folder.\n",
            dir.display(),
            crate::VERSION
        ),
    };
    let mut paper_tables = report.verdict_and_scenarios(dir, saved.as_ref())?;
    report.section(
        format!("cells:\n{}", text(&cell_table)),
        format!("\n## Cells\n\n{}\n{CELLS_NOTE}\n", markdown(&cell_table)),
    );
    let command = saved
        .as_ref()
        .filter(|(sweep, _)| sweep.command.is_some())
        .map(|(sweep, _)| crate::results::Judging::of(sweep));
    let mut figures = figures::report_figures(dir, &runs, &keys, command.as_ref())?;
    figures.extend(tolerance_figure(dir, saved.as_ref())?);
    figures.extend(paths_figure(dir, saved.as_ref())?);
    if let Some((sweep, tables)) = &saved {
        if !tables.effects.is_empty() {
            let reading = crate::results::reading(&tables.effects, |c| context_label(sweep, c));
            let (response, note) = match crate::results::Judging::of(sweep) {
                crate::results::Judging::Bound { metric, bound } => (
                    format!("the shortfall of final {metric} from {}", bound.text()),
                    BOUND_EFFECTS_NOTE,
                ),
                crate::results::Judging::Reference => {
                    ("log10 excess MSE".to_string(), EFFECTS_NOTE)
                }
            };
            report.section(
                format!("\neffects on {response} (effect [95% bootstrap interval]):\n{reading}"),
                format!("\n## Effects\n\n{note}\n\n```\n{reading}```\n"),
            );
        }
    }
    report.md += "\n## Figures\n\n";
    for (title, path) in &figures {
        let rel = path.strip_prefix(dir).unwrap_or(path);
        report.md += &format!(
            "- [{title}]({}) ([svg]({}))\n",
            rel.display(),
            rel.with_extension("svg").display()
        );
    }
    paper_tables.push(("cells", cell_table));
    let written = report.paper_tables(dir, &mut paper_tables)?;
    report.md += &paper::reproduce_section(dir)?;
    let report_path = dir.join("report.md");
    write_text(&report_path, &report.md)?;
    report.text += &format!(
        "\nwrote {}, {} figures in {} and {} table files (LaTeX and CSV) in {}\n",
        report_path.display(),
        figures.len() * 2,
        dir.join("figures").display(),
        written,
        dir.join("tables").display()
    );
    Ok(report.text)
}

/// The cell table: the varying settings (and the data seed when there are several) and the
/// cells' figures; for a command sweep, its incomplete runs, the judged metric's median in place
/// of R² when a bound judges it, and no column without a value.
fn cell_table(
    summary: &DataFrame,
    keys: &[String],
    saved: Option<&(crate::config::Sweep, crate::sweep::Tables)>,
) -> Result<DataFrame> {
    let mut cell_columns: Vec<&str> = keys.iter().map(String::as_str).collect();
    // The cell table tells realizations apart; the figures pool them.
    if summary
        .column("data_seed")
        .is_ok_and(|c| c.n_unique().unwrap_or(1) > 1)
    {
        cell_columns.push("data_seed");
    }
    let command = saved.filter(|(sweep, _)| sweep.command.is_some());
    let judged = command.and_then(|(sweep, tables)| match crate::results::Judging::of(sweep) {
        crate::results::Judging::Bound { metric, .. } => Some((metric, &tables.rows)),
        crate::results::Judging::Reference => None,
    });
    for figure in CELL_FIGURES {
        if judged.is_none() || !figure.starts_with("r2_") {
            cell_columns.push(figure);
        }
    }
    if command.is_some() {
        cell_columns.push("incomplete_runs");
    }
    let table_error = |e| Error::table("summary.parquet", e);
    let mut table = summary.select(cell_columns).map_err(table_error)?;
    if let (Some((metric, rows)), Some((_, tables))) = (&judged, command) {
        let medians: Vec<Option<f64>> = tables
            .summary
            .iter()
            .map(|cell| judged_median(cell, rows, metric))
            .collect();
        let at = table
            .get_column_index("diverged_fraction")
            .map_or(0, |i| i + 1);
        table
            .insert_column(at, Column::new(format!("{metric}_median").into(), medians))
            .map_err(table_error)?;
    }
    if command.is_some() {
        let empty: Vec<String> = table
            .columns()
            .iter()
            .filter(|c| {
                c.null_count() == c.len()
                    || c.f64().is_ok_and(|v| v.iter().flatten().all(f64::is_nan))
            })
            .map(|c| c.name().to_string())
            .collect();
        table = table.drop_many(empty);
    }
    Ok(table)
}

impl Report {
    /// The verdict and the scenario table, when the folder has them; returns them for the
    /// paper tables.
    fn verdict_and_scenarios(
        &mut self,
        dir: &Path,
        saved: Option<&(crate::config::Sweep, crate::sweep::Tables)>,
    ) -> Result<Vec<(&'static str, DataFrame)>> {
        let mut paper_tables = Vec::new();
        if let Some(v) = read_optional(&dir.join("verdict.parquet"))? {
            let v = match saved {
                Some((sweep, tables)) if sweep.ablation.is_some() => {
                    crate::results::printed_verdict(
                        &tables.verdict,
                        &crate::sweep::context_keys(sweep),
                        &crate::results::Judging::of(sweep),
                    )?
                }
                _ => v.drop_many(crate::results::CERTAINTY_COLUMNS.iter().copied()),
            };
            self.section(
                format!("verdict:\n{}\n", text(&v)),
                format!("\n## Verdict\n\n{VERDICT_NOTE}\n\n{}", markdown(&v)),
            );
            paper_tables.push(("verdict", v));
        }
        if let Some(s) = read_optional(&dir.join("scenarios.parquet"))? {
            self.section(
                format!(
                    "scenarios:\n{}\n",
                    text(&s.drop("description").unwrap_or(s.clone()))
                ),
                format!("\n## The report's scenarios\n\n{}", markdown(&s)),
            );
            paper_tables.push(("scenarios", s));
        }
        Ok(paper_tables)
    }

    /// Writes the paper tables and says so in `report.md`; returns how many files it wrote.
    fn paper_tables(
        &mut self,
        dir: &Path,
        tables: &mut [(&'static str, DataFrame)],
    ) -> Result<usize> {
        let written = paper::write_tables(dir, tables)?;
        self.md += &format!(
            "\n## Tables for papers\n\n`tables/` holds the verdict, scenario and cell tables above as \
             bare booktabs `tabular`s for `\\input` (numbers to {} significant digits) and as CSV \
             (every digit): {}.\n",
            paper::SIGNIFICANT,
            written
                .iter()
                .map(|p| format!("`{}`", p.strip_prefix(dir).unwrap_or(p).display()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(written.len())
    }
}

const EFFECTS_NOTE: &str = "Factorial effects on log10 of the excess train MSE over OLS (lower is better; a fix \
    \"on\" is +1): the mean over the cells where the term's +-1 contrast is +1 minus the mean where it is -1, with \
    95% bootstrap intervals (seeds resampled jointly across the cells). Listed: the factors whose interval excludes \
    zero; for each pair, synergistic (negative two-way effect: better together than the sum of its parts), redundant \
    (positive: either suffices) or additive (interval contains zero). `effects.parquet` holds every response and term, \
    `paths.parquet` the ablation paths.";

const BOUND_EFFECTS_NOTE: &str = "Factorial effects on the shortfall: how far a run's final judged metric \
    falls short of the `[command] converged` bound, in the metric's units (negative: past the bound; lower is \
    better; a fix \"on\" is +1): the mean over the cells where the term's +-1 contrast is +1 minus the mean where \
    it is -1, with 95% bootstrap intervals (seeds resampled jointly across the cells). Listed: the factors whose \
    interval excludes zero; for each pair, synergistic (negative two-way effect: better together than the sum \
    of its parts), redundant (positive: either suffices) or additive (interval contains zero). \
    `effects.parquet` holds every response and term, `paths.parquet` the ablation paths.";

/// The forward and backward ablation paths of every context (the pooled designs when there are
/// several realizations), one panel each.
fn paths_figure(
    dir: &Path,
    saved: Option<&(crate::config::Sweep, crate::sweep::Tables)>,
) -> Result<Option<(String, PathBuf)>> {
    let Some((sweep, tables)) = saved else {
        return Ok(None);
    };
    if tables.paths.is_empty() {
        return Ok(None);
    }
    let any_pooled = tables.paths.iter().any(|p| p.pooled);
    let mut panels: Vec<PathPanel> = Vec::new();
    for p in tables.paths.iter().filter(|p| p.pooled == any_pooled) {
        let context: Vec<String> = [context_label(sweep, &p.context)]
            .into_iter()
            .filter(|c| !c.is_empty())
            .chain(p.data_seed.map(|s| format!("data_seed={s}")))
            .collect();
        let title = if context.is_empty() {
            "all runs".to_string()
        } else {
            context.join(" ")
        };
        if panels.last().is_none_or(|last| last.title != title) {
            panels.push(PathPanel {
                title: title.clone(),
                paths: Vec::new(),
            });
        }
        let panel = panels.last_mut().expect("just pushed");
        if p.step == 0 {
            panel.paths.push(Series {
                label: p.direction.to_string(),
                points: Vec::new(),
            });
        }
        let series = panel.paths.last_mut().expect("a path starts at step 0");
        if let Some(f) = &p.factor {
            let sign = if p.direction == "forward" { "+" } else { "-" };
            series.label += &format!(" {sign}{f}");
        }
        series.points.push((f64::from(p.step), p.value));
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let files = ablation_paths(
        &dir.join("figures").join("ablation_paths"),
        &format!("{name}: ablation paths on log10 excess MSE"),
        &panels,
    )?;
    Ok(Some((
        "ablation paths: forward from all fixes off, backward from all on".to_string(),
        files[1].clone(),
    )))
}

/// The verdict's labels against `converge_tol` (log axis, 1e-4 to 1), recomputed from the saved
/// runs, when the folder's sweep has an `[ablation]`; the pooled rows only when the grid varies
/// the data realization. None for a sweep judged by a bound on a metric (no tolerance).
fn tolerance_figure(
    dir: &Path,
    saved: Option<&(crate::config::Sweep, crate::sweep::Tables)>,
) -> Result<Option<(String, PathBuf)>> {
    let Some((sweep, tables)) = saved else {
        return Ok(None);
    };
    let Some(ablation) = &sweep.ablation else {
        return Ok(None);
    };
    let judging = crate::results::Judging::of(sweep);
    if tables.verdict.is_empty() || judging != crate::results::Judging::Reference {
        return Ok(None);
    }
    let tols: Vec<f64> = (0..=400)
        .map(|i| 10f64.powf(-4.0 + i as f64 / 100.0))
        .collect();
    let any_pooled = tables.verdict.iter().any(|r| r.pooled);
    let rows: Vec<crate::results::VerdictRow> = tables
        .verdict
        .iter()
        .filter(|r| r.pooled == any_pooled)
        .cloned()
        .collect();
    let labels =
        crate::results::labels_along_tolerance(ablation, &rows, &tables.rows, &tols, &judging);
    let curves: Vec<LabelCurve> = rows
        .iter()
        .zip(labels)
        .map(|(row, labels)| LabelCurve {
            title: format!("{} {}", context_label(sweep, &row.context), row.factor)
                .trim()
                .to_string(),
            points: tols
                .iter()
                .zip(labels)
                .map(|(t, l)| {
                    let level = match l {
                        crate::results::Label::NotNecessary => 0.0,
                        crate::results::Label::Unclear => 1.0,
                        crate::results::Label::Necessary => 2.0,
                    };
                    (*t, level)
                })
                .collect(),
            chosen: row.context.converge_tol,
        })
        .collect();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let files = labels_by_tolerance(
        &dir.join("figures").join("verdict_by_tolerance"),
        &format!("{name}: verdict label against converge_tol"),
        &curves,
    )?;
    Ok(Some((
        "verdict label of every context and fix against converge_tol".to_string(),
        files[1].clone(),
    )))
}
