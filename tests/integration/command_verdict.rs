//! The verdict on command sweeps: judged by a bound on the script's own metric (tolerance
//! intervals over the bound, margins in the metric's units), and failed runs counted as
//! incomplete, not as evidence (the row stays `unclear`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use polars::prelude::DataFrame;

use crate::common::{read, run_ok, write};

/// A sweep of 5 seeds over `clip` x `normalize_target` whose script reports `acc` 0.9 with clip
/// and 0.5 without; `failing_seed` (in the all-on cell) exits 1 instead.
fn sweep_folder(dir: &Path, failing_seed: Option<u32>) -> std::path::PathBuf {
    let fail = failing_seed.map_or(String::new(), |s| {
        format!("[ \"$1\" = true ] && [ \"$2\" = true ] && [ \"$3\" = {s} ] && exit 1\n")
    });
    let script = write(
        dir,
        "s.sh",
        &format!(
            "#!/bin/sh\n{fail}acc=0.5; [ \"$1\" = true ] && acc=0.9\n\
             echo \"{{\\\"epoch\\\": 1, \\\"acc\\\": $acc}}\" >> \"$SWEEP_METRICS\"\n"
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = write(
        dir,
        "c.toml",
        "[data]\nsource = \"none\"\n[train]\nepochs = 1\n[grid]\nclip = [false, true]\n\
         normalize_target = [false, true]\nseed = [0, 1, 2, 3, 4]\n\
         [ablation]\nfactors = { clip = true, normalize_target = true }\n\
         [command]\nargv = [\"./s.sh\", \"{clip}\", \"{normalize_target}\", \"{seed}\"]\n\
         metric = \"acc\"\nconverged = { at_least = 0.8 }\n",
    );
    let out = dir.join("out");
    run_ok(&config, &out, &["--quiet"]);
    out
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    let column = df.column(name).unwrap().str().unwrap().clone();
    column.iter().map(|s| s.unwrap_or("").to_string()).collect()
}

fn f64s(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name).unwrap().f64().unwrap().iter().collect()
}

fn ints(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    df.column(name).unwrap().i64().unwrap().iter().collect()
}

#[test]
fn a_bound_on_the_scripts_metric_judges_the_verdict_in_its_own_units() {
    let dir = tempfile::tempdir().unwrap();
    let verdict = read(&sweep_folder(dir.path(), None).join("verdict.parquet"));
    assert_eq!(strings(&verdict, "factor"), ["clip", "normalize_target"]);
    assert_eq!(strings(&verdict, "label"), ["necessary", "not_necessary"]);
    // The clip label holds for X in (0.5, 0.9]: at_least 0.9 still admits the clipped runs,
    // anything at or below 0.5 admits the others too.
    assert_eq!(f64s(&verdict, "bound_low"), [Some(0.5), None]);
    assert_eq!(f64s(&verdict, "bound_high")[0], Some(0.9));
    // Margins: acc past 0.8, in acc units.
    let close = |v: Option<f64>, x: f64| v.is_some_and(|v| (v - x).abs() < 1e-12);
    assert!(close(f64s(&verdict, "all_on_margin_median")[0], 0.1));
    assert!(close(f64s(&verdict, "one_off_margin_median")[0], -0.3));
    let names: Vec<String> = verdict
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    for gone in ["all_on_excess_mse_median", "tol_low", "fragile"] {
        assert!(!names.iter().any(|n| n == gone), "{gone} in {names:?}");
    }
    assert_eq!(ints(&verdict, "incomplete_runs"), [Some(0), Some(0)]);

    // Effects and paths follow the shortfall from X in acc units: clip lowers it by 0.4.
    let out = dir.path().join("out");
    let effects = read(&out.join("effects.parquet"));
    let responses = strings(&effects, "response");
    let terms = strings(&effects, "term");
    let effect = f64s(&effects, "effect");
    let of = |response: &str, term: &str| {
        let i = (0..responses.len()).find(|&i| responses[i] == response && terms[i] == term);
        effect[i.expect("a row")]
    };
    assert!(
        close(of("shortfall", "clip"), -0.4),
        "{:?}",
        of("shortfall", "clip")
    );
    assert!(close(of("shortfall", "normalize_target"), 0.0));
    assert!(!responses.iter().any(|r| r == "log10_excess_mse"));
    let paths = read(&out.join("paths.parquet"));
    assert!(strings(&paths, "response").iter().all(|r| r == "shortfall"));
    let steps = strings(&paths, "factor");
    assert_eq!(steps[1], "clip", "forward: clip first");
}

#[test]
fn failed_runs_are_incomplete_not_evidence_and_keep_the_row_unclear() {
    let dir = tempfile::tempdir().unwrap();
    let out = sweep_folder(dir.path(), Some(3));
    let verdict = read(&out.join("verdict.parquet"));
    assert_eq!(strings(&verdict, "label"), ["unclear", "unclear"]);
    assert_eq!(ints(&verdict, "incomplete_runs"), [Some(1), Some(1)]);
    // The all-on cell: 4 runs of evidence, all converged.
    assert_eq!(ints(&verdict, "all_on_runs"), [Some(4), Some(4)]);
    assert_eq!(ints(&verdict, "all_on_converged"), [Some(4), Some(4)]);
    assert_eq!(
        f64s(&verdict, "all_on_converged_fraction"),
        [Some(1.0), Some(1.0)]
    );
    let summary = read(&out.join("summary.parquet"));
    let incomplete: Vec<Option<i64>> = ints(&summary, "incomplete_runs");
    assert_eq!(incomplete.iter().flatten().sum::<i64>(), 1);
    assert_eq!(incomplete.len(), 4);
    let runs = read(&out.join("runs.parquet"));
    assert_eq!(
        strings(&runs, "status")
            .iter()
            .filter(|s| *s == "failed")
            .count(),
        1
    );
}
