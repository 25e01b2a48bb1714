//! `[ablation]` (the fixes under test and the verdict thresholds) and `[[scenario]]` (named
//! settings from the report, run across the grid, with the report's number beside them).

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use super::grid::{canonical_axis_value, Axis};
use super::locate::Locator;
use super::params_section::Params;
use super::settings::{canonical_train_value, TRAIN_KEYS};
use super::valid_name;
use crate::enums::named_enum;
use crate::error::Result;

/// Keys of `[ablation]`.
pub(crate) const ABLATION_KEYS: &[&str] =
    &["factors", "converge_high", "converge_low", "alpha", "seeds"];

/// The default significance level of the verdict's Fisher test.
pub const DEFAULT_ALPHA: f64 = 0.05;
pub(crate) const SCENARIO_KEYS: &[&str] =
    &["name", "description", "set", "metric", "check", "reported"];

/// The `[ablation]` section: which settings are the fixes under test, and the verdict thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct Ablation {
    /// Each factor: the grid key, its "on" value and its "off" value (the axis's other value).
    pub factors: Vec<Factor>,
    /// A cell "converges" for the verdict when at least this share of its seeds converged.
    pub converge_high: f64,
    /// A cell "fails" for the verdict when at most this share of its seeds converged.
    pub converge_low: f64,
    /// `necessary` also needs the two-sided Fisher exact p of the two cells below this (divided
    /// by the planned batches when seeds are added adaptively: [`Ablation::test_alpha`]).
    pub alpha: f64,
    /// Seeds added only where the verdict is still open, instead of `grid.seed`.
    pub seeds: Option<AdaptiveSeeds>,
}

/// `[ablation] seeds = { min, max, step }`: seeds `0..min` run first; after each batch the next
/// `step` seeds go to the cells of the verdict rows still open, up to `max` seeds per cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveSeeds {
    pub min: u64,
    pub max: u64,
    pub step: u64,
}

impl AdaptiveSeeds {
    /// Batches planned: the first, and one per step up to `max`.
    pub fn batches(&self) -> u64 {
        1 + (self.max - self.min).div_ceil(self.step)
    }
}

impl Ablation {
    /// The level Fisher's p is compared with: `alpha`, divided by the number of planned batches
    /// when seeds are added adaptively (testing after every batch would otherwise inflate the
    /// false positives).
    pub fn test_alpha(&self) -> f64 {
        self.alpha / self.seeds.map_or(1, |s| s.batches()) as f64
    }
}

/// One fix under test.
#[derive(Clone, Debug, PartialEq)]
pub struct Factor {
    pub key: String,
    pub on: Value,
    pub off: Value,
}

named_enum! {
    /// The run metric a scenario compares with the report's number.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Metric {
        FinalTrainR2 => "final_train_r2",
        BestTrainR2 => "best_train_r2",
        EpochsToConverge => "epochs_to_converge",
    }
}

named_enum! {
    /// How a scenario's measured values are compared with the reported one.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Check {
        /// Same sign and within one order of magnitude (median across seeds).
        Value => "value",
        /// Every seed converges and the median is at most the reported value.
        AtMost => "at_most",
        /// No seed ever gets within `converge_tol` of the OLS loss.
        NeverConverges => "never_converges",
    }
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

/// Parses `[ablation]`, if present; factors must be two-valued grid axes.
pub(crate) fn parse_ablation(
    table: &Table,
    axes: &[Axis],
    params: &Params,
    loc: &Locator,
) -> Result<Option<Ablation>> {
    let Some(section) = loc.section(table, "ablation")? else {
        return Ok(None);
    };
    loc.check_keys(section, "ablation.", ABLATION_KEYS)?;
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
    let alpha = match section.get("alpha") {
        None => DEFAULT_ALPHA,
        Some(v) => match v.as_float() {
            Some(a) if a > 0.0 && a < 1.0 => a,
            _ => {
                return Err(loc.error(
                    "ablation.alpha",
                    format!("{v} is not accepted: must be a number in (0, 1), e.g. 0.05"),
                ))
            }
        },
    };
    let Some(Value::Table(factor_table)) = section.get("factors") else {
        return Err(loc.error(
            "ablation.factors",
            "expected a table such as factors = { whiten = \"zca\", clip = true }",
        ));
    };
    if factor_table.is_empty() {
        return Err(loc.error("ablation.factors", "name at least one factor"));
    }
    let factors = factor_table
        .iter()
        .map(|(key, on)| parse_factor(key, on, axes, params, loc))
        .collect::<Result<_>>()?;
    let seeds = section
        .get("seeds")
        .map(|v| parse_seeds(v, axes, loc))
        .transpose()?;
    let ablation = Ablation {
        factors,
        converge_high,
        converge_low,
        alpha,
        seeds,
    };
    check_seeds_reach(&ablation, axes, section.contains_key("alpha"), loc)?;
    Ok(Some(ablation))
}

/// `seeds = { min, max, step }`: whole numbers, 1 <= min <= max, step >= 1, and no `grid.seed`.
fn parse_seeds(value: &Value, axes: &[Axis], loc: &Locator) -> Result<AdaptiveSeeds> {
    let at = "ablation.seeds";
    let expected = "expected a table such as seeds = { min = 5, max = 40, step = 5 }";
    let Value::Table(t) = value else {
        return Err(loc.error(at, format!("{value} is not accepted: {expected}")));
    };
    if let Some(key) = t
        .keys()
        .find(|k| !["min", "max", "step"].contains(&k.as_str()))
    {
        return Err(loc.unknown_key(at, key, &["min", "max", "step"]));
    }
    let number = |key: &str| match t.get(key) {
        Some(Value::Integer(i)) if *i >= 1 => Ok(*i as u64),
        Some(v) => Err(loc.error(
            at,
            format!("{key} = {v} is not accepted: must be a whole number >= 1"),
        )),
        None => Err(loc.error(at, format!("{key} is missing: {expected}"))),
    };
    let seeds = AdaptiveSeeds {
        min: number("min")?,
        max: number("max")?,
        step: number("step")?,
    };
    if seeds.max < seeds.min {
        return Err(loc.error(
            at,
            format!(
                "max = {} is not accepted: must be at least min = {}",
                seeds.max, seeds.min
            ),
        ));
    }
    if axes.iter().any(|a| a.key == "seed") {
        return Err(loc.error(
            "grid.seed",
            "grid.seed cannot be given with ablation.seeds, which chooses the seeds (0, 1, 2, ...): remove one",
        ));
    }
    Ok(seeds)
}

/// Refuses an ablation whose seeds cannot make any fix `necessary`: with `n` seeds per cell the
/// smallest two-sided Fisher p of two cells is `2 / C(2n, n)` (n = 3: 0.10, 4: 0.029, 5: 0.0079).
/// With adaptive seeds, the most seeds a cell can get (`max`) against the per-batch level.
fn check_seeds_reach(a: &Ablation, axes: &[Axis], set: bool, loc: &Locator) -> Result<()> {
    // Past about 540 seeds C(2n, n) overflows f64 and p is 0: no need to count further.
    let smallest_p = |n: u64| {
        let n = n.min(1100);
        2.0 / (1..=n).map(|i| (n + i) as f64 / i as f64).product::<f64>()
    };
    let alpha = a.test_alpha();
    let seeds = match a.seeds {
        Some(s) => s.max,
        None => axes
            .iter()
            .find(|a| a.key == "seed")
            .map_or(1, |a| a.values.len()) as u64,
    };
    if smallest_p(seeds) < alpha {
        return Ok(());
    }
    let needed = (1..=1000u64)
        .find(|n| smallest_p(*n) < alpha)
        .unwrap_or(1000);
    let (key, give) = match (a.seeds, set) {
        (Some(s), _) => (
            "ablation.seeds",
            format!(
                "raise seeds.max to at least {needed} (alpha {} over {} planned batches is {alpha:.4})",
                a.alpha,
                s.batches()
            ),
        ),
        (None, true) => (
            "ablation.alpha",
            format!("give at least {needed} seeds in grid.seed, or raise ablation.alpha"),
        ),
        (None, false) => (
            "grid.seed",
            format!("give at least {needed} seeds in grid.seed, or raise ablation.alpha"),
        ),
    };
    Err(loc.error(
        key,
        format!(
            "{seeds} seed(s) per cell cannot make any fix necessary at alpha = {alpha}: Fisher's exact test of two \
             cells of {seeds} seed(s) gives at least p = {:.3}; {give}",
            smallest_p(seeds)
        ),
    ))
}

fn parse_factor(
    key: &str,
    on: &Value,
    axes: &[Axis],
    params: &Params,
    loc: &Locator,
) -> Result<Factor> {
    let at = "ablation.factors";
    let Some(axis) = axes.iter().find(|a| a.key == key) else {
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
    let on =
        canonical_axis_value(key, on, params).map_err(|m| loc.error(at, format!("{key}: {m}")))?;
    if !axis.values.contains(&on) {
        return Err(loc.error(
            at,
            format!("{key} = {on} is not one of the values of grid.{key}"),
        ));
    }
    let off = axis
        .values
        .iter()
        .find(|v| **v != on)
        .cloned()
        .expect("two distinct values");
    Ok(Factor {
        key: key.to_string(),
        on,
        off,
    })
}

/// Parses `[[scenario]]` tables: unique valid names, `set` keys that are train keys but not grid
/// axes, and a finite reported number.
pub(crate) fn parse_scenarios(
    table: &Table,
    axes: &[Axis],
    loc: &Locator,
) -> Result<Vec<Scenario>> {
    let Some(value) = table.get("scenario") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(loc.error("scenario", "expected [[scenario]] tables"));
    };
    let mut scenarios: Vec<Scenario> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let scenario = parse_scenario(i, item, axes, &scenarios, loc)?;
        scenarios.push(scenario);
    }
    Ok(scenarios)
}

/// One scenario; `earlier` are the ones before it, whose names it may not reuse.
fn parse_scenario(
    i: usize,
    item: &Value,
    axes: &[Axis],
    earlier: &[Scenario],
    loc: &Locator,
) -> Result<Scenario> {
    let at = format!("scenario.{i}");
    let Value::Table(t) = item else {
        return Err(loc.error(&at, "expected a table"));
    };
    if let Some(key) = t.keys().find(|k| !SCENARIO_KEYS.contains(&k.as_str())) {
        return Err(loc.unknown_key(&at, key, SCENARIO_KEYS));
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
    if earlier.iter().any(|s| s.name == scenario.name) {
        return Err(loc.error(
            &at,
            format!("scenario name \"{}\" is used twice", scenario.name),
        ));
    }
    for (key, value) in &scenario.set {
        if !TRAIN_KEYS.contains(&key.as_str()) {
            return Err(loc.unknown_key(&at, key, TRAIN_KEYS));
        }
        if axes.iter().any(|a| &a.key == key) {
            return Err(loc.error(
                &at,
                format!("set.{key} is also a grid axis; a scenario may only set fixed keys"),
            ));
        }
        canonical_train_value(key, value).map_err(|m| loc.error(&at, format!("set.{key}: {m}")))?;
    }
    if !scenario.reported.is_finite() {
        return Err(loc.error(&at, "reported must be a finite number"));
    }
    Ok(scenario)
}

/// `[ablation]` and `[[scenario]]` as resolved TOML (empty without them).
pub(crate) fn sections_text(ablation: Option<&Ablation>, scenarios: &[Scenario]) -> String {
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
        // Added after the first tables: in the resolved text (and the config hash) only when set
        // to another value, so that existing results folders stay valid.
        if a.alpha != DEFAULT_ALPHA {
            t.insert("alpha".into(), Value::Float(a.alpha));
        }
        if let Some(s) = a.seeds {
            let mut seeds = Table::new();
            seeds.insert("min".into(), Value::Integer(s.min as i64));
            seeds.insert("max".into(), Value::Integer(s.max as i64));
            seeds.insert("step".into(), Value::Integer(s.step as i64));
            t.insert("seeds".into(), Value::Table(seeds));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_agree_with_the_declared_names() {
        for m in Metric::ALL {
            assert_eq!(Value::try_from(*m).unwrap().as_str(), Some(m.as_str()));
        }
        for c in Check::ALL {
            assert_eq!(Value::try_from(*c).unwrap().as_str(), Some(c.as_str()));
        }
    }
}
