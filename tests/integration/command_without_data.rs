//! `[data] source = "none"`: a command sweep whose script loads its own data. Nothing is
//! prepared (no `SWEEP_DATA`, no data folder, no reference), `[command] converged` judges the
//! runs, and the folder resumes and merges like any other; configs that need a data set say so.

use std::os::unix::fs::PermissionsExt;

use polars::prelude::DataFrame;

use crate::common::{read, run_ok, run_output, write};

const CONFIG: &str = "[data]\nsource = \"none\"\n[train]\nepochs = 2\n[grid]\nseed = [0, 1]\n\
    [command]\nargv = [\"./train.sh\", \"{seed}\"]\nmetric = \"acc\"\nconverged = { at_least = 0.8 }\n";

fn f64s(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name).unwrap().f64().unwrap().iter().collect()
}

#[test]
fn a_sweep_without_data_runs_judges_by_its_threshold_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    // Seed 0 reaches acc 0.9, seed 1 stays at 0.5; each run records whether SWEEP_DATA was set.
    let script = write(
        dir.path(),
        "train.sh",
        "#!/bin/sh\necho \"data=${SWEEP_DATA-unset}\" > \"$SWEEP_RUN_DIR/env.txt\"\n\
         last=0.9; [ \"$1\" = 1 ] && last=0.5\n\
         printf '{\"epoch\": 1, \"acc\": 0.4}\\n{\"epoch\": 2, \"acc\": %s}\\n' \"$last\" >> \"$SWEEP_METRICS\"\n",
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = write(dir.path(), "c.toml", CONFIG);
    let out = dir.path().join("out");
    let printed = run_ok(&config, &out, &[]);
    assert!(
        printed.contains("wrote") && printed.contains("{runs,epochs,summary}"),
        "{printed}"
    );

    let runs = read(&out.join("runs.parquet"));
    let status: Vec<&str> = runs
        .column("status")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(status, ["converged", "not_converged"]);
    assert_eq!(f64s(&runs, "final_acc"), [Some(0.9), Some(0.5)]);
    for column in ["ols_mse", "excess_mse"] {
        assert!(
            f64s(&runs, column)
                .iter()
                .all(|v| v.is_none_or(f64::is_nan)),
            "{column}"
        );
    }
    assert_eq!(read(&out.join("epochs.parquet")).height(), 4);
    assert!(!out.join("reference.parquet").exists());
    assert!(!out.join("data").exists());
    assert!(!out.join("parts").join("reference.parquet").exists());
    let envs: Vec<String> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|run| std::fs::read_to_string(run.unwrap().path().join("attempt-1/env.txt")).unwrap())
        .collect();
    assert_eq!(envs, ["data=unset\n", "data=unset\n"]);

    // The folder's manifest reads back: a second run resumes both runs and writes the same bytes.
    let before = std::fs::read(out.join("runs.parquet")).unwrap();
    let again = run_output(&config, &out, &[]);
    assert!(again.status.success(), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("2 resumed"));
    assert_eq!(std::fs::read(out.join("runs.parquet")).unwrap(), before);
}

#[test]
fn configs_that_need_a_data_set_say_so_and_write_nothing() {
    let cases = [
        (
            "[data]\nsource = \"none\"\n",
            "data.source",
            "needs a [command] section",
        ),
        (
            &CONFIG.replace("source = \"none\"", "source = \"none\"\nn_rows = 100"),
            "data.n_rows",
            "not accepted with source = \"none\"",
        ),
        (
            &CONFIG.replace("metric = \"acc\"\nconverged = { at_least = 0.8 }\n", ""),
            "command.converged",
            "is required here",
        ),
        (
            &CONFIG.replace("\"{seed}\"", "\"{sweep.data}\""),
            "command.argv",
            "{sweep.data} is not accepted",
        ),
    ];
    for (text, key, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = write(dir.path(), "c.toml", text);
        let out = dir.path().join("out");
        let output = run_output(&config, &out, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(key) && stderr.contains(why),
            "{text}: {stderr}"
        );
        assert!(!out.exists(), "{text}: nothing written");
    }
}
