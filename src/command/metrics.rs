//! A command run's metrics file: JSON Lines, one object per epoch. `"epoch"` is an integer >= 0
//! (epoch 0 is before training), strictly increasing and at most the run's `epochs`; every
//! other key is a number (the bare `NaN`, `Infinity` and `-Infinity` that Python's `json`
//! writes included); `"status": "diverged"` may stand on the last line only. A line longer than
//! [`MAX_LINE`] or that breaks a rule fails the run, naming its number and text; an
//! unterminated last line (the process was killed while writing it) is ignored.
//!
//! A script may write millions of lines, so the file is never held: [`scan`] reads it once for
//! everything the run's row needs, and [`MetricsFile`] reads it again, a batch of epochs at a
//! time, while the run's part is written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::config::Bound;
use crate::outcome::EpochStats;

/// The longest metrics line accepted, in bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// How a run's metrics are completed and judged while they are read.
#[derive(Clone, Copy, Debug)]
pub struct Reading<'a> {
    /// The run's `epochs`: no line may report a later epoch.
    pub max_epoch: u32,
    /// The run's data (rows, total sum of squares): a line with `train_mse` and no `train_r2`
    /// gets `train_r2 = 1 - train_mse * n / sst`.
    pub r2_from: Option<(f64, f64)>,
    /// The metric that decides the outcome, and the bound it must meet to count as converged.
    pub metric: &'a str,
    pub bound: Option<Bound>,
}

/// What one pass over a metrics file found: all a run's row needs, without its epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    /// Epoch 0's `train_mse` (NaN when not reported).
    pub initial_train_mse: f64,
    /// Lines of epochs >= 1, and the last such epoch (0 when none).
    pub epochs: u64,
    pub last_epoch: u32,
    /// Each key's value on the last line of an epoch >= 1 that reported it.
    pub last: BTreeMap<String, f64>,
    /// The highest train R² of an epoch >= 1 (NaN when none).
    pub best_train_r2: f64,
    /// The first epoch from which the metric meets the bound on every line to the end.
    pub met_from: Option<u32>,
    /// The last line said `"status": "diverged"`.
    pub diverged: bool,
    /// The keys reported that are not epochs-table columns of their own, alphabetical.
    pub extra_keys: BTreeSet<String>,
    /// Bytes read: the end of the last complete line (a second pass reads no further).
    pub end: u64,
}

impl Scan {
    /// What a missing or empty file says.
    pub fn empty() -> Scan {
        Scan {
            initial_train_mse: f64::NAN,
            epochs: 0,
            last_epoch: 0,
            last: BTreeMap::new(),
            best_train_r2: f64::NAN,
            met_from: None,
            diverged: false,
            extra_keys: BTreeSet::new(),
            end: 0,
        }
    }

    /// The value of `key` on the last line that reported it, if any.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.last.get(key).copied()
    }
}

/// One epoch's row of the epochs table: the fixed columns a line did not report are NaN.
fn epoch_stats(line: &Line) -> EpochStats {
    let mut e = EpochStats::unreported(line.epoch);
    for (key, v) in &line.values {
        e.set(key, *v);
    }
    e
}

/// Reads the metrics file's lines up to byte `limit` (all of them when `None`), completing each
/// with the train R² it implies, and hands them to `each`; returns the bytes read. A missing
/// file reads as no lines.
fn for_each_line(
    path: &Path,
    max_epoch: u32,
    r2_from: Option<(f64, f64)>,
    limit: Option<u64>,
    mut each: impl FnMut(Line),
) -> Result<u64, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("cannot read the metrics file: {e}")),
    };
    let mut reader = BufReader::with_capacity(1 << 16, file.take(limit.unwrap_or(u64::MAX)));
    let mut last_epoch: Option<u32> = None;
    let mut diverged = false;
    let mut end = 0u64;
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
        end += read as u64;
        if diverged {
            return Err(format!(
                "metrics line {number} follows a line with \"status\": \"diverged\", which must be the last"
            ));
        }
        let text = String::from_utf8_lossy(&line[..line.len() - 1]);
        if text.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| format!("metrics line {number} ({}): {why}", shorten(&text));
        let mut parsed = parse_line(&text).map_err(|why| bad(&why))?;
        if parsed.epoch > max_epoch {
            return Err(bad(&format!(
                "epoch {} is above the run's epochs = {max_epoch}",
                parsed.epoch
            )));
        }
        if last_epoch.is_some_and(|last| parsed.epoch <= last) {
            return Err(bad("epochs must increase strictly from line to line"));
        }
        last_epoch = Some(parsed.epoch);
        diverged = parsed.diverged;
        let reported = |key: &str| parsed.values.iter().find(|(k, _)| k == key).map(|kv| kv.1);
        if let (Some((n, sst)), Some(mse), None) =
            (r2_from, reported("train_mse"), reported("train_r2"))
        {
            parsed.values.push(("train_r2".into(), 1.0 - mse * n / sst));
        }
        each(parsed);
    }
    Ok(end)
}

/// Reads the metrics file once for everything the run's row needs.
pub fn scan(path: &Path, reading: Reading) -> Result<Scan, String> {
    let mut scan = Scan::empty();
    scan.end = for_each_line(path, reading.max_epoch, reading.r2_from, None, |line| {
        let value = |key: &str| {
            line.values
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|kv| kv.1)
        };
        if line.epoch == 0 {
            scan.initial_train_mse = value("train_mse").unwrap_or(f64::NAN);
            return;
        }
        scan.epochs += 1;
        scan.last_epoch = line.epoch;
        scan.diverged = line.diverged;
        if let Some(r2) = value("train_r2") {
            scan.best_train_r2 = scan.best_train_r2.max(r2);
        }
        let meets = value(reading.metric)
            .zip(reading.bound)
            .is_some_and(|(v, bound)| bound.holds(v));
        if meets {
            scan.met_from.get_or_insert(line.epoch);
        } else {
            scan.met_from = None;
        }
        for (key, v) in line.values {
            if !EpochStats::METRICS.contains(&key.as_str()) && !scan.extra_keys.contains(&key) {
                scan.extra_keys.insert(key.clone());
            }
            scan.last.insert(key, v);
        }
    })?;
    Ok(scan)
}

/// A scanned metrics file, read again a batch of epochs (>= 1) at a time.
#[derive(Clone, Debug)]
pub struct MetricsFile {
    pub path: PathBuf,
    pub max_epoch: u32,
    pub r2_from: Option<(f64, f64)>,
    /// What the scan read: no further, so that the rows match the scanned run.
    pub end: u64,
    pub extra_keys: BTreeSet<String>,
}

impl MetricsFile {
    /// The file `scan` read.
    pub fn of(path: PathBuf, reading: Reading, scan: &Scan) -> MetricsFile {
        MetricsFile {
            path,
            max_epoch: reading.max_epoch,
            r2_from: reading.r2_from,
            end: scan.end,
            extra_keys: scan.extra_keys.clone(),
        }
    }

    /// Hands the epochs to `each` in batches of at most `rows`.
    pub fn for_each_batch(
        &self,
        rows: usize,
        mut each: impl FnMut(&[EpochStats]) -> crate::error::Result<()>,
    ) -> crate::error::Result<()> {
        let mut batch = Vec::with_capacity(rows.min(1 << 16));
        let mut failed = None;
        let read = for_each_line(
            &self.path,
            self.max_epoch,
            self.r2_from,
            Some(self.end),
            |line| {
                if line.epoch == 0 || failed.is_some() {
                    return;
                }
                batch.push(epoch_stats(&line));
                if batch.len() >= rows {
                    failed = each(&batch).err();
                    batch.clear();
                }
            },
        );
        if let Some(e) = failed {
            return Err(e);
        }
        read.map_err(|why| {
            crate::error::Error::Results(format!(
                "{}: {why} (the file changed after its run was judged)",
                self.path.display()
            ))
        })?;
        if batch.is_empty() {
            Ok(())
        } else {
            each(&batch)
        }
    }
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
#[path = "metrics_tests.rs"]
mod tests;
