//! Tests of the metrics reader: the rules, the scan, and the second pass in batches.

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
