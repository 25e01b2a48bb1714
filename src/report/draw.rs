//! Figures with plotters, as SVG and PNG: the five per-epoch diagnostics the report plotted
//! (weight_norm, prediction, loss, gradient_norm, update_ratio) plus train R², one line per run;
//! and one value against epoch for every cell of a sweep on one shared axis (the excess train MSE
//! over OLS, or each metric a command reported). (`finding_figures` draws the verdict's labels against `converge_tol` and the ablation
//! paths with the same panels.)
//!
//! A panel whose values are all positive and span more than two decades gets a real log axis
//! (ticks at powers of ten, labelled `1e-4`), and its axis says so; nothing is clipped.

use std::path::{Path, PathBuf};

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::canvas::{both_formats, plot_error, titled};
use crate::error::Result;
use crate::train::EpochStats;

/// The points plotted in one panel, per series.
pub type Plotted = Vec<Vec<(f64, f64)>>;

/// One line of a panel: its legend label and its points `(epoch, value)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// The per-epoch diagnostics of one run, as read from `epochs.parquet`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunCurves {
    pub label: String,
    pub epoch: Vec<f64>,
    pub weight_norm: Vec<f64>,
    pub prediction: Vec<f64>,
    pub loss: Vec<f64>,
    pub gradient_norm: Vec<f64>,
    pub update_ratio: Vec<f64>,
    pub train_r2: Vec<f64>,
    pub train_mse: Vec<f64>,
}

/// The diagnostics panels, in drawing order: (column name, values of a run).
pub const DIAGNOSTICS: [&str; 6] = [
    "weight_norm",
    "prediction",
    "loss",
    "gradient_norm",
    "update_ratio",
    "train_r2",
];

impl RunCurves {
    /// The curves of one run's epochs, labelled `label`.
    pub fn from_epochs(label: &str, epochs: &[EpochStats]) -> RunCurves {
        let values = |f: fn(&EpochStats) -> f64| epochs.iter().map(f).collect();
        RunCurves {
            label: label.to_string(),
            epoch: values(|e| f64::from(e.epoch)),
            weight_norm: values(|e| e.weight_norm),
            prediction: values(|e| e.prediction),
            loss: values(|e| e.loss),
            gradient_norm: values(|e| e.gradient_norm),
            update_ratio: values(|e| e.update_ratio),
            train_r2: values(|e| e.train_r2),
            train_mse: values(|e| e.train_mse),
        }
    }

    /// One diagnostic as a plot line `(epoch, value)`, labelled with the run's label.
    pub fn series(&self, name: &str) -> Series {
        Series {
            label: self.label.clone(),
            points: self
                .epoch
                .iter()
                .copied()
                .zip(self.column(name).iter().copied())
                .collect(),
        }
    }

    pub fn column(&self, name: &str) -> &[f64] {
        match name {
            "weight_norm" => &self.weight_norm,
            "prediction" => &self.prediction,
            "loss" => &self.loss,
            "gradient_norm" => &self.gradient_norm,
            "update_ratio" => &self.update_ratio,
            "train_r2" => &self.train_r2,
            other => panic!("unknown diagnostic {other}"),
        }
    }
}

/// Whether a panel's values are drawn on a log axis: all positive and spanning more than two decades.
pub fn use_log(values: impl Iterator<Item = f64> + Clone) -> bool {
    let finite = values.filter(|v| v.is_finite());
    let (min, max) = finite
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    finite.clone().all(|v| v > 0.0) && min.is_finite() && max / min > 100.0
}

/// The plotted range of a panel: `x0..x1` and `y0..y1`, padded (by a factor on a log axis),
/// never empty.
struct Bounds {
    x: (f64, f64),
    y: (f64, f64),
    /// `y` before padding: its width decides which tick labels are rounded to zero.
    span: f64,
}

impl Bounds {
    /// The range of the plotted points and the reference line, or `fixed` for `y` (a range shared
    /// by the panels of a figure); `None` when nothing is finite.
    fn of(
        plotted: &Plotted,
        reference: Option<f64>,
        log: bool,
        fixed: Option<(f64, f64)>,
    ) -> Option<Bounds> {
        let min_max = |acc: (f64, f64), v: f64| (acc.0.min(v), acc.1.max(v));
        let empty = (f64::INFINITY, f64::NEG_INFINITY);
        let (x0, x1) = plotted.iter().flatten().map(|p| p.0).fold(empty, min_max);
        if !x0.is_finite() {
            return None;
        }
        let ys = plotted.iter().flatten().map(|p| p.1).chain(reference);
        let (mut y0, mut y1) = fixed.unwrap_or_else(|| ys.fold(empty, min_max));
        let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
        if log {
            let factor = (y1 / y0).powf(0.05).max(1.5);
            return Some(Bounds {
                x: (x0, x1),
                y: (y0 / factor, y1 * factor),
                span: y1 - y0,
            });
        }
        if y1 - y0 < 1e-12 * y1.abs().max(1e-300) {
            (y0, y1) = (
                y0 - 0.5 * y0.abs().max(1e-12),
                y1 + 0.5 * y1.abs().max(1e-12),
            );
        }
        let pad = 0.05 * (y1 - y0);
        Some(Bounds {
            x: (x0, x1),
            y: (y0 - pad, y1 + pad),
            span: y1 - y0,
        })
    }
}

/// A tick label on a log axis: `1e-4` for powers of ten, else one significant digit (`2e-4`).
fn log_tick(v: f64) -> String {
    let e = v.log10();
    if (e - e.round()).abs() < 1e-6 {
        format!("1e{}", e.round() as i32)
    } else {
        format!("{v:.0e}")
    }
}

/// The points of each series a panel can draw: finite, and positive on a log axis.
fn drawable(series: &[Series], log: bool) -> Plotted {
    series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|p| p.1.is_finite() && (!log || p.1 > 0.0))
                .copied()
                .collect()
        })
        .collect()
}

/// Draws one panel; returns the points plotted per series (the finite ones; on a log axis, the
/// positive ones). Values all positive and spanning more than two decades get a real log axis;
/// `y_range` fixes the range (shared by the panels of a figure that are compared).
pub(super) fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    (x_name, y_name): (&str, &str),
    series: &[Series],
    reference: Option<(f64, &str)>,
    y_range: Option<(f64, f64)>,
    legend: bool,
) -> Result<Plotted> {
    let log = match y_range {
        Some((lo, hi)) => lo > 0.0 && hi / lo > 100.0,
        None => use_log(series.iter().flat_map(|s| s.points.iter().map(|p| p.1))),
    };
    let plotted = drawable(series, log);
    let Some(bounds) = Bounds::of(&plotted, reference.map(|r| r.0), log, y_range) else {
        return Ok(plotted);
    };
    let ((x0, x1), (y_lo, y_hi), span) = (bounds.x, bounds.y, bounds.span);
    let y_desc = if log {
        format!("{y_name} (log axis)")
    } else {
        y_name.to_string()
    };
    let builder = || {
        let mut b = ChartBuilder::on(area);
        b.caption(title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80);
        b
    };
    // The same mesh, lines and legend on either kind of y axis.
    macro_rules! finish {
        ($chart:expr, $format:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_name)
                .y_desc(y_desc.as_str())
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter($format)
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 15))
                .draw()
                .map_err(plot_error)?;
            draw_lines(&mut chart, series, &plotted, reference, (x0, x1))?;
            if legend && (series.len() > 1 || reference.is_some()) {
                chart
                    .configure_series_labels()
                    .label_font(("sans-serif", 13))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.4))
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()
                    .map_err(plot_error)?;
            }
        }};
    }
    if log {
        let chart = builder()
            .build_cartesian_2d(x0..x1, (y_lo..y_hi).log_scale())
            .map_err(plot_error)?;
        finish!(chart, &|v: &f64| log_tick(*v));
    } else {
        let chart = builder()
            .build_cartesian_2d(x0..x1, y_lo..y_hi)
            .map_err(plot_error)?;
        finish!(chart, &|v: &f64| super::table::number(
            if v.abs() < 1e-9 * span { 0.0 } else { *v }
        ));
    }
    Ok(plotted)
}

/// One line per series, and the reference value as a black line across `x`, each with its
/// legend entry; on a linear or a log y axis.
fn draw_lines<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    series: &[Series],
    plotted: &Plotted,
    reference: Option<(f64, &str)>,
    (x0, x1): (f64, f64),
) -> Result<()> {
    for (i, (s, points)) in series.iter().zip(plotted).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        // Thick strokes on dense zig-zags draw miter spikes in bitmaps: thin lines for long series.
        let width = if points.len() > 100 { 1 } else { 2 };
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(width),
            ))
            .map_err(plot_error)?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    if let Some((y, label)) = reference {
        chart
            .draw_series(LineSeries::new([(x0, y), (x1, y)], BLACK.stroke_width(1)))
            .map_err(plot_error)?
            .label(label.to_string())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    }
    Ok(())
}

fn diagnostics_draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    runs: &[RunCurves],
) -> Result<Vec<Plotted>> {
    let body = titled(root, title)?;
    let mut plotted = Vec::new();
    for (i, (area, name)) in body
        .split_evenly((2, 3))
        .iter()
        .zip(DIAGNOSTICS)
        .enumerate()
    {
        let series: Vec<Series> = runs.iter().map(|r| r.series(name)).collect();
        let y_name = if name == "train_r2" {
            "train R²"
        } else {
            name
        };
        plotted.push(panel(
            area,
            name,
            ("epoch", y_name),
            &series,
            None,
            None,
            i == 0,
        )?);
    }
    Ok(plotted)
}

/// The five diagnostics (and train R²) for one or more runs of a cell: one line per run.
/// Returns the files written and, per panel and run, the points plotted.
pub fn diagnostics(
    stem: &Path,
    title: &str,
    runs: &[RunCurves],
) -> Result<(Vec<PathBuf>, Vec<Plotted>)> {
    both_formats(
        stem,
        (1500, 900),
        |r| diagnostics_draw(r, title, runs),
        |r| diagnostics_draw(r, title, runs),
    )
}

/// One panel of a figure of cells: the cell's label, one line per run (`(epoch, value)`), and
/// its threshold, drawn as a black line, if any.
pub struct CellPanel {
    pub label: String,
    pub runs: Vec<Series>,
    pub threshold: Option<f64>,
}

/// A figure with one panel per cell on one shared y range, so that cells compare at a glance:
/// the excess MSE over OLS with `converge_tol`, or a command run's metric with its bound.
pub struct CellGrid<'a> {
    pub title: &'a str,
    pub y_name: &'a str,
    /// The legend of the threshold line.
    pub threshold_label: &'a str,
    pub cells: &'a [CellPanel],
}

fn cell_grid_draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    grid: &CellGrid,
    columns: usize,
) -> Result<()> {
    let body = titled(root, grid.title)?;
    let values = grid
        .cells
        .iter()
        .flat_map(|c| c.runs.iter().flat_map(|s| s.points.iter().map(|p| p.1)))
        .chain(grid.cells.iter().filter_map(|c| c.threshold))
        .filter(|v| v.is_finite());
    let shared = values.fold(None, |acc: Option<(f64, f64)>, v| {
        Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
    });
    let rows = grid.cells.len().div_ceil(columns);
    for (i, (area, cell)) in body
        .split_evenly((rows, columns))
        .iter()
        .zip(grid.cells)
        .enumerate()
    {
        panel(
            area,
            &cell.label,
            ("epoch", grid.y_name),
            &cell.runs,
            cell.threshold.map(|t| (t, grid.threshold_label)),
            shared,
            i == 0,
        )?;
    }
    Ok(())
}

/// Draws `grid`, up to four panels a row; returns the files written.
pub fn cell_grid(stem: &Path, grid: &CellGrid) -> Result<Vec<PathBuf>> {
    let n = grid.cells.len();
    let columns = match n {
        0..=4 => n.max(1),
        5..=9 => 3,
        _ => 4,
    };
    let rows = n.div_ceil(columns).max(1) as u32;
    let size = (600 * columns as u32, 44 + 360 * rows);
    let (files, ()) = both_formats(
        stem,
        size,
        |r| cell_grid_draw(r, grid, columns),
        |r| cell_grid_draw(r, grid, columns),
    )?;
    Ok(files)
}
