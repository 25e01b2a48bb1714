//! The sweep configuration: TOML text in, a validated [`Sweep`] out.
//!
//! Loading goes raw, then validated: the file is parsed into a TOML table, `--set` overrides are
//! applied, the schema is checked (unknown keys get a "did you mean"), then each part is checked by
//! its own module with the file, line and key named: the top-level scalars, `[data]`
//! (`data_section`), `[train]` (`settings`), `[grid]` (`grid`), `[ablation]` and `[[scenario]]`
//! (`ablation`). Last come the run count, the resolved TOML and its hash (`resolved`) and the
//! expansion into runs with stable ids. Workers only ever see the validated types. This module
//! does not read data files (that is `data`), it only records where they are.

mod ablation;
mod argv_template;
mod command_section;
mod command_values;
mod data_section;
mod digest;
mod grid;
mod locate;
mod overrides;
mod params_section;
mod reproducibility;
mod resolved;
mod settings;

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

pub use ablation::{Ablation, AdaptiveSeeds, Check, Factor, Metric, Scenario};
pub use command_section::{Bound, CommandSpec, RUN_NAMES};
pub use command_values::parse_duration;
pub use data_section::{CsvFormat, DataConfig, DataSource, DataSpec, FILE_KEYS, GENERATOR_KEYS};
pub use digest::{hex_sha256, hex_sha256_of_file};
pub use grid::{Axis, Exclude, Grid, RunSpec};
pub use locate::locate_key;
pub use params_section::{param_text, Params};
pub use reproducibility::{with_execution, Reproducibility};
pub use resolved::TopLevel;
pub use settings::{
    canonical_train_value, DecayOn, Dtype, Init, Optimizer, TrainSettings, Whiten, TRAIN_KEYS,
};

use ablation::ABLATION_KEYS;
use data_section::{data_keys, PathBase};
use grid::RunIdentity;
use locate::Locator;
use resolved::Resolved;

use crate::error::{Error, Result};

const TOP_KEYS: &[&str] = &[
    "name", "seed", "max_runs", "data", "train", "grid", "ablation", "scenario", "command",
    "params",
];
const SECTIONS: &[&str] = &[
    "data", "train", "grid", "ablation", "scenario", "command", "params",
];

/// Every key a config may hold, as `(section, key)` (`""` for the top level), for the
/// reference docs' check: the sections' own keys; a `[grid]` axis is any `[train]` key, or
/// `data_seed`, and `exclude`; `[ablation] seeds` takes `min`, `max` and `step`.
pub fn documented_keys() -> Vec<(&'static str, &'static str)> {
    let top = ["name", "seed", "max_runs"].map(|k| ("", k));
    let data = data_keys().into_iter().map(|k| ("data", k));
    let train = settings::TRAIN_KEYS.iter().map(|k| ("train", *k));
    let grid = ["data_seed", "exclude"].map(|k| ("grid", k));
    let ablation = ablation::ABLATION_KEYS.iter().map(|k| ("ablation", *k));
    let seeds = ["min", "max", "step"].map(|k| ("ablation.seeds", k));
    let scenario = ablation::SCENARIO_KEYS.iter().map(|k| ("scenario", *k));
    let command = command_section::COMMAND_KEYS
        .iter()
        .map(|k| ("command", *k));
    top.into_iter()
        .chain(data)
        .chain(train)
        .chain(grid)
        .chain(ablation)
        .chain(seeds)
        .chain(scenario)
        .chain(command)
        .collect()
}

/// Default cap on the number of runs a grid may expand to (`max_runs` overrides it).
pub const DEFAULT_MAX_RUNS: u64 = 100_000;

/// Cap on the rows of `epochs.parquet` (runs x epochs): about 200 bytes each in memory while
/// the tables are built, so this keeps a sweep within about 10 GB.
pub const MAX_EPOCH_ROWS: u64 = 50_000_000;

/// A validated sweep: everything needed to run it.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub name: String,
    pub seed: u64,
    pub data: DataSpec,
    pub base: TrainSettings,
    pub grid: Grid,
    pub runs: Vec<RunSpec>,
    pub ablation: Option<Ablation>,
    pub scenarios: Vec<Scenario>,
    /// The resolved configuration (defaults filled in, overrides applied) as TOML.
    pub resolved_toml: String,
    /// Hex SHA-256 of `resolved_toml`.
    pub config_hash: String,
    /// Hex SHA-256 of the data file (`None` for the built-in generator).
    pub data_sha256: Option<String>,
    /// What identifies the data in run ids (generator parameters or the file's hash).
    pub data_identity: String,
    /// The user's training command, when runs are commands rather than the built-in engine.
    pub command: Option<CommandSpec>,
    /// The feature columns the data resolved to, in order: empty until the data is read (by
    /// `sweep run`, or from the manifest of a folder), since a file's columns decide them.
    pub features: Vec<String>,
    /// What a command sweep recorded of its environment once per folder (`sweep.provenance`,
    /// `sweep.determinism`), as table metadata entries; empty until `sweep run` or the folder
    /// provides them.
    pub run_facts: Vec<(String, String)>,
}

impl Sweep {
    /// Keys that vary across runs (the grid axes), in expansion order.
    pub fn varying_keys(&self) -> Vec<&str> {
        self.grid.axes.iter().map(|a| a.key.as_str()).collect()
    }

    /// The seeds an adaptive ablation adds where its verdict is open (`None`: a fixed grid).
    pub fn adaptive_seeds(&self) -> Option<AdaptiveSeeds> {
        self.ablation.as_ref().and_then(|a| a.seeds)
    }

    /// The grid run with these settings (seed included) on data set `data_seed`, with the id the
    /// grid's expansion would give it, placed after the current runs.
    pub fn grid_run(&self, settings: TrainSettings, data_seed: Option<u64>) -> RunSpec {
        let identity = RunIdentity {
            sweep_seed: self.seed,
            data: self.data_identity.clone(),
        };
        RunSpec {
            index: self.runs.len(),
            id: identity.id(&settings, data_seed, &identity.data),
            settings,
            data_seed,
            scenario: None,
        }
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

/// The `[command]` section, if any; `source = "none"` and `[params]` need one.
fn command_of(
    table: &Table,
    loc: &Locator,
    base_dir: &Path,
    data: &DataSpec,
    params: &Params,
) -> Result<Option<CommandSpec>> {
    match loc.section(table, "command")? {
        Some(t) => {
            let has_data = data.source != DataSource::None;
            Ok(Some(CommandSpec::parse(
                t, loc, base_dir, has_data, params,
            )?))
        }
        None if data.source == DataSource::None => Err(loc.error(
            "data.source",
            "\"none\" needs a [command] section: the built-in engine trains on a data set; give \
             source = \"lagged-levels\" or \"file\", or run your own command with [command]",
        )),
        None if !params.is_empty() => Err(loc.error(
            "params",
            "[params] are the settings of your own training command: they need a [command] section",
        )),
        None => Ok(None),
    }
}

/// Like [`load`], from text. `base_dir` resolves relative data paths written in the text.
pub fn from_text(
    text: &str,
    file: &Path,
    base_dir: &Path,
    cwd: &Path,
    overrides: &[String],
) -> Result<Sweep> {
    let mut loc = Locator {
        file,
        text,
        overrides: BTreeMap::new(),
    };
    let (table, data_path_from_flag) = parse_with_overrides(&mut loc, cwd, overrides)?;
    let sections = Sections::check(&table, &loc)?;
    let top = top_level(&table, &loc)?;
    let path_base = PathBase {
        config_dir: base_dir,
        from_flag: data_path_from_flag,
    };
    let data = DataSpec::parse(&sections.data, &loc, &path_base)?;
    let params = params_section::parse(loc.section(&table, "params")?, &loc)?;
    let command = command_of(&table, &loc, base_dir, &data, &params)?;
    // Every train key was checked one by one by `Sections::check`.
    let mut base: TrainSettings = Value::Table(sections.train)
        .try_into()
        .expect("checked train keys");
    base.params = params.clone();
    let grid = Grid::parse(&sections.grid, &data, &params, &loc)?;
    let ablation = ablation::parse_ablation(&table, &grid.axes, &params, &loc)?;
    let scenarios = ablation::parse_scenarios(&table, &grid.axes, &loc)?;
    let adaptive = ablation.as_ref().and_then(|a| a.seeds);
    let (run_grid, total) = grid::run_grid(&grid, adaptive, &scenarios, &top, &loc)?;
    let resolved_toml = Resolved {
        top: &top,
        data: &data.config,
        base: &base,
        grid: &grid,
        ablation: ablation.as_ref(),
        scenarios: &scenarios,
        command: command.as_ref(),
    }
    .text();
    let data_sha256 = data.file_sha256();
    let mut data_identity = data.identity(data_sha256.as_deref());
    if let Some(command) = &command {
        data_identity = format!("{data_identity}\n{}", command.identity());
    }
    let identity = RunIdentity {
        sweep_seed: top.seed,
        data: data_identity,
    };
    let runs = run_grid.expand(&base, &identity, &data, &scenarios);
    // An adaptive sweep may grow every cell from `min` to `max` seeds.
    let growth = adaptive.map_or((1, 1), |s| (s.max, s.min));
    check_runs(&runs, total, growth, &run_grid, &loc)?;
    Ok(Sweep {
        name: top.name,
        seed: top.seed,
        config_hash: hex_sha256(resolved_toml.as_bytes()),
        resolved_toml,
        data_sha256,
        data_identity: identity.data.clone(),
        command,
        features: Vec::new(),
        run_facts: Vec::new(),
        data,
        base,
        grid: run_grid,
        runs,
        ablation,
        scenarios,
    })
}

/// Parses the text and applies the `--set` flags in order (recording them for error messages).
/// Returns the table and whether `data.path` came from a flag.
fn parse_with_overrides(
    loc: &mut Locator,
    cwd: &Path,
    overrides: &[String],
) -> Result<(Table, bool)> {
    let mut table: Table = toml::from_str(loc.text).map_err(|e| {
        Error::Config(format!(
            "{}: {}",
            loc.file.display(),
            e.to_string().trim_end()
        ))
    })?;
    let mut data_path_from_flag = false;
    for flag in overrides {
        let key = overrides::apply(&mut table, flag, cwd)?;
        data_path_from_flag |= key == "data.path";
        loc.overrides.insert(key, flag.clone());
    }
    Ok((table, data_path_from_flag))
}

/// The three sections every config has (empty when absent), after the schema check.
struct Sections {
    data: Table,
    train: Table,
    grid: Table,
}

impl Sections {
    /// Unknown top-level and `[data]` keys, section types, and every `[train]` value.
    fn check(table: &Table, loc: &Locator) -> Result<Sections> {
        if let Some(key) = table.keys().find(|k| !TOP_KEYS.contains(&k.as_str())) {
            return Err(loc.unknown_key(key, key, TOP_KEYS));
        }
        let data = loc.section(table, "data")?.cloned().unwrap_or_default();
        loc.check_keys(&data, "data.", &data_keys())?;
        let train = loc.section(table, "train")?.cloned().unwrap_or_default();
        for (key, value) in &train {
            if !TRAIN_KEYS.contains(&key.as_str()) {
                return Err(loc.unknown_key(&format!("train.{key}"), key, TRAIN_KEYS));
            }
            canonical_train_value(key, value).map_err(|m| loc.error(&format!("train.{key}"), m))?;
        }
        let grid = loc.section(table, "grid")?.cloned().unwrap_or_default();
        Ok(Sections { data, train, grid })
    }
}

/// `name` (default: the file's stem), `seed` and `max_runs`.
fn top_level(table: &Table, loc: &Locator) -> Result<TopLevel> {
    let name = match table.get("name") {
        None => loc
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into()),
        Some(Value::String(s)) if valid_name(s) => s.clone(),
        Some(v) => {
            return Err(loc.error(
                "name",
                format!("{v} is not accepted: must be a non-empty string of letters, digits, '-', '_' or '.'"),
            ))
        }
    };
    let integer = |key: &str, default: u64, min: i64| match table.get(key) {
        None => Ok(default),
        Some(Value::Integer(i)) if *i >= min => Ok(*i as u64),
        Some(v) => Err(loc.error(
            key,
            format!("{v} is not accepted: must be an integer >= {min}"),
        )),
    };
    Ok(TopLevel {
        name,
        seed: integer("seed", 0, 0)?,
        max_runs: integer("max_runs", DEFAULT_MAX_RUNS, 1)?,
    })
}

/// The expanded runs: at least one, and an epochs table that fits in memory, also once every
/// cell has grown by `growth` (`(max, min)` seeds for adaptive seeds, else `(1, 1)`).
fn check_runs(
    runs: &[RunSpec],
    total: u64,
    growth: (u64, u64),
    grid: &Grid,
    loc: &Locator,
) -> Result<()> {
    if runs.is_empty() {
        return Err(loc.error(
            "grid.exclude.0",
            format!("the excludes remove all {total} runs of the grid"),
        ));
    }
    let epoch_rows: u64 = runs
        .iter()
        .map(|r| u64::from(r.settings.epochs))
        .sum::<u64>()
        / growth.1
        * growth.0;
    if epoch_rows > MAX_EPOCH_ROWS {
        let key = if grid.axes.iter().any(|a| a.key == "epochs") {
            "grid.epochs"
        } else {
            "train.epochs"
        };
        return Err(loc.error(
            key,
            format!(
                "{} runs x epochs make {epoch_rows} rows of epochs.parquet, above the {MAX_EPOCH_ROWS} that fit in \
                 memory; lower epochs or split the sweep into several configs",
                runs.len()
            ),
        ));
    }
    Ok(())
}

/// Names of sweeps and scenarios: letters, digits, '-', '_', '.'; not `.` or `..`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && s != "."
        && s != ".."
}

/// A short rendering of a TOML value for listings (strings without quotes).
pub fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_not_dots() {
        for ok in ["ablation", "a-b_c.1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_grid_too_large_to_count_is_refused() {
        let values = |n: i64| {
            format!(
                "[{}]",
                (1..=n)
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        // 1000^7 > u64::MAX: counting must not overflow.
        let axes = [
            "epochs",
            "batch_size",
            "seed",
            "init_scale",
            "clip_norm",
            "weight_decay",
            "converge_tol",
        ];
        let mut text = String::from("[grid]\n");
        for key in axes {
            text += &format!("{key} = {}\n", values(1000));
        }
        let err = from_text(
            &text,
            Path::new("big.toml"),
            Path::new("."),
            Path::new("."),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_runs"), "{err}");
    }

    #[test]
    fn epochs_beyond_memory_are_refused_before_any_run() {
        let text = format!("[train]\nepochs = {}\n", u32::MAX);
        let err = from_text(
            &text,
            Path::new("e.toml"),
            Path::new("."),
            Path::new("."),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("train.epochs") && err.contains("epochs.parquet"),
            "{err}"
        );
    }
}
