//! End-to-end tests: the real `sweep` binary in a temporary folder.

use crate::common::{read, run_ok, sweep, write};
use polars::prelude::*;

/// A small sweep on a small built-in data set: 2 x 2 cells x 2 seeds, 6 epochs.
const SMALL: &str = r#"
name = "small"
seed = 3

[data]
n_rows = 400
n_features = 8
signal_lags = 3

[train]
epochs = 6
batch_size = 16
learning_rate = 1e-2

[grid]
whiten = ["none", "zca"]
clip = [false, true]
seed = [0, 1]
"#;

#[test]
fn run_writes_the_four_tables_with_the_grid_row_counts() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "small.toml", SMALL);
    let out = dir.path().join("out");
    let stdout = run_ok(&config, &out, &[]);
    assert!(stdout.contains("OLS reference"), "{stdout}");
    assert!(stdout.contains("8 runs"), "{stdout}");

    let runs = read(&out.join("runs.parquet"));
    assert_eq!(runs.height(), 8);
    let epochs = read(&out.join("epochs.parquet"));
    assert_eq!(epochs.height(), 8 * 6);
    let summary = read(&out.join("summary.parquet"));
    assert_eq!(summary.height(), 4);
    assert_eq!(
        summary.column("n_runs").unwrap().i64().unwrap().get(0),
        Some(2)
    );
    let reference = read(&out.join("reference.parquet"));
    assert_eq!(reference.height(), 8);
    assert!(out.join("timing.toml").exists());

    for column in [
        "run_id",
        "status",
        "final_train_r2",
        "distance_to_ols",
        "whiten",
        "clip",
        "seed",
        "data_seed",
    ] {
        assert!(runs.column(column).is_ok(), "runs.parquet lacks {column}");
    }
    assert_eq!(runs.column("whiten").unwrap().dtype(), &DataType::String);
    assert_eq!(runs.column("clip").unwrap().dtype(), &DataType::Boolean);
    assert_eq!(runs.column("epochs").unwrap().dtype(), &DataType::Int64);
    // Run ids are unique.
    assert_eq!(runs.column("run_id").unwrap().n_unique().unwrap(), 8);

    let mut f = std::fs::File::open(out.join("runs.parquet")).unwrap();
    let mut reader = ParquetReader::new(&mut f);
    let meta = reader
        .get_metadata()
        .unwrap()
        .key_value_metadata()
        .clone()
        .unwrap();
    let config_entry = meta
        .iter()
        .find(|kv| kv.key == "sweep.config")
        .expect("config metadata");
    assert!(config_entry
        .value
        .as_deref()
        .unwrap()
        .contains("learning_rate = 0.01"));
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn one_and_two_threads_give_byte_identical_tables() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "small.toml", SMALL);
    for jobs in ["1", "2"] {
        let out = dir.path().join(format!("jobs{jobs}"));
        sweep()
            .args(["run", "--quiet", "--jobs", jobs])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
    }
    for table in [
        "runs.parquet",
        "epochs.parquet",
        "summary.parquet",
        "reference.parquet",
    ] {
        let a = std::fs::read(dir.path().join("jobs1").join(table)).unwrap();
        let b = std::fs::read(dir.path().join("jobs2").join(table)).unwrap();
        assert!(a == b, "{table} differs between --jobs 1 and --jobs 2");
    }
}

#[test]
fn list_prints_the_grid_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "small.toml", SMALL);
    let output = sweep()
        .current_dir(dir.path())
        .args(["list"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("8 runs"), "{text}");
    assert!(text.contains("whiten=zca"), "{text}");
    assert!(!dir.path().join("results").exists());

    let output = sweep()
        .args(["list", "--set", "grid.seed=[0,1,2]"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("12 runs"));
}

#[test]
fn data_command_writes_the_data_set_as_the_runs_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "small.toml", SMALL);
    let csv = dir.path().join("data.csv");
    sweep()
        .arg("data")
        .arg(&config)
        .arg("--out")
        .arg(&csv)
        .assert()
        .success();
    let text = std::fs::read_to_string(&csv).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(header, "x000,x001,x002,x003,x004,x005,x006,x007,y");
    assert_eq!(text.lines().count(), 401);

    // The written file is a valid input: a sweep on it gives the same OLS reference.
    let file_config = format!(
        "name = \"from_file\"\n[data]\npath = \"{}\"\ntarget = \"y\"\nstandardize = false\n[train]\nepochs = 2\n",
        csv.display()
    );
    let config2 = write(dir.path(), "file.toml", &file_config);
    let out_a = dir.path().join("a");
    let out_b = dir.path().join("b");
    sweep()
        .args(["run", "--quiet", "--set", "train.epochs=2"])
        .arg(&config)
        .arg("--out")
        .arg(&out_a)
        .assert()
        .success();
    run_ok(&config2, &out_b, &["--quiet"]);
    let ra = read(&out_a.join("reference.parquet"));
    let rb = read(&out_b.join("reference.parquet"));
    let ca = ra
        .column("coefficient")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    let cb = rb
        .column("coefficient")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    assert!(
        (ca - cb).abs() <= 1e-9 * ca.abs().max(1e-12),
        "{ca} vs {cb}"
    );
}

#[test]
fn a_sweep_where_every_run_diverges_completes_with_diverged_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "small.toml", SMALL);
    let out = dir.path().join("out");
    let output = sweep()
        .args([
            "run",
            "--set",
            "train.learning_rate=1e3",
            "--set",
            "grid.clip=[false]",
        ])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("4 diverged"), "{stdout}");
    let runs = read(&out.join("runs.parquet"));
    let status = runs.column("status").unwrap().str().unwrap();
    assert!(status.iter().all(|s| s == Some("diverged")));
}

/// Runs a bad config; checks exit code 2, that stderr names every `expected` piece, and that no
/// output folder was created.
fn rejects(config_text: &str, extra: &[&str], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "bad.toml", config_text);
    let out = dir.path().join("out");
    let output = sweep()
        .arg("run")
        .args(extra)
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    for piece in expected {
        assert!(stderr.contains(piece), "stderr lacks {piece:?}: {stderr}");
    }
    assert!(!out.exists(), "output written for a rejected config");
}

#[test]
fn config_errors_name_the_key_and_line_and_write_nothing() {
    rejects("[train]\nepochs = \n", &[], &["bad.toml", "line 2"]);
    rejects(
        "[train]\nepochs = 5\nlearning_rat = 0.1\n",
        &[],
        &[
            "bad.toml:3:1",
            "learning_rat",
            "did you mean `learning_rate`",
        ],
    );
    rejects(
        "[train]\nepochs = \"many\"\n",
        &[],
        &["bad.toml:2:1", "train.epochs", "\"many\""],
    );
    rejects(
        "[grid]\nseed = []\n",
        &[],
        &["bad.toml:2:1", "grid.seed", "empty"],
    );
    rejects(
        "[train]\nlearning_rate = -1.0\n",
        &[],
        &["bad.toml:2:1", "train.learning_rate", "> 0"],
    );
    rejects(
        "[grid]\nwhiten = [\"none\", \"zac\"]\n",
        &[],
        &["bad.toml:2:1", "grid.whiten", "zac", "zca"],
    );
    rejects(
        "[grid]\nbatch_size = [1, 1]\n",
        &[],
        &["grid.batch_size", "duplicate"],
    );
    rejects(
        "[train]\nepochs = 5\n",
        &["--set", "train.epochs=0"],
        &["--set train.epochs=0", ">= 1"],
    );
    rejects(
        "[train]\nepochs = 5\n",
        &["--set", "train.epoch=3"],
        &["--set train.epoch=3", "did you mean `epochs`"],
    );
    rejects(
        "[grid]\nclip = [true, false]\n[[grid.exclude]]\nclip = true\n[[grid.exclude]]\nclip = false\n",
        &[],
        &["remove all 2 runs"],
    );
    rejects(
        "[grid]\nclip = [true, false]\n[[grid.exclude]]\nclipp = true\n",
        &[],
        &["bad.toml:3:1", "not a grid axis"],
    );
    rejects(
        "[data]\nn_rows = 400\nn_features = 8\nsignal_lags = 3\n[train]\nbatch_size = 500\n",
        &[],
        &["batch_size = 500", "400 rows"],
    );
}

#[test]
fn user_data_file_errors_name_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "d.csv", "a,b,y\n1,2,3\n2,inf,4\n3,1,2\n4,5,1\n");
    let config = format!("[data]\npath = \"{}\"\ntarget = \"y\"\n", csv.display());
    rejects(&config, &[], &["row 2", "\"b\"", "inf"]);
    let config = format!("[data]\npath = \"{}\"\ntarget = \"z\"\n", csv.display());
    rejects(&config, &[], &["\"z\"", "a, b, y"]);
}
