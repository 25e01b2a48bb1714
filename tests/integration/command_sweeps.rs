//! Command sweeps through the rest of the tool: sharded and merged to the tables of one process,
//! incomplete runs included; adaptive seeds that treat incomplete runs as missing evidence until
//! `--retry-failed` reruns them; and `sweep report` drawing every metric the script reported.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use polars::prelude::DataFrame;

use crate::common::{assert_same_tables, read, run_ok, run_output, sweep, write};

/// A script reporting `acc` 0.9 with clip and 0.5 without, over two epochs, and `seconds` as a
/// second metric; it exits 1 for (clip on, normalize_target on, seed 3) while `fail` exists.
fn script(dir: &Path) {
    let path = write(
        dir,
        "s.sh",
        "#!/bin/sh\n[ -e fail ] && [ \"$1\" = true ] && [ \"$2\" = true ] && [ \"$3\" = 3 ] && exit 1\n\
         acc=0.5; [ \"$1\" = true ] && acc=0.9\n\
         echo \"{\\\"epoch\\\": 1, \\\"acc\\\": 0.1, \\\"seconds\\\": 1}\" >> \"$SWEEP_METRICS\"\n\
         echo \"{\\\"epoch\\\": 2, \\\"acc\\\": $acc, \\\"seconds\\\": 2}\" >> \"$SWEEP_METRICS\"\n",
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The sweep over `clip` x `normalize_target`; `seeds` is the `[grid] seed` line or the
/// `[ablation] seeds` entry.
fn config(dir: &Path, seeds: &str) -> std::path::PathBuf {
    script(dir);
    write(dir, "fail", "");
    write(
        dir,
        "c.toml",
        &format!(
            "[data]\nsource = \"none\"\n[train]\nepochs = 2\n[grid]\nclip = [false, true]\n\
             normalize_target = [false, true]\n{seeds}\n\
             [command]\nargv = [\"./s.sh\", \"{{clip}}\", \"{{normalize_target}}\", \"{{seed}}\"]\n\
             metric = \"acc\"\nconverged = {{ at_least = 0.8 }}\n"
        ),
    )
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    let column = df.column(name).unwrap().str().unwrap().clone();
    column.iter().map(|s| s.unwrap_or("").to_string()).collect()
}

fn ints(df: &DataFrame, name: &str) -> Vec<i64> {
    let column = df.column(name).unwrap().i64().unwrap().clone();
    column.iter().map(|v| v.unwrap()).collect()
}

#[test]
fn a_sharded_command_sweep_merges_to_the_tables_and_verdict_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "seed = [0, 1, 2, 3, 4]\n[ablation]\nfactors = { clip = true, normalize_target = true }",
    );
    let whole = dir.path().join("whole");
    run_ok(&config, &whole, &["--quiet"]);
    let sharded = dir.path().join("sharded");
    for shard in ["2/3", "0/3", "1/3"] {
        run_ok(&config, &sharded, &["--quiet", "--shard", shard]);
        assert!(
            !sharded.join("verdict.parquet").exists(),
            "a shard writes parts only"
        );
    }
    let merged = sweep().arg("merge").arg(&sharded).output().unwrap();
    assert!(merged.status.success(), "{merged:?}");
    assert_same_tables(&whole, &sharded);
    for table in ["effects.parquet", "paths.parquet"] {
        assert_eq!(
            std::fs::read(whole.join(table)).unwrap(),
            std::fs::read(sharded.join(table)).unwrap(),
            "{table}"
        );
    }
    let verdict = read(&sharded.join("verdict.parquet"));
    assert_eq!(strings(&verdict, "label"), ["unclear", "unclear"]);
    assert_eq!(ints(&verdict, "incomplete_runs"), [1, 1]);
}

#[test]
fn adaptive_seeds_treat_incomplete_runs_as_missing_until_retried() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "[ablation]\nfactors = { clip = true, normalize_target = true }\n\
         seeds = { min = 4, max = 8, step = 4 }",
    );
    let out = dir.path().join("out");
    run_ok(&config, &out, &["--quiet"]);
    // Seed 3 of the all-on cell failed: both rows stay unclear with one incomplete run, and the
    // all-on cell's evidence is its 3 complete seeds of 4, so the rows stay open and the next
    // batch gives both of their cells seeds 4..7 (the one-off cell of each row too).
    let verdict = read(&out.join("verdict.parquet"));
    assert_eq!(strings(&verdict, "label"), ["unclear", "unclear"]);
    assert_eq!(ints(&verdict, "incomplete_runs"), [1, 1]);
    let runs = read(&out.join("runs.parquet"));
    assert_eq!(
        runs.height(),
        16 + 3 * 4,
        "a second batch went to the 3 open cells"
    );
    let failed = strings(&runs, "status")
        .iter()
        .filter(|s| *s == "failed")
        .count();
    assert_eq!(failed, 1);

    // The script is fixed; --retry-failed reruns the failed run only, and the verdict counts it.
    std::fs::remove_file(dir.path().join("fail")).unwrap();
    let again = run_output(&config, &out, &["--retry-failed"]);
    assert!(again.status.success(), "{again:?}");
    let verdict = read(&out.join("verdict.parquet"));
    assert_eq!(ints(&verdict, "incomplete_runs"), [0, 0]);
    assert_eq!(strings(&verdict, "label"), ["necessary", "not_necessary"]);
    let runs = read(&out.join("runs.parquet"));
    assert!(strings(&runs, "status").iter().all(|s| s != "failed"));
    let attempts = ints(&runs, "attempt");
    assert_eq!(
        attempts.iter().filter(|a| **a == 2).count(),
        1,
        "{attempts:?}"
    );
}

#[test]
fn the_report_draws_every_metric_the_script_reported_with_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "seed = [0, 1, 2, 3]\n[ablation]\nfactors = { clip = true, normalize_target = true }",
    );
    std::fs::remove_file(dir.path().join("fail")).unwrap();
    let out = dir.path().join("out");
    run_ok(&config, &out, &["--quiet"]);
    let report = sweep().arg("report").arg(&out).output().unwrap();
    assert!(report.status.success(), "{report:?}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for metric in ["acc", "seconds"] {
        let svg = out.join("figures").join(format!("metric_{metric}.svg"));
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains(&format!("{metric} by cell")), "{metric}");
        assert!(md.contains(&format!("figures/metric_{metric}.png")), "{md}");
    }
    // The judged metric's figure draws the bound, the other does not; no reference, no excess
    // MSE, and no built-in diagnostics the script never reported.
    let acc = std::fs::read_to_string(out.join("figures/metric_acc.svg")).unwrap();
    assert!(acc.contains("converged: acc at least 0.8"));
    let seconds = std::fs::read_to_string(out.join("figures/metric_seconds.svg")).unwrap();
    assert!(!seconds.contains("converged:"));
    let figures: Vec<String> = std::fs::read_dir(out.join("figures"))
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !figures
            .iter()
            .any(|f| f.starts_with("excess") || f.starts_with("diagnostics")),
        "{figures:?}"
    );
}
