//! Reliability end to end: a sweep killed with SIGKILL at several points (early, half-way,
//! during the final write) and restarted each time writes the same bytes as an uninterrupted
//! one, with no run lost or saved twice; a panicking run is a `failed` row; a folder holding
//! another config or another build is refused; `sweep status` counts what is saved.

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use crate::common::{manifest_build, read, run_ok, sweep, TABLES};

/// 300 short runs on a small data set.
const MANY: &str = r#"
name = "many"
seed = 5
[data]
n_rows = 200
n_features = 5
signal_lags = 2
[train]
epochs = 15
batch_size = 20
learning_rate = 1e-2
[grid]
whiten = ["none", "zca"]
clip = [false, true]
seed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,
        50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74]
[ablation]
factors = { whiten = "zca", clip = true }
"#;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sweep")
}

fn spawn(config: &Path, out: &Path, env: &[(&str, &str)]) -> Child {
    let mut cmd = Process::new(bin());
    cmd.args(["run", "--quiet"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn committed_parts(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out.join("parts"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".runs.parquet"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `ready` holds (or the child exits), then kills the child with SIGKILL.
fn kill_when(mut child: Child, what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep finished before the kill point '{what}'"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for '{what}'"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn killed_and_resumed_sweeps_write_the_same_bytes_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("many.toml");
    std::fs::write(&config, MANY).unwrap();
    let (whole, resumed) = (dir.path().join("whole"), dir.path().join("resumed"));
    assert!(spawn(&config, &whole, &[]).wait().unwrap().success());

    // Early: as soon as the first part is saved.
    let slow = [("SWEEP_TEST_RUN_DELAY_MS", "10")];
    kill_when(spawn(&config, &resumed, &slow), "early", || {
        !committed_parts(&resumed).is_empty()
    });
    let status = sweep().arg("status").arg(&resumed).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("300 runs") && !text.contains(" 0 missing"),
        "{text}"
    );
    // Half-way: once at least half of the runs are saved.
    kill_when(spawn(&config, &resumed, &slow), "middle", || {
        committed_parts(&resumed)
            .iter()
            .map(|p| read(p).height())
            .sum::<usize>()
            >= 150
    });
    // During the final write: after the first table appears, before the last.
    let slow_write = [("SWEEP_TEST_FINAL_WRITE_DELAY_MS", "400")];
    kill_when(spawn(&config, &resumed, &slow_write), "final write", || {
        resumed.join("reference.parquet").exists()
    });
    assert!(
        !resumed.join("runs.parquet").exists(),
        "killed before the last table"
    );
    // Finish.
    let out = sweep()
        .arg("run")
        .arg(&config)
        .arg("--out")
        .arg(&resumed)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("(300 resumed from an earlier run)"));

    for table in TABLES {
        let a = std::fs::read(whole.join(table)).unwrap();
        let b = std::fs::read(resumed.join(table)).unwrap();
        assert!(
            a == b,
            "{table} differs between the uninterrupted and the killed-and-resumed sweep"
        );
    }
    // Nothing lost, nothing saved twice.
    let runs = read(&resumed.join("runs.parquet"));
    assert_eq!(runs.height(), 300);
    assert_eq!(runs.column("run_id").unwrap().n_unique().unwrap(), 300);
    let saved: usize = committed_parts(&resumed)
        .iter()
        .map(|p| read(p).height())
        .sum();
    assert_eq!(saved, 300, "every run saved exactly once across the parts");
    // Grouped: far fewer part files than runs.
    assert!(committed_parts(&resumed).len() < 30);
}

#[test]
fn repeated_sweeps_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("many.toml");
    std::fs::write(&config, MANY.replace("seed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "seed = [0, 1, 2, 10,").replace(
        "11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,\n        25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,\n        50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74]",
        "11]",
    ))
    .unwrap();
    for name in ["a", "b"] {
        assert!(spawn(&config, &dir.path().join(name), &[])
            .wait()
            .unwrap()
            .success());
    }
    for table in TABLES {
        assert!(
            std::fs::read(dir.path().join("a").join(table)).unwrap()
                == std::fs::read(dir.path().join("b").join(table)).unwrap(),
            "{table}"
        );
    }
}

#[test]
fn a_panicking_run_is_a_failed_row_and_the_others_finish() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("small.toml");
    std::fs::write(&config, "[data]\nn_rows = 100\nn_features = 4\nsignal_lags = 2\n[train]\nepochs = 3\n[grid]\nseed = [0, 1, 2, 3]\n").unwrap();
    let out = dir.path().join("out");
    let output = sweep()
        .arg("run")
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .env("SWEEP_TEST_PANIC_RUN", "2")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 failed"));
    let runs = read(&out.join("runs.parquet"));
    let status: Vec<Option<&str>> = runs
        .column("status")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(status.iter().filter(|s| **s == Some("failed")).count(), 1);
    assert_eq!(status[2], Some("failed"));
    let message = runs
        .column("message")
        .unwrap()
        .str()
        .unwrap()
        .get(2)
        .unwrap()
        .to_string();
    assert!(
        message.contains("injected test panic in run 2"),
        "{message}"
    );
}

/// A small sweep of `epochs` epochs run to the end in a temporary folder: (folder, config, output).
fn small_finished_sweep(
    epochs: u32,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("small.toml");
    std::fs::write(
        &config,
        format!(
            "[data]\nn_rows = 100\nn_features = 4\nsignal_lags = 2\n[train]\nepochs = {epochs}\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    run_ok(&config, &out, &["--quiet"]);
    (dir, config, out)
}

#[test]
fn a_folder_holding_another_config_is_refused_until_fresh() {
    let (_dir, config, out) = small_finished_sweep(3);
    let before = std::fs::read(out.join("runs.parquet")).unwrap();
    let refused = sweep()
        .args(["run", "--quiet", "--set", "train.epochs=4"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("hash") && stderr.contains("--fresh"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(out.join("runs.parquet")).unwrap(),
        before,
        "nothing written when refused"
    );
    sweep()
        .args(["run", "--quiet", "--fresh", "--set", "train.epochs=4"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let epochs = read(&out.join("epochs.parquet"));
    assert_eq!(epochs.height(), 4);
}

/// A folder whose runs another build made is refused on resume, naming both builds, until
/// `--fresh` or `--allow-build-change` (after which the manifest lists both and resumes go on).
#[test]
fn a_folder_of_another_build_is_refused_until_allowed() {
    let (_dir, config, out) = small_finished_sweep(3);
    let manifest = out.join("manifest.toml");
    let (text, build) = manifest_build(&manifest);
    // The parts record the build too: rewrite the manifest as if another build had made them all.
    std::fs::write(&manifest, text.replace(&build, "0123456789ab")).unwrap();
    let rerun = |extra: &[&str]| {
        sweep()
            .args(["run", "--quiet"])
            .args(extra)
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let refused = rerun(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("0123456789ab")
            && stderr.contains(&build)
            && stderr.contains("--allow-build-change")
            && stderr.contains("--fresh"),
        "{stderr}"
    );
    assert!(rerun(&["--allow-build-change"]).status.success());
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        text.contains("also_builds") && text.contains(&build),
        "{text}"
    );
    // Both builds are accepted from now on; `sweep status` names them.
    assert!(rerun(&[]).status.success());
    let status = sweep().arg("status").arg(&out).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains(&format!("build 0123456789ab + {build}")),
        "{status}"
    );
}

/// Runs `sweep ARGS...` and returns its exit code and stderr.
fn exit_and_stderr(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let output = sweep().args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_damaged_manifest_or_results_folder_is_bad_input_not_a_crash() {
    let (dir, config, out) = small_finished_sweep(2);
    let os = |s: &str| std::ffi::OsString::from(s);
    // A hand-edited hash: refused with exit 2 by `run` and `status`, naming the file (it used to panic).
    let manifest = out.join("manifest.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let edited: String = text
        .lines()
        .map(|l| {
            if l.starts_with("config_hash") {
                "config_hash = \"abc\""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&manifest, edited).unwrap();
    for args in [
        vec![os("status"), out.clone().into_os_string()],
        vec![
            os("run"),
            os("--quiet"),
            config.clone().into_os_string(),
            os("--out"),
            out.clone().into_os_string(),
        ],
    ] {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let (code, stderr) = exit_and_stderr(&args);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("manifest.toml") && stderr.contains("\"abc\""),
            "{stderr}"
        );
    }
    std::fs::write(&manifest, "not = [toml").unwrap();
    let (code, stderr) = exit_and_stderr(&[os("status").as_os_str(), out.as_os_str()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is not a sweep manifest"), "{stderr}");

    // A folder without tables, an unknown run, a cell matching nothing: usage errors, exit 2.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec![os("report"), empty.clone().into_os_string()],
            "has no summary.parquet",
        ),
        (
            vec![
                os("plot"),
                out.clone().into_os_string(),
                os("--run"),
                os("nosuchrun"),
            ],
            "no such run_id",
        ),
        (
            vec![
                os("plot"),
                out.clone().into_os_string(),
                os("--cell"),
                os("seed=99"),
            ],
            "no run matches",
        ),
        (
            vec![
                os("plot"),
                out.clone().into_os_string(),
                os("--cell"),
                os("nosuchkey=1"),
            ],
            "no column",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let (code, stderr) = exit_and_stderr(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
