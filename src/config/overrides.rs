//! `--set KEY=VALUE`: a dotted key and a TOML value (or a bare string) applied to the parsed
//! config table before validation, so an override is checked exactly like the file's own value.

use std::path::Path;

use toml::{Table, Value};

use super::command_section::COMMAND_KEYS;
use super::locate::{suggestion, type_name};
use super::{data_keys, ABLATION_KEYS, SECTIONS, TOP_KEYS, TRAIN_KEYS};
use crate::error::{Error, Result};

/// Parses the value of a `--set KEY=VALUE` flag: a TOML value, or else a bare string.
pub(crate) fn parse_value(raw: &str) -> std::result::Result<Value, String> {
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

/// The keys accepted under a section that `--set` may reach (`params`: those the config
/// declares in `[params]`, which the grid may also name).
fn section_keys(section: &str, params: &[String]) -> Vec<String> {
    let declared = params.iter().cloned();
    let fixed: Vec<&str> = match section {
        "data" => data_keys(),
        "train" => TRAIN_KEYS.to_vec(),
        "ablation" => ABLATION_KEYS.to_vec(),
        "command" => COMMAND_KEYS.to_vec(),
        "params" => return declared.collect(),
        _ => TRAIN_KEYS.iter().copied().chain(["data_seed"]).collect(),
    };
    let fixed = fixed.into_iter().map(str::to_string);
    if section == "grid" {
        fixed.chain(declared).collect()
    } else {
        fixed.collect()
    }
}

/// Applies one `--set KEY=VALUE` to the table; returns the dotted key.
pub(crate) fn apply(table: &mut Table, flag: &str, cwd: &Path) -> Result<String> {
    let bad = |msg: String| Error::Config(format!("--set {flag}: {msg}"));
    let Some((path, raw)) = flag.split_once('=') else {
        return Err(bad(
            "expected KEY=VALUE, for example --set train.epochs=50".into()
        ));
    };
    let path = path.trim();
    let mut value = parse_value(raw.trim()).map_err(bad)?;
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        [key] if TOP_KEYS.contains(key) && !SECTIONS.contains(key) => {
            table.insert(key.to_string(), value);
        }
        [section, key]
            if ["data", "train", "grid", "ablation", "command", "params"].contains(section) =>
        {
            let declared: Vec<String> = match table.get("params") {
                Some(Value::Table(p)) => p.keys().cloned().collect(),
                _ => Vec::new(),
            };
            let known = section_keys(section, &declared);
            if !known.iter().any(|k| k == key) {
                return Err(bad(format!(
                    "unknown key `{key}` in [{section}]{}; accepted keys: {}",
                    suggestion(key, &known.iter().map(String::as_str).collect::<Vec<_>>()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_toml_or_bare_strings() {
        assert_eq!(parse_value("50").unwrap(), Value::Integer(50));
        assert_eq!(parse_value("1e-3").unwrap(), Value::Float(1e-3));
        assert_eq!(
            parse_value("[1, 32]").unwrap(),
            Value::Array(vec![Value::Integer(1), Value::Integer(32)])
        );
        assert_eq!(parse_value("zca").unwrap(), Value::String("zca".into()));
        assert!(parse_value("[1, 2")
            .unwrap_err()
            .contains("not a TOML value"));
        assert!(parse_value("").is_err());
    }

    #[test]
    fn flags_reach_sections_and_reject_unknown_paths() {
        let mut table = Table::new();
        assert_eq!(
            apply(&mut table, "train.epochs=7", Path::new("/w")).unwrap(),
            "train.epochs"
        );
        assert_eq!(table["train"]["epochs"], Value::Integer(7));
        apply(&mut table, "data.path=d.csv", Path::new("/w")).unwrap();
        assert_eq!(table["data"]["path"].as_str(), Some("/w/d.csv"));
        let err = apply(&mut table, "train.epoch=7", Path::new("/w"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `epochs`"), "{err}");
        assert!(apply(&mut table, "nonsense=1", Path::new("/w")).is_err());
        assert!(apply(&mut table, "no-equals-sign", Path::new("/w")).is_err());
    }
}
