//! The user's data file, read as documented in docs/guide/own-data.md: which columns become
//! features, what is said about those left out, and the CSV forms accepted (quoted numbers, a
//! byte-order mark, another separator, missing-value markers). The errors are in `bad_input`.

use std::path::{Path, PathBuf};

use sweep::results::read_metadata_value;

use crate::common::{read, sweep, write};

const CONFIG: &str = "[grid]\nseed = [0]\n[train]\nepochs = 2\nbatch_size = 4\n";

/// `y = a + 2 b - c + noise` over 200 rows, as CSV with `sep` between the fields and each
/// number passed through `cell` (to quote it, say).
fn abc_csv(sep: &str, cell: impl Fn(String) -> String) -> String {
    let mut text = ["a", "b", "c", "y"].join(sep) + "\n";
    for i in 0..200u32 {
        let a = f64::from((7 * i) % 23) / 4.0;
        let b = f64::from((11 * i) % 29) / 8.0;
        let c = f64::from((13 * i) % 31) / 16.0;
        let noise = f64::from((i * 37) % 17) / 100.0 - 0.08;
        let row = [a, b, c, a + 2.0 * b - c + noise].map(|v| cell(v.to_string()));
        text += &(row.join(sep) + "\n");
    }
    text
}

/// Runs a sweep of `file` (in `dir`) with the extra `[data]` lines; returns (stdout, stderr).
fn run_file(dir: &Path, file: &str, data: &str) -> (PathBuf, String) {
    let config = write(
        dir,
        "c.toml",
        &format!("[data]\npath = \"{file}\"\ntarget = \"y\"\n{data}{CONFIG}"),
    );
    let out = dir.join(format!("out-{file}"));
    let output = crate::common::run_output(&config, &out, &["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    (out, stderr)
}

/// The reference coefficients of a finished sweep folder.
fn coefficients(out: &Path) -> Vec<f64> {
    let reference = read(&out.join("reference.parquet"));
    let column = reference.column("coefficient").unwrap();
    column.f64().unwrap().into_no_null_iter().collect()
}

fn features_of(out: &Path) -> String {
    read_metadata_value(&out.join("runs.parquet"), "sweep.features")
        .unwrap()
        .expect("runs.parquet records sweep.features")
}

#[test]
fn text_columns_left_out_are_named_and_the_features_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,city,b,y\n");
    for i in 0..40u32 {
        let (a, b) = (f64::from(i % 7), f64::from((i * 3) % 11));
        text += &format!(
            "{a},town{},{b},{}\n",
            i % 4,
            a - b + f64::from(i % 5) / 10.0
        );
    }
    write(dir.path(), "d.csv", &text);
    let (out, stderr) = run_file(dir.path(), "d.csv", "");
    assert!(
        stderr.contains("column \"city\" (text) left out of the features"),
        "{stderr}"
    );
    assert_eq!(features_of(&out), r#"["a","b"]"#);
    for table in ["epochs.parquet", "summary.parquet", "reference.parquet"] {
        let value = read_metadata_value(&out.join(table), "sweep.features").unwrap();
        assert_eq!(value.as_deref(), Some(r#"["a","b"]"#), "{table}");
    }
    let manifest = std::fs::read_to_string(out.join("manifest.toml")).unwrap();
    assert!(manifest.contains("features = [\"a\", \"b\"]"), "{manifest}");
}

#[test]
fn quoted_numbers_a_byte_order_mark_and_another_separator_read_as_the_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "plain.csv", &abc_csv(",", |v| v));
    write(
        dir.path(),
        "quoted.csv",
        &abc_csv(",", |v| format!("\"{v}\"")),
    );
    write(
        dir.path(),
        "bom.csv",
        &format!("\u{feff}{}", abc_csv(",", |v| v)),
    );
    write(dir.path(), "semi.csv", &abc_csv(";", |v| v));
    write(dir.path(), "tab.csv", &abc_csv("\t", |v| format!(" {v} ")));
    // Unstandardized, so that b's coefficient is its 2 in y = a + 2 b - c + noise.
    let plain_config = "standardize = false\n";
    let (plain, _) = run_file(dir.path(), "plain.csv", plain_config);
    let expected = coefficients(&plain);
    assert_eq!(expected.len(), 3);
    assert!((expected[1] - 2.0).abs() < 0.05, "{expected:?}");
    for (file, data) in [
        ("quoted.csv", ""),
        ("bom.csv", ""),
        ("semi.csv", "separator = \";\"\n"),
        ("tab.csv", "separator = \"\\t\"\n"),
    ] {
        let (out, stderr) = run_file(dir.path(), file, &format!("{plain_config}{data}"));
        assert_eq!(coefficients(&out), expected, "{file}");
        assert_eq!(features_of(&out), r#"["a","b","c"]"#, "{file}");
        assert!(!stderr.contains("left out"), "{file}: {stderr}");
    }
}

#[test]
fn parquet_columns_of_other_types_are_named_when_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/typed_columns.parquet");
    std::fs::copy(&fixture, dir.path().join("t.parquet")).unwrap();
    let (out, stderr) = run_file(dir.path(), "t.parquet", "");
    // The features are the numeric columns; the decimal column, if polars reads it as a number,
    // is one of them, and otherwise is named with the rest.
    let features = features_of(&out);
    assert!(features.starts_with(r#"["a","b""#), "{features}");
    for (column, dtype) in [
        ("flag", "(bool)"),
        ("day", "(date)"),
        ("group", "(cat"),
        ("note", "(text)"),
    ] {
        let line = format!("column \"{column}\" {dtype}");
        assert!(stderr.contains(&line), "lacks {line:?}: {stderr}");
    }
    let price_used = features.contains("price");
    assert_eq!(stderr.contains("column \"price\""), !price_used, "{stderr}");
}

#[test]
fn separator_and_missing_stay_out_of_the_hash_and_run_ids_until_set() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "d.csv", &abc_csv(",", |v| v));
    let list = |data: &str| {
        let config = write(
            dir.path(),
            "l.toml",
            &format!("[data]\npath = \"d.csv\"\ntarget = \"y\"\n{data}{CONFIG}"),
        );
        let output = sweep().arg("list").arg(&config).output().unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let unset = list("");
    assert!(
        !unset.contains("separator") && !unset.contains("missing"),
        "{unset}"
    );
    // Set, even to the default, they enter the ids: they may change what the same bytes hold.
    assert_ne!(list("separator = \",\"\n"), unset);
    assert_ne!(list("missing = [\"NA\"]\n"), unset);
}

#[test]
fn a_relative_data_path_is_found_again_by_report_and_merge() {
    // Regression: the folder's config was re-read with paths relative to the output folder, so
    // `sweep report` and `sweep merge` of a config with `path = "../data/d.csv"` found no runs.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cfg")).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    write(&dir.path().join("data"), "d.csv", &abc_csv(",", |v| v));
    let config = write(
        &dir.path().join("cfg"),
        "c.toml",
        &format!(
            "[data]\npath = \"../data/d.csv\"\ntarget = \"y\"\n[grid]\nseed = [0, 1]\n{}",
            "[train]\nepochs = 2\nbatch_size = 4\n"
        ),
    );
    // Output folders one level deeper than the config, so that the two readings differ.
    let whole = dir.path().join("results/whole");
    crate::common::run_ok(&config, &whole, &["--quiet"]);
    sweep().arg("report").arg(&whole).assert().success();
    let sharded = dir.path().join("results/sharded");
    for shard in ["0/2", "1/2"] {
        crate::common::run_ok(&config, &sharded, &["--quiet", "--shard", shard]);
    }
    sweep().arg("merge").arg(&sharded).assert().success();
    crate::common::assert_same_tables(&whole, &sharded);
}
