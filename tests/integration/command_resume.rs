//! A command sweep killed (SIGKILL, so it can neither stop its runs nor save anything more) at
//! about 20%, 50% and 90% of its runs, then run again with the same command: every run is saved
//! once, and the tables are the bytes of an uninterrupted sweep.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{assert_same_tables, read, run_ok, write};

const RUNS: usize = 20;

/// Lines of `OUT/ran.log`: the runs started so far (each script appends its run id).
fn started(out: &Path) -> usize {
    std::fs::read_to_string(out.join("ran.log")).map_or(0, |t| t.lines().count())
}

#[test]
fn a_command_sweep_killed_at_20_50_and_90_percent_resumes_to_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    // Each run logs its start in OUT/ran.log (its folder is OUT/runs/<id>/attempt-1), works a
    // moment, and reports a loss from its seed.
    let script = write(
        dir.path(),
        "s.sh",
        "#!/bin/sh\necho \"$SWEEP_RUN_ID\" >> \"$SWEEP_RUN_DIR/../../../ran.log\"\nsleep 0.05\n\
         echo \"{\\\"epoch\\\": 1, \\\"val_loss\\\": 0.0$1}\" >> \"$SWEEP_METRICS\"\n",
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let seeds: Vec<String> = (0..RUNS).map(|s| s.to_string()).collect();
    let config = write(
        dir.path(),
        "c.toml",
        &format!(
            "[data]\nn_rows = 120\nn_features = 4\nsignal_lags = 2\n[train]\nepochs = 1\n\
             [grid]\nseed = [{}]\n[command]\nargv = [\"./s.sh\", \"{{seed}}\"]\n\
             metric = \"val_loss\"\nconverged = {{ at_most = 0.05 }}\n",
            seeds.join(", ")
        ),
    );
    let reference = dir.path().join("reference");
    run_ok(&config, &reference, &["--quiet", "--jobs", "2"]);
    assert_eq!(read(&reference.join("runs.parquet")).height(), RUNS);

    for percent in [20, 50, 90] {
        let out = dir.path().join(format!("killed-at-{percent}"));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sweep"))
            .args(["run", "--quiet", "--jobs", "2"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while started(&out) < RUNS * percent / 100 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let at_kill = started(&out);
        assert!(
            at_kill >= RUNS * percent / 100,
            "{percent}%: {at_kill} runs started"
        );
        std::thread::sleep(Duration::from_millis(300)); // the runs it left end by themselves
        run_ok(&config, &out, &["--quiet", "--jobs", "2"]);
        assert_same_tables(&reference, &out);
        let runs = read(&out.join("runs.parquet"));
        assert_eq!(runs.height(), RUNS, "{percent}%: every run saved once");
        assert!(started(&out) >= RUNS, "{percent}%");
    }
}
