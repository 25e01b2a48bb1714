//! A command run's metrics file: JSON Lines, one object per epoch. `"epoch"` is an integer >= 0
//! (epoch 0 is before training), strictly increasing and at most the run's `epochs`; every
//! other key is a number (the bare `NaN`, `Infinity` and `-Infinity` that Python's `json`
//! writes included); `"status": "diverged"` may stand on the last line only. A line longer than
//! [`MAX_LINE`] or that breaks a rule fails the run, naming its number and text; an
//! unterminated last line (the process was killed while writing it) is ignored.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::outcome::EpochStats;

/// The longest metrics line accepted, in bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// What a metrics file says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Epoch 0's values, when the script reported it.
    pub initial: Option<EpochStats>,
    /// Epochs 1, 2, ... as reported.
    pub epochs: Vec<EpochStats>,
    /// The last line said `"status": "diverged"`.
    pub diverged: bool,
}

impl Metrics {
    /// The value of `key` on the last line that reported it, if any.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.epochs.iter().rev().find_map(|e| value_of(e, key))
    }

    /// Whether no line was read.
    pub fn is_empty(&self) -> bool {
        self.initial.is_none() && self.epochs.is_empty()
    }
}

/// The value of `key` in one epoch's statistics (NaN fixed columns count as not reported).
pub fn value_of(e: &EpochStats, key: &str) -> Option<f64> {
    let fixed = match key {
        "weight_norm" => Some(e.weight_norm),
        "prediction" => Some(e.prediction),
        "loss" => Some(e.loss),
        "gradient_norm" => Some(e.gradient_norm),
        "update_ratio" => Some(e.update_ratio),
        "clipped_fraction" => Some(e.clipped_fraction),
        "train_mse" => Some(e.train_mse),
        "train_r2" => Some(e.train_r2),
        _ => None,
    };
    match fixed {
        Some(v) => Some(v)
            .filter(|v| !v.is_nan())
            .or_else(|| e.extra.get(key).copied()),
        None => e.extra.get(key).copied(),
    }
}

/// An epoch with every fixed column unreported (NaN).
fn unreported(epoch: u32) -> EpochStats {
    EpochStats {
        epoch,
        weight_norm: f64::NAN,
        prediction: f64::NAN,
        loss: f64::NAN,
        gradient_norm: f64::NAN,
        update_ratio: f64::NAN,
        clipped_fraction: f64::NAN,
        train_mse: f64::NAN,
        train_r2: f64::NAN,
        extra: BTreeMap::new(),
    }
}

/// Sets `key` of an epoch: a fixed column by its name, else an extra metric.
fn set(e: &mut EpochStats, key: &str, v: f64) {
    let slot = match key {
        "weight_norm" => &mut e.weight_norm,
        "prediction" => &mut e.prediction,
        "loss" => &mut e.loss,
        "gradient_norm" => &mut e.gradient_norm,
        "update_ratio" => &mut e.update_ratio,
        "clipped_fraction" => &mut e.clipped_fraction,
        "train_mse" => &mut e.train_mse,
        "train_r2" => &mut e.train_r2,
        _ => {
            e.extra.insert(key.to_string(), v);
            return;
        }
    };
    *slot = v;
}

/// Reads the metrics file (a missing file reads as empty). `max_epoch` is the run's `epochs`.
pub fn read(path: &Path, max_epoch: u32) -> Result<Metrics, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Metrics::default()),
        Err(e) => return Err(format!("cannot read the metrics file: {e}")),
    };
    let mut reader = BufReader::new(file);
    let mut metrics = Metrics::default();
    let mut last_epoch: Option<u32> = None;
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read the metrics file: {e}"))?;
        if read == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_LINE {
                return Err(format!(
                    "metrics line {number} is longer than {MAX_LINE} bytes"
                ));
            }
            break; // an unterminated last line: the writer was stopped mid-line
        }
        if metrics.diverged {
            return Err(format!(
                "metrics line {number} follows a line with \"status\": \"diverged\", which must be the last"
            ));
        }
        let text = String::from_utf8_lossy(&line[..line.len() - 1]);
        if text.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| format!("metrics line {number} ({}): {why}", shorten(&text));
        let Line {
            epoch,
            values,
            diverged,
        } = parse_line(&text).map_err(|why| bad(&why))?;
        if epoch > max_epoch {
            return Err(bad(&format!(
                "epoch {epoch} is above the run's epochs = {max_epoch}"
            )));
        }
        if last_epoch.is_some_and(|last| epoch <= last) {
            return Err(bad("epochs must increase strictly from line to line"));
        }
        last_epoch = Some(epoch);
        let mut stats = unreported(epoch);
        for (key, v) in values {
            set(&mut stats, &key, v);
        }
        metrics.diverged = diverged;
        if epoch == 0 {
            metrics.initial = Some(stats);
        } else {
            metrics.epochs.push(stats);
        }
    }
    Ok(metrics)
}

/// At most 200 characters of a line, for messages.
fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short += "...";
    }
    short
}

/// The non-finite numbers Python writes, replaced outside strings by strings that no JSON text
/// of a script holds (a NUL then the word).
const NON_FINITE: [(&str, f64); 3] = [
    ("-Infinity", f64::NEG_INFINITY),
    ("Infinity", f64::INFINITY),
    ("NaN", f64::NAN),
];

fn with_non_finite_as_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some((word, _)) = NON_FINITE.iter().find(|(w, _)| rest.starts_with(w)) {
            out += &format!("\"\\u0000{word}\"");
            rest = &rest[word.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// One metrics line.
struct Line {
    epoch: u32,
    /// Its numbers by key, in the line's order.
    values: Vec<(String, f64)>,
    /// It says `"status": "diverged"`.
    diverged: bool,
}

/// Parses one line.
fn parse_line(text: &str) -> Result<Line, String> {
    let json: serde_json::Value = serde_json::from_str(&with_non_finite_as_strings(text))
        .map_err(|e| format!("not a JSON object: {e}"))?;
    let serde_json::Value::Object(object) = json else {
        return Err("not a JSON object".into());
    };
    let mut epoch = None;
    let mut values = Vec::new();
    let mut diverged = false;
    for (key, value) in object {
        if key == "epoch" {
            epoch = value.as_u64().and_then(|e| u32::try_from(e).ok());
            if epoch.is_none() {
                return Err(format!("\"epoch\" must be an integer >= 0, not {value}"));
            }
            continue;
        }
        if key == "run_id" {
            return Err("\"run_id\" is a column sweep fills: name the metric otherwise".into());
        }
        if key == "status" {
            match value.as_str() {
                Some("diverged") => diverged = true,
                _ => return Err(format!("\"status\" may only be \"diverged\", not {value}")),
            }
            continue;
        }
        let number = match &value {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s
                .strip_prefix('\u{0}')
                .and_then(|w| NON_FINITE.iter().find(|(word, _)| *word == w))
                .map(|(_, v)| *v),
            _ => None,
        };
        match number {
            Some(v) => values.push((key, v)),
            None => return Err(format!("\"{key}\" must be a number, not {value}")),
        }
    }
    let epoch = epoch.ok_or("no \"epoch\" key")?;
    Ok(Line {
        epoch,
        values,
        diverged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn lines_fill_columns_and_extras_and_python_non_finite_numbers_read() {
        let (_dir, path) = file(
            "{\"epoch\": 0, \"train_mse\": 2.0}\n\
             {\"epoch\": 1, \"train_mse\": 1.5, \"val_loss\": NaN, \"note_\": \"NaN\"}\n",
        );
        let err = read(&path, 5).unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("\"note_\" must be a number"),
            "{err}"
        );
        let (_dir, path) = file(
            "{\"epoch\": 0, \"train_mse\": 2.0}\n\
             {\"epoch\": 1, \"train_mse\": 1.5, \"val_loss\": NaN, \"gap\": -Infinity}\n\
             {\"epoch\": 3, \"train_mse\": Infinity, \"status\": \"diverged\"}\n\
             {\"epoch\": 4, \"train_m",
        );
        let m = read(&path, 5).unwrap();
        assert_eq!(m.initial.as_ref().unwrap().train_mse, 2.0);
        assert_eq!(m.epochs.len(), 2);
        assert!(m.epochs[0].extra["val_loss"].is_nan());
        assert_eq!(m.epochs[0].extra["gap"], f64::NEG_INFINITY);
        assert_eq!(m.epochs[1].train_mse, f64::INFINITY);
        assert!(m.epochs[1].weight_norm.is_nan());
        assert!(m.diverged);
        assert_eq!(m.last("gap"), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn broken_rules_name_the_line() {
        let cases = [
            ("{\"epoch\": 1}\n{\"epoch\": 1}\n", "line 2", "increase"),
            ("{\"epoch\": 2}\n{\"epoch\": 1}\n", "line 2", "increase"),
            ("{\"epoch\": -1}\n", "line 1", "integer >= 0"),
            ("{\"epoch\": 1.5}\n", "line 1", "integer >= 0"),
            ("{\"loss\": 1}\n", "line 1", "no \"epoch\""),
            ("loss 1\n", "line 1", "not a JSON object"),
            ("[1, 2]\n", "line 1", "not a JSON object"),
            (
                "{\"epoch\": 1, \"loss\": \"0.5\"}\n",
                "line 1",
                "must be a number",
            ),
            ("{\"epoch\": 9}\n", "line 1", "above the run's epochs"),
            (
                "{\"epoch\": 1, \"status\": \"diverged\"}\n{\"epoch\": 2}\n",
                "line 2",
                "must be the last",
            ),
            (
                "{\"epoch\": 1, \"status\": \"done\"}\n",
                "line 1",
                "may only be",
            ),
        ];
        for (text, line, why) in cases {
            let (_dir, path) = file(text);
            let err = read(&path, 5).unwrap_err();
            assert!(err.contains(line) && err.contains(why), "{text:?}: {err}");
        }
        let (_dir, path) = file(&format!(
            "{{\"epoch\": 1, \"pad\": \"{}\"}}\n",
            "x".repeat(2 << 20)
        ));
        assert!(read(&path, 5).unwrap_err().contains("longer than"));
    }

    #[test]
    fn a_missing_or_empty_file_reads_as_no_metrics() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(&dir.path().join("none"), 5).unwrap().is_empty());
        let (_dir, path) = file("");
        assert!(read(&path, 5).unwrap().is_empty());
    }
}
