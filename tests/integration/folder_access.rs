//! Which builds and processes may add runs to a folder: a shard of another build is refused
//! before it writes anything, and so is a merge of parts whose build differs from the folder's;
//! a folder of a version that recorded no build takes new shards only with
//! `--allow-build-change`, which records the build "unknown" beside this one, and then merges.
//! Processes started together on one folder: one writes, the others are refused (exit 2) while
//! it lives; shards of one sweep run side by side.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use polars::prelude::ParquetWriter;

use crate::common::{assert_same_tables, manifest_build, read, run_ok};
use crate::shard::{merge, repo, run_shard};

/// `sweep run` of `configs/quick.toml` at 3 epochs into `out`, each run slowed by 400 ms.
fn spawn_slow(out: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["run", "--quiet", "--jobs", "2", "--set", "train.epochs=3"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .arg(repo("configs/quick.toml"))
        .env("SWEEP_TEST_RUN_DELAY_MS", "400")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for every child; returns the exit code and stderr of each.
fn finish(children: Vec<Child>) -> Vec<(Option<i32>, String)> {
    children
        .into_iter()
        .map(|c| {
            let output = c.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            (output.status.code(), stderr)
        })
        .collect()
}

const REFUSED: &str = "is being written by another `sweep run`";

#[test]
fn of_processes_started_together_on_one_folder_one_writes_and_the_others_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let single = tmp.path().join("single");
    let quick = repo("configs/quick.toml");
    run_ok(&quick, &single, &["--quiet", "--set", "train.epochs=3"]);
    let out = tmp.path().join("shared");
    let outcomes = finish((0..4).map(|_| spawn_slow(&out, &[])).collect());
    for (code, stderr) in &outcomes {
        assert!(
            *code == Some(0) || (*code == Some(2) && stderr.contains(REFUSED)),
            "{stderr}"
        );
    }
    // 16 runs of 400 ms on 2 threads outlast the start of the other three.
    let refused = outcomes.iter().filter(|(code, _)| *code == Some(2)).count();
    assert_eq!(refused, 3, "{outcomes:?}");
    assert_same_tables(&single, &out);
    assert_eq!(std::fs::read_dir(out.join("claims")).unwrap().count(), 0);
    assert!(!out.join(".lock").exists());

    // Shards of one sweep side by side, and a repeated shard refused while the first lives.
    let sharded = tmp.path().join("sharded");
    let mut children: Vec<Child> = ["0/2", "1/2"]
        .iter()
        .map(|s| spawn_slow(&sharded, &["--shard", s]))
        .collect();
    while std::fs::read_dir(sharded.join("claims")).map_or(0, |d| d.count()) < 2 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    children.push(spawn_slow(&sharded, &["--shard", "1/2"]));
    let outcomes = finish(children);
    assert_eq!(outcomes[0].0, Some(0), "{}", outcomes[0].1);
    assert_eq!(outcomes[1].0, Some(0), "{}", outcomes[1].1);
    assert_eq!(outcomes[2].0, Some(2), "{}", outcomes[2].1);
    assert!(outcomes[2].1.contains("shard s01of02"), "{}", outcomes[2].1);
    assert!(merge(&sharded).status.success());
    assert_same_tables(&single, &sharded);
}

/// Plain runs of this build, started together with `--allow-build-change` on a folder another
/// build made: one at a time adds its runs, and the manifest records this build once.
#[test]
fn runs_allowed_beside_another_build_record_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("builds");
    let one_seed = ["--set", "grid.seed=[0]"];
    let args = [&["--quiet", "--set", "train.epochs=3"][..], &one_seed[..]].concat();
    run_ok(&repo("configs/quick.toml"), &out, &args);
    let manifest = out.join("manifest.toml");
    let (text, build) = manifest_build(&manifest);
    std::fs::write(&manifest, text.replace(&build, "0123456789ab")).unwrap();
    let allowed = [&["--allow-build-change"][..], &one_seed[..]].concat();
    let outcomes = finish((0..3).map(|_| spawn_slow(&out, &allowed)).collect());
    assert!(
        outcomes.iter().any(|(code, _)| *code == Some(0)),
        "{outcomes:?}"
    );
    for (code, stderr) in &outcomes {
        assert!(*code == Some(0) || stderr.contains(REFUSED), "{stderr}");
    }
    let recorded = std::fs::read_to_string(&manifest).unwrap();
    assert!(recorded.contains("build = \"0123456789ab\""), "{recorded}");
    assert_eq!(recorded.matches(&build).count(), 1, "{recorded}");
}

/// The manifest records the build that created the folder; a shard of another build is refused
/// before it writes anything, and so is a merge of parts whose build differs from the folder's.
#[test]
fn shards_and_parts_of_another_build_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = repo("configs/quick.toml");
    let out = tmp.path().join("builds");
    run_ok(
        &config,
        &out,
        &["--quiet", "--set", "train.epochs=3", "--shard", "0/2"],
    );
    let manifest = out.join("manifest.toml");
    let (text, build) = manifest_build(&manifest);
    assert!(!build.is_empty() && build != "unknown", "{build}");
    std::fs::write(&manifest, text.replace(&build, "0123456789ab")).unwrap();
    let parts = std::fs::read_dir(out.join("parts")).unwrap().count();
    let output = run_shard(
        &config,
        &out,
        &["--quiet", "--set", "train.epochs=3", "--shard", "1/2"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("0123456789ab") && stderr.contains(&build),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(out.join("parts")).unwrap().count(), parts);
    // Back to the true build to finish the shards; then parts that disagree with the folder's
    // build are refused by the merge.
    std::fs::write(&manifest, &text).unwrap();
    run_ok(
        &config,
        &out,
        &["--quiet", "--set", "train.epochs=3", "--shard", "1/2"],
    );
    std::fs::write(&manifest, text.replace(&build, "0123456789ab")).unwrap();
    let output = merge(&out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&build) && stderr.contains("0123456789ab"),
        "{stderr}"
    );
    assert!(!out.join("runs.parquet").exists());
}

/// A folder made before builds were recorded: a manifest without `build` and parts whose
/// metadata has none.
#[test]
fn a_legacy_folder_takes_new_shards_only_with_allow_build_change_and_then_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let config = repo("configs/quick.toml");
    let single = tmp.path().join("single");
    run_ok(&config, &single, &["--quiet", "--set", "train.epochs=3"]);
    let out = tmp.path().join("legacy");
    let args = |shard: &'static str| ["--quiet", "--set", "train.epochs=3", "--shard", shard];
    run_ok(&config, &out, &args("0/2"));
    let manifest = out.join("manifest.toml");
    let (text, build) = manifest_build(&manifest);
    let legacy: String = text
        .lines()
        .filter(|l| !l.starts_with("build = "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&manifest, &legacy).unwrap();
    for part in std::fs::read_dir(out.join("parts")).unwrap() {
        let path = part.unwrap().path();
        if !path.to_string_lossy().ends_with(".runs.parquet") {
            continue;
        }
        let mut frame = read(&path);
        let file = std::fs::File::create(&path).unwrap();
        ParquetWriter::new(file).finish(&mut frame).unwrap();
    }

    let refused = run_shard(&config, &out, &args("1/2"), &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("recorded no build") && stderr.contains("--allow-build-change"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), legacy);

    let allowed = run_shard(
        &config,
        &out,
        &[&args("1/2")[..], &["--allow-build-change"]].concat(),
        &[],
    );
    assert!(allowed.status.success(), "{allowed:?}");
    let recorded = std::fs::read_to_string(&manifest).unwrap();
    assert!(recorded.contains("build = \"unknown\""), "{recorded}");
    assert!(
        recorded.contains(&format!("also_builds = [\"{build}\"]")),
        "{recorded}"
    );
    let merged = merge(&out);
    assert!(merged.status.success(), "{merged:?}");
    assert_same_tables(&single, &out);
}
