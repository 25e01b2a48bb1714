//! Sharded sweeps: shards of any count merge to the tables of a single-process run byte for byte;
//! the index may come from the scheduler's environment; a merge with runs missing writes nothing,
//! names the shards to run again and exits 3; bad shard arguments exit 2.

use std::path::{Path, PathBuf};

use crate::common::{assert_same_tables, run_ok, sweep};

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `sweep run ARGS --out OUT CONFIG` with the scheduler's index variables unset, then `env` set;
/// its output, whatever its exit code.
pub fn run_shard(
    config: &Path,
    out: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut command = sweep();
    command
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg(config);
    for var in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
        command.env_remove(var);
    }
    for (var, value) in env {
        command.env(var, value);
    }
    command.output().unwrap()
}

pub fn merge(dir: &Path) -> std::process::Output {
    sweep().arg("merge").arg(dir).output().unwrap()
}

#[test]
fn any_shard_count_merges_to_the_single_process_tables() {
    let tmp = tempfile::tempdir().unwrap();
    for (config, sets) in [
        ("configs/quick.toml", vec!["--set", "train.epochs=3"]),
        ("configs/ablation.toml", vec!["--set", "train.epochs=2"]),
    ] {
        let config = repo(config);
        let single = tmp.path().join("single");
        run_ok(&config, &single, &[&sets[..], &["--quiet"]].concat());
        for count in [1, 2, 3, 7] {
            let out = tmp.path().join(format!("shards-{count}"));
            for index in 0..count {
                let shard = format!("{index}/{count}");
                run_ok(
                    &config,
                    &out,
                    &[&sets[..], &["--quiet", "--shard", &shard]].concat(),
                );
                // A shard writes parts, never the tables.
                assert!(!out.join("runs.parquet").exists());
            }
            let merged = merge(&out);
            assert!(
                merged.status.success(),
                "{}",
                String::from_utf8_lossy(&merged.stderr)
            );
            assert_same_tables(&single, &out);
        }
        std::fs::remove_dir_all(&single).unwrap();
        for count in [1, 2, 3, 7] {
            std::fs::remove_dir_all(tmp.path().join(format!("shards-{count}"))).unwrap();
        }
    }
}

#[test]
fn the_index_comes_from_the_scheduler_and_missing_shards_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let config = repo("configs/quick.toml");
    let (single, out) = (tmp.path().join("single"), tmp.path().join("array"));
    run_ok(&config, &single, &["--quiet", "--set", "train.epochs=3"]);
    // Shards 0 and 2 of 3 from Slurm's variable; shard 1 from Kubernetes' comes later.
    for index in ["0", "2"] {
        let output = run_shard(
            &config,
            &out,
            &["--quiet", "--set", "train.epochs=3", "--shards", "3"],
            &[("SLURM_ARRAY_TASK_ID", index)],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("SLURM_ARRAY_TASK_ID"), "{stderr}");
    }
    let status = sweep().arg("status").arg(&out).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("shards: 2 of 3 complete; incomplete: 1"),
        "{status}"
    );
    let incomplete = merge(&out);
    assert_eq!(incomplete.status.code(), Some(3));
    let message = String::from_utf8_lossy(&incomplete.stderr);
    assert!(
        message.contains("shards 1 of 3") && message.contains("--array=1"),
        "{message}"
    );
    assert!(
        !out.join("runs.parquet").exists(),
        "no table while runs are missing"
    );
    let output = run_shard(
        &config,
        &out,
        &["--quiet", "--set", "train.epochs=3", "--shards", "3"],
        &[("JOB_COMPLETION_INDEX", "1")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A re-run of a finished shard (a requeue) finds everything saved and adds nothing.
    let parts = std::fs::read_dir(out.join("parts")).unwrap().count();
    run_ok(
        &config,
        &out,
        &["--quiet", "--set", "train.epochs=3", "--shard", "1/3"],
    );
    assert_eq!(std::fs::read_dir(out.join("parts")).unwrap().count(), parts);
    assert!(merge(&out).status.success());
    assert_same_tables(&single, &out);
}

#[test]
fn shards_started_together_lose_and_duplicate_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = repo("configs/quick.toml");
    let (single, out) = (tmp.path().join("single"), tmp.path().join("together"));
    run_ok(&config, &single, &["--quiet", "--set", "train.epochs=3"]);
    let children: Vec<_> = (0..4)
        .map(|index| {
            std::process::Command::new(env!("CARGO_BIN_EXE_sweep"))
                .args(["run", "--quiet", "--set", "train.epochs=3", "--shard"])
                .arg(format!("{index}/4"))
                .arg("--out")
                .arg(&out)
                .arg(&config)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert!(merge(&out).status.success());
    assert_same_tables(&single, &out);
}

#[test]
fn bad_shard_arguments_exit_2_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = repo("configs/quick.toml");
    let out = tmp.path().join("bad");
    for (args, expect) in [
        (vec!["--shard", "3/3"], "[0, 3)"),
        (vec!["--shard", "x/3"], "--shard x/3"),
        (vec!["--shard", "0/2", "--fresh"], "--fresh"),
        (vec!["--shards", "2"], "SLURM_ARRAY_TASK_ID"),
    ] {
        let output = run_shard(&config, &out, &args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // Another shard count into the same folder is refused, naming both.
    run_ok(
        &config,
        &out,
        &["--quiet", "--set", "train.epochs=3", "--shard", "0/2"],
    );
    let output = run_shard(
        &config,
        &out,
        &["--quiet", "--set", "train.epochs=3", "--shard", "0/3"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("of 2 shards") && stderr.contains("3 shards"),
        "{stderr}"
    );
}

/// `sweep slurm` prints a launcher that writes the array and merge job scripts and submits them
/// (the merge after the array, `afterany`). Run here with a stand-in `sbatch` that runs each
/// array index of the script in turn, then the merge: the tables equal a single-process run's.
#[test]
fn the_slurm_launcher_runs_every_shard_and_the_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let config = repo("configs/quick.toml");
    let (single, out) = (tmp.path().join("single"), tmp.path().join("slurm out"));
    run_ok(&config, &single, &["--quiet", "--set", "train.epochs=3"]);
    let script = sweep()
        .args([
            "slurm",
            "--array",
            "3",
            "--cpus-per-task",
            "1",
            "--time",
            "00:10:00",
            "--set",
            "train.epochs=3",
            "--sbatch-arg=--mem=1G",
            "--sbatch-arg",
            "--account=lab",
            "--prelude",
        ])
        .arg(format!(
            "touch '{}'",
            tmp.path().join("prelude ran").display()
        ))
        .arg("--out")
        .arg(&out)
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        script.status.success(),
        "{}",
        String::from_utf8_lossy(&script.stderr)
    );
    let text = String::from_utf8(script.stdout).unwrap();
    assert!(
        text.contains("--array=\"${ARRAY:-0-2}\"") && text.contains("--dependency=\"afterany:"),
        "{text}"
    );
    assert!(
        text.contains("--shards 3") && text.contains("'train.epochs=3'"),
        "{text}"
    );
    let launcher = tmp.path().join("submit.sh");
    std::fs::write(&launcher, &text).unwrap();
    // A stand-in sbatch: `--array=0-2 FILE` runs FILE once per index, then prints a job id.
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let sbatch = bin.join("sbatch");
    std::fs::write(
        &sbatch,
        r#"#!/usr/bin/env bash
set -e
array=""; for a in "$@"; do case "$a" in --array=*) array="${a#--array=}";; esac; done
file="${@: -1}"
if [ -n "$array" ]; then
  IFS=- read -r first last <<< "$array"
  for i in $(seq "$first" "${last:-$first}"); do SLURM_ARRAY_TASK_ID=$i bash "$file" >&2; done
  echo 100
else
  bash "$file" >&2; echo 101
fi
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = std::process::Command::new("bash")
        .arg(&launcher)
        .env("PATH", path)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(out.join("shard.sbatch").exists() && out.join("merge.sbatch").exists());
    assert_same_tables(&single, &out);
    // The extra options: every one for the array job, the account for the merge too; the
    // prelude ran before sweep in each task.
    let shard = std::fs::read_to_string(out.join("shard.sbatch")).unwrap();
    let merge = std::fs::read_to_string(out.join("merge.sbatch")).unwrap();
    assert!(
        shard.contains("#SBATCH --mem=1G\n#SBATCH --account=lab\n"),
        "{shard}"
    );
    assert!(
        merge.contains("#SBATCH --account=lab\n") && !merge.contains("--mem"),
        "{merge}"
    );
    assert!(tmp.path().join("prelude ran").exists());
}

/// `sweep k8s` prints valid YAML (JSON is YAML): the config, an Indexed Job of shards on the
/// claim, and a merging Job.
#[test]
fn the_kubernetes_manifest_is_an_indexed_job_and_a_merge() {
    let config = repo("configs/quick.toml");
    let output = sweep()
        .args([
            "k8s",
            "--completions",
            "4",
            "--parallelism",
            "2",
            "--image",
            "sweep:1",
            "--claim",
            "rwx",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let items = manifest["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["kind"], "ConfigMap");
    let text = std::fs::read_to_string(&config).unwrap();
    assert_eq!(items[0]["data"]["config.toml"], text.as_str());
    let shards = &items[1]["spec"];
    assert_eq!(shards["completionMode"], "Indexed");
    assert_eq!(shards["completions"], 4);
    assert_eq!(shards["parallelism"], 2);
    let container = &shards["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "sweep:1");
    let command: Vec<&str> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&command[..3], ["sweep", "run", "/config/config.toml"]);
    assert!(
        command.windows(2).any(|w| w == ["--shards", "4"]),
        "{command:?}"
    );
    let volumes = shards["template"]["spec"]["volumes"].as_array().unwrap();
    assert!(volumes
        .iter()
        .any(|v| v["persistentVolumeClaim"]["claimName"] == "rwx"));
    let merge = items[2]["spec"]["template"]["spec"]["containers"][0]["command"][2]
        .as_str()
        .unwrap();
    assert!(
        merge.contains("sweep merge") && merge.contains("-eq 3"),
        "{merge}"
    );
}

/// `sweep k8s --prelude`: each shard runs the lines in a shell, then execs sweep with the same
/// words as without a prelude (quoting included: checked by running the shell with a fake
/// `sweep` that prints its arguments).
#[test]
fn a_kubernetes_prelude_runs_before_sweep_with_the_same_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let config = repo("configs/quick.toml");
    let manifest = |prelude: &[&str]| -> Vec<String> {
        let mut cmd = sweep();
        cmd.args(["k8s", "--completions", "2", "--parallelism", "1"])
            .args(["--image", "i", "--claim", "c", "--set", "grid.seed=[0, 1]"]);
        for p in prelude {
            cmd.arg(format!("--prelude={p}"));
        }
        let output = cmd.arg(&config).output().unwrap();
        assert!(output.status.success(), "{output:?}");
        let m: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let command = &m["items"][1]["spec"]["template"]["spec"]["containers"][0]["command"];
        let words = command.as_array().unwrap().iter();
        words.map(|v| v.as_str().unwrap().to_string()).collect()
    };
    let plain = manifest(&[]);
    let marker = tmp.path().join("prelude ran");
    let line = format!("touch '{}'", marker.display());
    let shell = manifest(&[&line, "export PATH=\"$FAKE:$PATH\""]);
    assert_eq!(shell[..2], ["sh", "-c"]);
    let fake = tmp.path().join("sweep");
    std::fs::write(&fake, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let ran = std::process::Command::new("sh")
        .args(["-c", &shell[2]])
        .env("FAKE", tmp.path())
        .output()
        .unwrap();
    let args: Vec<String> = String::from_utf8_lossy(&ran.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(args, plain[1..], "{}", shell[2]);
    assert!(marker.exists());
    let bad = sweep()
        .args([
            "k8s",
            "--completions",
            "2",
            "--parallelism",
            "1",
            "--image",
            "i",
            "--claim",
            "c",
        ])
        .arg("--prelude=a\nb")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// A shard killed (SIGKILL) after saving some of its runs, then re-run as a requeue would, saves
/// each run once; and the worker threads default to Slurm's `SLURM_CPUS_PER_TASK`.
#[test]
fn a_killed_shard_rerun_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = repo("configs/ablation.toml");
    let (single, out) = (tmp.path().join("single"), tmp.path().join("killed"));
    let sets = ["--quiet", "--set", "train.epochs=2"];
    run_ok(&config, &single, &sets);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args([
            "run",
            "--quiet",
            "--set",
            "train.epochs=2",
            "--shard",
            "0/2",
            "--out",
        ])
        .arg(&out)
        .arg(&config)
        .env("SWEEP_TEST_RUN_DELAY_MS", "100")
        .spawn()
        .unwrap();
    let parts = out.join("parts");
    let saved = || {
        std::fs::read_dir(&parts)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".runs.parquet"))
                    .count()
            })
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while saved() == 0 && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(saved() >= 1, "the shard saved a part before the kill");
    for shard in ["0/2", "1/2"] {
        run_ok(&config, &out, &[&sets[..], &["--shard", shard]].concat());
    }
    assert!(merge(&out).status.success());
    assert_same_tables(&single, &out);
    // Every run saved exactly once across the parts of both shards and both attempts.
    let saved_rows: usize = std::fs::read_dir(&parts)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".runs.parquet"))
        .map(|e| crate::common::read(&e.path()).height())
        .sum();
    let runs = crate::common::read(&single.join("runs.parquet")).height();
    assert_eq!(saved_rows, runs);
    assert_eq!(runs, 360, "the config's 360 runs");
    // Threads from SLURM_CPUS_PER_TASK when --jobs is not given.
    let timed = tmp.path().join("threads");
    let output = sweep()
        .args(["run", "--quiet", "--set", "train.epochs=1", "--out"])
        .arg(&timed)
        .arg(repo("configs/quick.toml"))
        .env("SLURM_CPUS_PER_TASK", "1")
        .output()
        .unwrap();
    assert!(output.status.success());
    let timing = std::fs::read_to_string(timed.join("timing.toml")).unwrap();
    assert!(timing.contains("jobs = 1\n"), "{timing}");
}
