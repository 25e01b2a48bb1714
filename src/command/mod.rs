//! The command engine: a run is the user's own training command. For one run it renders the
//! argv, writes `params.json`, sets the run's environment, spawns the command in a process
//! group of its own (`process`), reads its metrics file (`metrics`) and judges the outcome the
//! way the built-in engine does, returning the same [`RunOutcome`]. It imports nothing above
//! it: the data file it hands over (`SWEEP_DATA`) is written by the sweep before any run.

mod live;
mod metrics;
mod process;

use std::path::{Path, PathBuf};

use rand::RngExt;

pub use live::{check_stale, LIVE_DIR};
pub use metrics::{MetricsFile, Scan, MAX_LINE};
pub use process::{Ended, Supervisor};

use crate::config::{param_text, Bound, CommandSpec, RunSpec};
use crate::outcome::{ProcessFacts, RunOutcome, Status};
use crate::preprocess::Prepared;

/// The lines of a failed run's stderr shown in its message.
const STDERR_TAIL: usize = 5;

/// A command run that ended: its outcome, what its metrics file said, and the file to read its
/// epochs from when its part is written (`None` when it reported none or could not be read).
pub struct Finished {
    pub outcome: RunOutcome,
    pub scan: Scan,
    pub epochs: Option<MetricsFile>,
}

/// Everything one command run needs.
pub struct Launch<'a> {
    pub spec: &'a CommandSpec,
    pub run: &'a RunSpec,
    pub sweep_seed: u64,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The run's own folder (absolute), made afresh.
    pub run_dir: PathBuf,
    /// The output folder, for the log paths messages name.
    pub out: &'a Path,
    /// The data as this run trains on it, and the file it was written to.
    pub data: Option<(&'a Prepared, PathBuf)>,
    /// The GPU slot the run holds (its `CUDA_VISIBLE_DEVICES`).
    pub gpu: Option<&'a str>,
}

/// The `SWEEP_SEED` of a run: from the sweep seed, the run's seed and its data seed only, so
/// runs that differ in other settings get the same value; in `[0, 2^31)`, which every common
/// framework accepts.
pub fn script_seed(sweep_seed: u64, run: &RunSpec) -> u32 {
    let purpose = format!("command-seed data_seed={:?}", run.data_seed);
    crate::rng::stream(sweep_seed, run.settings.seed, &purpose).random::<u32>() >> 1
}

/// The value of a `{key}` placeholder that names a setting of the run (a `[train]` key or
/// `data_seed`), as `sweep list` prints it.
fn setting_value(run: &RunSpec, name: &str) -> Option<String> {
    if name == "data_seed" {
        return Some(run.data_seed.map_or("none".to_string(), |s| s.to_string()));
    }
    run.settings.value_of(name).map(|v| param_text(&v))
}

/// A run's command as `sweep list --argv` shows it: the settings, the run id, seed and attempt
/// 1 rendered; the paths, which depend on the output folder, left as `{sweep.*}`.
pub fn listed_argv(spec: &CommandSpec, run: &RunSpec, sweep_seed: u64) -> Vec<String> {
    spec.render(|name| match name {
        "sweep.run_id" => Some(run.id.clone()),
        "sweep.seed" => Some(script_seed(sweep_seed, run).to_string()),
        "sweep.attempt" => Some("1".to_string()),
        _ if name.starts_with("sweep.") => None,
        _ => setting_value(run, name),
    })
}

impl Launch<'_> {
    fn metrics_path(&self) -> PathBuf {
        self.run_dir.join("metrics.jsonl")
    }

    /// The value of a placeholder for this run (`None`: leave it as written).
    fn value(&self, name: &str, with_run_names: bool) -> Option<String> {
        match name.strip_prefix("sweep.") {
            Some(own) => with_run_names.then(|| self.run_name(own)).flatten(),
            None => setting_value(self.run, name),
        }
    }

    /// `run_id`, `run_dir`, `params`, `metrics`, `data`, `seed` or `attempt`.
    fn run_name(&self, name: &str) -> Option<String> {
        let path = |p: PathBuf| p.display().to_string();
        Some(match name {
            "run_id" => self.run.id.clone(),
            "run_dir" => path(self.run_dir.clone()),
            "params" => path(self.run_dir.join("params.json")),
            "metrics" => path(self.metrics_path()),
            "data" => path(self.data.as_ref()?.1.clone()),
            "seed" => script_seed(self.sweep_seed, self.run).to_string(),
            "attempt" => self.attempt.to_string(),
            _ => return None,
        })
    }

    /// The command as the tables record it: `{sweep.*}` left unrendered, as JSON.
    pub fn argv_record(&self) -> String {
        let argv = self.spec.render(|name| self.value(name, false));
        serde_json::to_string(&argv).expect("strings serialize")
    }

    /// `params.json`: every setting by its key, and the run's own names.
    fn params_json(&self) -> serde_json::Value {
        let mut params =
            serde_json::to_value(self.run.settings.full_table()).expect("settings serialize");
        if let (Some(seed), Some(map)) = (self.run.data_seed, params.as_object_mut()) {
            map.insert("data_seed".into(), seed.into());
        }
        let mut own = serde_json::Map::new();
        for name in crate::config::RUN_NAMES {
            let value = match (*name, self.run_name(name)) {
                ("seed" | "attempt", Some(v)) => {
                    serde_json::Value::from(v.parse::<u64>().expect("a number"))
                }
                (_, Some(v)) => serde_json::Value::from(v),
                (_, None) => serde_json::Value::Null,
            };
            own.insert(name.to_string(), value);
        }
        let (mean, sd, features) = match &self.data {
            Some((prep, _)) => (prep.y_mean, prep.y_scale, prep.data.feature_names.clone()),
            None => (0.0, 1.0, Vec::new()),
        };
        own.insert("target_mean".into(), mean.into());
        own.insert("target_sd".into(), sd.into());
        own.insert("features".into(), features.into());
        serde_json::json!({ "params": params, "sweep": own })
    }

    /// The environment the command runs in, besides sweep's own.
    fn environment(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = crate::config::RUN_NAMES
            .iter()
            .filter_map(|name| {
                Some((
                    format!("SWEEP_{}", name.to_uppercase()),
                    self.run_name(name)?,
                ))
            })
            .collect();
        env.extend(self.spec.env.iter().cloned());
        if let Some(gpu) = self.gpu {
            env.push(("CUDA_VISIBLE_DEVICES".to_string(), gpu.to_string()));
        }
        env
    }

    /// Runs the command to its end and judges it. `None` when sweep was asked to stop while it
    /// ran: such a run is not saved, whatever ended it.
    pub fn run(&self, supervisor: &Supervisor) -> Option<Finished> {
        let argv_record = self.argv_record();
        let outcome = |status: Status, message: String, exit: Option<&process::Exit>| {
            self.outcome(status, Some(message), exit, Scan::empty(), &argv_record)
        };
        let prepared = (|| -> std::io::Result<()> {
            if self.run_dir.exists() {
                std::fs::remove_dir_all(&self.run_dir)?; // an attempt that was never saved
            }
            std::fs::create_dir_all(&self.run_dir)?;
            let json = serde_json::to_string_pretty(&self.params_json()).expect("json serializes");
            std::fs::write(self.run_dir.join("params.json"), json + "\n")
        })();
        if let Err(e) = prepared {
            let message = format!(
                "{}: cannot prepare its folder {}: {e}",
                self.describe(),
                self.run_dir.display()
            );
            return Some(outcome(Status::Failed, message, None));
        }
        let argv = self.spec.render(|name| self.value(name, true));
        let (stdout, stderr) = (
            self.run_dir.join("stdout.log"),
            self.run_dir.join("stderr.log"),
        );
        if supervisor.stopping() {
            return None;
        }
        let child = match process::spawn(
            &argv,
            &self.spec.workdir,
            &self.environment(),
            &stdout,
            &stderr,
        ) {
            Ok(child) => child,
            Err(e) => {
                let message = format!("{}: cannot start {:?}: {e}", self.describe(), argv[0]);
                return Some(outcome(Status::Failed, message, None));
            }
        };
        let record = live::Record::of(&self.run.id, child.id() as i32).create(self.out);
        let waited = process::wait(supervisor, child, self.spec.timeout, self.spec.grace);
        if let Some(path) = record {
            let _ = std::fs::remove_file(path);
        }
        let exit = match waited {
            Ok(exit) => exit,
            Err(e) => {
                let message = format!("{}: waiting for its process failed: {e}", self.describe());
                return Some(outcome(Status::Failed, message, None));
            }
        };
        // Slurm's stop signals every process of the job, the run's too: a run that a stop signal
        // ended may be seen before sweep's own signal is; give that one a moment to arrive.
        let stop_signals = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];
        if exit.ended_by_sweep.is_none() && exit.signal().is_some_and(|s| stop_signals.contains(&s))
        {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        if supervisor.stopping() {
            return None;
        }
        let scanned = metrics::scan(&self.metrics_path(), self.reading());
        Some(self.judge(exit, scanned, &argv_record))
    }

    /// The run, for messages: its index, id and command (its settings as the script got them).
    fn describe(&self) -> String {
        format!(
            "run {} ({}, {})",
            self.run.index,
            self.run.id,
            self.argv_record()
        )
    }

    /// The logs, relative to the output folder.
    fn logs(&self) -> String {
        let rel = self.run_dir.strip_prefix(self.out).unwrap_or(&self.run_dir);
        format!("logs: {0}/stdout.log, {0}/stderr.log", rel.display())
    }

    /// The last lines of stderr, for a failed run's message.
    fn stderr_tail(&self) -> String {
        use std::io::{Read, Seek, SeekFrom};
        const TAIL_BYTES: u64 = 4096;
        let mut bytes = Vec::new();
        if let Ok(mut file) = std::fs::File::open(self.run_dir.join("stderr.log")) {
            let len = file.metadata().map_or(0, |m| m.len());
            let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)));
            let _ = file.take(TAIL_BYTES).read_to_end(&mut bytes);
        }
        // Printable text only, each line cut at 300 characters: a log may hold anything.
        let text: String = String::from_utf8_lossy(&bytes)
            .chars()
            .map(|c| {
                if c.is_control() && c != '\n' && c != '\t' {
                    '?'
                } else {
                    c
                }
            })
            .collect();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.chars().take(300).collect())
            .collect();
        let tail = lines[lines.len().saturating_sub(STDERR_TAIL)..].join("\n    ");
        if tail.is_empty() {
            String::new()
        } else {
            format!("; stderr ends:\n    {tail}")
        }
    }

    /// The status from how the process ended and what its metrics say.
    fn judge(
        &self,
        exit: process::Exit,
        scanned: Result<Scan, String>,
        argv_record: &str,
    ) -> Finished {
        let who = self.describe();
        let logs = self.logs();
        let done = |status, message: Option<String>, m| {
            self.outcome(status, message, Some(&exit), m, argv_record)
        };
        let partial = scanned.clone().unwrap_or_else(|_| Scan::empty());
        if exit.ended_by_sweep == Some(Ended::Timeout) {
            let after = self.spec.timeout.map_or(0, |t| t.as_secs());
            return done(
                Status::Timeout,
                Some(format!(
                    "{who}: ended by its timeout after {after}s ({logs})"
                )),
                partial,
            );
        }
        if let Some(signal) = exit.signal() {
            let message = format!("{who}: killed by signal {signal}, which sweep did not send (the out-of-memory killer?) ({logs}){}", self.stderr_tail());
            return done(Status::Killed, Some(message), partial);
        }
        let code = exit.code().unwrap_or(-1);
        if code != 0 {
            let signal_hint = if code > 128 {
                format!(
                    " (128 + {}: perhaps signal {} in a wrapper shell)",
                    code - 128,
                    code - 128
                )
            } else {
                String::new()
            };
            let message = format!(
                "{who}: exited with code {code}{signal_hint} ({logs}){}",
                self.stderr_tail()
            );
            return done(Status::Failed, Some(message), partial);
        }
        let metrics = match scanned {
            Ok(m) => m,
            Err(why) => {
                return done(
                    Status::Failed,
                    Some(format!("{who}: {why} ({logs})")),
                    Scan::empty(),
                )
            }
        };
        if metrics.epochs == 0 {
            let message = format!(
                "{who}: exited 0 but wrote no metrics for epochs >= 1 to $SWEEP_METRICS ({logs}){}",
                self.stderr_tail()
            );
            return done(Status::Failed, Some(message), metrics);
        }
        let metric = &self.spec.metric;
        let Some(value) = metrics.last(metric) else {
            let message = format!(
                "{who}: its metrics never report \"{metric}\", which decides the outcome ({logs})"
            );
            return done(Status::Failed, Some(message), metrics);
        };
        let status = if metrics.diverged || !value.is_finite() {
            Status::Diverged
        } else if self.bound().is_some_and(|b| b.holds(value)) {
            Status::Converged
        } else {
            Status::NotConverged
        };
        done(status, None, metrics)
    }

    /// What the judged metric must meet to count as converged: the config's threshold, else
    /// `train_mse` within `(1 + converge_tol)` of the OLS MSE.
    fn bound(&self) -> Option<Bound> {
        self.spec.converged.or_else(|| {
            let (prep, _) = self.data.as_ref()?;
            Some(Bound::AtMost(
                (1.0 + self.run.settings.converge_tol) * prep.reference.fit.mse,
            ))
        })
    }

    /// How the run's metrics file is read.
    fn reading(&self) -> metrics::Reading<'_> {
        metrics::Reading {
            max_epoch: self.run.settings.epochs,
            r2_from: self
                .data
                .as_ref()
                .map(|(prep, _)| (prep.n() as f64, prep.sst)),
            metric: &self.spec.metric,
            bound: self.bound(),
        }
    }

    /// The outcome (its epochs stay in the metrics file), and the process facts.
    fn outcome(
        &self,
        status: Status,
        message: Option<String>,
        exit: Option<&process::Exit>,
        scan: Scan,
        argv_record: &str,
    ) -> Finished {
        let epochs =
            (scan.epochs > 0).then(|| MetricsFile::of(self.metrics_path(), self.reading(), &scan));
        let outcome = RunOutcome {
            status,
            message,
            epochs: Vec::new(),
            initial_train_mse: scan.initial_train_mse,
            params: Vec::new(),
            weights: Vec::new(),
            process: Some(ProcessFacts {
                exit_code: exit.and_then(|e| e.code()).map(i64::from),
                signal: exit.and_then(|e| e.signal()).map(i64::from),
                argv: argv_record.to_string(),
                attempt: self.attempt,
            }),
        };
        Finished {
            outcome,
            scan,
            epochs,
        }
    }
}

/// Checks that the program resolves to an executable file in the runs' environment: a path
/// (relative to `workdir`), or a name on `PATH` (the `env` table's, else sweep's own).
pub fn check_program(spec: &CommandSpec) -> std::result::Result<(), String> {
    let Some(program) = spec.program() else {
        return Ok(());
    };
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = spec.workdir.join(program);
        return if executable(&path) {
            Ok(())
        } else {
            Err(format!(
                "command.argv: the program {} is not an executable file (relative paths start at workdir {})",
                path.display(),
                spec.workdir.display()
            ))
        };
    }
    let path_var = spec
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default();
    if std::env::split_paths(&path_var).any(|dir| executable(&dir.join(program))) {
        Ok(())
    } else {
        Err(format!(
            "command.argv: the program \"{program}\" is not found on PATH ({path_var}); give its path, or set \
             PATH in [command] env"
        ))
    }
}
