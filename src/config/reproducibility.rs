//! The `[command]` keys that say how far a script's tables can be rebuilt: `volatile` (metrics
//! that differ from run to run by nature, such as wall times, which `sweep reproduce` does not
//! compare), `determinism_check` (run the first run twice before the sweep and record whether
//! the two agreed) and `provenance` (commands whose output is recorded once per sweep, such as
//! `python3 -V` or `pip freeze`). All three are execution settings: out of run ids and the hash.

use toml::{Table, Value};

use super::locate::{type_name, Locator};
use crate::error::Result;

/// The reproducibility settings of a command sweep.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reproducibility {
    /// Metrics `sweep reproduce` skips.
    pub volatile: Vec<String>,
    pub determinism_check: bool,
    /// Commands (argv lists) run once per sweep, their output recorded.
    pub provenance: Vec<Vec<String>>,
}

impl Reproducibility {
    /// Reads the three keys of a `[command]` table.
    pub(super) fn parse(table: &Table, loc: &Locator) -> Result<Reproducibility> {
        let volatile = match table.get("volatile") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) if super::command_section::valid_metric(s) => Ok(s.clone()),
                    other => Err(loc.error(
                        "command.volatile",
                        format!("{other} is not accepted: every element is a metrics key (lower-case letters, digits, '_')"),
                    )),
                })
                .collect::<Result<_>>()?,
            Some(other) => {
                return Err(loc.error(
                    "command.volatile",
                    format!("expected a list of metrics keys, found {}", type_name(other)),
                ))
            }
        };
        let determinism_check = match table.get("determinism_check") {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(other) => {
                return Err(loc.error(
                    "command.determinism_check",
                    format!("expected true or false, found {}", type_name(other)),
                ))
            }
        };
        let bad_provenance = |found: &Value| {
            loc.error(
                "command.provenance",
                format!(
                    "{found} is not accepted: a list of commands, each a non-empty list of strings, e.g. \
                     [[\"python3\", \"-V\"], [\"python3\", \"-m\", \"pip\", \"freeze\"]]"
                ),
            )
        };
        let provenance = match table.get("provenance") {
            None => Vec::new(),
            Some(Value::Array(commands)) => commands
                .iter()
                .map(|c| match c {
                    Value::Array(words) if !words.is_empty() => words
                        .iter()
                        .map(|w| {
                            w.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| bad_provenance(c))
                        })
                        .collect::<Result<Vec<String>>>(),
                    other => Err(bad_provenance(other)),
                })
                .collect::<Result<_>>()?,
            Some(other) => return Err(bad_provenance(other)),
        };
        Ok(Reproducibility {
            volatile,
            determinism_check,
            provenance,
        })
    }

    /// Adds the keys that are set to an execution-settings table.
    pub(super) fn insert_into(&self, t: &mut Table) {
        if !self.volatile.is_empty() {
            let names = self.volatile.iter().cloned().map(Value::String);
            t.insert("volatile".into(), Value::Array(names.collect()));
        }
        if self.determinism_check {
            t.insert("determinism_check".into(), Value::Boolean(true));
        }
        if !self.provenance.is_empty() {
            let commands = self
                .provenance
                .iter()
                .map(|argv| Value::Array(argv.iter().cloned().map(Value::String).collect()));
            t.insert("provenance".into(), Value::Array(commands.collect()));
        }
    }
}

/// A resolved config text with a command sweep's recorded execution settings (`execution`, the
/// TOML of [`super::CommandSpec::execution_text`]) put back into its `[command]` table: they
/// stay out of the hash, so the text hashes as before. With `workdir`, the runs' folder moves
/// there, and so do the inputs that were under the recorded one.
pub fn with_execution(
    text: &str,
    execution: &str,
    workdir: Option<&std::path::Path>,
) -> std::result::Result<String, String> {
    let mut root: Table = toml::from_str(text).map_err(|e| format!("the recorded config: {e}"))?;
    let mut settings: Table =
        toml::from_str(execution).map_err(|e| format!("the recorded execution settings: {e}"))?;
    if let Some(new) = workdir {
        let new = std::path::absolute(new).map_err(|e| format!("{}: {e}", new.display()))?;
        let old = settings
            .get("workdir")
            .and_then(Value::as_str)
            .map(std::path::PathBuf::from);
        if let (Some(old), Some(Value::Array(inputs))) = (old, settings.get_mut("inputs")) {
            for input in inputs.iter_mut() {
                let moved = input
                    .as_str()
                    .and_then(|p| std::path::Path::new(p).strip_prefix(&old).ok())
                    .map(|rel| new.join(rel).display().to_string());
                if let Some(moved) = moved {
                    *input = Value::String(moved);
                }
            }
        }
        settings.insert("workdir".into(), Value::String(new.display().to_string()));
    }
    match root.get_mut("command") {
        Some(Value::Table(command)) => command.extend(settings),
        _ => return Err("the recorded config has no [command] section".into()),
    }
    Ok(toml::to_string(&root).expect("a table serializes"))
}
