//! Where a config error is: the `--set` flag or the file, line and column of a dotted key, and the
//! "did you mean" for unknown keys. Every config error is built through [`Locator::error`], so every
//! message names its origin the same way.

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

use crate::error::Error;

/// Tells where a dotted key came from, for error messages: a `--set` flag or a line of the file.
pub(crate) struct Locator<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    /// Dotted key -> the `--set` flag that set it last.
    pub overrides: BTreeMap<String, String>,
}

impl Locator<'_> {
    /// `--set FLAG`, or `FILE:LINE:COLUMN: KEY` (`FILE: KEY` when the line cannot be found).
    pub fn at(&self, key: &str) -> String {
        if let Some(flag) = self.overrides.get(key) {
            return format!("--set {flag}");
        }
        match locate_key(self.text, key) {
            Some((line, col)) => format!("{}:{line}:{col}: {key}", self.file.display()),
            None => format!("{}: {key}", self.file.display()),
        }
    }

    pub fn error(&self, key: &str, message: impl std::fmt::Display) -> Error {
        Error::Config(format!("{}: {message}", self.at(key)))
    }

    /// An unknown key, with a suggestion and the accepted keys.
    pub fn unknown_key(&self, dotted: &str, key: &str, known: &[&str]) -> Error {
        self.error(
            dotted,
            format!(
                "unknown key `{key}`{}; accepted keys: {}",
                suggestion(key, known),
                known.join(", ")
            ),
        )
    }

    /// Rejects any key of `table` that is not in `known`; `prefix` is the section's dotted name.
    pub fn check_keys(&self, table: &Table, prefix: &str, known: &[&str]) -> Result<(), Error> {
        match table.keys().find(|k| !known.contains(&k.as_str())) {
            Some(key) => Err(self.unknown_key(&format!("{prefix}{key}"), key, known)),
            None => Ok(()),
        }
    }

    /// The table under `name`, if present; any other type is an error.
    pub fn section<'t>(&self, table: &'t Table, name: &str) -> Result<Option<&'t Table>, Error> {
        match table.get(name) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t)),
            Some(other) => Err(self.error(
                name,
                format!("expected a table, found {}", type_name(other)),
            )),
        }
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
        let found = Some((n + 1, line.len() - trimmed.len() + 1));
        if let Some(rest) = trimmed.strip_prefix("[[") {
            let name = rest.split("]]").next().unwrap_or("").trim().to_string();
            let count = array_counts.entry(name.clone()).or_insert(0);
            header = format!("{name}.{count}");
            *count += 1;
            if header == dotted {
                return found;
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            header = rest.split(']').next().unwrap_or("").trim().to_string();
            if header == dotted {
                return found;
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
            return found;
        }
    }
    None
}

/// ` (did you mean `k`?)` for the closest known key, or nothing.
pub(crate) fn suggestion(unknown: &str, known: &[&str]) -> String {
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

/// "a string", "an integer", ... for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n[train]\n  epochs = 3\n[[grid.exclude]]\nclip = true\n[[grid.exclude]]\nseed = 1\n";

    #[test]
    fn keys_are_found_under_their_headers() {
        assert_eq!(locate_key(TEXT, "name"), Some((1, 1)));
        assert_eq!(locate_key(TEXT, "train.epochs"), Some((3, 3)));
        assert_eq!(locate_key(TEXT, "grid.exclude.1"), Some((6, 1)));
        assert_eq!(locate_key(TEXT, "grid.exclude.1.seed"), Some((7, 1)));
        assert_eq!(locate_key(TEXT, "train.seed"), None);
    }

    #[test]
    fn suggestions_need_a_close_match() {
        assert_eq!(
            suggestion("epoch", &["epochs", "seed"]),
            " (did you mean `epochs`?)"
        );
        assert_eq!(suggestion("zzz", &["epochs", "seed"]), "");
    }

    #[test]
    fn flags_take_precedence_over_the_file() {
        let mut loc = Locator {
            file: Path::new("c.toml"),
            text: TEXT,
            overrides: BTreeMap::new(),
        };
        assert_eq!(loc.at("train.epochs"), "c.toml:3:3: train.epochs");
        loc.overrides
            .insert("train.epochs".into(), "train.epochs=4".into());
        assert_eq!(loc.at("train.epochs"), "--set train.epochs=4");
        assert_eq!(loc.at("train.seed"), "c.toml: train.seed");
    }
}
