//! The SGD loop of one run, compiled once per SIMD level (the `train_*` functions differ only in
//! the instruction set they enable; the body is the same inlined code, so they give the same bits).
//!
//! Each step makes one fused pass per minibatch row (prediction, then the row's gradient added)
//! and one pass over the parameters for the update, which also yields the new weight norm. At
//! batch size 1 with plain SGD the gradient is `2 r (x, 1) + wd (w, 0)`, so its norm follows from
//! `|x|^2` (computed once per data set), `w . x` and `|w|^2` with no pass at all, and the update is
//! a single scaled axpy. The per-epoch train MSE is a full pass, one dot product per row in row
//! order. (The exact identity `MSE(theta) = MSE_ols + (theta - theta_ols)' G (theta - theta_ols)`
//! would skip that pass, but evaluated in f64 it loses about six digits on the un-whitened,
//! ill-conditioned design, so the pass stays.) Rows are prefetched a few steps ahead, since the
//! epoch visits them in a random order.

use super::init::{initial_params, shuffle_epoch};
use super::kernel::{axpy, axpy_norm2, dot, norm2, prefetch, scale_axpy_norm2};
use super::optimizer::OptimizerState;
use super::{EpochStats, RunOutcome, Status, DIVERGENCE_FACTOR};
use crate::config::{Optimizer, TrainSettings};
use crate::preprocess::Prepared;
use crate::rng;

/// How many rows ahead of use a row is prefetched.
const PREFETCH_AHEAD: usize = 4;

/// A run ready to train: settings, data, and the buffers allocated once.
pub struct Run<'a> {
    s: &'a TrainSettings,
    prep: &'a Prepared,
    params: Vec<f64>,
    grad: Vec<f64>,
    optimizer: OptimizerState,
    perm: Vec<u32>,
    shuffle: rand_chacha::ChaCha8Rng,
}

impl<'a> Run<'a> {
    pub fn new(s: &'a TrainSettings, prep: &'a Prepared, sweep_seed: u64) -> Run<'a> {
        let (n, d) = (prep.n(), prep.d());
        Run {
            s,
            prep,
            params: initial_params(s, prep, sweep_seed),
            grad: vec![0.0; d + 1],
            optimizer: OptimizerState::new(s.optimizer, s.momentum, d + 1),
            perm: (0..n as u32).collect(),
            shuffle: rng::stream(sweep_seed, s.seed, "shuffle"),
        }
    }
}

/// Sums over the steps of one epoch.
#[derive(Default)]
struct EpochSums {
    weight_norm: f64,
    prediction: f64,
    loss: f64,
    gradient_norm: f64,
    steps: usize,
    clipped: usize,
    /// A loss or gradient norm was not finite: the run stops.
    blew_up: bool,
}

/// What one step reports.
struct Step {
    /// Sum of squared residuals and of predictions over the minibatch (training units).
    loss: f64,
    prediction: f64,
    rows: usize,
    gradient_norm: f64,
    clipped: bool,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,fma")]
pub unsafe fn train_avx512(run: Run) -> RunOutcome {
    train_body(run)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn train_avx2(run: Run) -> RunOutcome {
    train_body(run)
}

pub fn train_portable(run: Run) -> RunOutcome {
    train_body(run)
}

#[inline(always)]
fn train_body(mut run: Run) -> RunOutcome {
    let (s, prep) = (run.s, run.prep);
    let initial_train_mse = train_mse(&run).0;
    let mut weight_norm2 = norm2(&run.params[..prep.d()]);
    let mut epochs = Vec::with_capacity(s.epochs as usize);
    let mut status = Status::NotConverged;
    for epoch in 1..=s.epochs {
        shuffle_epoch(&mut run.perm, &mut run.shuffle);
        let sums = run_epoch(&mut run, &mut weight_norm2);
        let (train_mse, train_r2) = train_mse(&run);
        let k = sums.steps as f64;
        let (weight_norm, gradient_norm) = (sums.weight_norm / k, sums.gradient_norm / k);
        epochs.push(EpochStats {
            epoch,
            weight_norm,
            prediction: sums.prediction / k,
            loss: sums.loss / k,
            gradient_norm,
            update_ratio: s.learning_rate * gradient_norm / weight_norm,
            clipped_fraction: sums.clipped as f64 / k,
            train_mse,
            train_r2,
        });
        if sums.blew_up
            || !train_mse.is_finite()
            || train_mse > DIVERGENCE_FACTOR * initial_train_mse
        {
            status = Status::Diverged;
            break;
        }
    }
    if status != Status::Diverged {
        let bound = (1.0 + s.converge_tol) * prep.reference.fit.mse;
        if epochs.last().is_some_and(|e| e.train_mse <= bound) {
            status = Status::Converged;
        }
    }
    let weights = prep.weights_in_feature_units(&run.params[..prep.d()]);
    RunOutcome {
        status,
        message: None,
        epochs,
        initial_train_mse,
        params: run.params,
        weights,
    }
}

/// Train MSE and R² in original units, by a pass over every row (one dot product each).
#[inline(always)]
fn train_mse(run: &Run) -> (f64, f64) {
    full_pass(run.prep, &run.params)
}

/// [`train_mse`] of any parameters; the same bits at every SIMD level.
#[inline(always)]
pub fn full_pass(prep: &Prepared, params: &[f64]) -> (f64, f64) {
    let d = prep.d();
    let (w, b) = params.split_at(d);
    let mut sse = 0.0;
    for (row, y) in prep.x.chunks_exact(d).zip(prep.data.y.iter()) {
        let prediction = (dot(w, row) + b[0]).mul_add(prep.y_scale, prep.y_mean);
        let r = prediction - y;
        sse = r.mul_add(r, sse);
    }
    (sse / prep.n() as f64, 1.0 - sse / prep.sst)
}

/// One epoch over the shuffled rows; `weight_norm2` carries `|w|^2` from step to step.
#[inline(always)]
fn run_epoch(run: &mut Run, weight_norm2: &mut f64) -> EpochSums {
    let (s, prep) = (run.s, run.prep);
    let n = prep.n();
    let batch = (s.batch_size as usize).min(n);
    let fast = batch == 1 && s.optimizer == Optimizer::Sgd;
    let mut sums = EpochSums::default();
    let mut start = 0;
    while start < n {
        let end = (start + batch).min(n);
        let weight_norm = weight_norm2.sqrt();
        let step = if fast {
            prefetch_ahead(&run.perm, prep, start);
            single_row_step(run, run.perm[start] as usize, weight_norm2)
        } else {
            minibatch_step(run, start, end, weight_norm2)
        };
        let m = step.rows as f64;
        sums.steps += 1;
        sums.weight_norm += weight_norm;
        sums.prediction += (step.prediction / m) * prep.y_scale + prep.y_mean;
        sums.loss += step.loss / m;
        sums.gradient_norm += step.gradient_norm;
        sums.clipped += usize::from(step.clipped);
        if !(step.loss.is_finite() && step.gradient_norm.is_finite()) {
            sums.blew_up = true;
            break;
        }
        start = end;
    }
    sums
}

/// Prefetches the row the epoch visits [`PREFETCH_AHEAD`] positions after `position`.
#[inline(always)]
fn prefetch_ahead(perm: &[u32], prep: &Prepared, position: usize) {
    if let Some(&ahead) = perm.get(position + PREFETCH_AHEAD) {
        prefetch(prep.row(ahead as usize));
    }
}

/// The clipping factor for a gradient norm (1 when not clipping).
#[inline(always)]
fn clip_factor(s: &TrainSettings, gradient_norm: f64) -> (f64, bool) {
    if s.clip && gradient_norm > s.clip_norm {
        (s.clip_norm / gradient_norm, true)
    } else {
        (1.0, false)
    }
}

/// Plain SGD on one row: the gradient `2 r (x, 1) + wd (w, 0)` is never formed.
#[inline(always)]
fn single_row_step(run: &mut Run, i: usize, weight_norm2: &mut f64) -> Step {
    let (s, prep) = (run.s, run.prep);
    let d = prep.d();
    let x = prep.row(i);
    let (w, b) = run.params.split_at_mut(d);
    let wx = dot(w, x);
    let prediction = wx + b[0];
    let r = prediction - prep.y[i];
    let wd = s.weight_decay;
    // |g|^2 = 4 r^2 (|x|^2 + 1) + 4 r wd (w . x) + wd^2 |w|^2.
    let two_r = 2.0 * r;
    let norm2 = (two_r * two_r).mul_add(
        prep.row_norm2[i] + 1.0,
        (2.0 * two_r * wd).mul_add(wx, wd * wd * *weight_norm2),
    );
    let gradient_norm = norm2.max(0.0).sqrt();
    let (factor, clipped) = clip_factor(s, gradient_norm);
    let step = s.learning_rate * factor;
    *weight_norm2 = if wd == 0.0 {
        axpy_norm2(w, -step * two_r, x)
    } else {
        scale_axpy_norm2(w, (-step).mul_add(wd, 1.0), -step * two_r, x)
    };
    b[0] = (-step).mul_add(two_r, b[0]);
    Step {
        loss: r * r,
        prediction,
        rows: 1,
        gradient_norm,
        clipped,
    }
}

/// Any optimizer, any batch: accumulate the minibatch gradient, clip, step.
#[inline(always)]
fn minibatch_step(run: &mut Run, start: usize, end: usize, weight_norm2: &mut f64) -> Step {
    let (s, prep) = (run.s, run.prep);
    let d = prep.d();
    run.grad.fill(0.0);
    let (gw, gb) = run.grad.split_at_mut(d);
    let (w, b) = run.params.split_at(d);
    let (mut loss, mut prediction, mut residual_sum) = (0.0, 0.0, 0.0);
    for position in start..end {
        prefetch_ahead(&run.perm, prep, position);
        let i = run.perm[position];
        let x = prep.row(i as usize);
        let p = dot(w, x) + b[0];
        let r = p - prep.y[i as usize];
        loss = r.mul_add(r, loss);
        prediction += p;
        residual_sum += r;
        axpy(gw, r, x);
    }
    let rows = end - start;
    let scale = 2.0 / rows as f64;
    for (g, wj) in gw.iter_mut().zip(w) {
        *g = g.mul_add(scale, s.weight_decay * wj);
    }
    gb[0] = residual_sum * scale;
    let gradient_norm = norm2(&run.grad).sqrt();
    let (factor, clipped) = clip_factor(s, gradient_norm);
    if clipped {
        run.grad.iter_mut().for_each(|g| *g *= factor);
    }
    *weight_norm2 = run
        .optimizer
        .step(&mut run.params, &run.grad, s.learning_rate, d);
    Step {
        loss,
        prediction,
        rows,
        gradient_norm,
        clipped,
    }
}
