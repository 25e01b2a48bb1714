//! The `[grid]`: axes of canonical values and `[[grid.exclude]]` rules, their checks, the run
//! count against `max_runs` (with adaptive seeds' axis), and the expansion into [`RunSpec`]s with stable run ids.
//!
//! A run id is the SHA-256 of the sweep seed, the data identity, the data seed and the canonical
//! settings, so it does not depend on key order, grid order or which other runs share the sweep.

use toml::{Table, Value};

use super::ablation::Scenario;
use super::data_section::{DataSource, DataSpec};
use super::locate::{suggestion, type_name, Locator};
use super::params_section::{self, Params};
use super::settings::{canonical_train_value, TrainSettings, TRAIN_KEYS};
use crate::error::Result;

/// One axis of the grid: a key and its canonical values, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<Value>,
}

/// One exclude rule: the run is left out when every (key, value) matches.
pub type Exclude = Vec<(String, Value)>;

/// The validated grid.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Grid {
    pub axes: Vec<Axis>,
    pub excludes: Vec<Exclude>,
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
    /// Index into [`super::Sweep::scenarios`], when the config lists scenarios.
    pub scenario: Option<usize>,
}

/// What every run id of a sweep shares: the sweep seed and the data identity.
pub(crate) struct RunIdentity {
    pub sweep_seed: u64,
    pub data: String,
}

impl RunIdentity {
    pub(crate) fn id(
        &self,
        settings: &TrainSettings,
        data_seed: Option<u64>,
        data: &str,
    ) -> String {
        let text = format!(
            "sweep_seed={}\ndata={data}\ndata_seed={data_seed:?}\n{}",
            self.sweep_seed,
            settings.canonical()
        );
        super::hex_sha256(text.as_bytes())[..16].to_string()
    }
}

fn canonical_data_seed(value: &Value) -> std::result::Result<Value, String> {
    match value {
        Value::Integer(i) if *i >= 0 => Ok(value.clone()),
        _ => Err(format!("{value} is not accepted: must be an integer >= 0")),
    }
}

/// Checks one value of a grid axis (a train key, `data_seed` or a param); returns the
/// canonical value.
pub(crate) fn canonical_axis_value(
    key: &str,
    value: &Value,
    params: &Params,
) -> std::result::Result<Value, String> {
    if key == "data_seed" {
        canonical_data_seed(value)
    } else if let Some(checked) = params_section::canonical(params, key, value) {
        checked
    } else {
        canonical_train_value(key, value)
    }
}

impl Grid {
    /// Checks the `[grid]` table: axes (known keys, non-empty lists of distinct valid values)
    /// and excludes (naming axes, with values the axis has).
    pub(crate) fn parse(
        table: &Table,
        data: &DataSpec,
        params: &Params,
        loc: &Locator,
    ) -> Result<Grid> {
        let mut axes = Vec::new();
        let mut raw_excludes: Vec<(usize, Exclude)> = Vec::new();
        let axis_keys: Vec<&str> = TRAIN_KEYS
            .iter()
            .copied()
            .chain(["data_seed", "exclude"])
            .chain(params.keys().map(String::as_str))
            .collect();
        for (key, value) in table {
            let dotted = format!("grid.{key}");
            if key == "exclude" {
                raw_excludes = parse_exclude_tables(value, loc)?;
                continue;
            }
            if !axis_keys.contains(&key.as_str()) {
                return Err(loc.unknown_key(&dotted, key, &axis_keys));
            }
            if key == "data_seed" && !matches!(data.source, DataSource::LaggedLevels) {
                return Err(loc.error(
                    &dotted,
                    "data_seed varies the built-in generator and cannot be used with a data file",
                ));
            }
            axes.push(parse_axis(key, value, params, loc)?);
        }
        let excludes = raw_excludes
            .iter()
            .map(|(i, rule)| canonical_exclude(*i, rule, &axes, params, loc))
            .collect::<Result<_>>()?;
        Ok(Grid { axes, excludes })
    }

    /// The number of runs before excludes (times the scenarios), checked against `max_runs`.
    pub(crate) fn check_size(&self, scenarios: usize, max_runs: u64, loc: &Locator) -> Result<u64> {
        let total = self
            .axes
            .iter()
            .map(|a| a.values.len() as u64)
            .chain([scenarios.max(1) as u64])
            .try_fold(1u64, |acc, n| acc.checked_mul(n));
        match total {
            Some(total) if total <= max_runs => Ok(total),
            Some(total) => Err(loc.error(
                "grid",
                format!("the grid expands to {total} runs, above max_runs = {max_runs}; set max_runs higher to allow it"),
            )),
            None => Err(loc.error(
                "grid",
                format!("the grid expands to more than {} runs, above max_runs = {max_runs}", u64::MAX),
            )),
        }
    }

    /// Cartesian product of the axes (last axis fastest), minus excluded combinations, once per
    /// scenario when there are scenarios.
    pub(crate) fn expand(
        &self,
        base: &TrainSettings,
        identity: &RunIdentity,
        data: &DataSpec,
        scenarios: &[Scenario],
    ) -> Vec<RunSpec> {
        let mut runs = Vec::new();
        if scenarios.is_empty() {
            self.expand_one(base, identity, &identity.data, data, None, &mut runs);
        }
        for (i, scenario) in scenarios.iter().enumerate() {
            let settings = base.with_table(&scenario.set);
            let data_id = format!("{}\nscenario={}", identity.data, scenario.name);
            self.expand_one(&settings, identity, &data_id, data, Some(i), &mut runs);
        }
        runs
    }

    fn expand_one(
        &self,
        base: &TrainSettings,
        identity: &RunIdentity,
        data_id: &str,
        data: &DataSpec,
        scenario: Option<usize>,
        runs: &mut Vec<RunSpec>,
    ) {
        let base_table = base.to_table();
        let total: usize = self.axes.iter().map(|a| a.values.len()).product();
        let mut choice = vec![0usize; self.axes.len()];
        for _ in 0..total {
            let picked: Vec<(&str, &Value)> = self
                .axes
                .iter()
                .zip(&choice)
                .map(|(a, &i)| (a.key.as_str(), &a.values[i]))
                .collect();
            if !self.is_excluded(&picked) {
                let mut table = base_table.clone();
                let mut data_seed = data.default_data_seed();
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
                runs.push(RunSpec {
                    index: runs.len(),
                    id: identity.id(&settings, data_seed, data_id),
                    settings,
                    data_seed,
                    scenario,
                });
            }
            self.advance(&mut choice);
        }
    }

    fn is_excluded(&self, picked: &[(&str, &Value)]) -> bool {
        self.excludes.iter().any(|rule| {
            rule.iter()
                .all(|(k, v)| picked.iter().any(|(pk, pv)| pk == k && *pv == v))
        })
    }

    /// Advances a mixed-radix counter over the axes, last axis fastest.
    fn advance(&self, choice: &mut [usize]) {
        for pos in (0..self.axes.len()).rev() {
            choice[pos] += 1;
            if choice[pos] < self.axes[pos].values.len() {
                break;
            }
            choice[pos] = 0;
        }
    }
}

fn parse_axis(key: &str, value: &Value, params: &Params, loc: &Locator) -> Result<Axis> {
    let dotted = format!("grid.{key}");
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
        let v = canonical_axis_value(key, item, params)
            .map_err(|m| loc.error(&dotted, format!("value {}: {m}", i + 1)))?;
        if values.contains(&v) {
            return Err(loc.error(
                &dotted,
                format!("duplicate value {item}: each grid value must appear once"),
            ));
        }
        values.push(v);
    }
    Ok(Axis {
        key: key.to_string(),
        values,
    })
}

fn parse_exclude_tables(value: &Value, loc: &Locator) -> Result<Vec<(usize, Exclude)>> {
    let Value::Array(items) = value else {
        return Err(loc.error(
            "grid.exclude",
            "expected an array of tables ([[grid.exclude]])",
        ));
    };
    let mut rules = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("grid.exclude.{i}");
        let Value::Table(t) = item else {
            return Err(loc.error(&at, "expected a table of key = value"));
        };
        if t.is_empty() {
            return Err(loc.error(&at, "an exclude must name at least one axis"));
        }
        rules.push((i, t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()));
    }
    Ok(rules)
}

/// An exclude may only name axes, with values the axis has; returns it with canonical values.
fn canonical_exclude(
    i: usize,
    rule: &Exclude,
    axes: &[Axis],
    params: &Params,
    loc: &Locator,
) -> Result<Exclude> {
    let dotted = format!("grid.exclude.{i}");
    let mut canonical = Vec::new();
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
        let v = canonical_axis_value(key, value, params)
            .map_err(|m| loc.error(&dotted, format!("{key}: {m}")))?;
        if !axis.values.contains(&v) {
            return Err(loc.error(
                &dotted,
                format!("{key} = {value} is not one of the axis values"),
            ));
        }
        canonical.push((key.clone(), v));
    }
    Ok(canonical)
}
/// The grid the runs expand from, and the run count checked against `max_runs`. With adaptive
/// seeds, a seed axis 0..min (counted at its most, 0..max, against max_runs); the resolved text
/// keeps the grid as written.
pub(super) fn run_grid(
    grid: &Grid,
    adaptive: Option<super::AdaptiveSeeds>,
    scenarios: &[Scenario],
    top: &super::TopLevel,
    loc: &Locator,
) -> Result<(Grid, u64)> {
    let mut run_grid = grid.clone();
    if let Some(seeds) = adaptive {
        if !scenarios.is_empty() {
            return Err(loc.error(
                "ablation.seeds",
                "adaptive seeds are not accepted with [[scenario]]: the verdict is computed on the grid's own \
                 cells, which a config with scenarios does not run; give the seeds in grid.seed, or run the \
                 scenarios in a config of their own",
            ));
        }
        if seeds.max > top.max_runs {
            return Err(loc.error(
                "ablation.seeds",
                format!(
                    "max = {} seeds per cell is above max_runs = {}; set max_runs higher to allow it",
                    seeds.max, top.max_runs
                ),
            ));
        }
        run_grid.axes.push(Axis {
            key: "seed".into(),
            values: (0..seeds.max).map(|i| Value::Integer(i as i64)).collect(),
        });
    }
    let total = run_grid.check_size(scenarios.len(), top.max_runs, loc)?;
    if let Some(seeds) = adaptive {
        let axis = run_grid.axes.last_mut().expect("the seed axis");
        axis.values.truncate(seeds.min as usize);
    }
    Ok((run_grid, total))
}
