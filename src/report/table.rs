//! Human-facing rendering of any output table: aligned plain text for the terminal and
//! Markdown for `report.md`, with one number format for both (4 decimals, or 3 significant
//! digits in scientific notation for very small or large values; null as `-`).

use polars::prelude::*;

/// Formats one cell.
pub fn cell(value: &AnyValue) -> String {
    match value {
        AnyValue::Null => "-".into(),
        AnyValue::Float64(v) => number(*v),
        AnyValue::Float32(v) => number(f64::from(*v)),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Formats a number for tables.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if !v.is_finite() {
        v.to_string()
    } else if v.abs() >= 1e-3 && v.abs() < 1e5 {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

fn cells(df: &DataFrame) -> (Vec<String>, Vec<Vec<String>>) {
    let header: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows = (0..df.height())
        .map(|i| {
            df.columns()
                .iter()
                .map(|c| cell(&c.get(i).unwrap_or(AnyValue::Null)))
                .collect()
        })
        .collect();
    (header, rows)
}

/// Aligned plain-text table (numbers right-aligned, text left-aligned).
pub fn text(df: &DataFrame) -> String {
    let (header, rows) = cells(df);
    let widths: Vec<usize> = (0..header.len())
        .map(|j| {
            rows.iter()
                .map(|r| r[j].chars().count())
                .chain([header[j].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let numeric: Vec<bool> = df
        .columns()
        .iter()
        .map(|c| c.dtype().is_primitive_numeric())
        .collect();
    let line = |values: &[String]| {
        let parts: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(j, v)| {
                if numeric[j] {
                    format!("{v:>w$}", w = widths[j])
                } else {
                    format!("{v:<w$}", w = widths[j])
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&header);
    for r in &rows {
        out += &line(r);
    }
    out
}

/// Markdown table.
pub fn markdown(df: &DataFrame) -> String {
    let (header, rows) = cells(df);
    let numeric: Vec<bool> = df
        .columns()
        .iter()
        .map(|c| c.dtype().is_primitive_numeric())
        .collect();
    let mut out = format!("| {} |\n", header.join(" | "));
    out += &format!(
        "|{}|\n",
        numeric
            .iter()
            .map(|n| if *n { " ---: " } else { " --- " })
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in rows {
        out += &format!("| {} |\n", r.join(" | "));
    }
    out
}
