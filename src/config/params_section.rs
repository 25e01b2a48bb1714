//! The `[params]` section of a command sweep: the script's own settings, each declared with its
//! default, whose type fixes what the grid may give it and the type of its column. They ride in
//! [`super::TrainSettings::params`], so that grid expansion, excludes, ablation factors, cells,
//! run ids and `params.json` treat them as they treat the train keys.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::locate::{type_name, Locator};
use super::settings::TRAIN_KEYS;
use crate::error::Result;

/// The declared params and their defaults, by key.
pub type Params = BTreeMap<String, Value>;

/// Column names of the tables a param would collide with (besides the train keys).
const RESERVED: &[&str] = &[
    "data_seed",
    "run_id",
    "run_index",
    "scenario",
    "status",
    "message",
    "epochs_run",
    "epochs_to_converge",
    "initial_train_mse",
    "best_train_r2",
    "excess_mse",
    "weight_norm",
    "distance_to_ols",
    "ols_mse",
    "ols_r2",
    "slow_share",
    "slowest_signal_epochs",
    "attempt",
    "exit_code",
    "signal",
    "argv",
    "epoch",
    "n_runs",
    "factor",
    "label",
    "context",
    "response",
    "direction",
    "step",
    "value",
    "pooled",
];

/// Checks `[params]`: keys of lower-case letters, digits and `_` that name no train key and no
/// table column; values of one type each (integer, float, boolean, string or list).
pub(crate) fn parse(table: Option<&Table>, loc: &Locator) -> Result<Params> {
    let mut params = Params::new();
    for (key, value) in table.into_iter().flatten() {
        let dotted = format!("params.{key}");
        let mut chars = key.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return Err(loc.error(&dotted, "is not accepted: a param's name is lower-case letters, digits and '_', starting with a letter"));
        }
        if TRAIN_KEYS.contains(&key.as_str())
            || RESERVED.contains(&key.as_str())
            || key.starts_with("final_")
        {
            return Err(loc.error(
                &dotted,
                "is not accepted: the name is taken by a [train] key or a table column; choose another",
            ));
        }
        if matches!(value, Value::Table(_) | Value::Datetime(_)) {
            return Err(loc.error(
                &dotted,
                format!(
                    "{} is not accepted: a default of type integer, float, boolean, string or list",
                    type_name(value)
                ),
            ));
        }
        params.insert(key.clone(), value.clone());
    }
    Ok(params)
}

/// Checks a value given to param `key` (in the grid, an exclude or a factor) against the type
/// of its default; an integer is accepted for a float param. Returns the canonical value.
pub(crate) fn canonical(
    params: &Params,
    key: &str,
    value: &Value,
) -> Option<std::result::Result<Value, String>> {
    let default = params.get(key)?;
    let mismatch = || {
        Err(format!(
            "{value} is not accepted: `{key}` is {} (its default is {default})",
            type_name(default)
        ))
    };
    Some(match (default, value) {
        (Value::Float(_), Value::Integer(i)) => Ok(Value::Float(*i as f64)),
        (Value::Float(_), Value::Float(f)) if !f.is_finite() => {
            Err(format!("{value} is not accepted: `{key}` must be finite"))
        }
        (d, v) if std::mem::discriminant(d) == std::mem::discriminant(v) => Ok(v.clone()),
        _ => mismatch(),
    })
}

/// A param value as the tables and `{key}` placeholders write it: lists as compact JSON.
pub fn param_text(value: &Value) -> String {
    match value {
        Value::Array(_) => serde_json::to_string(value).expect("a TOML value serializes"),
        other => super::display_value(other),
    }
}
