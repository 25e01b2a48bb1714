//! Helpers shared by the end-to-end tests: the real binary, Parquet reading, files in a temp dir.

use std::path::{Path, PathBuf};

use polars::prelude::{DataFrame, ParquetReader, SerReader};

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

/// Runs `sweep run [args] CONFIG --out OUT`, asserts it succeeded, and returns its stdout.
pub fn run_ok(config: &Path, out: &Path, args: &[&str]) -> String {
    let output = sweep()
        .arg("run")
        .args(args)
        .arg(config)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
