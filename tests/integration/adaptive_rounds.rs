//! Adaptive seeds on a cluster, in rounds: each round's shards run the batch the saved verdict
//! decides, and its merge either names the next round (exit 6) or writes the tables, which equal
//! a single process's byte for byte; the Slurm launcher chains the rounds through each round's
//! merge job, and the Kubernetes manifest runs one round.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::adaptive::ADAPTIVE;
use crate::common::{assert_same_tables, run_ok, sweep, write};

/// `sweep ARGS`: exit code, stdout and stderr.
fn sweep_output(args: &[&str], paths: &[&Path]) -> (Option<i32>, String, String) {
    let output = sweep().args(args).args(paths).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A stand-in `sbatch` in `dir/bin`: runs the job script at once (every index of `--array=A-B`
/// with SLURM_ARRAY_TASK_ID set), passing on the arguments after it, then prints a job id.
fn stand_in_sbatch(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sbatch = write(
        &bin,
        "sbatch",
        r#"#!/usr/bin/env bash
set -e
array=""
while [ $# -gt 0 ]; do
  case "$1" in --array=*) array="${1#--array=}"; shift;; -*) shift;; *) break;; esac
done
file="$1"; shift
if [ -n "$array" ]; then
  IFS=- read -r first last <<< "$array"
  for i in $(seq "$first" "${last:-$first}"); do SLURM_ARRAY_TASK_ID=$i bash "$file" "$@" >&2; done
  echo 100
else
  bash "$file" "$@" >&2; echo 101
fi
"#,
    );
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn the_slurm_launcher_runs_adaptive_seeds_in_rounds_to_the_single_process_tables() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "adaptive.toml", ADAPTIVE);
    let whole = dir.path().join("whole");
    run_ok(&config, &whole, &["--quiet"]);
    let out = dir.path().join("rounds");
    let (code, script, err) = sweep_output(&["slurm", "--array", "3", "--out"], &[&out, &config]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        script.contains("round.sh") && script.contains("--round"),
        "{script}"
    );
    let launcher = write(dir.path(), "submit.sh", &script);
    let ran = std::process::Command::new("bash")
        .arg(&launcher)
        .env("PATH", stand_in_sbatch(dir.path()))
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{log}");
    // The test's sweep takes two rounds: 20 runs, then 10 seeds more where the verdict is open.
    assert!(log.contains("round 2: submitted"), "{log}");
    assert!(!log.contains("round 3"), "{log}");
    assert_same_tables(&whole, &out);
    for table in ["effects.parquet", "paths.parquet"] {
        let same =
            std::fs::read(whole.join(table)).unwrap() == std::fs::read(out.join(table)).unwrap();
        assert!(same, "{table} differs");
    }
}

#[test]
fn a_round_merges_to_the_next_round_and_shards_keep_to_their_round() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "adaptive.toml", ADAPTIVE);
    let out = dir.path().join("out");
    let shard = |index: &str, round: &str| {
        let args = [
            "run", "--quiet", "--shard", index, "--round", round, "--out",
        ];
        sweep_output(&args, &[&out, &config])
    };
    for index in ["0/2", "1/2"] {
        let (code, _, err) = shard(index, "1");
        assert_eq!(code, Some(0), "{err}");
    }
    let merge = |round: &str| sweep_output(&["merge", "--round", round], &[&out]);
    let (code, _, err) = merge("1");
    assert_eq!(code, Some(6), "{err}");
    assert!(
        err.contains("round 2") && err.contains("no table was written"),
        "{err}"
    );
    assert!(!out.join("runs.parquet").exists());
    // Round 1 is done: its shards have nothing left; round 3 cannot start before round 2.
    let (code, _, err) = shard("0/2", "1");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("round 1") && err.contains("nothing for this shard"),
        "{err}"
    );
    let (code, _, err) = shard("0/2", "3");
    assert_eq!(code, Some(2), "{err}");
    // Half of round 2: its merge names the runs and shards still missing.
    let (code, _, err) = shard("1/2", "2");
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = merge("2");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("shards 0 of 2"), "{err}");
    let (code, _, err) = shard("0/2", "2");
    assert_eq!(code, Some(0), "{err}");
    let (code, text, err) = merge("2");
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("merged the 30 runs"), "{text}");
}

#[test]
fn the_kubernetes_manifest_of_an_adaptive_sweep_runs_one_named_round() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "adaptive.toml", ADAPTIVE);
    let k8s = [
        "k8s",
        "--completions",
        "2",
        "--parallelism",
        "2",
        "--image",
        "img",
        "--claim",
        "pvc",
    ];
    let (code, manifest, err) = sweep_output(&[&k8s[..], &["--round", "2"]].concat(), &[&config]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("--round 3"), "{err}");
    let value: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let items = value["items"].as_array().unwrap();
    assert_eq!(items[1]["metadata"]["name"], "sweep-adaptive-round2-shards");
    assert_eq!(items[2]["metadata"]["name"], "sweep-adaptive-round2-merge");
    let shard: Vec<&str> = items[1]["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(shard.ends_with(&["--round", "2"]), "{shard:?}");
    let merge = items[2]["spec"]["template"]["spec"]["containers"][0]["command"][2]
        .as_str()
        .unwrap();
    assert!(
        merge.contains("--round 2") && merge.contains("-eq 6"),
        "{merge}"
    );
    // --round belongs to adaptive sweeps only.
    let plain = write(dir.path(), "plain.toml", "[train]\nepochs = 1\n");
    let (code, _, err) = sweep_output(&[&k8s[..], &["--round", "2"]].concat(), &[&plain]);
    assert_eq!(code, Some(2), "{err}");
}
