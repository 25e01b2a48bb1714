//! One table against another: the same columns with the same types, the same number of rows, and
//! every value the same, bit for bit (NaN equal to NaN; null only equal to null). With a tolerance,
//! two finite f64 values also count as equal when `|a - b| <= atol + rtol |a|`; strings, labels,
//! statuses, integers and booleans must still be identical. What differs is told column by column:
//! how many rows, and the largest absolute and relative difference of the numbers.

use polars::prelude::{Column, DataFrame, DataType};

use crate::error::{Error, Result};

/// How far reproduced f64 values may be from the recorded ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

/// One column whose values differ.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDiff {
    pub column: String,
    /// Rows whose values differ (beyond the tolerance, when there is one).
    pub rows: usize,
    /// Over the rows where both values are finite numbers.
    pub max_abs: Option<f64>,
    pub max_rel: Option<f64>,
}

/// The comparison of one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// The columns (name and type) differ: what each side has.
    pub schema: Option<String>,
    /// The row counts differ: (recorded, reproduced).
    pub rows: Option<(usize, usize)>,
    pub columns: Vec<ColumnDiff>,
    /// f64 values that differ in their bits but lie within the tolerance.
    pub within_tolerance: usize,
}

impl Comparison {
    /// Same schema, rows and values (within the tolerance, when one was given).
    pub fn reproduced(&self) -> bool {
        self.schema.is_none() && self.rows.is_none() && self.columns.is_empty()
    }

    /// Reproduced, and every value bit for bit.
    pub fn identical(&self) -> bool {
        self.reproduced() && self.within_tolerance == 0
    }
}

/// Compares `got` with the `recorded` table.
pub fn compare(
    recorded: &DataFrame,
    got: &DataFrame,
    tolerance: Option<Tolerance>,
) -> Result<Comparison> {
    let schema = |df: &DataFrame| -> Vec<String> {
        df.columns()
            .iter()
            .map(|c| format!("{} ({})", c.name(), c.dtype()))
            .collect()
    };
    let mut out = Comparison::default();
    if schema(recorded) != schema(got) {
        out.schema = Some(format!(
            "recorded columns [{}], reproduced [{}]",
            schema(recorded).join(", "),
            schema(got).join(", ")
        ));
        return Ok(out);
    }
    if recorded.height() != got.height() {
        out.rows = Some((recorded.height(), got.height()));
        return Ok(out);
    }
    for (a, b) in recorded.columns().iter().zip(got.columns()) {
        let diff = if a.dtype() == &DataType::Float64 {
            compare_f64(a, b, tolerance, &mut out.within_tolerance)?
        } else {
            compare_exact(a, b)?
        };
        if diff.rows > 0 {
            out.columns.push(diff);
        }
    }
    Ok(out)
}

/// The first row of an epochs table whose f64 values differ (beyond the tolerance): its run,
/// metric and epoch, and both values, for a script that does not reproduce.
pub fn first_epoch_difference(
    recorded: &DataFrame,
    got: &DataFrame,
    tolerance: Option<Tolerance>,
) -> Result<Option<String>> {
    if recorded.height() != got.height() {
        return Ok(None);
    }
    let (ids, epochs) = (
        recorded.column("run_id").and_then(|c| c.str().cloned()),
        recorded.column("epoch").and_then(|c| c.i64().cloned()),
    );
    let (Ok(ids), Ok(epochs)) = (ids, epochs) else {
        return Ok(None);
    };
    let mut first: Option<(usize, String, Option<f64>, Option<f64>)> = None;
    for a in recorded.columns() {
        let Ok(b) = got.column(a.name()) else {
            continue;
        };
        if a.dtype() != &DataType::Float64 || b.dtype() != &DataType::Float64 {
            continue;
        }
        let (xs, ys) = (a.f64().map_err(table_error)?, b.f64().map_err(table_error)?);
        let differs = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) if x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()) => false,
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                tolerance.is_none_or(|t| (x - y).abs() > t.atol + t.rtol * x.abs())
            }
            (None, None) => false,
            _ => true,
        };
        let row = xs.iter().zip(ys.iter()).position(|(x, y)| differs(x, y));
        if let Some(row) = row.filter(|r| first.as_ref().is_none_or(|f| *r < f.0)) {
            first = Some((row, a.name().to_string(), xs.get(row), ys.get(row)));
        }
    }
    Ok(first.map(|(row, metric, x, y)| {
        let show = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:e}"));
        format!(
            "first difference: run {}, {metric} at epoch {}: recorded {}, reproduced {}",
            ids.get(row).unwrap_or("?"),
            epochs.get(row).map_or("?".to_string(), |e| e.to_string()),
            show(x),
            show(y)
        )
    }))
}

fn table_error(e: polars::error::PolarsError) -> Error {
    Error::table("comparing tables", e)
}

/// Numbers: equal bits, or (with a tolerance) close enough.
fn compare_f64(
    a: &Column,
    b: &Column,
    tolerance: Option<Tolerance>,
    within: &mut usize,
) -> Result<ColumnDiff> {
    let (xs, ys) = (a.f64().map_err(table_error)?, b.f64().map_err(table_error)?);
    let mut diff = ColumnDiff {
        column: a.name().to_string(),
        rows: 0,
        max_abs: None,
        max_rel: None,
    };
    for (x, y) in xs.iter().zip(ys.iter()) {
        let same_bits = match (x, y) {
            (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            (None, None) => true,
            _ => false,
        };
        if same_bits {
            continue;
        }
        let close = match (x, y, tolerance) {
            (Some(x), Some(y), Some(t)) if x.is_finite() && y.is_finite() => {
                (x - y).abs() <= t.atol + t.rtol * x.abs()
            }
            _ => false,
        };
        if let (Some(x), Some(y)) = (x, y) {
            if x.is_finite() && y.is_finite() {
                let abs = (x - y).abs();
                let rel = if x != 0.0 {
                    abs / x.abs()
                } else {
                    f64::INFINITY
                };
                if !close {
                    diff.max_abs = Some(diff.max_abs.map_or(abs, |m| m.max(abs)));
                    diff.max_rel = Some(diff.max_rel.map_or(rel, |m| m.max(rel)));
                }
            }
        }
        if close {
            *within += 1;
        } else {
            diff.rows += 1;
        }
    }
    Ok(diff)
}

/// Anything else (strings, labels, statuses, integers, booleans): identical values.
fn compare_exact(a: &Column, b: &Column) -> Result<ColumnDiff> {
    let as_text = |c: &Column| -> Result<Vec<Option<String>>> {
        let text = c.cast(&DataType::String).map_err(table_error)?;
        let values = text.str().map_err(table_error)?;
        Ok(values.iter().map(|v| v.map(str::to_string)).collect())
    };
    let (xs, ys) = (as_text(a)?, as_text(b)?);
    Ok(ColumnDiff {
        column: a.name().to_string(),
        rows: xs.iter().zip(&ys).filter(|(x, y)| x != y).count(),
        max_abs: None,
        max_rel: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(values: &[f64], labels: &[&str]) -> DataFrame {
        DataFrame::new_infer_height(vec![
            Column::new("x".into(), values.to_vec()),
            Column::new("label".into(), labels.to_vec()),
        ])
        .unwrap()
    }

    #[test]
    fn identical_tables_and_every_kind_of_difference() {
        let a = frame(&[1.0, f64::NAN, -0.0], &["a", "b", "c"]);
        let same = compare(&a, &frame(&[1.0, f64::NAN, -0.0], &["a", "b", "c"]), None).unwrap();
        assert!(same.identical());
        // -0.0 and 0.0 differ in their bits: not identical, but within any tolerance.
        let zero = frame(&[1.0, f64::NAN, 0.0], &["a", "b", "c"]);
        let strict = compare(&a, &zero, None).unwrap();
        assert_eq!(strict.columns[0].rows, 1);
        let tol = Some(Tolerance {
            rtol: 1e-9,
            atol: 0.0,
        });
        let loose = compare(&a, &zero, tol).unwrap();
        assert!(loose.reproduced() && !loose.identical());
        // A relative change of 1e-6 is beyond rtol 1e-9: its size is reported.
        let moved = frame(&[1.000001, f64::NAN, -0.0], &["a", "b", "c"]);
        let c = compare(&a, &moved, tol).unwrap();
        assert_eq!(c.columns.len(), 1);
        let d = &c.columns[0];
        assert_eq!((d.column.as_str(), d.rows), ("x", 1));
        assert!(
            (d.max_abs.unwrap() - 1e-6).abs() < 1e-12 && (d.max_rel.unwrap() - 1e-6).abs() < 1e-12
        );
        // Labels must be identical whatever the tolerance.
        let relabelled =
            compare(&a, &frame(&[1.0, f64::NAN, -0.0], &["a", "B", "c"]), tol).unwrap();
        assert_eq!(relabelled.columns[0].column, "label");
        // Row counts and schemas.
        let shorter = compare(&a, &frame(&[1.0], &["a"]), None).unwrap();
        assert_eq!(shorter.rows, Some((3, 1)));
        let other = DataFrame::new_infer_height(vec![Column::new("y".into(), vec![1i64])]).unwrap();
        assert!(compare(&a, &other, None).unwrap().schema.is_some());
    }
}
