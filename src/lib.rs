//! `sweep`: parallel, deterministic ablation sweeps of SGD-trained linear regression against an
//! exact least-squares reference. This is the one map of the code; modules are listed in the
//! order the data flows through them, and no stage reaches back to an earlier one:
//!
//! - [`config`]: TOML text and `--set` flags in, a validated [`config::Sweep`] out (settings,
//!   data section, grid and run ids, ablation and scenarios, resolved TOML and its hash).
//! - [`data`]: the built-in `lagged-levels` generator or the user's CSV/Parquet file, as a dense
//!   row-major matrix, standardized.
//! - [`reference`]: the exact OLS reference (double-double refinement), the covariance spectrum
//!   and whitening, the NIST StRD check, small vector helpers.
//! - [`preprocess`]: once per variant, the data as runs train on it (whitened features,
//!   normalized target) with the reference in training coordinates.
//! - [`train`]: one run of SGD, momentum or Adam; its initialization, optimizers, statuses and
//!   spectral diagnosis.
//! - [`command`]: beside `train`, one run as the user's own command: argv, `params.json` and
//!   environment, a process group of its own, the metrics file, the same outcome.
//! - [`sweep`]: planning (resume, order, shards), parallel execution with rayon, persistence in
//!   parts, the final tables, and the merge of a sharded sweep.
//! - [`results`]: one row struct per table, each table's schema to and from a DataFrame by
//!   column name, Parquet I/O, aggregation, the verdict and the scenarios.
//! - [`report`]: `sweep report` and `sweep plot`, the figures, and text and Markdown tables.
//! - [`reproduce`]: `sweep reproduce`, a folder or table re-run from the config its metadata
//!   records and compared table by table.
//! - [`cli`]: the command line, and the Slurm and Kubernetes launchers it prints; `main.rs` only
//!   calls it.
//!
//! Shared by several stages: [`error`] (the error type and exit codes), [`outcome`] (what a run
//! produced, whichever engine ran it), [`rng`] (seeded streams), [`simd`] (the run-time SIMD
//! level), [`aligned`] (buffers on a cache line), [`atomic_file`] (files that appear whole) and
//! `enums` (named enums).

mod enums;

pub mod cli;
pub mod command;
pub mod config;
pub mod data;
pub mod preprocess;
pub mod reference;
pub mod report;
pub mod reproduce;
pub mod results;
pub mod sweep;
pub mod train;

pub mod aligned;
pub mod atomic_file;
pub mod error;
pub mod holder;
pub mod outcome;
pub mod rng;
pub mod simd;

/// The tool's version, written into every table's metadata.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The build id: the git commit, plus a hash of uncommitted source changes (`build.rs`).
pub const BUILD: &str = env!("SWEEP_BUILD");

/// The compiler, target triple and the faer and polars versions of this build (`build.rs`).
pub const RUSTC: &str = env!("SWEEP_RUSTC");
pub const TARGET: &str = env!("SWEEP_TARGET");
pub const FAER_VERSION: &str = env!("SWEEP_FAER");
pub const POLARS_VERSION: &str = env!("SWEEP_POLARS");

/// The build facts every table's metadata records, as (key, value) pairs.
pub fn build_facts() -> Vec<(String, String)> {
    [
        ("sweep.version", VERSION),
        ("sweep.build", BUILD),
        ("sweep.rustc", RUSTC),
        ("sweep.target", TARGET),
        ("sweep.faer", FAER_VERSION),
        ("sweep.polars", POLARS_VERSION),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The machine's host name (`unknown` when it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// This process's peak resident memory so far in MB, from `/proc/self/status` (`None`
/// elsewhere): `timing.toml` records it after the run phase and at the end.
pub fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The CPU model, from `/proc/cpuinfo` (`unknown` elsewhere): parts record it, since faer's
/// last bits may differ between CPU kinds.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}
