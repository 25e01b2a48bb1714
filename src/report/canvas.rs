//! The plumbing of every figure: a TrueType font registered once for plotters, errors as
//! [`Error::Plot`], and each figure drawn twice, as SVG and PNG, under temporary names renamed into
//! place (a reader never sees half a figure).

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};

pub(super) fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}

/// Registers a TrueType font for text (plotters needs one for PNG and for text layout).
pub(super) fn ensure_font() -> Result<()> {
    static FONT: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        ];
        let path = std::env::var("SWEEP_FONT").ok().map(PathBuf::from).into_iter().chain(candidates.iter().map(PathBuf::from));
        for p in path {
            if let Ok(bytes) = std::fs::read(&p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                    .map_err(|_| format!("{} is not a usable TrueType font", p.display()));
            }
        }
        Err("plotting needs a TrueType font: install DejaVu Sans (Debian: fonts-dejavu-core) or set SWEEP_FONT=/path/to/font.ttf".into())
    })
    .clone()
    .map_err(Error::Plot)
}

/// Writes an SVG and a PNG of the same figure (`stem.svg`, `stem.png`); returns both paths and
/// what `draw` returned for the SVG.
pub(super) fn both_formats<T>(
    stem: &Path,
    size: (u32, u32),
    draw: impl Fn(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<T>,
    draw_png: impl Fn(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<T>,
) -> Result<(Vec<PathBuf>, T)> {
    ensure_font()?;
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let tmp = |p: &Path| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        p.with_file_name(format!(".tmp-{}-{name}", std::process::id()))
    };
    let (svg_tmp, png_tmp) = (tmp(&svg), tmp(&png));
    let result = {
        let root = SVGBackend::new(&svg_tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let r = draw(&root)?;
        root.present().map_err(plot_error)?;
        r
    };
    {
        let root = BitMapBackend::new(&png_tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw_png(&root)?;
        root.present().map_err(plot_error)?;
    }
    for (from, to) in [(&svg_tmp, &svg), (&png_tmp, &png)] {
        std::fs::rename(from, to)
            .map_err(|e| Error::io(format!("renaming to {}", to.display()), e))?;
    }
    Ok((vec![svg, png], result))
}

/// Draws a figure's title across its top; returns the area below it.
pub(super) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
) -> Result<DrawingArea<DB, plotters::coord::Shift>> {
    let (head, body) = root.split_vertically(44);
    head.draw_text(title, &("sans-serif", 22).into_text_style(&head), (16, 12))
        .map_err(plot_error)?;
    Ok(body)
}
