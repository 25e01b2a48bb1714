//! The one integration-test binary: every end-to-end and library-level test, one module per
//! concern, sharing the helpers of `common` (the real binary, Parquet reading, temp files).

mod adaptive;
mod adaptive_rounds;
mod bad_input;
mod cli;
mod command_metrics;
mod command_reproduce;
mod command_resume;
mod command_sweeps;
mod command_verdict;
mod command_without_data;
mod commands;
mod common;
mod config;
mod config_props;
mod data_files;
mod docs;
mod effects;
mod figures;
mod findings;
mod folder_access;
mod numerics;
mod optimizers;
mod reference;
mod reproduce;
mod resume;
mod same_bits;
mod shard;
mod threads;
mod verdict_checks;
mod weight_decay;
