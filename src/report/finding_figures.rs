//! Figures of the ablation's findings: the verdict's label of every (context, factor) against
//! `converge_tol`, and the forward and backward ablation paths of every context, one panel each.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::canvas::{both_formats, plot_error, titled};
use super::draw::{panel, Series};
use crate::error::Result;

/// One panel of the verdict-by-tolerance figure: a verdict row's title and its label (0
/// `not_necessary`, 1 `unclear`, 2 `necessary`) at each tolerance.
pub struct LabelCurve {
    pub title: String,
    pub points: Vec<(f64, f64)>,
    /// The sweep's `converge_tol`, drawn as a vertical line.
    pub chosen: f64,
}

const LABEL_LEVELS: [&str; 3] = ["not necessary", "unclear", "necessary"];

fn label_grid_draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    curves: &[LabelCurve],
    columns: usize,
) -> Result<()> {
    let body = titled(root, title)?;
    let rows = curves.len().div_ceil(columns);
    for (area, curve) in body.split_evenly((rows, columns)).iter().zip(curves) {
        let mut chart = ChartBuilder::on(area)
            .caption(&curve.title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(96)
            .build_cartesian_2d((1e-4f64..1f64).log_scale(), -0.3f64..2.3f64)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("converge_tol (log axis)")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_labels(3)
            .y_label_formatter(&|v| {
                LABEL_LEVELS
                    .get(v.round() as usize)
                    .filter(|_| (v - v.round()).abs() < 1e-9)
                    .map_or(String::new(), |s| s.to_string())
            })
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(curve.points.iter().copied(), &BLUE))
            .map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(
                [(curve.chosen, -0.3), (curve.chosen, 2.3)],
                RED.mix(0.6),
            ))
            .map_err(plot_error)?;
    }
    Ok(())
}

/// The verdict's label of every (context, factor) against `converge_tol` on a log axis from 1e-4
/// to 1, one panel each, the chosen tolerance as a red line.
pub fn labels_by_tolerance(
    stem: &Path,
    title: &str,
    curves: &[LabelCurve],
) -> Result<Vec<PathBuf>> {
    let columns = curves.len().clamp(1, 3);
    let rows = curves.len().div_ceil(columns).max(1) as u32;
    let size = (520 * columns as u32, 44 + 260 * rows);
    let (files, ()) = both_formats(
        stem,
        size,
        |r| label_grid_draw(r, title, curves, columns),
        |r| label_grid_draw(r, title, curves, columns),
    )?;
    Ok(files)
}

/// One panel of the ablation-path figure: a context and its forward and backward paths as
/// `(step, log10 excess MSE)`, each labelled with its order of factors.
pub struct PathPanel {
    pub title: String,
    pub paths: Vec<Series>,
}

fn paths_draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    panels: &[PathPanel],
    columns: usize,
) -> Result<()> {
    let body = titled(root, title)?;
    let rows = panels.len().div_ceil(columns);
    for (area, p) in body.split_evenly((rows, columns)).iter().zip(panels) {
        // The values are log10 already: a linear axis that includes 0 (an excess of 100%).
        let values = p.paths.iter().flat_map(|s| s.points.iter().map(|q| q.1));
        let range = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        panel(
            area,
            &p.title,
            ("step (factors switched)", "log10 excess MSE over OLS"),
            &p.paths,
            None,
            Some(range),
            true,
        )?;
    }
    Ok(())
}

/// The ablation paths of every context, one panel each: forward from all off, backward from
/// all on, the factor order in the legend.
pub fn ablation_paths(stem: &Path, title: &str, panels: &[PathPanel]) -> Result<Vec<PathBuf>> {
    let columns = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(columns).max(1) as u32;
    let size = (600 * columns as u32, 44 + 360 * rows);
    let (files, ()) = both_formats(
        stem,
        size,
        |r| paths_draw(r, title, panels, columns),
        |r| paths_draw(r, title, panels, columns),
    )?;
    Ok(files)
}
