//! Command runs: a run is the user's own command. Scripts that behave and scripts that do not
//! (exit codes, no metrics, garbage metrics, a timeout, a TERM ignored, grandchildren left
//! running, a kill by a signal, a script reading stdin, a stop signal to sweep) each end as a
//! row with the status and message the docs promise, and leave no process behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use polars::prelude::*;

use crate::common::{read, run_output, sweep, write};

/// A small built-in data set and `epochs` epochs; the grid and `[command]` follow.
fn config(epochs: u32, grid: &str, command: &str) -> String {
    format!(
        "[data]\nn_rows = 120\nn_features = 4\nsignal_lags = 2\n[train]\nepochs = {epochs}\n\
         [grid]\n{grid}\n[command]\n{command}\n"
    )
}

/// Writes an executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = write(dir, name, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A trainer whose `val_loss` and `train_mse` fall from 8 by a factor 2 per epoch (4 with
/// `--clip` as `$3`), for `$1` epochs.
const TRAINER: &str = r#"f=2; [ "${3:-}" = "--clip" ] && f=4
awk -v f=$f -v n="$1" 'BEGIN { l = 8; printf "{\"epoch\": 0, \"train_mse\": %g}\n", l;
  for (e = 1; e <= n; e++) { l /= f; printf "{\"epoch\": %d, \"val_loss\": %g, \"train_mse\": %g}\n", e, l, l } }' >> "$SWEEP_METRICS""#;

struct Ran {
    out: PathBuf,
    code: Option<i32>,
    stderr: String,
}

fn run(dir: &Path, text: &str) -> Ran {
    let config = write(dir, "c.toml", text);
    let out = dir.join("out");
    let output = run_output(&config, &out, &["--quiet"]);
    Ran {
        out,
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap_or("").to_string())
        .collect()
}

fn ints(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    df.column(name).unwrap().i64().unwrap().iter().collect()
}

/// Processes whose environment names a folder under `dir` (a run's leftovers).
fn leftovers(dir: &Path) -> Vec<String> {
    let needle = format!("SWEEP_RUN_DIR={}", dir.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| String::from_utf8_lossy(&env).contains(&needle))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_command_sweep_renders_argv_judges_its_metric_and_fills_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "train.sh",
        &format!("{TRAINER}\necho \"lr=$2 seed=$SWEEP_SEED\""),
    );
    let text = config(
        5,
        "clip = [false, true]\nseed = [0, 1]",
        "argv = [\"./train.sh\", \"{epochs}\", \"{learning_rate}\", \"{clip?--clip}\"]\n\
         metric = \"val_loss\"\nconverged = { at_most = 0.1 }",
    );
    let ran = run(dir.path(), &text);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let runs = read(&ran.out.join("runs.parquet"));
    // 8 / 2^5 = 0.25 does not meet 0.1; 8 / 4^e does from epoch 4 (0.125 at 3, 0.03125 at 4).
    // Runs in grid order: clip (the first axis) false for runs 0 and 1.
    assert_eq!(
        strings(&runs, "status"),
        ["not_converged", "not_converged", "converged", "converged"]
    );
    assert_eq!(
        ints(&runs, "epochs_to_converge"),
        [None, None, Some(4), Some(4)]
    );
    assert_eq!(ints(&runs, "exit_code"), [Some(0); 4]);
    assert_eq!(ints(&runs, "signal"), [None; 4]);
    assert_eq!(
        strings(&runs, "argv")[2],
        r#"["./train.sh","5","0.001","--clip"]"#
    );
    assert_eq!(strings(&runs, "argv")[0], r#"["./train.sh","5","0.001"]"#);
    let finals: Vec<Option<f64>> = runs
        .column("final_val_loss")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        finals,
        [
            Some(0.25),
            Some(0.25),
            Some(8.0 / 1024.0),
            Some(8.0 / 1024.0)
        ]
    );
    let initial: Vec<Option<f64>> = runs
        .column("initial_train_mse")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(initial, [Some(8.0); 4]);
    let epochs = read(&ran.out.join("epochs.parquet"));
    assert_eq!(epochs.height(), 20);
    assert_eq!(
        epochs.column("val_loss").unwrap().dtype(),
        &DataType::Float64
    );
    // The train R² comes from the reported train MSE and the data's total sum of squares.
    let r2 = epochs
        .column("train_r2")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    assert!(r2.is_finite() && r2 < 0.0, "{r2}");
    // The runs' own folders: params.json, logs, and the same SWEEP_SEED for runs that differ
    // only in clip.
    let folder = |i: usize| {
        ran.out
            .join("runs")
            .join(&strings(&runs, "run_id")[i])
            .join("attempt-1")
    };
    let params: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder(0).join("params.json")).unwrap())
            .unwrap();
    assert_eq!(params["params"]["learning_rate"], 0.001);
    assert_eq!(params["params"]["clip"], false);
    assert_eq!(
        params["sweep"]["run_id"],
        strings(&runs, "run_id")[0].as_str()
    );
    let seed = params["sweep"]["seed"].as_u64().unwrap();
    assert!(seed < 1 << 31);
    let stdout = |i: usize| std::fs::read_to_string(folder(i).join("stdout.log")).unwrap();
    assert_eq!(stdout(0), format!("lr=0.001 seed={seed}\n"));
    assert_eq!(stdout(0), stdout(2));
    assert_ne!(stdout(0), stdout(1));
    let data = PathBuf::from(params["sweep"]["data"].as_str().unwrap());
    let handed = read(&data);
    assert_eq!((handed.height(), handed.width()), (120, 5));
}

#[test]
fn failures_are_rows_with_their_status_and_a_message_naming_the_cause() {
    let cases: [(&str, &str, &str, &[&str]); 7] = [
        (
            "exits 3",
            "echo boom >&2\nexit 3",
            "failed",
            &["exited with code 3", "stderr ends", "boom", "stderr.log"],
        ),
        (
            "wrapper 137",
            "exit 137",
            "failed",
            &["code 137", "perhaps signal 9"],
        ),
        (
            "no metrics",
            "echo hello",
            "failed",
            &["exited 0 but wrote no metrics"],
        ),
        (
            "garbage",
            "echo 'loss 0.5' >> \"$SWEEP_METRICS\"",
            "failed",
            &["metrics line 1", "loss 0.5", "not a JSON object"],
        ),
        (
            "numeric string",
            "echo '{\"epoch\": 1, \"val_loss\": \"0.5\"}' >> \"$SWEEP_METRICS\"",
            "failed",
            &["line 1", "must be a number"],
        ),
        (
            "killed",
            "kill -9 $$",
            "killed",
            &["signal 9", "did not send"],
        ),
        (
            "diverged",
            "echo '{\"epoch\": 1, \"val_loss\": NaN}' >> \"$SWEEP_METRICS\"",
            "diverged",
            &[],
        ),
    ];
    for (name, body, status, message) in cases {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "s.sh", body);
        let text = config(
            2,
            "seed = [0]",
            "argv = [\"./s.sh\"]\nmetric = \"val_loss\"\nconverged = { at_most = 1.0 }",
        );
        let ran = run(dir.path(), &text);
        assert_eq!(ran.code, Some(0), "{name}: {}", ran.stderr);
        let runs = read(&ran.out.join("runs.parquet"));
        assert_eq!(strings(&runs, "status"), [status], "{name}");
        let text = strings(&runs, "message")[0].clone();
        for piece in message {
            assert!(
                text.contains(piece),
                "{name}: message lacks {piece:?}: {text}"
            );
        }
        if status == "killed" {
            assert_eq!(ints(&runs, "signal"), [Some(9)]);
        }
    }
}

#[test]
fn a_timeout_ends_the_whole_group_even_when_it_ignores_term() {
    let dir = tempfile::tempdir().unwrap();
    // The script and a grandchild both ignore TERM; only KILL, after the grace, ends them.
    script(
        dir.path(),
        "s.sh",
        "trap '' TERM\n(trap '' TERM; sleep 60) &\nsleep 60",
    );
    let text = config(
        2,
        "seed = [0, 1]",
        "argv = [\"./s.sh\"]\nmetric = \"val_loss\"\nconverged = { at_most = 1.0 }\ntimeout = \"1s\"\ngrace = \"1s\"",
    );
    let start = Instant::now();
    let ran = run(dir.path(), &text);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let runs = read(&ran.out.join("runs.parquet"));
    assert_eq!(strings(&runs, "status"), ["timeout", "timeout"]);
    assert!(strings(&runs, "message")[0].contains("timeout after 1s"));
    assert_eq!(leftovers(&ran.out), Vec::<String>::new());
}

#[test]
fn grandchildren_left_running_are_ended_with_their_run_and_stdin_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "s.sh",
        "sleep 300 &\n(sleep 300 &) \nread line || echo eof\necho '{\"epoch\": 1, \"val_loss\": 0.5}' >> \"$SWEEP_METRICS\"",
    );
    let text = config(
        1,
        "seed = [0, 1, 2]",
        "argv = [\"./s.sh\"]\nmetric = \"val_loss\"\nconverged = { at_most = 1.0 }",
    );
    let start = Instant::now();
    let ran = run(dir.path(), &text);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(start.elapsed() < Duration::from_secs(30));
    let runs = read(&ran.out.join("runs.parquet"));
    assert_eq!(strings(&runs, "status"), ["converged"; 3]);
    let run_dir = ran
        .out
        .join("runs")
        .join(&strings(&runs, "run_id")[0])
        .join("attempt-1");
    assert_eq!(
        std::fs::read_to_string(run_dir.join("stdout.log")).unwrap(),
        "eof\n"
    );
    assert_eq!(leftovers(&ran.out), Vec::<String>::new());
}

#[test]
fn a_term_to_sweep_ends_its_runs_saves_none_of_them_and_exits_143() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "s.sh",
        "if [ \"$SWEEP_RUN_ID\" = \"$(cat first)\" ]; then echo '{\"epoch\": 1, \"val_loss\": 0.5}' >> \"$SWEEP_METRICS\"; exit 0; fi\nsleep 60 &\nsleep 60",
    );
    let text = config(
        1,
        "seed = [0, 1, 2, 3]",
        "argv = [\"./s.sh\"]\nmetric = \"val_loss\"\nconverged = { at_most = 1.0 }",
    );
    let config = write(dir.path(), "c.toml", &text);
    let list = sweep().arg("list").arg(&config).output().unwrap();
    let first_id = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    write(dir.path(), "first", &first_id);
    let out = dir.path().join("out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["run", "--quiet", "--jobs", "2"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until two runs are sleeping, then TERM sweep as Slurm would.
    let deadline = Instant::now() + Duration::from_secs(20);
    while leftovers(&out).len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(leftovers(&out).len() >= 4, "the runs did not start");
    // As Slurm does: TERM to every process of the job, the runs' first, then sweep.
    for pid in leftovers(&out) {
        unsafe { libc::kill(pid.parse().unwrap(), libc::SIGTERM) };
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert_eq!(leftovers(&out), Vec::<String>::new());
    assert!(!out.join("runs.parquet").exists());
    // Only the run that finished before the signal is saved: a rerun resumes from it.
    let saved = sweep().arg("status").arg(&out).output().unwrap();
    let text = String::from_utf8_lossy(&saved.stdout).into_owned();
    assert!(text.contains("1 done"), "{text}");
}

#[test]
fn a_missing_program_and_a_bad_placeholder_are_config_errors_before_any_run() {
    let dir = tempfile::tempdir().unwrap();
    for (command, expect) in [
        (
            "argv = [\"no-such-program-xyz\"]\nmetric = \"v\"\nconverged = { at_most = 1.0 }",
            "not found on PATH",
        ),
        (
            "argv = [\"./missing.sh\"]\nmetric = \"v\"\nconverged = { at_most = 1.0 }",
            "not an executable file",
        ),
        (
            "argv = [\"sh\", \"{learnig_rate}\"]\nmetric = \"v\"\nconverged = { at_most = 1.0 }",
            "did you mean `learning_rate`",
        ),
        (
            "argv = [\"sh\"]\nmetric = \"val_loss\"",
            "command.converged",
        ),
        (
            "argv = [\"sh\"]\ntimeout = \"5 minutes\"",
            "command.timeout",
        ),
    ] {
        let ran = run(dir.path(), &config(1, "seed = [0]", command));
        assert_eq!(ran.code, Some(2), "{command}: {}", ran.stderr);
        assert!(ran.stderr.contains(expect), "{command}: {}", ran.stderr);
        assert!(!ran.out.exists());
    }
}

#[test]
fn a_changed_input_is_reported_when_the_sweep_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let body = "echo '{\"epoch\": 1, \"val_loss\": 0.5}' >> \"$SWEEP_METRICS\"";
    script(dir.path(), "s.sh", body);
    let text = config(
        1,
        "seed = [0]",
        "argv = [\"./s.sh\"]\nmetric = \"val_loss\"\nconverged = { at_most = 1.0 }\ninputs = [\"s.sh\"]\ntimeout = \"1h\"",
    );
    let first = run(dir.path(), &text);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let manifest = std::fs::read_to_string(first.out.join("manifest.toml")).unwrap();
    assert!(
        manifest.contains("[inputs_sha256]") && manifest.contains("timeout = \"3600s\""),
        "{manifest}"
    );
    script(dir.path(), "s.sh", &format!("{body}\n# edited"));
    // The timeout is an execution setting: changing it keeps the folder's runs.
    let again = run(dir.path(), &text.replace("\"1h\"", "\"2h\""));
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("s.sh changed since this folder began"),
        "{}",
        again.stderr
    );
}

#[test]
fn gpu_slots_are_never_held_by_two_runs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // Each run logs its slot and its start and end times (ns), then reports one epoch.
    script(
        dir.path(),
        "s.sh",
        "start=$(date +%s%N); sleep 0.2; echo \"$CUDA_VISIBLE_DEVICES $start $(date +%s%N)\" >> ../slots.log\n\
         echo '{\"epoch\": 1, \"val_loss\": 0.5}' >> \"$SWEEP_METRICS\"",
    );
    let text = config(
        1,
        "seed = [0, 1, 2, 3, 4, 5]",
        "argv = [\"../s.sh\"]\nworkdir = \"work\"\nmetric = \"val_loss\"\nconverged = { at_most = 1.0 }\ngpus = [1, 0]",
    );
    std::fs::create_dir(dir.path().join("work")).unwrap();
    let config_path = write(dir.path(), "c.toml", &text);
    let out = dir.path().join("out");
    let output = sweep()
        .args(["run", "--quiet", "--jobs", "4"])
        .arg(&config_path)
        .arg("--out")
        .arg(&out)
        .env("CUDA_VISIBLE_DEVICES", "7,9")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log = std::fs::read_to_string(dir.path().join("slots.log")).unwrap();
    let spans: Vec<(String, u128, u128)> = log
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(spans.len(), 6, "{log}");
    // gpus index into the inherited CUDA_VISIBLE_DEVICES: slots 1 and 0 are devices 9 and 7.
    assert!(
        spans.iter().all(|(slot, _, _)| slot == "7" || slot == "9"),
        "{log}"
    );
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            let overlap = a.1 < b.2 && b.1 < a.2;
            assert!(
                !(a.0 == b.0 && overlap),
                "slot {} held twice at once: {log}",
                a.0
            );
        }
    }
    // A slot index beyond the inherited devices is a config error before any run.
    let bad = sweep()
        .args(["run", "--quiet"])
        .arg(&config_path)
        .arg("--out")
        .arg(dir.path().join("out2"))
        .env("CUDA_VISIBLE_DEVICES", "7")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("command.gpus: index 1"));
    assert!(!dir.path().join("out2").exists());
}

#[test]
fn fail_fast_stops_when_the_first_runs_all_fail_and_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "s.sh",
        "echo 'ModuleNotFoundError: No module named torch' >&2\nexit 1",
    );
    let text = config(
        1,
        "seed = [0, 1, 2, 3, 4, 5, 6, 7]",
        "argv = [\"./s.sh\"]\nmetric = \"val_loss\"\nconverged = { at_most = 1.0 }\nfail_fast = 2",
    );
    let config_path = write(dir.path(), "c.toml", &text);
    let out = dir.path().join("out");
    let output = run_output(&config_path, &out, &["--quiet", "--jobs", "1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("fail_fast: the first 2 runs") && stderr.contains("No module named torch"),
        "{stderr}"
    );
    assert!(!out.join("runs.parquet").exists());
    let status = sweep().arg("status").arg(&out).output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("2 done"));
}

#[test]
fn list_argv_prints_every_runs_command() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        3,
        "clip = [false, true]",
        "argv = [\"sh\", \"-c\", \"echo it's {learning_rate}\", \"{clip?--clip}\", \"{sweep.run_dir}\"]\nmetric = \"v\"\nconverged = { at_most = 1.0 }",
    );
    let config_path = write(dir.path(), "c.toml", &text);
    let output = sweep()
        .args(["list", "--argv"])
        .arg(&config_path)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with(r#"'sh' '-c' 'echo it'\''s 0.001' '{sweep.run_dir}'"#),
        "{text}"
    );
    assert!(
        lines[1].ends_with(r#"'sh' '-c' 'echo it'\''s 0.001' '--clip' '{sweep.run_dir}'"#),
        "{text}"
    );
}

#[test]
fn retry_failed_reruns_incomplete_runs_as_their_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    // Fails while the file `broken` exists, like a script with a bug that is then fixed.
    script(
        dir.path(),
        "s.sh",
        "if [ -e broken ] && [ \"$SWEEP_RUN_ID\" = \"$(cat broken)\" ]; then echo bug >&2; exit 1; fi\n\
         echo \"{\\\"epoch\\\": 1, \\\"val_loss\\\": 0.5, \\\"attempt_seen\\\": $SWEEP_ATTEMPT}\" >> \"$SWEEP_METRICS\"",
    );
    let text = config(
        1,
        "seed = [0, 1, 2]",
        "argv = [\"./s.sh\"]\nmetric = \"val_loss\"\nconverged = { at_most = 1.0 }",
    );
    let config_path = write(dir.path(), "c.toml", &text);
    let list = sweep().arg("list").arg(&config_path).output().unwrap();
    let second = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .nth(2)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    write(dir.path(), "broken", &second);
    let first = run(dir.path(), &text);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let runs = read(&first.out.join("runs.parquet"));
    assert_eq!(
        strings(&runs, "status"),
        ["converged", "failed", "converged"]
    );
    assert_eq!(ints(&runs, "attempt"), [Some(1); 3]);
    // Without the flag a rerun resumes and keeps the failure; with it, only run 1 runs again.
    std::fs::remove_file(dir.path().join("broken")).unwrap();
    let resumed = run(dir.path(), &text);
    assert_eq!(
        strings(&read(&resumed.out.join("runs.parquet")), "status")[1],
        "failed"
    );
    let retried = run_output(&config_path, &first.out, &["--quiet", "--retry-failed"]);
    assert!(
        retried.status.success(),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    let runs = read(&first.out.join("runs.parquet"));
    assert_eq!(strings(&runs, "status"), ["converged"; 3]);
    assert_eq!(ints(&runs, "attempt"), [Some(1), Some(2), Some(1)]);
    let seen: Vec<Option<f64>> = runs
        .column("final_attempt_seen")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(seen, [Some(1.0), Some(2.0), Some(1.0)]);
    let folder = first.out.join("runs").join(&second);
    assert!(
        folder.join("attempt-1/stderr.log").exists()
            && folder.join("attempt-2/metrics.jsonl").exists()
    );
    // A built-in sweep has nothing to retry.
    let builtin = write(dir.path(), "b.toml", "[train]\nepochs = 1\n");
    let refused = sweep()
        .args(["run", "--retry-failed"])
        .arg(&builtin)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn runs_left_alive_by_a_killed_sweep_are_found_and_ended_with_kill_stale() {
    let dir = tempfile::tempdir().unwrap();
    // Slow (with a grandchild) while the file `slow` exists.
    script(
        dir.path(),
        "s.sh",
        "if [ -e slow ]; then sleep 60 & sleep 60; fi\necho '{\"epoch\": 1, \"val_loss\": 0.5}' >> \"$SWEEP_METRICS\"",
    );
    write(dir.path(), "slow", "");
    let text = config(
        1,
        "seed = [0]",
        "argv = [\"./s.sh\"]\nmetric = \"val_loss\"\nconverged = { at_most = 1.0 }\ngrace = \"1s\"",
    );
    let config_path = write(dir.path(), "c.toml", &text);
    let out = dir.path().join("out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["run", "--quiet"])
        .arg(&config_path)
        .arg("--out")
        .arg(&out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while leftovers(&out).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(leftovers(&out).len(), 3, "the run did not start");
    child.kill().unwrap(); // SIGKILL: sweep cannot end its run
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        leftovers(&out).len(),
        3,
        "the run should outlive a SIGKILLed sweep"
    );
    std::fs::remove_file(dir.path().join("slow")).unwrap();
    let refused = run(dir.path(), &text);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("still alive on this host")
            && refused.stderr.contains("--kill-stale"),
        "{}",
        refused.stderr
    );
    assert_eq!(leftovers(&out).len(), 3);
    let ended = run_output(&config_path, &out, &["--quiet", "--kill-stale"]);
    assert!(
        ended.status.success(),
        "{}",
        String::from_utf8_lossy(&ended.stderr)
    );
    assert_eq!(leftovers(&out), Vec::<String>::new());
    assert_eq!(
        strings(&read(&out.join("runs.parquet")), "status"),
        ["converged"]
    );
    assert_eq!(std::fs::read_dir(out.join("live")).unwrap().count(), 0);
}

#[test]
fn non_utf8_and_large_output_a_line_cut_by_a_kill_and_arguments_with_spaces_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    // 100 MB of output (with bytes that are not UTF-8) on stdout and stderr, the arguments
    // echoed back, two full metrics lines and a third cut short by the script's own death.
    script(
        dir.path(),
        "s.sh",
        "head -c 50000000 /dev/zero | tr '\\0' '\\377'\nhead -c 50000000 /dev/zero >&2\n\
         printf '%s|' \"$@\" > args.txt\n\
         printf '{\"epoch\": 1, \"val_loss\": 0.9}\\n{\"epoch\": 2, \"val_loss\": 0.4}\\n{\"epoch\": 3, \"val_l' >> \"$SWEEP_METRICS\"\n\
         kill -9 $$",
    );
    let text = config(
        3,
        "seed = [0]",
        "argv = [\"./s.sh\", \"a b\", \"it's \\\"quoted\\\"\", \"\", \"{{literal}}\"]\nmetric = \"val_loss\"\nconverged = { at_most = 0.5 }",
    );
    let ran = run(dir.path(), &text);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let runs = read(&ran.out.join("runs.parquet"));
    assert_eq!(strings(&runs, "status"), ["killed"]);
    let epochs = read(&ran.out.join("epochs.parquet"));
    assert_eq!(epochs.height(), 2, "the unterminated third line is ignored");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("args.txt")).unwrap(),
        "a b|it's \"quoted\"||{literal}|"
    );
    let run_dir = ran
        .out
        .join("runs")
        .join(&strings(&runs, "run_id")[0])
        .join("attempt-1");
    assert_eq!(
        std::fs::metadata(run_dir.join("stdout.log")).unwrap().len(),
        50_000_000
    );
    assert_eq!(
        std::fs::metadata(run_dir.join("stderr.log")).unwrap().len(),
        50_000_000
    );
    // The message quotes the end of stderr as printable text, cut short.
    let message = strings(&runs, "message")[0].clone();
    assert!(
        !message.contains('\0') && message.len() < 2000,
        "{}",
        message.len()
    );
}

#[test]
fn params_are_grid_keys_factors_columns_placeholders_and_params_json_entries() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "s.sh",
        "printf '%s|' \"$@\" > \"$SWEEP_RUN_DIR/args.txt\"\n\
         echo \"{\\\"epoch\\\": 1, \\\"val_loss\\\": $2}\" >> \"$SWEEP_METRICS\"",
    );
    let text = config(
        1,
        "width = [1, 0.5]\nrelu = [false, true]\nseed = [0, 1, 2, 3]\n[[grid.exclude]]\nwidth = 1\nrelu = true",
        "argv = [\"./s.sh\", \"{relu?--relu}\", \"{width}\", \"{layers}\", \"{name}\"]\nmetric = \"val_loss\"\n\
         converged = { at_most = 0.6 }\n[params]\nwidth = 2.0\nrelu = false\nlayers = [8, 8]\nname = \"a b\"\n\
         [ablation]\nfactors = { relu = true }",
    );
    let ran = run(dir.path(), &text);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let runs = read(&ran.out.join("runs.parquet"));
    // Typed columns after the train keys; the exclude removed width 1 with relu.
    assert_eq!(runs.height(), 12);
    assert_eq!(runs.column("width").unwrap().dtype(), &DataType::Float64);
    assert_eq!(runs.column("relu").unwrap().dtype(), &DataType::Boolean);
    assert_eq!(strings(&runs, "layers")[0], "[8,8]");
    let names: Vec<&str> = runs.get_column_names().iter().map(|n| n.as_str()).collect();
    let after_train = names.iter().position(|n| *n == "weight_decay_on").unwrap();
    assert_eq!(
        &names[after_train + 1..after_train + 5],
        ["layers", "name", "relu", "width"]
    );
    let widths: Vec<Option<f64>> = runs
        .column("width")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    let relus: Vec<Option<bool>> = runs
        .column("relu")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .collect();
    let i = (0..12)
        .find(|&i| widths[i] == Some(0.5) && relus[i] == Some(false))
        .unwrap();
    let j = (0..12).find(|&i| widths[i] == Some(1.0)).unwrap();
    let args = |i: usize| {
        let dir = ran
            .out
            .join("runs")
            .join(&strings(&runs, "run_id")[i])
            .join("attempt-1");
        std::fs::read_to_string(dir.join("args.txt")).unwrap()
    };
    assert_eq!(args(i), "0.5|[8,8]|a b|");
    assert_eq!(args(j), "1.0|[8,8]|a b|"); // an integer given to a float param is a float
    let k = (0..12).find(|&i| relus[i] == Some(true)).unwrap();
    assert_eq!(args(k), "--relu|0.5|[8,8]|a b|");
    let run_dir = ran
        .out
        .join("runs")
        .join(&strings(&runs, "run_id")[i])
        .join("attempt-1");
    let params: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("params.json")).unwrap())
            .unwrap();
    assert_eq!(params["params"]["width"], 0.5);
    assert_eq!(params["params"]["name"], "a b");
    // The param factor gets its verdict, per context of the other param.
    let verdict = read(&ran.out.join("verdict.parquet"));
    assert_eq!(strings(&verdict, "factor"), ["relu"]);
    // --set reaches params (and changes the run ids: params enter them).
    let config_path = dir.path().join("c.toml");
    let list = |args: &[&str]| {
        let out = sweep()
            .arg("list")
            .args(args)
            .arg(&config_path)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_ne!(list(&["--set", "params.name=other"]), list(&[]));
    // A param of the wrong type is refused naming its default's type.
    let bad = run(
        dir.path(),
        &text.replace("width = [1, 0.5]", "width = [\"wide\"]"),
    );
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr.contains("grid.width") && bad.stderr.contains("float"),
        "{}",
        bad.stderr
    );
    let clash = run(dir.path(), &text.replace("name = \"a b\"", "status = 1"));
    assert_eq!(clash.code, Some(2));
    assert!(clash.stderr.contains("params.status"), "{}", clash.stderr);
}
