//! The user's data file: a CSV with a header row, or a Parquet file, read with polars into a
//! dense row-major matrix. Every problem is reported with the file, the column, and the row (and
//! for CSV the line of the file) at fault.

use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;

use super::{constant_column, standardize, zeroed, Dataset};
use crate::error::{Error, Result};

/// Reads a CSV (with a header row) or Parquet file into a data set.
pub fn read_file(
    path: &Path,
    target: &str,
    features: Option<&[String]>,
    standardize_features: bool,
) -> Result<Dataset> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Data(format!("data file {shown}: cannot open it ({e})")))?;
    if meta.len() == 0 {
        return Err(Error::Data(format!(
            "data file {shown} is empty: it needs a header row and data rows"
        )));
    }
    let is_csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let frame = read_frame(path, is_csv)
        .map_err(|e| Error::Data(format!("data file {shown} cannot be read: {e}")))?;
    let file = DataFile {
        frame: &frame,
        shown: shown.to_string(),
        is_csv,
    };
    file.dataset(target, features, standardize_features)
}

fn read_frame(path: &Path, is_csv: bool) -> PolarsResult<DataFrame> {
    if is_csv {
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(None)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
    } else {
        std::fs::File::open(path)
            .map_err(|e| PolarsError::IO {
                error: Arc::new(e),
                msg: None,
            })
            .and_then(|f| ParquetReader::new(f).finish())
    }
}

/// A file's table as read, with what messages need to name its rows.
struct DataFile<'a> {
    frame: &'a DataFrame,
    /// The path as shown in messages.
    shown: String,
    is_csv: bool,
}

impl DataFile<'_> {
    /// The data set: target and features checked, numeric and finite, more rows than features,
    /// standardized or checked for constant columns.
    fn dataset(
        &self,
        target: &str,
        features: Option<&[String]>,
        standardize_features: bool,
    ) -> Result<Dataset> {
        let shown = &self.shown;
        if self.frame.height() == 0 {
            return Err(Error::Data(format!(
                "data file {shown} has a header but no data rows"
            )));
        }
        let feature_names = self.feature_names(target, features)?;
        let (n, d) = (self.frame.height(), feature_names.len());
        let y = self.numeric(target)?;
        let mut shared = zeroed(n * d);
        let x = Arc::get_mut(&mut shared).expect("a new allocation has one owner");
        for (j, name) in feature_names.iter().enumerate() {
            for (i, v) in self.numeric(name)?.into_iter().enumerate() {
                x[i * d + j] = v;
            }
        }
        if n <= d {
            return Err(Error::Data(format!(
                "data file {shown} has {n} rows for {d} features: least squares needs more rows than features"
            )));
        }
        if standardize_features {
            standardize(x, n, d, &feature_names)?;
        } else if let Some(j) = (0..d).find(|&j| (0..n).all(|i| x[i * d + j] == x[j])) {
            return Err(constant_column(&feature_names[j]));
        }
        Ok(Dataset {
            n,
            d,
            x: shared,
            y: y.into(),
            feature_names,
            target_name: target.to_string(),
        })
    }

    fn column_names(&self) -> Vec<String> {
        self.frame
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// The listed features (each must exist), or every numeric column but the target.
    fn feature_names(&self, target: &str, features: Option<&[String]>) -> Result<Vec<String>> {
        let columns = self.column_names();
        let missing = |name: &str, key: &str| {
            Error::Data(format!(
                "data file {}: {key} names column \"{name}\", which the file does not have; its columns are: {}",
                self.shown,
                columns.join(", ")
            ))
        };
        if !columns.iter().any(|c| c == target) {
            return Err(missing(target, "data.target"));
        }
        let names: Vec<String> = match features {
            Some(list) => {
                if let Some(f) = list.iter().find(|f| !columns.contains(f)) {
                    return Err(missing(f, "data.features"));
                }
                list.to_vec()
            }
            None => self
                .frame
                .columns()
                .iter()
                .filter(|c| c.name().as_str() != target && c.dtype().is_primitive_numeric())
                .map(|c| c.name().to_string())
                .collect(),
        };
        if names.is_empty() {
            return Err(Error::Data(format!(
                "data file {} has no numeric feature column besides the target \"{target}\"; its columns are: {}",
                self.shown,
                columns.join(", ")
            )));
        }
        Ok(names)
    }

    fn row_label(&self, i: usize) -> String {
        if self.is_csv {
            format!("row {} (line {} of the file)", i + 1, i + 2)
        } else {
            format!("row {}", i + 1)
        }
    }

    /// One column as finite f64 values.
    fn numeric(&self, name: &str) -> Result<Vec<f64>> {
        let table_error = |e| Error::table(format!("column {name}"), e);
        let column = self.frame.column(name).map_err(table_error)?;
        if !column.dtype().is_primitive_numeric() {
            return Err(self.not_numeric(name, column)?);
        }
        let values = column.cast(&DataType::Float64).map_err(table_error)?;
        let values = values.f64().map_err(table_error)?;
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) if v.is_finite() => out.push(v),
                Some(v) => {
                    return Err(Error::Data(format!(
                        "data file {}: {} of column \"{name}\" is {v}; every value must be a finite number",
                        self.shown,
                        self.row_label(i)
                    )))
                }
                None => {
                    return Err(Error::Data(format!(
                        "data file {}: {} of column \"{name}\" is empty (missing); every value must be a finite number",
                        self.shown,
                        self.row_label(i)
                    )))
                }
            }
        }
        Ok(out)
    }

    /// The error for a non-numeric column, naming the first value that is not a number.
    fn not_numeric(&self, name: &str, column: &Column) -> Result<Error> {
        let table_error = |e| Error::table(format!("column {name}"), e);
        let texts = column.cast(&DataType::String).map_err(table_error)?;
        let texts = texts.str().map_err(table_error)?;
        let bad = texts
            .iter()
            .enumerate()
            .find(|(_, v)| v.is_some_and(|s| s.trim().parse::<f64>().is_err()));
        let detail = match bad {
            Some((i, Some(v))) => format!(": {} holds \"{v}\"", self.row_label(i)),
            _ => String::new(),
        };
        Ok(Error::Data(format!(
            "data file {}: column \"{name}\" is not numeric (type {}){detail}; every feature and the target must be numbers",
            self.shown,
            column.dtype()
        )))
    }
}
