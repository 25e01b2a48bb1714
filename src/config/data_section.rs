//! The `[data]` section: the built-in generator's parameters or a data file's path, target and
//! features, checked and resolved into a [`DataSpec`], and the data identity that enters run ids.
//! Reading the file is the `data` module's work; here only its name and extension are checked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use super::locate::Locator;
use crate::error::Result;

/// The `[data]` section as written (after defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `"lagged-levels"` (built-in generator) or `"file"`; default: `"file"` when `path` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// CSV or Parquet file, relative to the config file's folder (to the working directory when
    /// given with `--set`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Target column of a data file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Feature columns of a data file (default: every numeric column but the target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// The character between a CSV file's fields (default `,`); out of the hash when not set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// Cell texts of a CSV file read as missing, besides the empty cell (default none); out of
    /// the hash when not set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<String>>,
    /// Standardize every feature to mean 0, variance 1.
    pub standardize: bool,
    /// Seed of the built-in generator (the data realization); the grid may vary it as `data_seed`.
    pub seed: u64,
    pub n_rows: u32,
    pub n_features: u32,
    pub phi: f64,
    pub nu: f64,
    pub burn_in: u32,
    pub signal_lags: u32,
    pub r2: f64,
    pub ols_mse: f64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: None,
            path: None,
            target: None,
            features: None,
            separator: None,
            missing: None,
            standardize: true,
            seed: 0,
            n_rows: 9259,
            n_features: 121,
            phi: 0.98,
            nu: 4.0,
            burn_in: 2000,
            signal_lags: 10,
            r2: 0.5,
            ols_mse: 8e-7,
        }
    }
}

/// Keys of `[data]` that belong to the built-in generator only.
pub const GENERATOR_KEYS: &[&str] = &[
    "n_rows",
    "n_features",
    "phi",
    "nu",
    "burn_in",
    "signal_lags",
    "r2",
    "ols_mse",
];
/// Keys of `[data]` that belong to a data file only.
pub const FILE_KEYS: &[&str] = &["path", "target", "features", "separator", "missing"];
/// Every key of `[data]`, in the order error messages list them.
pub(crate) fn data_keys() -> Vec<&'static str> {
    let mut keys = vec!["source"];
    keys.extend(FILE_KEYS);
    keys.extend(["standardize", "seed"]);
    keys.extend(GENERATOR_KEYS);
    keys
}

/// Where the data comes from, resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// The built-in `lagged-levels` generator; its parameters are in [`DataConfig`].
    LaggedLevels,
    /// A CSV or Parquet file at this (resolved) path.
    File {
        path: PathBuf,
        target: String,
        features: Option<Vec<String>>,
        /// How a CSV file is split into cells.
        format: CsvFormat,
    },
    /// No data set (`source = "none"`): a command sweep whose script loads its own data. Nothing
    /// is prepared, there is no reference, and `[command] converged` judges the runs.
    None,
}

/// How a CSV file is split into cells: the `[data]` keys `separator` and `missing`.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvFormat {
    /// The byte between fields (default `,`).
    pub separator: u8,
    /// Cell texts read as missing, besides the empty cell.
    pub missing: Vec<String>,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat {
            separator: b',',
            missing: Vec::new(),
        }
    }
}

/// The validated data specification shared by all runs (the grid may vary only `data_seed`).
#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    pub config: DataConfig,
    pub source: DataSource,
}

/// Where a relative data path is resolved from.
pub(crate) struct PathBase<'a> {
    /// The config file's folder.
    pub config_dir: &'a Path,
    /// The path came from `--set data.path=...` (already resolved against the working directory).
    pub from_flag: bool,
}

impl DataSpec {
    /// Checks the `[data]` table and resolves the source.
    pub(crate) fn parse(table: &Table, loc: &Locator, base: &PathBase) -> Result<DataSpec> {
        let config: DataConfig =
            Value::Table(table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| {
                    loc.error(
                        "data",
                        format!("invalid [data] section: {}", e.message().trim()),
                    )
                })?;
        let source = config.source.clone().unwrap_or_else(|| {
            if config.path.is_some() {
                "file".into()
            } else {
                "lagged-levels".into()
            }
        });
        let source = match source.as_str() {
            "lagged-levels" => check_generator(&config, table, loc)?,
            "file" => check_file(&config, table, loc, base)?,
            "none" => check_none(table, loc)?,
            other => {
                return Err(loc.error(
                    "data.source",
                    format!(
                        "\"{other}\" is not accepted: use \"lagged-levels\" (built-in), \"file\", or \"none\" \
                         (a command sweep whose script loads its own data)"
                    ),
                ))
            }
        };
        Ok(DataSpec { config, source })
    }

    /// What identifies the data for run ids: generator parameters, or the file's content hash
    /// (`file_sha256`, computed once by the caller).
    pub(crate) fn identity(&self, file_sha256: Option<&str>) -> String {
        let c = &self.config;
        match &self.source {
            DataSource::LaggedLevels => format!(
                "lagged-levels n_rows={} n_features={} phi={:?} nu={:?} burn_in={} signal_lags={} r2={:?} ols_mse={:?} standardize={}",
                c.n_rows, c.n_features, c.phi, c.nu, c.burn_in, c.signal_lags, c.r2, c.ols_mse, c.standardize
            ),
            DataSource::File { path, target, features, .. } => {
                // A missing file is reported later, with the data errors; its id uses the path.
                let digest = file_sha256
                    .map_or_else(|| format!("unreadable:{}", path.display()), str::to_string);
                let mut id = format!("file sha256={digest} target={target:?} features={features:?} standardize={}", c.standardize);
                // Set, they may change what is read from the same bytes; unset, ids stay as they were.
                if let Some(separator) = &c.separator {
                    id += &format!(" separator={separator:?}");
                }
                if let Some(missing) = &c.missing {
                    id += &format!(" missing={missing:?}");
                }
                id
            }
            DataSource::None => "none".to_string(),
        }
    }

    /// The hex SHA-256 of the data file (`None` for the generator, or a file that cannot be read:
    /// that is reported with the data errors).
    pub fn file_sha256(&self) -> Option<String> {
        match &self.source {
            DataSource::LaggedLevels | DataSource::None => None,
            DataSource::File { path, .. } => super::hex_sha256_of_file(path).ok(),
        }
    }

    /// The generator's seed when the grid does not vary `data_seed`; `None` for a file.
    pub fn default_data_seed(&self) -> Option<u64> {
        matches!(self.source, DataSource::LaggedLevels).then_some(self.config.seed)
    }
}

/// `source = "none"`: no other `[data]` key.
fn check_none(table: &Table, loc: &Locator) -> Result<DataSource> {
    match table.keys().find(|k| *k != "source") {
        Some(key) => Err(loc.error(
            &format!("data.{key}"),
            "is not accepted with source = \"none\" (no data set: the script loads its own data); \
             remove it, or choose source = \"lagged-levels\" or \"file\"",
        )),
        None => Ok(DataSource::None),
    }
}

/// The generator's parameters: ranges, and no file keys.
fn check_generator(c: &DataConfig, table: &Table, loc: &Locator) -> Result<DataSource> {
    if let Some(key) = FILE_KEYS.iter().find(|k| table.contains_key(**k)) {
        return Err(loc.error(
            &format!("data.{key}"),
            "belongs to a data file, but source = \"lagged-levels\" (set source = \"file\")",
        ));
    }
    let checks: [(&str, bool, &str, String); 7] = [
        (
            "n_features",
            c.n_features >= 1,
            "must be >= 1",
            c.n_features.to_string(),
        ),
        (
            "n_rows",
            c.n_rows > c.n_features + 1,
            "must exceed n_features + 1",
            c.n_rows.to_string(),
        ),
        (
            "phi",
            c.phi.is_finite() && c.phi.abs() < 1.0,
            "must be in (-1, 1)",
            c.phi.to_string(),
        ),
        (
            "nu",
            c.nu.is_finite() && c.nu > 2.0,
            "must be > 2 (finite variance)",
            c.nu.to_string(),
        ),
        (
            "signal_lags",
            c.signal_lags >= 1 && c.signal_lags < c.n_features,
            "must be in [1, n_features)",
            c.signal_lags.to_string(),
        ),
        (
            "r2",
            c.r2 > 0.0 && c.r2 < 1.0,
            "must be in (0, 1)",
            c.r2.to_string(),
        ),
        (
            "ols_mse",
            c.ols_mse.is_finite() && c.ols_mse > 0.0,
            "must be a finite number > 0",
            c.ols_mse.to_string(),
        ),
    ];
    match checks.into_iter().find(|(_, ok, _, _)| !ok) {
        Some((key, _, accepted, value)) => Err(loc.error(
            &format!("data.{key}"),
            format!("{value} is not accepted: {accepted}"),
        )),
        None => Ok(DataSource::LaggedLevels),
    }
}

/// A data file's keys: no generator keys, a path ending in .csv or .parquet, a target, and
/// features that are distinct and not the target.
fn check_file(c: &DataConfig, table: &Table, loc: &Locator, base: &PathBase) -> Result<DataSource> {
    if let Some(key) = GENERATOR_KEYS.iter().find(|k| table.contains_key(**k)) {
        return Err(loc.error(
            &format!("data.{key}"),
            "is a parameter of the built-in generator, not of a data file",
        ));
    }
    let Some(path) = &c.path else {
        return Err(loc.error(
            "data.path",
            "source = \"file\" needs path = \"data.csv\" or \"data.parquet\"",
        ));
    };
    let Some(target) = &c.target else {
        return Err(loc.error(
            "data.target",
            "a data file needs target = \"<column name>\"",
        ));
    };
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "csv" && ext != "parquet" {
        return Err(loc.error(
            "data.path",
            format!("\"{path}\" is not accepted: the file must end in .csv or .parquet"),
        ));
    }
    if let Some(features) = &c.features {
        check_features(features, target, loc)?;
    }
    let format = csv_format(c, &ext, loc)?;
    let resolved = if base.from_flag {
        PathBuf::from(path)
    } else {
        base.config_dir.join(path)
    };
    Ok(DataSource::File {
        path: resolved,
        target: target.clone(),
        features: c.features.clone(),
        format,
    })
}

/// `separator` and `missing`: one character that cannot be part of a number or a quote, and
/// markers that are not empty; both for CSV files only.
fn csv_format(c: &DataConfig, ext: &str, loc: &Locator) -> Result<CsvFormat> {
    if ext != "csv" {
        if let Some(key) = [
            ("separator", c.separator.is_some()),
            ("missing", c.missing.is_some()),
        ]
        .iter()
        .find_map(|(k, set)| set.then_some(*k))
        {
            return Err(loc.error(
                &format!("data.{key}"),
                "applies to CSV files only: a Parquet file's columns carry their own types and nulls",
            ));
        }
    }
    CsvFormat::parse(c.separator.as_deref(), c.missing.as_deref())
        .map_err(|(key, message)| loc.error(&format!("data.{key}"), message))
}

impl CsvFormat {
    /// The format from `separator` and `missing` as given; a bad value is rejected with its
    /// key (`separator` or `missing`) and what is accepted.
    pub fn parse(
        separator: Option<&str>,
        missing: Option<&[String]>,
    ) -> std::result::Result<CsvFormat, (&'static str, String)> {
        let mut format = CsvFormat::default();
        if let Some(text) = separator {
            match text.as_bytes() {
                [b] if b.is_ascii() && !b"\"\r\n.-+eE".contains(b) && !b.is_ascii_digit() => {
                    format.separator = *b
                }
                _ => {
                    return Err((
                        "separator",
                        format!(
                            "{text:?} is not accepted: one character other than a quote, a newline, a digit, \
                             '.', '-', '+' or 'e', e.g. \";\" or \"\\t\""
                        ),
                    ))
                }
            }
        }
        if let Some(markers) = missing {
            if let Some(bad) = markers.iter().find(|m| m.trim().is_empty()) {
                return Err((
                    "missing",
                    format!(
                        "{bad:?} is not accepted: list non-empty texts such as \"NA\" (empty cells are \
                         always missing)"
                    ),
                ));
            }
            format.missing = markers.to_vec();
        }
        Ok(format)
    }
}

fn check_features(features: &[String], target: &str, loc: &Locator) -> Result<()> {
    if features.is_empty() {
        return Err(loc.error(
            "data.features",
            "empty list: name at least one column, or leave it out",
        ));
    }
    let mut seen = BTreeSet::new();
    for f in features {
        if !seen.insert(f) {
            return Err(loc.error("data.features", format!("column \"{f}\" is listed twice")));
        }
        if f == target {
            return Err(loc.error("data.features", format!("column \"{f}\" is the target")));
        }
    }
    Ok(())
}
