//! `sweep`: parallel, deterministic ablation sweeps of SGD-trained linear regression against an
//! exact least-squares reference. The data flow runs one way, one module per stage:
//! `config` (TOML to validated runs) -> `data` (generate or read) -> `linalg` / `preprocess`
//! (OLS reference, whitening, target normalization; once per variant) -> `train` (one run) ->
//! `sweep` (rayon over runs) -> `results` (Parquet tables). `cli` is the command line.

pub mod cli;
pub mod config;
pub mod data;
pub mod dd;
pub mod error;
pub mod linalg;
pub mod nist;
pub mod ols;
pub mod persist;
pub mod plot;
pub mod preprocess;
pub mod report;
pub mod results;
pub mod rng;
pub mod scenarios;
pub mod spectral;
pub mod sweep;
pub mod table;
pub mod train;
pub mod verdict;

/// The tool's version, written into every table's metadata.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
