//! The value types of `[command]` keys: string lists, the `env` table, GPU slots, the
//! `converged` bound and durations, each checked with a message that says what is accepted.

use std::time::Duration;

use toml::{Table, Value};

use super::command_section::Bound;
use super::locate::{type_name, Locator};
use crate::error::Result;

pub(super) fn string_list(table: &Table, key: &str, loc: &Locator) -> Result<Option<Vec<String>>> {
    let dotted = format!("command.{key}");
    match table.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(loc.error(
                    &dotted,
                    format!("{other} is not accepted: every element must be a string"),
                )),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(other) => Err(loc.error(
            &dotted,
            format!("expected a list of strings, found {}", type_name(other)),
        )),
    }
}

pub(super) fn parse_env(table: &Table, loc: &Locator) -> Result<Vec<(String, String)>> {
    let Some(value) = table.get("env") else {
        return Ok(Vec::new());
    };
    let Value::Table(env) = value else {
        return Err(loc.error(
            "command.env",
            format!(
                "expected a table of NAME = \"value\", found {}",
                type_name(value)
            ),
        ));
    };
    let mut out = Vec::new();
    for (name, v) in env {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || name.starts_with("SWEEP_") {
            return Err(loc.error(
                &format!("command.env.{name}"),
                "is not accepted: a variable name of letters, digits and '_', not starting with SWEEP_ (sweep sets those)",
            ));
        }
        let Value::String(text) = v else {
            return Err(loc.error(
                &format!("command.env.{name}"),
                format!("{v} is not accepted: write the value as a string"),
            ));
        };
        out.push((name.clone(), text.clone()));
    }
    Ok(out)
}

/// A non-empty list of distinct integers >= 0.
pub(super) fn parse_gpus(v: &Value) -> std::result::Result<Vec<u32>, String> {
    let expected = "expected a non-empty list of distinct GPU indices >= 0, e.g. [0, 1]";
    let Value::Array(items) = v else {
        return Err(format!("{v} is not accepted: {expected}"));
    };
    let mut gpus = Vec::new();
    for item in items {
        match item.as_integer().and_then(|i| u32::try_from(i).ok()) {
            Some(g) if !gpus.contains(&g) => gpus.push(g),
            _ => return Err(format!("{v} is not accepted: {expected}")),
        }
    }
    if gpus.is_empty() {
        return Err(format!("{v} is not accepted: {expected}"));
    }
    Ok(gpus)
}

/// `{ at_most = X }` or `{ at_least = X }`, X finite.
pub(super) fn parse_bound(v: &Value) -> std::result::Result<Bound, String> {
    let expected = "expected { at_most = X } or { at_least = X } with a finite number X";
    let Value::Table(t) = v else {
        return Err(format!("{v} is not accepted: {expected}"));
    };
    let number = |x: &Value| match x {
        Value::Float(f) if f.is_finite() => Some(*f),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    };
    match t.iter().collect::<Vec<_>>().as_slice() {
        [(k, x)] if k.as_str() == "at_most" => number(x).map(Bound::AtMost),
        [(k, x)] if k.as_str() == "at_least" => number(x).map(Bound::AtLeast),
        _ => None,
    }
    .ok_or_else(|| format!("{v} is not accepted: {expected}"))
}

/// `"<int>s"`, `"<int>m"` or `"<int>h"`.
pub fn parse_duration(v: &Value) -> std::result::Result<Duration, String> {
    let expected = "expected a string \"<int>s\", \"<int>m\" or \"<int>h\", e.g. \"30m\"";
    let Value::String(text) = v else {
        return Err(format!("{v} is not accepted: {expected}"));
    };
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("\"{text}\" is not accepted: {expected}")),
    };
    match digits.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(Duration::from_secs(n * scale)),
        _ => Err(format!(
            "\"{text}\" is not accepted: {expected}, at least 1"
        )),
    }
}
