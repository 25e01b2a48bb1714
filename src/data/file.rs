//! The user's data file: a CSV with a header row, or a Parquet file, read with polars into a
//! dense row-major matrix. Every problem is reported with the file, the column, and the row (and
//! for CSV the line of the file) at fault. No column is dropped in silence: without a feature
//! list, a column that mixes numbers and text is an error, and every other column left out is
//! named on stderr with its type.

use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;

use rayon::prelude::*;

use super::{constant_column, standardize, zeroed, Dataset};
use crate::config::CsvFormat;
use crate::error::{Error, Result};

/// Feature columns converted, then copied into the rows, at a time when reading a file.
const COLUMNS_PER_BLOCK: usize = 64;

/// Reads a CSV (with a header row) or Parquet file into a data set.
pub fn read_file(
    path: &Path,
    target: &str,
    features: Option<&[String]>,
    standardize_features: bool,
    format: &CsvFormat,
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
    let (mut frame, unreadable) = read_frame(path, is_csv, format)
        .map_err(|e| Error::Data(format!("data file {shown} cannot be read: {e}")))?;
    strip_bom(&mut frame).map_err(|e| Error::table(format!("data file {shown}"), e))?;
    let file = DataFile {
        frame: &frame,
        shown: shown.to_string(),
        is_csv,
        separator: format.separator,
        unreadable,
    };
    file.dataset(target, features, standardize_features)
}

/// The file's table, and for Parquet the columns of types this build does not read (name,
/// type), left out of the table.
fn read_frame(
    path: &Path,
    is_csv: bool,
    format: &CsvFormat,
) -> PolarsResult<(DataFrame, Vec<(String, String)>)> {
    if !is_csv {
        return read_parquet(path);
    }
    {
        let missing: Vec<PlSmallStr> = format.missing.iter().map(|m| m.as_str().into()).collect();
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(None)
            .map_parse_options(|o| {
                o.with_separator(format.separator).with_null_values(
                    (!missing.is_empty()).then(|| NullValues::AllColumns(missing.clone())),
                )
            })
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map(|frame| (frame, Vec::new()))
    }
}

/// A Parquet file's columns of numeric, text and boolean types; the others (dates, times,
/// categoricals, decimals, binary, nested) are named, not read.
fn read_parquet(path: &Path) -> PolarsResult<(DataFrame, Vec<(String, String)>)> {
    let open = || {
        std::fs::File::open(path).map_err(|e| PolarsError::IO {
            error: Arc::new(e),
            msg: None,
        })
    };
    let schema = ParquetReader::new(open()?).schema()?;
    let mut readable = Vec::new();
    let mut unreadable = Vec::new();
    for (name, field) in schema.iter() {
        use polars::prelude::ArrowDataType as T;
        match field.dtype() {
            T::Null
            | T::Boolean
            | T::Utf8
            | T::LargeUtf8
            | T::Utf8View
            | T::Float32
            | T::Float64 => readable.push(name.to_string()),
            T::Int8
            | T::Int16
            | T::Int32
            | T::Int64
            | T::UInt8
            | T::UInt16
            | T::UInt32
            | T::UInt64 => readable.push(name.to_string()),
            other => unreadable.push((name.to_string(), arrow_type_name(other))),
        }
    }
    let frame = ParquetReader::new(open()?)
        .with_columns(Some(readable))
        .finish()?;
    Ok((frame, unreadable))
}

/// A short name of an Arrow type for messages.
fn arrow_type_name(dtype: &ArrowDataType) -> String {
    use polars::prelude::ArrowDataType as T;
    match dtype {
        T::Date32 | T::Date64 => "date".into(),
        T::Timestamp(..) => "datetime".into(),
        T::Time32(_) | T::Time64(_) => "time".into(),
        T::Duration(_) => "duration".into(),
        T::Dictionary(..) => "categorical".into(),
        T::Decimal(p, s) | T::Decimal32(p, s) | T::Decimal64(p, s) => format!("decimal({p},{s})"),
        T::Binary | T::LargeBinary | T::BinaryView | T::FixedSizeBinary(_) => "binary".into(),
        T::List(_) | T::LargeList(_) | T::FixedSizeList(..) => "list".into(),
        T::Struct(_) => "struct".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A UTF-8 byte-order mark (as Excel writes) is not part of the first column's name.
fn strip_bom(frame: &mut DataFrame) -> PolarsResult<()> {
    let Some(first) = frame.get_column_names().first().map(|n| n.to_string()) else {
        return Ok(());
    };
    if let Some(plain) = first.strip_prefix('\u{feff}') {
        frame.rename(&first, plain.into())?;
    }
    Ok(())
}

/// What a column holds, for choosing features.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// A numeric type.
    Numbers,
    /// Text whose every non-missing cell reads as a number (quoted numbers, padded numbers).
    NumbersAsText,
    /// Text with no cell that reads as a number.
    Text,
    /// Some cells read as numbers, and this one (row, text) does not.
    Mixed(usize, String),
    /// Another type (bool, date, categorical, decimal, ...), by its name.
    Other(String),
}

/// A file's table as read, with what messages need to name its rows.
struct DataFile<'a> {
    frame: &'a DataFrame,
    /// The path as shown in messages.
    shown: String,
    is_csv: bool,
    separator: u8,
    /// Parquet columns of types not read (name, type).
    unreadable: Vec<(String, String)>,
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
        let y = self.numeric(target, true)?;
        let mut shared = zeroed(n * d);
        let x = Arc::get_mut(&mut shared).expect("a new allocation has one owner");
        // Blocks of columns, each converted on the threads, then copied into the rows on the
        // threads: a row's stretch of a block is written at once. The first bad column in file
        // order is the one reported.
        for (block, names) in feature_names.chunks(COLUMNS_PER_BLOCK).enumerate() {
            let columns: Vec<Vec<f64>> = names
                .par_iter()
                .map(|name| self.numeric(name, false))
                .collect::<Vec<_>>()
                .into_iter()
                .collect::<Result<_>>()?;
            let start = block * COLUMNS_PER_BLOCK;
            x.par_chunks_mut(d).enumerate().for_each(|(i, row)| {
                for (to, column) in row[start..].iter_mut().zip(&columns) {
                    *to = column[i];
                }
            });
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

    /// Every column of the file, those of types not read included.
    fn column_names(&self) -> Vec<String> {
        let read = self
            .frame
            .get_column_names()
            .into_iter()
            .map(|s| s.to_string());
        read.chain(self.unreadable.iter().map(|(name, _)| name.clone()))
            .collect()
    }

    /// The error for a target or listed feature of a type not read.
    fn check_readable(&self, name: &str) -> Result<()> {
        match self.unreadable.iter().find(|(n, _)| n == name) {
            Some((_, dtype)) => Err(Error::Data(format!(
                "data file {}: column \"{name}\" is of type {dtype}; sweep reads numbers from integer and float \
                 columns (and text that holds numbers): store it as a float column, or leave it out",
                self.shown
            ))),
            None => Ok(()),
        }
    }

    /// The listed features (each must exist), or every numeric column but the target; a column
    /// that mixes numbers and text is an error, and every other column left out is named on
    /// stderr.
    fn feature_names(&self, target: &str, features: Option<&[String]>) -> Result<Vec<String>> {
        let columns = self.column_names();
        if !columns.iter().any(|c| c == target) {
            return Err(self.missing_column(target, "data.target"));
        }
        self.check_readable(target)?;
        if let Some(list) = features {
            if let Some(f) = list.iter().find(|f| !columns.contains(f)) {
                return Err(self.missing_column(f, "data.features"));
            }
            for f in list {
                self.check_readable(f)?;
            }
            return Ok(list.to_vec());
        }
        let mut names = Vec::new();
        let mut left_out = Vec::new();
        for column in self.frame.columns() {
            let name = column.name().as_str();
            if name == target {
                continue;
            }
            match self.kind(column)? {
                Kind::Numbers | Kind::NumbersAsText => names.push(name.to_string()),
                Kind::Mixed(row, value) => {
                    let leave_out =
                        format!("set data.features to the columns to use, without \"{name}\"");
                    return Err(self.mixed(name, row, &value, &leave_out));
                }
                Kind::Text => left_out.push((name.to_string(), "text".to_string())),
                Kind::Other(dtype) => left_out.push((name.to_string(), dtype)),
            }
        }
        left_out.extend(self.unreadable.iter().cloned());
        self.note_left_out(&left_out);
        if names.is_empty() {
            return Err(Error::Data(format!(
                "data file {} has no numeric feature column besides the target \"{target}\"; its columns are: {}",
                self.shown,
                columns.join(", ")
            )));
        }
        Ok(names)
    }

    /// The error for a key naming a column the file does not have, with a hint when the file
    /// looks split by another separator.
    fn missing_column(&self, name: &str, key: &str) -> Error {
        let columns = self.column_names();
        let mut message = format!(
            "data file {}: {key} names column \"{name}\", which the file does not have; its columns are: {}",
            self.shown,
            columns.join(", ")
        );
        if let [only] = columns.as_slice() {
            let other = [b';', b'\t', b'|', b',']
                .into_iter()
                .filter(|s| *s != self.separator);
            if let Some(sep) = other.into_iter().find(|s| only.contains(char::from(*s))) {
                let written = if sep == b'\t' {
                    "\\t".to_string()
                } else {
                    char::from(sep).to_string()
                };
                message += &format!(
                    " (one column: if the file's fields are separated by '{written}', set data.separator = \"{written}\")"
                );
            }
        }
        Error::Data(message)
    }

    /// Names the columns left out of the features on stderr (at most 20, then a count).
    fn note_left_out(&self, left_out: &[(String, String)]) {
        const SHOWN: usize = 20;
        for (name, dtype) in left_out.iter().take(SHOWN) {
            eprintln!(
                "note: data file {}: column \"{name}\" ({dtype}) left out of the features: not an integer or float column",
                self.shown
            );
        }
        if left_out.len() > SHOWN {
            eprintln!(
                "note: data file {}: {} more non-numeric columns left out of the features",
                self.shown,
                left_out.len() - SHOWN
            );
        }
    }

    /// What a column holds (text columns are read cell by cell).
    fn kind(&self, column: &Column) -> Result<Kind> {
        let dtype = column.dtype();
        if dtype.is_primitive_numeric() {
            return Ok(Kind::Numbers);
        }
        if !matches!(dtype, DataType::String) {
            return Ok(Kind::Other(dtype.to_string()));
        }
        let texts = column
            .str()
            .map_err(|e| Error::table(format!("column {}", column.name()), e))?;
        let mut first_text = None;
        let mut any_number = false;
        for (i, cell) in texts.iter().enumerate() {
            match cell.map(str::trim).filter(|c| !c.is_empty()) {
                None => {}
                Some(c) if c.parse::<f64>().is_ok() => any_number = true,
                Some(c) => {
                    first_text.get_or_insert((i, c.to_string()));
                }
            }
            if any_number && first_text.is_some() {
                break;
            }
        }
        Ok(match (any_number, first_text) {
            (true, Some((row, value))) => Kind::Mixed(row, value),
            (true, None) => Kind::NumbersAsText,
            (false, _) => Kind::Text,
        })
    }

    /// The error for a column whose cells are partly numbers, partly text.
    fn mixed(&self, name: &str, row: usize, value: &str, leave_out: &str) -> Error {
        let hint = if looks_like_grouped_number(value) {
            " (a thousands separator is not accepted: write the number without it)"
        } else if looks_like_decimal_comma(value) {
            " (a decimal comma is not accepted: write a decimal point)"
        } else {
            ""
        };
        Error::Data(format!(
            "data file {}: column \"{name}\" mixes numbers and text: {} holds \"{value}\"{hint}, where other rows hold \
             numbers; every value of a feature and the target must be a number (empty cells and data.missing markers \
             are read as missing). To proceed, clean the file (fix or drop that row), or {leave_out}",
            self.shown,
            self.row_label(row)
        ))
    }

    fn row_label(&self, i: usize) -> String {
        if self.is_csv {
            format!("row {} (line {} of the file)", i + 1, i + 2)
        } else {
            format!("row {}", i + 1)
        }
    }

    /// One column (a feature, or the target) as finite f64 values.
    fn numeric(&self, name: &str, is_target: bool) -> Result<Vec<f64>> {
        let leave_out = if is_target {
            "choose another data.target".to_string()
        } else {
            format!("leave \"{name}\" out of data.features")
        };
        let table_error = |e| Error::table(format!("column {name}"), e);
        let column = self.frame.column(name).map_err(table_error)?;
        let mut out = Vec::with_capacity(column.len());
        let mut push = |i: usize, v: Option<f64>| {
            match v {
            Some(v) if v.is_finite() => {
                out.push(v);
                Ok(())
            }
            Some(v) => Err(Error::Data(format!(
                "data file {}: {} of column \"{name}\" is {v}; every value must be a finite number",
                self.shown,
                self.row_label(i)
            ))),
            None => Err(Error::Data(format!(
                "data file {}: {} of column \"{name}\" is missing (an empty cell, or a data.missing marker); \
                 every value must be a finite number, and sweep neither drops nor fills rows: fill or drop \
                 that row in the file, or {leave_out}",
                self.shown,
                self.row_label(i)
            ))),
        }
        };
        // Straight into `out`, with no vector of options between.
        match self.kind(column)? {
            Kind::Numbers => {
                let values = column.cast(&DataType::Float64).map_err(table_error)?;
                let values = values.f64().map_err(table_error)?;
                for (i, v) in values.iter().enumerate() {
                    push(i, v)?;
                }
            }
            Kind::NumbersAsText => {
                for (i, c) in column.str().map_err(table_error)?.iter().enumerate() {
                    let v = c
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .and_then(|c| c.parse().ok());
                    push(i, v)?;
                }
            }
            Kind::Mixed(row, value) => return Err(self.mixed(name, row, &value, &leave_out)),
            Kind::Text | Kind::Other(_) => return Err(self.not_numeric(name, column)?),
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
        let dtype = match column.dtype() {
            DataType::String => "text".to_string(),
            other => other.to_string(),
        };
        Ok(Error::Data(format!(
            "data file {}: column \"{name}\" is not numeric (type {dtype}){detail}; every feature and the target must be numbers",
            self.shown,
        )))
    }
}

/// `1,234` or `-12,345,678.5`: digits grouped by commas.
fn looks_like_grouped_number(text: &str) -> bool {
    let body = text.trim_start_matches(['+', '-']);
    let int = body.split('.').next().unwrap_or("");
    let groups: Vec<&str> = int.split(',').collect();
    groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && body.replace(',', "").parse::<f64>().is_ok()
}

/// `1,5`: a number with a decimal comma.
fn looks_like_decimal_comma(text: &str) -> bool {
    text.matches(',').count() == 1 && text.replace(',', ".").parse::<f64>().is_ok()
}
