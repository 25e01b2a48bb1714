//! A command run's metrics on their way to the tables: a run reporting more epochs than a part
//! writes at once (the file is read again in batches, never held) fills the epochs table in
//! order, with the extra metrics of every run, and its row from one pass over the file.

use std::os::unix::fs::PermissionsExt;

use polars::prelude::DataFrame;

use crate::common::{read, run_output, write};

#[test]
fn a_run_reporting_more_epochs_than_a_batch_fills_its_tables_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // 40,000 epochs (more than two batches of the part writer); seed 1 also reports `lr` on even
    // epochs; the train MSE falls as 1 / epoch.
    let script = write(
        dir.path(),
        "long.sh",
        r#"#!/bin/sh
awk -v s="$1" 'BEGIN { for (e = 1; e <= 40000; e++) {
  printf "{\"epoch\": %d, \"train_mse\": %.17g", e, 1 / e
  if (s == 1 && e % 2 == 0) printf ", \"lr\": %d", e
  printf "}\n" } }' >> "$SWEEP_METRICS"
"#,
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = write(
        dir.path(),
        "c.toml",
        &format!(
            "[data]\nn_rows = 120\nn_features = 4\nsignal_lags = 2\n[train]\nepochs = 40000\n\
             [grid]\nseed = [0, 1]\n[command]\nargv = [\"{}\", \"{{seed}}\"]\n\
             converged = {{ at_most = 0.001 }}\n",
            script.display()
        ),
    );
    let out = dir.path().join("out");
    let output = run_output(&config, &out, &["--quiet"]);
    assert!(output.status.success(), "{output:?}");

    let epochs = read(&out.join("epochs.parquet"));
    assert_eq!(epochs.height(), 80_000);
    let runs = read(&out.join("runs.parquet"));
    let strings = |df: &DataFrame, name: &str| -> Vec<String> {
        let column = df.column(name).unwrap().str().unwrap().clone();
        column.iter().map(|s| s.unwrap().to_string()).collect()
    };
    let f64s = |df: &DataFrame, name: &str| -> Vec<Option<f64>> {
        df.column(name).unwrap().f64().unwrap().iter().collect()
    };
    let ids = strings(&runs, "run_id");
    let run_ids = strings(&epochs, "run_id");
    let epoch: Vec<i64> = epochs
        .column("epoch")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    let mse: Vec<f64> = f64s(&epochs, "train_mse").into_iter().flatten().collect();
    let lr = f64s(&epochs, "lr");
    assert_eq!((epoch.len(), mse.len()), (80_000, 80_000), "no nulls");
    for (i, ((id, e), (m, l))) in run_ids
        .iter()
        .zip(&epoch)
        .zip(mse.iter().zip(&lr))
        .enumerate()
    {
        let (run, expected_epoch) = (i / 40_000, (i % 40_000 + 1) as i64);
        assert_eq!((id, *e), (&ids[run], expected_epoch), "row {i}");
        assert_eq!(*m, 1.0 / expected_epoch as f64, "row {i}");
        let reports_lr = run == 1 && expected_epoch % 2 == 0;
        assert_eq!(*l, reports_lr.then_some(expected_epoch as f64), "row {i}");
    }
    // The rows, from the scan: the last epoch, where the metric stayed under 0.001 (from epoch
    // 1000 on: 1 / 1000 is at most 0.001), the final values.
    let int = |name: &str| -> Vec<Option<i64>> {
        runs.column(name).unwrap().i64().unwrap().iter().collect()
    };
    assert_eq!(int("epochs_run"), [Some(40_000), Some(40_000)]);
    assert_eq!(int("epochs_to_converge"), [Some(1000), Some(1000)]);
    let final_lr = f64s(&runs, "final_lr");
    assert_eq!(final_lr, [None, Some(40_000.0)]);
    let status = strings(&runs, "status");
    assert_eq!(status, ["converged", "converged"]);
}
