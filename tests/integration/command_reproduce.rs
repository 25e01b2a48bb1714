//! Reproducing a command sweep: the tables record how the script ran (execution settings, the
//! inputs' SHA-256, the provenance commands' output, the determinism check); `sweep reproduce`
//! re-runs it from there or from `--workdir` after checking the inputs, skips `volatile`
//! metrics, and names the run, metric and epoch where a script does not reproduce.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sweep::results::read_metadata_value;

use crate::common::{run_ok, sweep, write};

/// A sweep of two seeds whose script, in `app/`, reports `acc` (0.9, or with `noisy`, 0.9
/// followed by digits from the clock: converged either way) and `secs` (from the clock,
/// declared volatile).
fn command_sweep(dir: &Path, noisy: bool) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("app")).unwrap();
    let acc = if noisy { "0.9$(date +%N)" } else { "0.9" };
    let script = write(
        &dir.join("app"),
        "s.sh",
        &format!(
            "#!/bin/sh\necho \"{{\\\"epoch\\\": 1, \\\"acc\\\": {acc}, \\\"secs\\\": 1$(date +%N)}}\" \
             >> \"$SWEEP_METRICS\"\n"
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = write(
        dir,
        "c.toml",
        "[data]\nsource = \"none\"\n[train]\nepochs = 1\n[grid]\nseed = [0, 1]\n[command]\n\
         argv = [\"./s.sh\"]\nmetric = \"acc\"\nconverged = { at_least = 0.5 }\nworkdir = \"app\"\n\
         inputs = [\"s.sh\"]\nvolatile = [\"secs\"]\ndeterminism_check = true\n\
         provenance = [[\"sh\", \"-c\", \"echo toolchain v1.2\"]]\n",
    );
    let out = dir.join("out");
    run_ok(&config, &out, &["--quiet"]);
    out
}

fn reproduce(out: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = sweep()
        .arg("reproduce")
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
}

#[test]
fn a_command_sweep_records_how_it_ran_and_reproduces_from_a_moved_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = command_sweep(dir.path(), false);
    let runs = out.join("runs.parquet");
    let meta = |key| read_metadata_value(&runs, key).unwrap().unwrap_or_default();
    assert!(meta("sweep.provenance").contains("toolchain v1.2"));
    assert!(
        meta("sweep.determinism").contains("\"agreed\": true"),
        "{}",
        meta("sweep.determinism")
    );
    let app = std::fs::canonicalize(dir.path().join("app")).unwrap();
    assert!(meta("sweep.command_execution").contains(&format!("workdir = \"{}\"", app.display())));
    assert!(meta("sweep.inputs_sha256").contains("s.sh"));

    // `secs` differs on every run and is volatile: the tables reproduce.
    let (code, text) = reproduce(&out, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("reproduced: 3 table(s) identical"), "{text}");

    // The script moved: found with --workdir after its hash is checked; a changed script is not.
    std::fs::rename(dir.path().join("app"), dir.path().join("moved")).unwrap();
    let (code, text) = reproduce(&out, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--workdir"), "{text}");
    let moved = dir.path().join("moved");
    let (code, text) = reproduce(&out, &["--workdir", moved.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    let script = moved.join("s.sh");
    let body = std::fs::read_to_string(&script).unwrap() + "# edited\n";
    std::fs::write(&script, body).unwrap();
    let (code, text) = reproduce(&out, &["--workdir", moved.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("not the one that ran"), "{text}");
}

#[test]
fn a_script_that_does_not_reproduce_is_named_with_its_run_metric_and_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let out = command_sweep(dir.path(), true);
    let runs = out.join("runs.parquet");
    let determinism = read_metadata_value(&runs, "sweep.determinism")
        .unwrap()
        .unwrap();
    assert!(
        determinism.contains("\"agreed\": false") && determinism.contains("acc differs at epoch 1"),
        "{determinism}"
    );
    let (code, text) = reproduce(&out, &[]);
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("first difference: run ") && text.contains("acc at epoch 1"),
        "{text}"
    );
}
