//! What a command sweep records once per output folder, before its runs: the output of its
//! `provenance` commands (`OUT/provenance.json`) and, with `determinism_check`, whether its first
//! run reports the same metrics twice (`OUT/determinism.json`). Each file is created once, by
//! atomic link (shards starting together agree on the first), and every process of the folder
//! puts both into the tables' metadata (`sweep.provenance`, `sweep.determinism`), so that a
//! reader knows which kind of table they hold.

use std::path::Path;

use serde_json::{json, Value};

use super::commands::{data_file_of, RUNS_DIR};
use crate::atomic_file::write_new;
use crate::command::{Launch, MetricsFile, Supervisor};
use crate::config::{CommandSpec, Sweep};
use crate::error::{Error, Result};
use crate::outcome::EpochStats;
use crate::preprocess::Prepare;

pub const PROVENANCE: &str = "provenance.json";
pub const DETERMINISM: &str = "determinism.json";
/// The most output kept of one provenance command.
const MAX_OUTPUT: usize = 64 * 1024;

/// A command sweep's folder before its runs: the provenance and determinism check recorded once,
/// and the metadata entries of how its runs are executed and what the folder recorded.
pub fn prepare_folder(
    out: &Path,
    sweep: &Sweep,
    prepared: &Prepare,
) -> Result<Vec<(String, String)>> {
    let spec = sweep.command.as_ref().expect("a command sweep");
    if spec.reproducibility.determinism_check {
        super::commands::write_data_files(out, &[&sweep.runs[0]], prepared)?;
    }
    record(out, sweep, spec, prepared)?;
    let hashes = super::commands::input_hashes(sweep);
    let mut facts = execution_facts(&spec.execution_text(), &hashes);
    facts.extend(recorded(out)?);
    Ok(facts)
}

/// Records what the folder does not hold yet.
fn record(out: &Path, sweep: &Sweep, spec: &CommandSpec, prepared: &Prepare) -> Result<()> {
    if !spec.reproducibility.provenance.is_empty() && !out.join(PROVENANCE).exists() {
        let outputs: Vec<Value> = spec
            .reproducibility
            .provenance
            .iter()
            .map(|argv| provenance_of(argv, spec))
            .collect();
        write_json_once(&out.join(PROVENANCE), &Value::Array(outputs))?;
    }
    if spec.reproducibility.determinism_check && !out.join(DETERMINISM).exists() {
        let result = determinism(out, sweep, spec, prepared)?;
        write_json_once(&out.join(DETERMINISM), &result)?;
    }
    Ok(())
}

/// The metadata entries of how a command sweep's runs are executed: the execution settings
/// (TOML) and the inputs' SHA-256 (JSON).
pub fn execution_facts(
    execution: &str,
    inputs: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    vec![
        ("sweep.command_execution".into(), execution.to_string()),
        (
            "sweep.inputs_sha256".into(),
            serde_json::to_string(inputs).expect("strings serialize"),
        ),
    ]
}

/// The metadata entries of what the folder recorded.
pub fn recorded(out: &Path) -> Result<Vec<(String, String)>> {
    let mut facts = Vec::new();
    for (file, key) in [
        (PROVENANCE, "sweep.provenance"),
        (DETERMINISM, "sweep.determinism"),
    ] {
        match std::fs::read_to_string(out.join(file)) {
            Ok(text) => facts.push((key.to_string(), text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(
                    format!("reading {}", out.join(file).display()),
                    e,
                ))
            }
        }
    }
    Ok(facts)
}

fn write_json_once(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("json serializes") + "\n";
    write_new(path, |f| {
        use std::io::Write;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    })
    .map(|_| ())
}

/// One provenance command's argv, exit code and output (stdout then stderr, at most
/// [`MAX_OUTPUT`] bytes), run in the runs' folder and environment.
fn provenance_of(argv: &[String], spec: &CommandSpec) -> Value {
    let ran = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(&spec.workdir)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output();
    match ran {
        Ok(o) => {
            let mut bytes = o.stdout;
            bytes.extend(o.stderr);
            bytes.truncate(MAX_OUTPUT);
            json!({"argv": argv, "exit_code": o.status.code(), "output": String::from_utf8_lossy(&bytes)})
        }
        Err(e) => json!({"argv": argv, "exit_code": null, "output": format!("cannot start: {e}")}),
    }
}

/// Runs the sweep's first run twice (in `OUT/runs/determinism-1` and `-2`) and compares what
/// they reported, every metric but the `volatile` ones, bit for bit.
fn determinism(out: &Path, sweep: &Sweep, spec: &CommandSpec, prepared: &Prepare) -> Result<Value> {
    let run = &sweep.runs[0];
    let out = std::path::absolute(out).map_err(|e| Error::io("the output folder's path", e))?;
    let supervisor = Supervisor::start()
        .map_err(|e| Error::Tool(format!("cannot watch the command runs: {e}")))?;
    let prep = prepared.get(run).map(|p| &**p);
    let mut reported = Vec::new();
    for copy in 1..=2 {
        let launch = Launch {
            spec,
            run,
            sweep_seed: sweep.seed,
            attempt: 1,
            run_dir: out.join(RUNS_DIR).join(format!("determinism-{copy}")),
            out: &out,
            data: prep.map(|p| (p, data_file_of(&out, run))),
            gpu: None,
        };
        let Some(finished) = launch.run(&supervisor) else {
            supervisor.finish();
            let signal = supervisor.stop_signal().unwrap_or(libc::SIGTERM);
            return Err(Error::Stopped {
                signal,
                message: format!("stopped by signal {signal} during the determinism check"),
            });
        };
        reported.push((
            finished.outcome.status,
            epochs_of(finished.epochs.as_ref())?,
        ));
    }
    supervisor.finish();
    let (a, b) = (&reported[0], &reported[1]);
    let difference = if a.0 != b.0 {
        Some(format!(
            "the status differs: {} then {}",
            a.0.as_str(),
            b.0.as_str()
        ))
    } else {
        first_difference(&a.1, &b.1, &spec.reproducibility.volatile)
    };
    Ok(json!({
        "run_id": run.id,
        "agreed": difference.is_none(),
        "difference": difference,
        "volatile": spec.reproducibility.volatile,
    }))
}

fn epochs_of(file: Option<&MetricsFile>) -> Result<Vec<EpochStats>> {
    let mut all = Vec::new();
    if let Some(file) = file {
        file.for_each_batch(1 << 16, |batch| {
            all.extend_from_slice(batch);
            Ok(())
        })?;
    }
    Ok(all)
}

/// The first metric and epoch where two runs' reports differ (NaN equals NaN), skipping
/// `volatile` metrics.
pub fn first_difference(a: &[EpochStats], b: &[EpochStats], volatile: &[String]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} epochs reported, then {}", a.len(), b.len()));
    }
    let same = |x: f64, y: f64| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
    for (x, y) in a.iter().zip(b) {
        let (vx, vy) = (x.values(), y.values());
        for (key, v) in &vx {
            if volatile.contains(key) {
                continue;
            }
            let w = vy.iter().find(|(k, _)| k == key).map(|kv| kv.1);
            if !w.is_some_and(|w| same(*v, w)) {
                return Some(format!(
                    "{key} differs at epoch {}: {v:e} then {}",
                    x.epoch,
                    w.map_or("not reported".to_string(), |w| format!("{w:e}"))
                ));
            }
        }
    }
    None
}
