//! `sweep reproduce`: a folder re-run from its own metadata is identical table by table; a value
//! changed in a copy is named (table, column, rows) with exit 4; tolerances, `--runs`, single
//! files, and a moved data file checked by its SHA-256.

use std::path::Path;

use polars::prelude::{Column, DataFrame};
use sweep::results::{read_metadata_value, read_parquet, write_parquet};

use crate::common::{run_ok, sweep, write};

/// A small ablation: every table kind but scenarios, in a second.
const SMALL: &str = r#"
name = "small"
[data]
n_rows = 300
n_features = 6
signal_lags = 2
[train]
epochs = 10
batch_size = 16
learning_rate = 1e-2
[grid]
whiten = ["none", "zca"]
clip = [false, true]
seed = [0, 1, 2, 3]
[ablation]
factors = { whiten = "zca", clip = true }
"#;

fn reproduce(args: &[&str]) -> (Option<i32>, String, String) {
    let output = sweep().arg("reproduce").args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Rewrites `table` with one value of f64 `column` (row 0) changed by `change`, keeping the
/// recorded config and hash.
fn change_value(table: &Path, column: &str, change: impl Fn(f64) -> f64) {
    let mut df = read_parquet(table).unwrap();
    let mut values: Vec<Option<f64>> = df.column(column).unwrap().f64().unwrap().iter().collect();
    values[0] = values[0].map(change);
    df.replace(column, Column::new(column.into(), values))
        .unwrap();
    let metadata: Vec<(String, String)> = ["sweep.config", "sweep.config_hash"]
        .iter()
        .map(|k| {
            (
                k.to_string(),
                read_metadata_value(table, k).unwrap().unwrap(),
            )
        })
        .collect();
    let mut df: DataFrame = df;
    write_parquet(table, &mut df, &metadata).unwrap();
}

#[test]
fn a_folder_reproduces_and_a_changed_value_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "small.toml", SMALL);
    let out = dir.path().join("small");
    run_ok(&config, &out, &["--quiet"]);
    let folder = out.to_str().unwrap();
    let (code, text, err) = reproduce(&[folder]);
    assert_eq!(code, Some(0), "{text}{err}");
    for table in [
        "runs",
        "epochs",
        "summary",
        "verdict",
        "effects",
        "paths",
        "reference",
    ] {
        assert!(
            text.contains(&format!("{table}.parquet")) && !text.contains("DIFFERS"),
            "{text}"
        );
    }
    assert_eq!(
        text.matches("identical").count(),
        8,
        "seven tables and the end line: {text}"
    );

    // One value changed in a copy: exit 4, naming the table, the column and the row count.
    let copy = dir.path().join("copy");
    copy_folder(&out, &copy);
    change_value(&copy.join("runs.parquet"), "final_train_r2", |v| v + 1e-3);
    let (code, text, _) = reproduce(&[copy.to_str().unwrap()]);
    assert_eq!(code, Some(4), "{text}");
    assert!(
        text.contains("runs.parquet         DIFFERS in 1: final_train_r2 (1 rows")
            && text.contains("not reproduced: 1 of 7"),
        "{text}"
    );
    // The provenance of both sides is printed when a table differs.
    assert!(
        text.contains("provenance (recorded | this reproduction)") && text.contains("sweep.build"),
        "{text}"
    );

    // A change in the last bits: not identical, but within --rtol.
    copy_folder(&out, &copy);
    change_value(&copy.join("summary.parquet"), "r2_median", |v| {
        v * (1.0 + 1e-13)
    });
    let summary = copy.join("summary.parquet");
    let (code, text, _) = reproduce(&[summary.to_str().unwrap()]);
    assert_eq!(code, Some(4), "{text}");
    let (code, text, _) = reproduce(&[summary.to_str().unwrap(), "--rtol", "1e-9"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("within rtol") && text.contains("1 values differ"),
        "{text}"
    );

    // A single table of the new kinds, and refusals: an --out that holds a sweep (the recorded
    // folder itself would compare saved runs with themselves), --data for a generator sweep.
    let effects = out.join("effects.parquet");
    let (code, text, err) = reproduce(&[effects.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(text.contains("effects.parquet      identical"), "{text}");
    let (code, _, err) = reproduce(&[folder, "--out", folder]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("already holds a sweep"), "{err}");
    let (code, _, err) = reproduce(&[folder, "--data", "elsewhere.csv"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("built-in generator"), "{err}");

    // A quick check of a few runs.
    let kept = dir.path().join("kept");
    let (code, text, err) = reproduce(&[folder, "--runs", "3", "--out", kept.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(
        text.contains("3 of its runs") && text.contains("epochs.parquet"),
        "{text}"
    );
    assert_eq!(
        read_parquet(&kept.join("runs.parquet")).unwrap().height(),
        3
    );
}

#[test]
fn a_file_backed_sweep_needs_its_data_file_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let small = write(dir.path(), "small.toml", SMALL);
    let csv = dir.path().join("data.csv");
    sweep()
        .arg("data")
        .arg(&small)
        .arg("--out")
        .arg(&csv)
        .assert()
        .success();
    let config = write(
        dir.path(),
        "file.toml",
        &format!(
            "name = \"file\"\n[data]\npath = \"{}\"\ntarget = \"y\"\n[train]\nepochs = 3\n[grid]\nseed = [0, 1]\n",
            csv.display()
        ),
    );
    let out = dir.path().join("file");
    run_ok(&config, &out, &["--quiet"]);
    let sha = read_metadata_value(&out.join("runs.parquet"), "sweep.data_sha256")
        .unwrap()
        .expect("a file-backed sweep records its data file's SHA-256");
    assert!(std::fs::read_to_string(out.join("manifest.toml"))
        .unwrap()
        .contains(&sha));
    // A path relative to the config's folder: found again through the manifest's record.
    let relative = write(
        dir.path(),
        "relative.toml",
        "name = \"relative\"\n[data]\npath = \"data.csv\"\ntarget = \"y\"\n[train]\nepochs = 2\n",
    );
    let rel_out = dir.path().join("relative");
    run_ok(&relative, &rel_out, &["--quiet"]);
    let (code, text, err) = reproduce(&[rel_out.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}{err}");
    // The data file moved: refused, naming the hash; found again with --data.
    let moved = dir.path().join("moved.csv");
    std::fs::rename(&csv, &moved).unwrap();
    let folder = out.to_str().unwrap();
    let (code, _, err) = reproduce(&[folder]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&sha) && err.contains("--data"), "{err}");
    let (code, text, err) = reproduce(&[folder, "--data", moved.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}{err}");
    // Another file: refused, naming both hashes.
    let other = dir.path().join("other.csv");
    let mut text = std::fs::read_to_string(&moved).unwrap();
    let second_row = text.lines().nth(1).unwrap().to_string();
    text.push_str(&second_row);
    text.push('\n');
    std::fs::write(&other, text).unwrap();
    let (code, _, err) = reproduce(&[folder, "--data", other.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&sha) && err.matches("SHA-256").count() >= 2,
        "{err}"
    );
}

/// A project moved elsewhere, of which only a table is left in its results folder: the data
/// file is found by the path the tables record relative to their folder, whatever the current
/// folder, and accepted only with the recorded SHA-256.
#[test]
fn a_lone_table_finds_its_data_file_by_the_recorded_relative_path() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("data")).unwrap();
    let small = write(dir.path(), "small.toml", SMALL);
    let csv = project.join("data/d.csv");
    sweep()
        .arg("data")
        .arg(&small)
        .arg("--out")
        .arg(&csv)
        .assert()
        .success();
    let config = write(
        &project,
        "c.toml",
        "[data]\npath = \"data/d.csv\"\ntarget = \"y\"\n[train]\nepochs = 2\n[grid]\nseed = [0, 1]\n",
    );
    run_ok(&config, &project.join("results/a"), &["--quiet"]);
    let table = project.join("results/a/runs.parquet");
    let recorded = read_metadata_value(&table, "sweep.data_path").unwrap();
    assert_eq!(recorded.as_deref(), Some("../../data/d.csv"));

    let moved = dir.path().join("moved");
    std::fs::rename(&project, &moved).unwrap();
    let results = moved.join("results/a");
    for entry in std::fs::read_dir(&results).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "runs.parquet" {
            let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
        }
    }
    let lone = results.join("runs.parquet");
    let run = |table: &Path| {
        let output = sweep()
            .current_dir(dir.path())
            .arg("reproduce")
            .arg(table)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    };
    let (code, text) = run(&lone);
    assert_eq!(code, Some(0), "{text}");

    // Another file at that path: refused, naming every place tried.
    std::fs::write(moved.join("data/d.csv"), "x,y\n1,2\n").unwrap();
    let (code, text) = run(&lone);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("another SHA-256") && text.contains("--data FILE"),
        "{text}"
    );
}
