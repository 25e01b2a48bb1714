//! Adaptive seeds: seeds added batch by batch only to the cells of open verdict rows, with the
//! run ids the grid would give them, the same tables whatever the thread count and across a kill
//! and resume, and the refusals that go with them.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{assert_same_tables, read, run_ok, sweep, write};

/// A small sweep whose clipping row is open after the first 5 seeds (its one-off cell converges
/// in some seeds), so a second batch of 5 seeds goes to two of the four cells, and then closes.
pub const ADAPTIVE: &str = r#"
name = "adaptive"
[data]
n_rows = 300
n_features = 6
signal_lags = 2
[train]
epochs = 20
batch_size = 16
learning_rate = 1e-2
converge_tol = 0.3
[grid]
whiten = ["none", "zca"]
clip = [false, true]
[ablation]
factors = { whiten = "zca", clip = true }
seeds = { min = 5, max = 15, step = 5 }
"#;

fn strings(df: &polars::prelude::DataFrame, name: &str) -> Vec<String> {
    let column = df.column(name).unwrap().str().unwrap().clone();
    column.iter().map(|v| v.unwrap_or("").to_string()).collect()
}

fn ints(df: &polars::prelude::DataFrame, name: &str) -> Vec<i64> {
    let column = df.column(name).unwrap().i64().unwrap().clone();
    column.iter().map(|v| v.unwrap()).collect()
}

#[test]
fn seeds_go_only_to_open_rows_with_grid_run_ids_and_the_same_tables_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "adaptive.toml", ADAPTIVE);
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let text = run_ok(&config, &one, &["--jobs", "1"]);
    run_ok(&config, &two, &["--jobs", "2", "--quiet"]);
    assert_same_tables(&one, &two);
    assert!(text.contains("alpha 0.05 over 3 planned batches"), "{text}");

    let runs = read(&one.join("runs.parquet"));
    assert_eq!(runs.height(), 30, "20 runs of the first batch, 10 added");
    assert_eq!(ints(&runs, "run_index"), (0..30).collect::<Vec<i64>>());
    // The added runs: seeds 5..9 of the all-on cell and of the clip-off cell, nothing else.
    let seeds = ints(&runs, "seed");
    let whiten = strings(&runs, "whiten");
    let clip = runs.column("clip").unwrap().bool().unwrap().clone();
    for i in 20..30 {
        assert!((5..10).contains(&seeds[i]), "run {i}: seed {}", seeds[i]);
        assert_eq!(whiten[i], "zca", "run {i}");
    }
    assert_eq!(clip.iter().skip(20).filter(|c| *c == Some(true)).count(), 5);
    // Their ids are those a fixed grid with seeds 0..9 gives the same cells.
    let fixed = write(
        dir.path(),
        "fixed.toml",
        &ADAPTIVE
            .replace("seeds = { min = 5, max = 15, step = 5 }", "")
            .replace("[grid]", "[grid]\nseed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"),
    );
    let listed = sweep().arg("list").arg(&fixed).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for id in &strings(&runs, "run_id")[20..] {
        assert!(
            listed.contains(id.as_str()),
            "{id} is not a run id of the grid"
        );
    }
    // The verdict: the clipping row went from 5 to 10 seeds per cell and closed.
    let verdict = read(&one.join("verdict.parquet"));
    let factors = strings(&verdict, "factor");
    let clip_row = factors.iter().position(|f| f == "clip").unwrap();
    assert_eq!(ints(&verdict, "all_on_runs")[clip_row], 10);
    assert_eq!(ints(&verdict, "one_off_runs")[clip_row], 10);
    let whiten_row = factors.iter().position(|f| f == "whiten").unwrap();
    assert_eq!(ints(&verdict, "one_off_runs")[whiten_row], 5);

    // `sweep report` rebuilds the same sweep from the folder (its figure of labels included).
    let report = sweep().arg("report").arg(&one).output().unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    // `sweep list` names the bounds.
    let list = sweep().arg("list").arg(&config).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("adaptive seeds") && list.contains("at most 60 runs"),
        "{list}"
    );
}

/// Killed after the first batch is saved, while it adds seeds; the rerun replays the batches from
/// the saved runs and writes the tables of the uninterrupted sweep, byte for byte.
#[test]
fn a_sweep_killed_while_adding_seeds_resumes_to_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "adaptive.toml", ADAPTIVE);
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    run_ok(&config, &whole, &["--quiet"]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["run", "--quiet", "--jobs", "2", "--out"])
        .arg(&killed)
        .arg(&config)
        .env("SWEEP_TEST_RUN_DELAY_MS", "300")
        .spawn()
        .unwrap();
    let saved_rows = |dir: &Path| -> usize {
        std::fs::read_dir(dir.join("parts"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".runs.parquet"))
                    .map(|e| read(&e.path()).height())
                    .sum()
            })
            .unwrap_or(0)
    };
    let start = Instant::now();
    while saved_rows(&killed) < 20 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let saved = saved_rows(&killed);
    assert!(
        (20..30).contains(&saved),
        "killed after the first batch, before the second: {saved}"
    );
    assert!(!killed.join("runs.parquet").exists());
    let text = run_ok(&config, &killed, &[]);
    assert!(
        text.contains(&format!("({saved} resumed from an earlier run)")),
        "{text}"
    );
    assert_same_tables(&whole, &killed);
}

#[test]
fn adaptive_seeds_refuse_a_seed_axis_and_bad_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let bad = |name: &str, text: &str, words: &[&str]| {
        let config = write(dir.path(), name, text);
        let out = dir.path().join(name.replace(".toml", ""));
        let output = sweep()
            .arg("run")
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {err}");
        for w in words {
            assert!(err.contains(w), "{name}: `{w}` not in {err}");
        }
        assert!(!out.exists(), "{name}: nothing written");
    };
    bad(
        "axis.toml",
        &ADAPTIVE.replace("[grid]", "[grid]\nseed = [0, 1, 2, 3, 4]"),
        &["grid.seed", "ablation.seeds"],
    );
    bad(
        "bounds.toml",
        &ADAPTIVE.replace("max = 15", "max = 3"),
        &["ablation.seeds", "max = 3", "min = 5"],
    );
    bad(
        "key.toml",
        &ADAPTIVE.replace("step = 5", "steps = 5"),
        &["ablation.seeds", "steps"],
    );
    // Seeds up to 4 per cell cannot reach alpha 0.05 over 2 batches (smallest p 0.029 > 0.025).
    bad(
        "reach.toml",
        &ADAPTIVE.replace("min = 5, max = 15, step = 5", "min = 3, max = 4, step = 1"),
        &["ablation.seeds", "seeds.max"],
    );
    bad(
        "scenario.toml",
        &(ADAPTIVE.to_string()
            + "[[scenario]]\nname = \"s\"\nset = { init = \"zeros\" }\nmetric = \"final_train_r2\"\ncheck = \"value\"\nreported = 0.5\n"),
        &["ablation.seeds", "[[scenario]]"],
    );
    bad(
        "huge.toml",
        &ADAPTIVE.replace("max = 15", "max = 1000000000000"),
        &["ablation.seeds", "max_runs"],
    );
    // max_runs counts the most the sweep can run: 4 cells x 15 seeds.
    bad(
        "cap.toml",
        &ADAPTIVE.replace("name = \"adaptive\"", "name = \"adaptive\"\nmax_runs = 59"),
        &["max_runs", "60"],
    );
}
