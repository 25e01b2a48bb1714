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

/// The epochs-table columns a metrics key may fill by its name.
const FIXED: [&str; 8] = [
    "weight_norm",
    "prediction",
    "loss",
    "gradient_norm",
    "update_ratio",
    "clipped_fraction",
    "train_mse",
    "train_r2",
];

/// One epoch's row of the epochs table: the fixed columns a line did not report are NaN.
fn epoch_stats(line: &Line) -> EpochStats {
    let mut e = EpochStats {
        epoch: line.epoch,
        weight_norm: f64::NAN,
        prediction: f64::NAN,
        loss: f64::NAN,
        gradient_norm: f64::NAN,
        update_ratio: f64::NAN,
        clipped_fraction: f64::NAN,
        train_mse: f64::NAN,
        train_r2: f64::NAN,
        extra: BTreeMap::new(),
    };
    for (key, v) in &line.values {
        let slot = match key.as_str() {
            "weight_norm" => &mut e.weight_norm,
            "prediction" => &mut e.prediction,
            "loss" => &mut e.loss,
            "gradient_norm" => &mut e.gradient_norm,
            "update_ratio" => &mut e.update_ratio,
            "clipped_fraction" => &mut e.clipped_fraction,
            "train_mse" => &mut e.train_mse,
            "train_r2" => &mut e.train_r2,
            _ => {
                e.extra.insert(key.clone(), *v);
                continue;
            }
        };
        *slot = *v;
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
            if !FIXED.contains(&key.as_str()) && !scan.extra_keys.contains(&key) {
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
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn reading(max_epoch: u32) -> Reading<'static> {
        Reading {
            max_epoch,
            r2_from: None,
            metric: "train_mse",
            bound: Some(Bound::AtMost(1.6)),
        }
    }

    /// Every epoch (>= 1) the second pass reads, in batches of `rows`.
    fn epochs(path: &Path, r: Reading, scan: &Scan, rows: usize) -> Vec<Vec<EpochStats>> {
        let mut batches = Vec::new();
        MetricsFile::of(path.to_path_buf(), r, scan)
            .for_each_batch(rows, |b| {
                batches.push(b.to_vec());
                Ok(())
            })
            .unwrap();
        batches
    }

    #[test]
    fn lines_fill_columns_and_extras_and_python_non_finite_numbers_read() {
        let (_dir, path) = file(
            "{\"epoch\": 0, \"train_mse\": 2.0}\n\
             {\"epoch\": 1, \"train_mse\": 1.5, \"val_loss\": NaN, \"note_\": \"NaN\"}\n",
        );
        let err = scan(&path, reading(5)).unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("\"note_\" must be a number"),
            "{err}"
        );
        let text = "{\"epoch\": 0, \"train_mse\": 2.0}\n\
             {\"epoch\": 1, \"train_mse\": 1.5, \"val_loss\": NaN, \"gap\": -Infinity}\n\
             {\"epoch\": 3, \"train_mse\": Infinity, \"status\": \"diverged\"}\n";
        let (_dir, path) = file(&format!("{text}{{\"epoch\": 4, \"train_m"));
        let m = scan(&path, reading(5)).unwrap();
        assert_eq!(m.initial_train_mse, 2.0);
        assert_eq!((m.epochs, m.last_epoch), (2, 3));
        assert_eq!(
            m.end,
            text.len() as u64,
            "the unterminated line is not read"
        );
        assert_eq!(m.last("train_mse"), Some(f64::INFINITY));
        assert_eq!(m.last("gap"), Some(f64::NEG_INFINITY));
        assert!(m.last("val_loss").unwrap().is_nan());
        assert!(m.diverged);
        assert_eq!(
            m.extra_keys,
            BTreeSet::from(["gap".to_string(), "val_loss".to_string()])
        );
        let read = epochs(&path, reading(5), &m, 10);
        assert_eq!(read.len(), 1);
        let e = &read[0];
        assert_eq!((e.len(), e[0].epoch, e[1].epoch), (2, 1, 3));
        assert_eq!(e[0].train_mse, 1.5);
        assert!(e[0].extra["val_loss"].is_nan() && e[0].weight_norm.is_nan());
        assert_eq!(e[0].extra["gap"], f64::NEG_INFINITY);
        assert_eq!(e[1].train_mse, f64::INFINITY);
        assert!(e[1].extra.is_empty());
    }

    #[test]
    fn the_scan_finds_the_last_values_the_best_r2_and_where_the_metric_stays_met() {
        // n = 4 rows, SST = 8: R² = 1 - mse * 4 / 8 where a line gives only the MSE.
        let (_dir, path) = file(
            "{\"epoch\": 1, \"train_mse\": 1.0}\n\
             {\"epoch\": 2, \"train_mse\": 2.0, \"train_r2\": 0.9}\n\
             {\"epoch\": 3, \"train_mse\": 1.2}\n\
             {\"epoch\": 4, \"lr\": 0.1}\n\
             {\"epoch\": 5, \"train_mse\": 1.5}\n\
             {\"epoch\": 6, \"train_mse\": 1.4}\n",
        );
        let r = Reading {
            r2_from: Some((4.0, 8.0)),
            ..reading(9)
        };
        let m = scan(&path, r).unwrap();
        assert_eq!(m.last("train_mse"), Some(1.4));
        assert_eq!(m.last("train_r2"), Some(1.0 - 1.4 * 4.0 / 8.0));
        assert_eq!(m.best_train_r2, 0.9);
        // Met at 1 and 3, broken by 2 (too high) and 4 (not reported), met from 5 on.
        assert_eq!(m.met_from, Some(5));
        assert_eq!(m.last("lr"), Some(0.1));
        let all: Vec<EpochStats> = epochs(&path, r, &m, 2).concat();
        assert_eq!(epochs(&path, r, &m, 2).len(), 3, "batches of 2");
        assert_eq!(all.len(), 6);
        assert_eq!(all[0].train_r2, 1.0 - 1.0 * 4.0 / 8.0);
        assert_eq!(all[1].train_r2, 0.9);
        assert!(all[3].train_r2.is_nan() && all[3].train_mse.is_nan());
        let never = scan(
            &path,
            Reading {
                bound: Some(Bound::AtMost(1.0)),
                ..r
            },
        )
        .unwrap();
        assert_eq!(never.met_from, None);
    }

    #[test]
    fn the_second_pass_reads_no_further_than_the_scan_and_reports_a_changed_file() {
        let (_dir, path) = file("{\"epoch\": 1, \"train_mse\": 1.0}\n");
        let m = scan(&path, reading(5)).unwrap();
        std::fs::write(
            &path,
            "{\"epoch\": 1, \"train_mse\": 1.0}\n{\"epoch\": 2, \"train_mse\": 0.5}\n",
        )
        .unwrap();
        assert_eq!(epochs(&path, reading(5), &m, 10).concat().len(), 1);
        std::fs::write(&path, "{\"epoch\": 7}\n{\"epoch\": 8}\n").unwrap();
        let err = MetricsFile::of(path.clone(), reading(5), &m)
            .for_each_batch(10, |_| Ok(()))
            .unwrap_err();
        assert!(err.to_string().contains("changed after"), "{err}");
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
            let err = scan(&path, reading(5)).unwrap_err();
            assert!(err.contains(line) && err.contains(why), "{text:?}: {err}");
        }
        let (_dir, path) = file(&format!(
            "{{\"epoch\": 1, \"pad\": \"{}\"}}\n",
            "x".repeat(2 << 20)
        ));
        assert!(scan(&path, reading(5)).unwrap_err().contains("longer than"));
    }

    #[test]
    fn a_missing_or_empty_file_reads_as_no_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let (_file, empty) = file("");
        for path in [dir.path().join("none"), empty] {
            let s = scan(&path, reading(5)).unwrap();
            assert!(s.epochs == 0 && s.end == 0 && s.last.is_empty(), "{s:?}");
            assert!(s.initial_train_mse.is_nan() && s.best_train_r2.is_nan());
        }
    }
}
