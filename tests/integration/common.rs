//! Helpers shared by the end-to-end tests: the real binary, Parquet reading, files in a temp dir.

use std::path::{Path, PathBuf};

use polars::prelude::{DataFrame, ParquetReader, SerReader};

/// The tables a finished sweep with `[ablation]` writes.
pub const TABLES: [&str; 5] = [
    "runs.parquet",
    "epochs.parquet",
    "summary.parquet",
    "reference.parquet",
    "verdict.parquet",
];

/// Asserts that every table of `expected` exists in `got` with the same bytes.
pub fn assert_same_tables(expected: &Path, got: &Path) {
    for table in TABLES {
        let a = expected.join(table);
        if a.exists() {
            let b = std::fs::read(got.join(table))
                .unwrap_or_else(|e| panic!("{table} missing in {}: {e}", got.display()));
            assert!(std::fs::read(&a).unwrap() == b, "{table} differs");
        }
    }
}

/// A folder's `manifest.toml` text and the build it records.
pub fn manifest_build(manifest: &Path) -> (String, String) {
    let text = std::fs::read_to_string(manifest).unwrap();
    let build = text
        .lines()
        .find_map(|l| l.strip_prefix("build = "))
        .expect("the manifest records the build")
        .trim_matches('"')
        .to_string();
    (text, build)
}

/// The `sweep` binary under test.
pub fn sweep() -> assert_cmd::Command {
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_sweep"))
}

/// Reads a Parquet file.
pub fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `sweep run [args] CONFIG --out OUT` and returns what it did.
pub fn run_output(config: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    sweep()
        .arg("run")
        .args(args)
        .arg(config)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// Runs `sweep run [args] CONFIG --out OUT`, asserts it succeeded, and returns its stdout.
pub fn run_ok(config: &Path, out: &Path, args: &[&str]) -> String {
    let output = run_output(config, out, args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
