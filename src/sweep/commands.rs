//! Running a command sweep: the data handed to the scripts (`SWEEP_DATA`), written once per
//! preprocessing variant into `OUT/data/`; then the runs on `jobs` threads of their own (not
//! rayon's pool: a thread waiting an hour on a child would be lost to it), each run's process
//! watched by one [`Supervisor`]. A run is saved only once its process has ended and its
//! metrics were read; after a stop signal no run is saved and the sweep ends with 128 + N.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};

use indicatif::ProgressBar;

use super::persist::{Epochs, Store};
use crate::command::{Launch, Supervisor};
use crate::config::{CommandSpec, RunSpec, Sweep};
use crate::error::{Error, Result};
use crate::preprocess::{PrepKey, Prepare, Prepared};
use crate::results::{self, RunRow};

/// The folder of the data files handed to command runs.
pub const DATA_DIR: &str = "data";
/// The folder of the command runs' own folders.
pub const RUNS_DIR: &str = "runs";

/// Writes the data file of every preprocessing variant the runs use (once: a file that is
/// there already, from an earlier invocation or another shard, is the same data).
pub fn write_data_files(out: &Path, runs: &[&RunSpec], prepared: &Prepare) -> Result<()> {
    if prepared.variants.is_empty() {
        return Ok(()); // no data set: `source = "none"`
    }
    let dir = out.join(DATA_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut keys: Vec<PrepKey> = runs.iter().map(|r| PrepKey::of(r)).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let path = data_file(out, &key);
        if path.exists() {
            continue;
        }
        let prep = &prepared.variants[&key];
        let mut frame = training_frame(prep)?;
        results::write_parquet_new(&path, &mut frame, &[])?;
    }
    Ok(())
}

/// The data file a run trains on (see [`data_file`]).
pub(super) fn data_file_of(out: &Path, run: &RunSpec) -> PathBuf {
    data_file(out, &PrepKey::of(run))
}

/// `OUT/data/<variant>.parquet`, named by what distinguishes the variant.
fn data_file(out: &Path, key: &PrepKey) -> PathBuf {
    let seed = key
        .data_seed
        .map_or("file".to_string(), |s| format!("seed{s}"));
    let eps = f64::from_bits(key.whiten_eps_bits);
    let normalized = if key.normalize_target {
        "normalized"
    } else {
        "original"
    };
    let name = format!(
        "{seed}-{}-eps{eps:e}-{normalized}.parquet",
        key.whiten.as_str()
    );
    out.join(DATA_DIR).join(name)
}

/// The data as a run trains on it: the training features (whitened when whitening) in order,
/// then the training target (normalized when normalizing), f64, named as `sweep data` names them.
fn training_frame(prep: &Prepared) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::Column;
    let (n, d) = (prep.n(), prep.d());
    let mut columns: Vec<Column> = (0..d)
        .map(|j| {
            let values: Vec<f64> = (0..n).map(|i| prep.row(i)[j]).collect();
            Column::new(prep.data.feature_names[j].as_str().into(), values)
        })
        .collect();
    columns.push(Column::new(
        prep.data.target_name.as_str().into(),
        prep.y.to_vec(),
    ));
    results::frame(columns)
}

/// What the command runs share.
pub struct CommandExecution<'a> {
    pub sweep: &'a Sweep,
    pub spec: &'a CommandSpec,
    pub prepared: &'a Prepare,
    pub store: &'a Store,
    pub out: &'a Path,
    /// The attempt of each run retried (`--retry-failed`); every other run's is 1.
    pub attempts: &'a BTreeMap<String, u32>,
}

/// The GPU slots of `gpus`: each index into the inherited `CUDA_VISIBLE_DEVICES` (the index
/// itself when that is not set).
pub fn gpu_slots(spec: &CommandSpec) -> Result<Vec<String>> {
    let inherited = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let devices: Option<Vec<&str>> = inherited
        .as_deref()
        .map(|v| v.split(',').map(str::trim).collect());
    spec.gpus
        .iter()
        .map(|&g| match &devices {
            None => Ok(g.to_string()),
            Some(list) => list.get(g as usize).map(|d| d.to_string()).ok_or_else(|| {
                Error::Config(format!(
                    "command.gpus: index {g} is not accepted: the inherited CUDA_VISIBLE_DEVICES={} has {} device(s), \
                     so the indices are 0..{}",
                    inherited.as_deref().unwrap_or(""),
                    list.len(),
                    list.len()
                ))
            }),
        })
        .collect()
}

/// The free GPU slots; a run takes one before it starts and gives it back when it ended.
struct Slots {
    free: Mutex<Vec<String>>,
    returned: Condvar,
}

impl Slots {
    fn take(&self) -> String {
        let mut free = self.free.lock().expect("not poisoned");
        loop {
            if let Some(slot) = free.pop() {
                return slot;
            }
            free = self.returned.wait(free).expect("not poisoned");
        }
    }

    fn give_back(&self, slot: String) {
        self.free.lock().expect("not poisoned").insert(0, slot);
        self.returned.notify_one();
    }
}

/// `fail_fast`: how many runs have finished, how many of the first `k` failed, and the first
/// failure's message.
#[derive(Default)]
struct FailFast {
    finished: usize,
    failed: usize,
    first: Option<String>,
}

impl FailFast {
    /// Counts a finished run; true when it makes the first `k` runs to finish all failures.
    fn count(&mut self, run: &RunRow, k: usize) -> bool {
        self.finished += 1;
        if self.finished > k || !run.status.incomplete() {
            return false;
        }
        self.failed += 1;
        self.first
            .get_or_insert_with(|| run.message.clone().unwrap_or_default());
        self.failed == k
    }
}

impl CommandExecution<'_> {
    /// Runs `runs` on `jobs` threads, saving each finished run; `bar` counts runs.
    pub fn run_all(&self, runs: &[&RunSpec], jobs: usize, bar: &ProgressBar) -> Result<()> {
        let slots = Slots {
            free: Mutex::new(gpu_slots(self.spec)?.into_iter().rev().collect()),
            returned: Condvar::new(),
        };
        let with_gpus = !self.spec.gpus.is_empty();
        let fail_fast = Mutex::new(FailFast::default());
        let supervisor: Arc<Supervisor> = Supervisor::start()
            .map_err(|e| Error::Tool(format!("cannot watch the command runs: {e}")))?;
        let out =
            std::path::absolute(self.out).map_err(|e| Error::io("the output folder's path", e))?;
        let next = AtomicUsize::new(0);
        let saved = std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = mpsc::channel::<(RunRow, Epochs)>();
            let writer = scope.spawn(|| super::execute::save_as_they_finish(self.store, rx));
            for _ in 0..jobs.max(1) {
                let tx = tx.clone();
                let (supervisor, next, out, slots, fail_fast) =
                    (&supervisor, &next, &out, &slots, &fail_fast);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= runs.len() || supervisor.stopping() {
                        break;
                    }
                    let gpu = with_gpus.then(|| slots.take());
                    let item = self.run_one(runs[i], out, gpu.as_deref(), supervisor, bar);
                    if let Some(slot) = gpu {
                        slots.give_back(slot);
                    }
                    let Some(item) = item else { continue };
                    if let Some(k) = self.spec.fail_fast {
                        let mut state = fail_fast.lock().expect("not poisoned");
                        if state.count(&item.0, k as usize) {
                            supervisor.abort();
                        }
                    }
                    // A send fails only when the writer stopped on an error, which join reports.
                    let _ = tx.send(item);
                    bar.inc(1);
                });
            }
            drop(tx);
            writer.join().unwrap_or_else(|_| {
                Err(Error::Tool(
                    "the thread saving finished runs panicked".into(),
                ))
            })
        });
        supervisor.finish();
        let state = fail_fast.into_inner().expect("not poisoned");
        if let (Some(k), Some(first), None) =
            (self.spec.fail_fast, &state.first, supervisor.stop_signal())
        {
            if state.failed == k as usize {
                saved?;
                return Err(Error::FailFast(format!(
                    "fail_fast: the first {k} runs to finish all failed, so the sweep stopped (the runs still \
                     running were ended and not saved; the saved runs are kept and no table was written). The \
                     first failure: {first}"
                )));
            }
        }
        if let Some(signal) = supervisor.stop_signal() {
            return Err(Error::Stopped {
                signal,
                message: format!(
                    "stopped by signal {signal}: the running commands were ended and not saved; the runs saved \
                     before are kept, and a rerun of the same command resumes"
                ),
            });
        }
        saved
    }

    /// One run to its row, or `None` when sweep is stopping.
    fn run_one(
        &self,
        run: &RunSpec,
        out: &Path,
        gpu: Option<&str>,
        supervisor: &Supervisor,
        bar: &ProgressBar,
    ) -> Option<(RunRow, Epochs)> {
        let prep = self.prepared.get(run).map(|p| &**p);
        let attempt = self.attempts.get(&run.id).copied().unwrap_or(1);
        let launch = Launch {
            spec: self.spec,
            run,
            sweep_seed: self.sweep.seed,
            attempt,
            run_dir: out
                .join(RUNS_DIR)
                .join(&run.id)
                .join(format!("attempt-{attempt}")),
            out,
            data: prep.map(|p| (p, data_file_of(out, run))),
            gpu,
        };
        let finished = launch.run(supervisor)?;
        if let Some(message) = &finished.outcome.message {
            bar.suspend(|| eprintln!("{message}"));
        }
        let scenario = run.scenario.map(|i| self.sweep.scenarios[i].name.as_str());
        let row = RunRow::of_command(run, scenario, prep, &finished.outcome, &finished.scan);
        let epochs = finished
            .epochs
            .map_or(Epochs::Held(Vec::new()), Epochs::Metrics);
        Some((row, epochs))
    }
}

/// The SHA-256 of each of a command sweep's `inputs` (a file that cannot be read: `unreadable`).
pub fn input_hashes(sweep: &Sweep) -> BTreeMap<String, String> {
    let Some(command) = &sweep.command else {
        return BTreeMap::new();
    };
    command
        .inputs
        .iter()
        .map(|path| {
            let hash = crate::config::hex_sha256_of_file(path)
                .unwrap_or_else(|_| "unreadable".to_string());
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            (path.display().to_string(), hash)
        })
        .collect()
}

/// Says on stderr which inputs changed since the folder began: its runs may then mix two
/// versions of the script (the run ids do not hold the inputs' contents).
pub(super) fn report_changed_inputs(
    earlier: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) {
    for (path, hash) in now {
        match earlier.get(path) {
            Some(before) if before != hash => eprintln!(
                "warning: input {path} changed since this folder began (SHA-256 {} then, {} now): the runs saved                  before ran the earlier version; rerun with --fresh to run every run on this one",
                &before[..before.len().min(16)],
                &hash[..hash.len().min(16)]
            ),
            None => eprintln!("warning: input {path} was not an input when this folder began"),
            _ => {}
        }
    }
}
