//! One run: minibatch SGD (or momentum, or Adam) on `y' = w'.x' + b'` from a seeded
//! initialization, with per-epoch diagnostics and the final status against the OLS reference.
//!
//! The hot loop works on the shared training matrix in place: the permutation, gradient and
//! optimizer buffers are allocated once per run, nothing per step. Parameters are kept as one
//! vector, weights then bias, so the optimizers and the clipping treat `(w, b)` together.

mod full_pass;
mod gram;
mod init;
mod kernel;
mod member_dots;
mod optimizer;
mod sgd;
mod spectral;

pub use crate::simd::SimdLevel;
pub use gram::{Gram, TargetTerms};
pub use init::{initial_params, shuffle_epoch};
pub use spectral::{diagnose, Diagnosis, SIGNAL_SHARE};

pub use crate::outcome::{epochs_to_converge, EpochStats, RunOutcome, Status};

use crate::config::TrainSettings;
use crate::preprocess::Prepared;

/// Full-pass MSE and R² in original units for training-coordinate parameters, as the training
/// loop computes them every epoch.
pub fn full_pass(prep: &Prepared, params: &[f64]) -> (f64, f64) {
    let (d, stride) = (prep.d(), prep.stride());
    let mut padded = vec![0.0; stride + 1];
    padded[..d].copy_from_slice(&params[..d]);
    padded[stride] = params[d];
    full_pass::full_pass(prep, &padded)
}

/// Train MSE and R² in original units by the exact quadratic identity (see [`Gram`]), as runs
/// whose epochs repay building `G` compute them every epoch.
pub fn identity_train_mse(prep: &Prepared, params: &[f64]) -> (f64, f64) {
    let level = SimdLevel::detect();
    let sse = prep
        .gram(level)
        .sse(prep.target_terms(level), params, prep.y_scale);
    full_pass::mse_and_r2(prep, sse)
}

/// Loss growth factor over the initial train MSE that counts as divergence.
pub const DIVERGENCE_FACTOR: f64 = 1e6;

/// Trains one run to the end (or to divergence), at the widest SIMD level of this CPU.
pub fn train(s: &TrainSettings, prep: &Prepared, sweep_seed: u64) -> RunOutcome {
    train_at(SimdLevel::detect(), s, prep, sweep_seed)
}

/// Trains one run with the loop compiled for `level` (every level gives the same bits).
///
/// # Panics
/// When this CPU cannot run `level` (see [`SimdLevel::is_available`]).
pub fn train_at(
    level: SimdLevel,
    s: &TrainSettings,
    prep: &Prepared,
    sweep_seed: u64,
) -> RunOutcome {
    let mut outcomes = train_group_at(level, &[(s, prep)], sweep_seed);
    outcomes.pop().expect("one run, one outcome")
}

/// Trains runs that share their training features (the same `Prepared::x`), batch size, seed
/// and epochs together, loading each row once per step for all of them; each outcome is
/// bit-identical to the run trained alone.
///
/// # Panics
/// When the runs do not share those, or `runs` is empty.
pub fn train_group(runs: &[(&TrainSettings, &Prepared)], sweep_seed: u64) -> Vec<RunOutcome> {
    train_group_at(SimdLevel::detect(), runs, sweep_seed)
}

fn train_group_at(
    level: SimdLevel,
    runs: &[(&TrainSettings, &Prepared)],
    sweep_seed: u64,
) -> Vec<RunOutcome> {
    assert!(
        level.is_available(),
        "this CPU cannot run SIMD level {level}"
    );
    match level {
        // SAFETY: the CPU supports the level's features (asserted above).
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => unsafe { sgd::train_avx512(runs, sweep_seed) },
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => unsafe { sgd::train_avx2(runs, sweep_seed) },
        _ => sgd::train_portable(runs, sweep_seed),
    }
}
