//! The sweep configuration: TOML text in, a validated [`Sweep`] out.
//!
//! Loading goes raw, then validated: the file is parsed into a TOML table, checked against the
//! schema (unknown keys get a "did you mean"), `--set` overrides are applied, every value is
//! type- and range-checked with the file, line and key named, and the grid is expanded into
//! [`RunSpec`]s with stable run ids. Workers only ever see the validated types. This module does
//! not read data files (that is `data`), it only records where they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::{Table, Value};

use crate::error::{Error, Result};

/// Feature whitening applied before training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Whiten {
    None,
    Zca,
    Pca,
}

/// Weight initialization scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    Zeros,
    HeNormal,
    XavierNormal,
    Ols,
}

/// Optimizer applied to the (possibly clipped) gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    Sgd,
    Momentum,
    Adam,
}

macro_rules! enum_names {
    ($t:ty, $($v:ident => $s:literal),+) => {
        impl $t {
            /// The name used in configs and tables.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }
    };
}
enum_names!(Whiten, None => "none", Zca => "zca", Pca => "pca");
enum_names!(Init, Zeros => "zeros", HeNormal => "he_normal", XavierNormal => "xavier_normal", Ols => "ols");
enum_names!(Optimizer, Sgd => "sgd", Momentum => "momentum", Adam => "adam");

/// The settings of one run: every `[train]` key. Field order is the canonical order used for
/// run ids and table columns, so it must not depend on the order of keys in a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    pub epochs: u32,
    pub batch_size: u32,
    pub learning_rate: f64,
    pub whiten: Whiten,
    pub whiten_eps: f64,
    pub normalize_target: bool,
    pub clip: bool,
    pub clip_norm: f64,
    pub init: Init,
    pub init_scale: f64,
    pub init_zero_fraction: f64,
    pub weight_decay: f64,
    pub optimizer: Optimizer,
    pub momentum: f64,
    pub seed: u64,
    pub converge_tol: f64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            epochs: 500,
            batch_size: 32,
            learning_rate: 1e-3,
            whiten: Whiten::None,
            whiten_eps: 0.0,
            normalize_target: false,
            clip: false,
            clip_norm: 1.0,
            init: Init::HeNormal,
            init_scale: 1.0,
            init_zero_fraction: 0.0,
            weight_decay: 0.0,
            optimizer: Optimizer::Sgd,
            momentum: 0.9,
            seed: 0,
            converge_tol: 0.01,
        }
    }
}

/// Every `[train]` key, in canonical order.
pub const TRAIN_KEYS: &[&str] = &[
    "epochs",
    "batch_size",
    "learning_rate",
    "whiten",
    "whiten_eps",
    "normalize_target",
    "clip",
    "clip_norm",
    "init",
    "init_scale",
    "init_zero_fraction",
    "weight_decay",
    "optimizer",
    "momentum",
    "seed",
    "converge_tol",
];

impl TrainSettings {
    /// Range checks. Returns the offending key and what is accepted.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        let positive_finite = |key: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err((
                    key,
                    format!("{v} is not accepted: must be a finite number > 0"),
                ))
            }
        };
        let non_negative = |key: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err((
                    key,
                    format!("{v} is not accepted: must be a finite number >= 0"),
                ))
            }
        };
        if self.epochs == 0 {
            return Err((
                "epochs",
                "0 is not accepted: must be an integer >= 1".into(),
            ));
        }
        if self.batch_size == 0 {
            return Err((
                "batch_size",
                "0 is not accepted: must be an integer >= 1".into(),
            ));
        }
        positive_finite("learning_rate", self.learning_rate)?;
        non_negative("whiten_eps", self.whiten_eps)?;
        positive_finite("clip_norm", self.clip_norm)?;
        if !self.init_scale.is_finite() {
            return Err((
                "init_scale",
                format!("{} is not accepted: must be finite", self.init_scale),
            ));
        }
        if !(self.init_zero_fraction >= 0.0 && self.init_zero_fraction < 1.0) {
            return Err((
                "init_zero_fraction",
                format!(
                    "{} is not accepted: must be in [0, 1)",
                    self.init_zero_fraction
                ),
            ));
        }
        non_negative("weight_decay", self.weight_decay)?;
        if !(self.momentum >= 0.0 && self.momentum < 1.0) {
            return Err((
                "momentum",
                format!("{} is not accepted: must be in [0, 1)", self.momentum),
            ));
        }
        non_negative("converge_tol", self.converge_tol)?;
        Ok(())
    }

    /// The canonical text of these settings (TOML, keys in declaration order).
    pub fn canonical(&self) -> String {
        toml::to_string(self).expect("settings serialize")
    }

    /// The value of one key as a TOML value (used for grid listing and excludes).
    pub fn value_of(&self, key: &str) -> Option<Value> {
        let table: Table = Table::try_from(self).expect("settings serialize");
        table.get(key).cloned()
    }
}

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
pub const FILE_KEYS: &[&str] = &["path", "target", "features"];
const DATA_KEYS: &[&str] = &[
    "source",
    "path",
    "target",
    "features",
    "standardize",
    "seed",
    "n_rows",
    "n_features",
    "phi",
    "nu",
    "burn_in",
    "signal_lags",
    "r2",
    "ols_mse",
];
const TOP_KEYS: &[&str] = &[
    "name", "seed", "max_runs", "data", "train", "grid", "ablation", "scenario",
];
const SECTIONS: &[&str] = &["data", "train", "grid", "ablation", "scenario"];
const ABLATION_KEYS: &[&str] = &["factors", "converge_high", "converge_low"];
const SCENARIO_KEYS: &[&str] = &["name", "description", "set", "metric", "check", "reported"];

/// The `[ablation]` section: which settings are the fixes under test, and the verdict thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct Ablation {
    /// Each factor: the grid key, its "on" value and its "off" value (the axis's other value).
    pub factors: Vec<Factor>,
    /// A cell "converges" for the verdict when at least this share of its seeds converged.
    pub converge_high: f64,
    /// A cell "fails" for the verdict when at most this share of its seeds converged.
    pub converge_low: f64,
}

/// One fix under test.
#[derive(Clone, Debug, PartialEq)]
pub struct Factor {
    pub key: String,
    pub on: Value,
    pub off: Value,
}

/// The run metric a scenario compares with the report's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    FinalTrainR2,
    BestTrainR2,
    EpochsToConverge,
}

/// How a scenario's measured values are compared with the reported one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Same sign and within one order of magnitude (median across seeds).
    Value,
    /// Every seed converges and the median is at most the reported value.
    AtMost,
    /// No seed ever gets within `converge_tol` of the OLS loss.
    NeverConverges,
}

/// A named scenario of the report: settings applied on top of `[train]`, run for every grid
/// combination (usually the seeds), with the report's number stored beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub set: Table,
    pub metric: Metric,
    pub check: Check,
    pub reported: f64,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FinalTrainR2 => "final_train_r2",
            Metric::BestTrainR2 => "best_train_r2",
            Metric::EpochsToConverge => "epochs_to_converge",
        }
    }
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Value => "value",
            Check::AtMost => "at_most",
            Check::NeverConverges => "never_converges",
        }
    }
}
/// Default cap on the number of runs a grid may expand to (`max_runs` overrides it).
pub const DEFAULT_MAX_RUNS: u64 = 100_000;

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
    },
}

/// The validated data specification shared by all runs (the grid may vary only `data_seed`).
#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    pub config: DataConfig,
    pub source: DataSource,
}

/// One run of the sweep: its position, id and full settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub index: usize,
    /// Stable hex hash of the canonical settings, data spec and sweep seed.
    pub id: String,
    pub settings: TrainSettings,
    /// Seed of the generated data set; `None` for file data.
    pub data_seed: Option<u64>,
    /// Index into [`Sweep::scenarios`], when the config lists scenarios.
    pub scenario: Option<usize>,
}

/// One axis of the grid: a key and its canonical values, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<Value>,
}

/// A validated sweep: everything needed to run it.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub name: String,
    pub seed: u64,
    pub data: DataSpec,
    pub base: TrainSettings,
    pub axes: Vec<Axis>,
    pub runs: Vec<RunSpec>,
    pub ablation: Option<Ablation>,
    pub scenarios: Vec<Scenario>,
    /// The resolved configuration (defaults filled in, overrides applied) as TOML.
    pub resolved_toml: String,
    /// Hex SHA-256 of `resolved_toml`.
    pub config_hash: String,
}

impl Sweep {
    /// Keys that vary across runs (the grid axes), in expansion order.
    pub fn varying_keys(&self) -> Vec<&str> {
        self.axes.iter().map(|a| a.key.as_str()).collect()
    }
}

/// Tells where a dotted key came from, for error messages: a `--set` flag or a line of the file.
struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
    overrides: BTreeMap<String, String>,
}

impl Locator<'_> {
    fn at(&self, key: &str) -> String {
        if let Some(flag) = self.overrides.get(key) {
            return format!("--set {flag}");
        }
        match locate_key(self.text, key) {
            Some((line, col)) => format!("{}:{line}:{col}: {key}", self.file.display()),
            None => format!("{}: {key}", self.file.display()),
        }
    }

    fn error(&self, key: &str, message: impl std::fmt::Display) -> Error {
        Error::Config(format!("{}: {message}", self.at(key)))
    }
}

/// Finds the line and column (1-based) where a dotted key is assigned in TOML text, following
/// `[table]` and `[[array]]` headers (the n-th `[[grid.exclude]]` is `grid.exclude.<n>`).
/// Returns `None` for forms it does not follow (inline tables); messages then omit the line.
pub fn locate_key(text: &str, dotted: &str) -> Option<(usize, usize)> {
    let mut header = String::new();
    let mut array_counts: BTreeMap<String, usize> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(rest) = trimmed.strip_prefix("[[") {
            let name = rest.split("]]").next().unwrap_or("").trim().to_string();
            let count = array_counts.entry(name.clone()).or_insert(0);
            header = format!("{name}.{count}");
            *count += 1;
            if header == dotted {
                return Some((n + 1, indent + 1));
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            header = rest.split(']').next().unwrap_or("").trim().to_string();
            if header == dotted {
                return Some((n + 1, indent + 1));
            }
            continue;
        }
        let Some((key, _)) = trimmed.split_once('=') else {
            continue;
        };
        let key: String = key
            .trim()
            .split('.')
            .map(|k| k.trim().trim_matches('"'))
            .collect::<Vec<_>>()
            .join(".");
        if key.is_empty() || key.starts_with('#') {
            continue;
        }
        let full = if header.is_empty() {
            key
        } else {
            format!("{header}.{key}")
        };
        if full == dotted {
            return Some((n + 1, indent + 1));
        }
    }
    None
}

fn suggestion(unknown: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, k)) => format!(" (did you mean `{k}`?)"),
        None => String::new(),
    }
}

fn unknown_key(loc: &Locator, dotted: &str, key: &str, known: &[&str]) -> Error {
    loc.error(
        dotted,
        format!(
            "unknown key `{key}`{}; accepted keys: {}",
            suggestion(key, known),
            known.join(", ")
        ),
    )
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Checks one `[train]` (or grid) value: type and range. Returns the canonical value.
pub fn canonical_train_value(key: &str, value: &Value) -> std::result::Result<Value, String> {
    let mut table = Table::new();
    table.insert(key.to_string(), value.clone());
    let settings: TrainSettings = table.try_into().map_err(|e: toml::de::Error| {
        let msg = e
            .message()
            .trim()
            .replace("expected u32", "expected a whole number")
            .replace("expected u64", "expected a whole number")
            .replace("expected f64", "expected a number");
        format!("{value} is not accepted ({msg})")
    })?;
    settings.validate().map_err(|(_, msg)| msg)?;
    Ok(settings.value_of(key).expect("known key"))
}

fn canonical_data_seed(value: &Value) -> std::result::Result<Value, String> {
    match value {
        Value::Integer(i) if *i >= 0 => Ok(value.clone()),
        _ => Err(format!("{value} is not accepted: must be an integer >= 0")),
    }
}

fn canonical_axis_value(key: &str, value: &Value) -> std::result::Result<Value, String> {
    if key == "data_seed" {
        canonical_data_seed(value)
    } else {
        canonical_train_value(key, value)
    }
}

/// Parses the value of a `--set KEY=VALUE` flag: a TOML value, or else a bare string.
fn parse_override_value(raw: &str) -> std::result::Result<Value, String> {
    let doc = format!("v = {raw}");
    match toml::from_str::<Table>(&doc) {
        Ok(mut t) => Ok(t.remove("v").expect("parsed key")),
        Err(e) => {
            let starts_structured = raw.trim_start().starts_with(['[', '{', '"', '\'']);
            if starts_structured || raw.trim().is_empty() {
                Err(format!(
                    "`{raw}` is not a TOML value ({})",
                    e.message().trim()
                ))
            } else {
                Ok(Value::String(raw.to_string()))
            }
        }
    }
}

/// Applies one `--set KEY=VALUE` to the table; returns the dotted key.
fn apply_override(table: &mut Table, flag: &str, cwd: &Path) -> Result<String> {
    let bad = |msg: String| Error::Config(format!("--set {flag}: {msg}"));
    let Some((path, raw)) = flag.split_once('=') else {
        return Err(bad(
            "expected KEY=VALUE, for example --set train.epochs=50".into()
        ));
    };
    let path = path.trim();
    let mut value = parse_override_value(raw.trim()).map_err(bad)?;
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        [key] if TOP_KEYS.contains(key) && !SECTIONS.contains(key) => {
            table.insert(key.to_string(), value);
        }
        [section, key] if ["data", "train", "grid", "ablation"].contains(section) => {
            let known: Vec<&str> = match *section {
                "data" => DATA_KEYS.to_vec(),
                "train" => TRAIN_KEYS.to_vec(),
                "ablation" => ABLATION_KEYS.to_vec(),
                _ => TRAIN_KEYS.iter().copied().chain(["data_seed"]).collect(),
            };
            if !known.contains(key) {
                return Err(bad(format!(
                    "unknown key `{key}` in [{section}]{}; accepted keys: {}",
                    suggestion(key, &known),
                    known.join(", ")
                )));
            }
            if *section == "data" && *key == "path" {
                if let Value::String(p) = &value {
                    // Paths given on the command line are relative to the working directory.
                    value = Value::String(cwd.join(p).to_string_lossy().into_owned());
                }
            }
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| Value::Table(Table::new()));
            match entry {
                Value::Table(t) => {
                    t.insert(key.to_string(), value);
                }
                other => {
                    return Err(bad(format!(
                        "[{section}] is {} in the file, not a table",
                        type_name(other)
                    )))
                }
            }
        }
        _ => {
            let hint = suggestion(parts[0], TOP_KEYS);
            return Err(bad(format!(
                "unknown key path `{path}`{hint}; accepted: name, seed, max_runs, data.<key>, train.<key>, grid.<key>, ablation.<key>"
            )));
        }
    }
    Ok(path.to_string())
}

fn section<'a>(table: &'a Table, name: &str, loc: &Locator) -> Result<Option<&'a Table>> {
    match table.get(name) {
        None => Ok(None),
        Some(Value::Table(t)) => Ok(Some(t)),
        Some(other) => Err(loc.error(
            name,
            format!("expected a table, found {}", type_name(other)),
        )),
    }
}

/// Loads, validates and expands a config file with `--set` overrides applied in order.
pub fn load(path: &Path, overrides: &[String]) -> Result<Sweep> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read config {}: {e}", path.display())))?;
    let cwd = std::env::current_dir().map_err(|e| Error::io("current directory", e))?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    from_text(&text, path, &base_dir, &cwd, overrides)
}

/// Like [`load`], from text. `base_dir` resolves relative data paths written in the text.
pub fn from_text(
    text: &str,
    file: &Path,
    base_dir: &Path,
    cwd: &Path,
    overrides: &[String],
) -> Result<Sweep> {
    let mut table: Table = toml::from_str(text)
        .map_err(|e| Error::Config(format!("{}: {}", file.display(), e.to_string().trim_end())))?;
    let mut loc = Locator {
        file,
        text,
        overrides: BTreeMap::new(),
    };
    let mut data_path_from_flag = false;
    for flag in overrides {
        let key = apply_override(&mut table, flag, cwd)?;
        data_path_from_flag |= key == "data.path";
        loc.overrides.insert(key, flag.clone());
    }

    // Schema: unknown keys and section types.
    for key in table.keys() {
        if !TOP_KEYS.contains(&key.as_str()) {
            return Err(unknown_key(&loc, key, key, TOP_KEYS));
        }
    }
    let data_table = section(&table, "data", &loc)?.cloned().unwrap_or_default();
    for key in data_table.keys() {
        if !DATA_KEYS.contains(&key.as_str()) {
            return Err(unknown_key(&loc, &format!("data.{key}"), key, DATA_KEYS));
        }
    }
    let train_table = section(&table, "train", &loc)?.cloned().unwrap_or_default();
    for (key, value) in &train_table {
        if !TRAIN_KEYS.contains(&key.as_str()) {
            return Err(unknown_key(&loc, &format!("train.{key}"), key, TRAIN_KEYS));
        }
        canonical_train_value(key, value).map_err(|m| loc.error(&format!("train.{key}"), m))?;
    }
    let grid_table = section(&table, "grid", &loc)?.cloned().unwrap_or_default();

    // Top-level scalars.
    let name = match table.get("name") {
        None => file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "sweep".into()),
        Some(Value::String(s)) if valid_name(s) => s.clone(),
        Some(v) => {
            return Err(loc.error(
                "name",
                format!("{v} is not accepted: must be a non-empty string of letters, digits, '-', '_' or '.'"),
            ))
        }
    };
    let seed = match table.get("seed") {
        None => 0,
        Some(Value::Integer(i)) if *i >= 0 => *i as u64,
        Some(v) => {
            return Err(loc.error(
                "seed",
                format!("{v} is not accepted: must be an integer >= 0"),
            ))
        }
    };
    let max_runs = match table.get("max_runs") {
        None => DEFAULT_MAX_RUNS,
        Some(Value::Integer(i)) if *i >= 1 => *i as u64,
        Some(v) => {
            return Err(loc.error(
                "max_runs",
                format!("{v} is not accepted: must be an integer >= 1"),
            ))
        }
    };

    // Data section.
    let data_config: DataConfig =
        Value::Table(data_table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                loc.error(
                    "data",
                    format!("invalid [data] section: {}", e.message().trim()),
                )
            })?;
    let data = validate_data(
        &data_config,
        &data_table,
        &loc,
        base_dir,
        data_path_from_flag,
    )?;

    // Base settings: all keys were checked one by one above.
    let base: TrainSettings = Value::Table(train_table.clone())
        .try_into()
        .expect("checked train keys");

    // Grid axes and excludes.
    let mut axes = Vec::new();
    let mut excludes: Vec<(usize, Vec<(String, Value)>)> = Vec::new();
    let axis_keys: Vec<&str> = TRAIN_KEYS
        .iter()
        .copied()
        .chain(["data_seed", "exclude"])
        .collect();
    for (key, value) in &grid_table {
        let dotted = format!("grid.{key}");
        if key == "exclude" {
            let Value::Array(items) = value else {
                return Err(loc.error(&dotted, "expected an array of tables ([[grid.exclude]])"));
            };
            for (i, item) in items.iter().enumerate() {
                let Value::Table(t) = item else {
                    return Err(loc.error(
                        &format!("grid.exclude.{i}"),
                        "expected a table of key = value",
                    ));
                };
                if t.is_empty() {
                    return Err(loc.error(
                        &format!("grid.exclude.{i}"),
                        "an exclude must name at least one axis",
                    ));
                }
                excludes.push((i, t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()));
            }
            continue;
        }
        if !axis_keys.contains(&key.as_str()) {
            return Err(unknown_key(&loc, &dotted, key, &axis_keys));
        }
        if key == "data_seed" && !matches!(data.source, DataSource::LaggedLevels) {
            return Err(loc.error(
                &dotted,
                "data_seed varies the built-in generator and cannot be used with a data file",
            ));
        }
        let Value::Array(items) = value else {
            return Err(loc.error(
                &dotted,
                format!("expected a list of values, found {}", type_name(value)),
            ));
        };
        if items.is_empty() {
            return Err(loc.error(&dotted, "empty list: give at least one value"));
        }
        let mut values: Vec<Value> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let v = canonical_axis_value(key, item)
                .map_err(|m| loc.error(&dotted, format!("value {}: {m}", i + 1)))?;
            if values.contains(&v) {
                return Err(loc.error(
                    &dotted,
                    format!("duplicate value {item}: each grid value must appear once"),
                ));
            }
            values.push(v);
        }
        axes.push(Axis {
            key: key.clone(),
            values,
        });
    }

    // Excludes may only name axes, with values the axis has.
    let mut exclude_rules: Vec<Vec<(String, Value)>> = Vec::new();
    for (i, rule) in &excludes {
        let dotted = format!("grid.exclude.{i}");
        let mut canonical_rule = Vec::new();
        for (key, value) in rule {
            let Some(axis) = axes.iter().find(|a| &a.key == key) else {
                let names: Vec<&str> = axes.iter().map(|a| a.key.as_str()).collect();
                return Err(loc.error(
                    &dotted,
                    format!(
                        "exclude names `{key}`, which is not a grid axis{}; axes: {}",
                        suggestion(key, &names),
                        if names.is_empty() {
                            "(none)".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            };
            let v = canonical_axis_value(key, value)
                .map_err(|m| loc.error(&dotted, format!("{key}: {m}")))?;
            if !axis.values.contains(&v) {
                return Err(loc.error(
                    &dotted,
                    format!("{key} = {value} is not one of the axis values"),
                ));
            }
            canonical_rule.push((key.clone(), v));
        }
        exclude_rules.push(canonical_rule);
    }

    let ablation = parse_ablation(&table, &axes, &loc)?;
    let scenarios = parse_scenarios(&table, &axes, &loc)?;

    let total: u64 =
        axes.iter().map(|a| a.values.len() as u64).product::<u64>() * scenarios.len().max(1) as u64;
    if total > max_runs {
        return Err(loc.error(
            "grid",
            format!("the grid expands to {total} runs, above max_runs = {max_runs}; set max_runs higher to allow it"),
        ));
    }

    let mut resolved_toml = resolved_text(
        &name,
        seed,
        max_runs,
        &data_config,
        &base,
        &axes,
        &exclude_rules,
    );
    resolved_toml += &extra_sections_text(ablation.as_ref(), &scenarios);
    let config_hash = hex_sha256(resolved_toml.as_bytes());
    let data_identity = data_identity(&data)?;
    let runs = expand(
        &base,
        &axes,
        &exclude_rules,
        seed,
        &data,
        &data_identity,
        &scenarios,
    );
    if runs.is_empty() {
        return Err(loc.error(
            "grid.exclude.0",
            format!("the excludes remove all {total} runs of the grid"),
        ));
    }
    Ok(Sweep {
        name,
        seed,
        data,
        base,
        axes,
        runs,
        ablation,
        scenarios,
        resolved_toml,
        config_hash,
    })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && s != "."
        && s != ".."
}

fn validate_data(
    config: &DataConfig,
    table: &Table,
    loc: &Locator,
    base_dir: &Path,
    path_from_flag: bool,
) -> Result<DataSpec> {
    let source = config.source.clone().unwrap_or_else(|| {
        if config.path.is_some() {
            "file".into()
        } else {
            "lagged-levels".into()
        }
    });
    let source = match source.as_str() {
        "lagged-levels" => {
            for key in FILE_KEYS {
                if table.contains_key(*key) {
                    return Err(loc.error(
                        &format!("data.{key}"),
                        "belongs to a data file, but source = \"lagged-levels\" (set source = \"file\")",
                    ));
                }
            }
            let c = config;
            let check = |key: &str, ok: bool, accepted: &str, v: String| {
                if ok {
                    Ok(())
                } else {
                    Err(loc.error(
                        &format!("data.{key}"),
                        format!("{v} is not accepted: {accepted}"),
                    ))
                }
            };
            check(
                "n_features",
                c.n_features >= 1,
                "must be >= 1",
                c.n_features.to_string(),
            )?;
            check(
                "n_rows",
                c.n_rows > c.n_features + 1,
                "must exceed n_features + 1",
                c.n_rows.to_string(),
            )?;
            check(
                "phi",
                c.phi.is_finite() && c.phi.abs() < 1.0,
                "must be in (-1, 1)",
                c.phi.to_string(),
            )?;
            check(
                "nu",
                c.nu.is_finite() && c.nu > 2.0,
                "must be > 2 (finite variance)",
                c.nu.to_string(),
            )?;
            check(
                "signal_lags",
                c.signal_lags >= 1 && c.signal_lags < c.n_features,
                "must be in [1, n_features)",
                c.signal_lags.to_string(),
            )?;
            check(
                "r2",
                c.r2 > 0.0 && c.r2 < 1.0,
                "must be in (0, 1)",
                c.r2.to_string(),
            )?;
            check(
                "ols_mse",
                c.ols_mse.is_finite() && c.ols_mse > 0.0,
                "must be a finite number > 0",
                c.ols_mse.to_string(),
            )?;
            DataSource::LaggedLevels
        }
        "file" => {
            for key in GENERATOR_KEYS {
                if table.contains_key(*key) {
                    return Err(loc.error(
                        &format!("data.{key}"),
                        "is a parameter of the built-in generator, not of a data file",
                    ));
                }
            }
            let Some(path) = &config.path else {
                return Err(loc.error(
                    "data.path",
                    "source = \"file\" needs path = \"data.csv\" or \"data.parquet\"",
                ));
            };
            let Some(target) = &config.target else {
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
            if let Some(features) = &config.features {
                if features.is_empty() {
                    return Err(loc.error(
                        "data.features",
                        "empty list: name at least one column, or leave it out",
                    ));
                }
                let mut seen = std::collections::BTreeSet::new();
                for f in features {
                    if !seen.insert(f) {
                        return Err(
                            loc.error("data.features", format!("column \"{f}\" is listed twice"))
                        );
                    }
                    if f == target {
                        return Err(
                            loc.error("data.features", format!("column \"{f}\" is the target"))
                        );
                    }
                }
            }
            let resolved = if path_from_flag {
                PathBuf::from(path)
            } else {
                base_dir.join(path)
            };
            DataSource::File {
                path: resolved,
                target: target.clone(),
                features: config.features.clone(),
            }
        }
        other => {
            return Err(loc.error(
                "data.source",
                format!(
                    "\"{other}\" is not accepted: use \"lagged-levels\" (built-in) or \"file\""
                ),
            ))
        }
    };
    Ok(DataSpec {
        config: config.clone(),
        source,
    })
}

/// What identifies the data for run ids: generator parameters, or the file's content hash.
fn data_identity(data: &DataSpec) -> Result<String> {
    let c = &data.config;
    Ok(match &data.source {
        DataSource::LaggedLevels => format!(
            "lagged-levels n_rows={} n_features={} phi={:?} nu={:?} burn_in={} signal_lags={} r2={:?} ols_mse={:?} standardize={}",
            c.n_rows, c.n_features, c.phi, c.nu, c.burn_in, c.signal_lags, c.r2, c.ols_mse, c.standardize
        ),
        DataSource::File { path, target, features } => {
            // A missing file is reported later, with the data errors; its id uses the path.
            let digest = match std::fs::read(path) {
                Ok(bytes) => hex_sha256(&bytes),
                Err(_) => format!("unreadable:{}", path.display()),
            };
            format!("file sha256={digest} target={target:?} features={features:?} standardize={}", c.standardize)
        }
    })
}

/// Hex SHA-256 of bytes.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run_id(
    settings: &TrainSettings,
    data_seed: Option<u64>,
    sweep_seed: u64,
    data_identity: &str,
) -> String {
    let text = format!(
        "sweep_seed={sweep_seed}\ndata={data_identity}\ndata_seed={data_seed:?}\n{}",
        settings.canonical()
    );
    hex_sha256(text.as_bytes())[..16].to_string()
}

/// Cartesian product of the axes (last axis fastest), minus excluded combinations.
fn expand(
    base: &TrainSettings,
    axes: &[Axis],
    excludes: &[Vec<(String, Value)>],
    sweep_seed: u64,
    data: &DataSpec,
    data_identity: &str,
    scenarios: &[Scenario],
) -> Vec<RunSpec> {
    let mut runs = Vec::new();
    if scenarios.is_empty() {
        expand_one(
            base,
            axes,
            excludes,
            sweep_seed,
            data,
            data_identity,
            None,
            &mut runs,
        );
    }
    for (i, scenario) in scenarios.iter().enumerate() {
        let mut table = Table::try_from(base).expect("settings serialize");
        table.extend(scenario.set.clone());
        let settings: TrainSettings = Value::Table(table)
            .try_into()
            .expect("validated scenario settings");
        let identity = format!("{data_identity}\nscenario={}", scenario.name);
        expand_one(
            &settings,
            axes,
            excludes,
            sweep_seed,
            data,
            &identity,
            Some(i),
            &mut runs,
        );
    }
    runs
}

#[allow(clippy::too_many_arguments)]
fn expand_one(
    base: &TrainSettings,
    axes: &[Axis],
    excludes: &[Vec<(String, Value)>],
    sweep_seed: u64,
    data: &DataSpec,
    data_identity: &str,
    scenario: Option<usize>,
    runs: &mut Vec<RunSpec>,
) {
    let base_table = Table::try_from(base).expect("settings serialize");
    let default_data_seed =
        matches!(data.source, DataSource::LaggedLevels).then_some(data.config.seed);
    let total: usize = axes.iter().map(|a| a.values.len()).product();
    let mut choice = vec![0usize; axes.len()];
    for _ in 0..total {
        let picked: Vec<(&str, &Value)> = axes
            .iter()
            .zip(&choice)
            .map(|(a, &i)| (a.key.as_str(), &a.values[i]))
            .collect();
        let excluded = excludes.iter().any(|rule| {
            rule.iter()
                .all(|(k, v)| picked.iter().any(|(pk, pv)| pk == k && *pv == v))
        });
        if !excluded {
            let mut table = base_table.clone();
            let mut data_seed = default_data_seed;
            for (key, value) in &picked {
                if *key == "data_seed" {
                    data_seed = value.as_integer().map(|i| i as u64);
                } else {
                    table.insert(key.to_string(), (*value).clone());
                }
            }
            let settings: TrainSettings = Value::Table(table)
                .try_into()
                .expect("canonical grid values");
            let id = run_id(&settings, data_seed, sweep_seed, data_identity);
            runs.push(RunSpec {
                index: runs.len(),
                id,
                settings,
                data_seed,
                scenario,
            });
        }
        // Advance the mixed-radix counter, last axis fastest.
        for pos in (0..axes.len()).rev() {
            choice[pos] += 1;
            if choice[pos] < axes[pos].values.len() {
                break;
            }
            choice[pos] = 0;
        }
    }
}

fn resolved_text(
    name: &str,
    seed: u64,
    max_runs: u64,
    data: &DataConfig,
    base: &TrainSettings,
    axes: &[Axis],
    excludes: &[Vec<(String, Value)>],
) -> String {
    let mut root = Table::new();
    root.insert("name".into(), Value::String(name.into()));
    root.insert("seed".into(), Value::Integer(seed as i64));
    root.insert("max_runs".into(), Value::Integer(max_runs as i64));
    root.insert(
        "data".into(),
        Value::Table(Table::try_from(data).expect("data serializes")),
    );
    root.insert(
        "train".into(),
        Value::Table(Table::try_from(base).expect("settings serialize")),
    );
    let mut grid = Table::new();
    for axis in axes {
        grid.insert(axis.key.clone(), Value::Array(axis.values.clone()));
    }
    if !excludes.is_empty() {
        let rules = excludes
            .iter()
            .map(|r| Value::Table(r.iter().cloned().collect()))
            .collect();
        grid.insert("exclude".into(), Value::Array(rules));
    }
    root.insert("grid".into(), Value::Table(grid));
    toml::to_string(&root).expect("config serializes")
}

/// A short rendering of a TOML value for listings (strings without quotes).
pub fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_ablation(table: &Table, axes: &[Axis], loc: &Locator) -> Result<Option<Ablation>> {
    let Some(section) = section(table, "ablation", loc)? else {
        return Ok(None);
    };
    for key in section.keys() {
        if !ABLATION_KEYS.contains(&key.as_str()) {
            return Err(unknown_key(
                loc,
                &format!("ablation.{key}"),
                key,
                ABLATION_KEYS,
            ));
        }
    }
    let fraction = |key: &str, default: f64| -> Result<f64> {
        match section.get(key) {
            None => Ok(default),
            Some(v) => match v.as_float().or_else(|| v.as_integer().map(|i| i as f64)) {
                Some(f) if (0.0..=1.0).contains(&f) => Ok(f),
                _ => Err(loc.error(
                    &format!("ablation.{key}"),
                    format!("{v} is not accepted: must be a number in [0, 1]"),
                )),
            },
        }
    };
    let converge_high = fraction("converge_high", 0.8)?;
    let converge_low = fraction("converge_low", 0.2)?;
    if converge_low >= converge_high {
        return Err(loc.error(
            "ablation.converge_low",
            format!(
                "{converge_low} is not accepted: must be below converge_high = {converge_high}"
            ),
        ));
    }
    let Some(Value::Table(factor_table)) = section.get("factors") else {
        return Err(loc.error(
            "ablation.factors",
            "expected a table such as factors = { whiten = \"zca\", clip = true }",
        ));
    };
    if factor_table.is_empty() {
        return Err(loc.error("ablation.factors", "name at least one factor"));
    }
    let mut factors = Vec::new();
    for (key, on) in factor_table {
        let at = "ablation.factors";
        let Some(axis) = axes.iter().find(|a| &a.key == key) else {
            return Err(loc.error(
                at,
                format!("factor `{key}` is not a grid axis: list its off and on values in [grid]"),
            ));
        };
        if axis.values.len() != 2 {
            return Err(loc.error(
                at,
                format!(
                    "factor `{key}` needs exactly two grid values (off and on), grid.{key} has {}",
                    axis.values.len()
                ),
            ));
        }
        let on = canonical_axis_value(key, on).map_err(|m| loc.error(at, format!("{key}: {m}")))?;
        let Some(off) = axis.values.iter().find(|v| **v != on).cloned() else {
            unreachable!("two distinct values")
        };
        if !axis.values.contains(&on) {
            return Err(loc.error(
                at,
                format!("{key} = {on} is not one of the values of grid.{key}"),
            ));
        }
        factors.push(Factor {
            key: key.clone(),
            on,
            off,
        });
    }
    Ok(Some(Ablation {
        factors,
        converge_high,
        converge_low,
    }))
}

fn parse_scenarios(table: &Table, axes: &[Axis], loc: &Locator) -> Result<Vec<Scenario>> {
    let Some(value) = table.get("scenario") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(loc.error("scenario", "expected [[scenario]] tables"));
    };
    let mut scenarios: Vec<Scenario> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("scenario.{i}");
        let Value::Table(t) = item else {
            return Err(loc.error(&at, "expected a table"));
        };
        for key in t.keys() {
            if !SCENARIO_KEYS.contains(&key.as_str()) {
                return Err(unknown_key(loc, &at, key, SCENARIO_KEYS));
            }
        }
        let scenario: Scenario = item.clone().try_into().map_err(|e: toml::de::Error| {
            loc.error(&at, format!("invalid scenario: {}", e.message().trim()))
        })?;
        if !valid_name(&scenario.name) {
            return Err(loc.error(
                &at,
                format!(
                    "name \"{}\" is not accepted: letters, digits, '-', '_', '.'",
                    scenario.name
                ),
            ));
        }
        if scenarios.iter().any(|s| s.name == scenario.name) {
            return Err(loc.error(
                &at,
                format!("scenario name \"{}\" is used twice", scenario.name),
            ));
        }
        for (key, value) in &scenario.set {
            if !TRAIN_KEYS.contains(&key.as_str()) {
                return Err(unknown_key(loc, &at, key, TRAIN_KEYS));
            }
            if axes.iter().any(|a| &a.key == key) {
                return Err(loc.error(
                    &at,
                    format!("set.{key} is also a grid axis; a scenario may only set fixed keys"),
                ));
            }
            canonical_train_value(key, value)
                .map_err(|m| loc.error(&at, format!("set.{key}: {m}")))?;
        }
        if !scenario.reported.is_finite() {
            return Err(loc.error(&at, "reported must be a finite number"));
        }
        scenarios.push(scenario);
    }
    Ok(scenarios)
}

fn extra_sections_text(ablation: Option<&Ablation>, scenarios: &[Scenario]) -> String {
    let mut root = Table::new();
    if let Some(a) = ablation {
        let mut t = Table::new();
        t.insert(
            "factors".into(),
            Value::Table(
                a.factors
                    .iter()
                    .map(|f| (f.key.clone(), f.on.clone()))
                    .collect(),
            ),
        );
        t.insert("converge_high".into(), Value::Float(a.converge_high));
        t.insert("converge_low".into(), Value::Float(a.converge_low));
        root.insert("ablation".into(), Value::Table(t));
    }
    if !scenarios.is_empty() {
        let items = scenarios
            .iter()
            .map(|s| Value::Table(Table::try_from(s).expect("scenario serializes")))
            .collect();
        root.insert("scenario".into(), Value::Array(items));
    }
    if root.is_empty() {
        String::new()
    } else {
        toml::to_string(&root).expect("sections serialize")
    }
}
