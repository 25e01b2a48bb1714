//! Running the runs: a rayon pool over the runs left to do (one run per task, faer sequential
//! inside), a progress bar, a panicking run caught as a `failed` row, and a writer thread that
//! saves finished runs in parts as they come.

use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::hooks::TestHooks;
use super::persist::{Epochs, Store};
use crate::config::{RunSpec, Sweep, TrainSettings};
use crate::error::{Error, Result};
use crate::preprocess::{Prepare, Prepared};
use crate::results::RunRow;
use crate::train::{self, RunOutcome, Status};

/// Finished runs per part file, and the longest a finished run waits before it is saved.
pub const PART_RUNS: usize = 64;
pub const PART_SECONDS: Duration = Duration::from_secs(5);

/// A thread pool of `jobs` threads (all cores when `None`).
pub fn pool(jobs: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(j) = jobs {
        builder = builder.num_threads(j);
    }
    builder.build().map_err(|e| {
        Error::Tool(format!(
            "cannot start the thread pool of --jobs threads: {e}"
        ))
    })
}

/// What the workers share.
pub struct Execution<'a> {
    pub sweep: &'a Sweep,
    pub prepared: &'a Prepare,
    pub store: &'a Store,
    pub hooks: &'a TestHooks,
}

impl Execution<'_> {
    /// Runs `groups` on `pool`, saving each finished run; `bar` counts runs.
    pub fn run_all(
        &self,
        pool: &rayon::ThreadPool,
        groups: &[Vec<&RunSpec>],
        bar: &ProgressBar,
    ) -> Result<()> {
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = mpsc::channel::<(RunRow, Epochs)>();
            let writer = scope.spawn(|| save_as_they_finish(self.store, rx));
            pool.install(|| {
                groups
                    .par_iter()
                    .with_max_len(1)
                    .for_each_with(tx, |tx, group| {
                        for item in self.run_group(group) {
                            // A send fails only when the writer stopped on an error, which join reports.
                            let _ = tx.send(item);
                            bar.inc(1);
                        }
                    })
            });
            writer.join().unwrap_or_else(|_| {
                Err(Error::Tool(
                    "the thread saving finished runs panicked".into(),
                ))
            })
        })
    }

    /// Trains one group of runs into their rows and epochs.
    fn run_group(&self, group: &[&RunSpec]) -> Vec<(RunRow, Epochs)> {
        let preps: Vec<&Prepared> = group.iter().map(|r| &**self.prepared.for_run(r)).collect();
        let outcomes = train_catching_panics(group, &preps, self.sweep.seed, self.hooks);
        group
            .iter()
            .zip(&preps)
            .zip(outcomes)
            .map(|((run, prep), outcome)| {
                let scenario = run.scenario.map(|i| self.sweep.scenarios[i].name.as_str());
                (
                    RunRow::new(run, scenario, prep, &outcome),
                    Epochs::Held(outcome.epochs),
                )
            })
            .collect()
    }
}

/// The writer thread: groups finished runs into parts of [`PART_RUNS`], and saves a partial
/// group once its oldest run has waited [`PART_SECONDS`].
pub(super) fn save_as_they_finish(
    store: &Store,
    rx: mpsc::Receiver<(RunRow, Epochs)>,
) -> Result<()> {
    let mut buffer = Vec::new();
    let mut oldest: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(item) => {
                oldest.get_or_insert_with(Instant::now);
                buffer.push(item);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return store.write_part(&buffer),
        }
        if buffer.len() >= PART_RUNS || oldest.is_some_and(|t| t.elapsed() >= PART_SECONDS) {
            store.write_part(&buffer)?;
            buffer.clear();
            oldest = None;
        }
    }
}

/// Trains a group of runs; a panic (a bug) makes every run of the group a `failed` outcome
/// carrying its message.
fn train_catching_panics(
    group: &[&RunSpec],
    preps: &[&Prepared],
    seed: u64,
    hooks: &TestHooks,
) -> Vec<RunOutcome> {
    let train = || {
        if let Some(delay) = hooks.run_delay {
            std::thread::sleep(delay * group.len() as u32);
        }
        if let Some(run) = group.iter().find(|r| hooks.panic_run == Some(r.index)) {
            panic!("injected test panic in run {}", run.index);
        }
        let runs: Vec<(&TrainSettings, &Prepared)> = group
            .iter()
            .zip(preps)
            .map(|(r, p)| (&r.settings, *p))
            .collect();
        train::train_group(&runs, seed)
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(train)) {
        Ok(outcomes) => outcomes,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic with a non-text payload".into());
            preps
                .iter()
                .map(|prep| RunOutcome {
                    status: Status::Failed,
                    message: Some(message.clone()),
                    epochs: Vec::new(),
                    initial_train_mse: f64::NAN,
                    params: Vec::new(),
                    weights: vec![f64::NAN; prep.d()],
                    process: None,
                })
                .collect()
        }
    }
}

/// A progress bar on stderr, hidden with `--quiet` or when stderr is not a terminal.
pub fn progress_bar(total: usize, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style =
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs  elapsed {elapsed}  ETA {eta}")
            .expect("valid template");
    let bar = ProgressBar::new(total as u64).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
