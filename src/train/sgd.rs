//! The SGD loop, compiled once per SIMD level (the `train_*` functions differ only in the
//! instruction set they enable; the body is the same inlined code, so they give the same bits).
//!
//! It trains a group of runs together: runs on the same training features with the same batch
//! size, seed and epochs see the same rows in the same order, so each row is loaded once per step
//! for all of them. Each run keeps its own parameters and does exactly the arithmetic it would do
//! alone, in the same order, so a grouped run gives the same bits as the run alone; a run alone is
//! a group of one.
//!
//! Each step makes one fused pass per minibatch row (prediction, then the row's gradient added)
//! and one pass over the parameters for the update, which also yields the new weight norm. At
//! batch size 1 with plain SGD the gradient is `2 r (x, 1) + wd (w, 0)`, so its norm follows from
//! `|x|^2` (computed once per data set), `w . x` and `|w|^2` with no pass at all, and the update is
//! a single scaled axpy. The per-epoch train MSE is a full pass, one dot product per row and run.
//! (The exact identity `MSE(theta) = MSE_ols + (theta - theta_ols)' G (theta - theta_ols)` would
//! skip that pass, but evaluated in f64 it loses about six digits on the un-whitened,
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

/// One run of a group: settings, data, state, and what it has recorded so far.
pub struct Member<'a> {
    s: &'a TrainSettings,
    prep: &'a Prepared,
    params: Vec<f64>,
    grad: Vec<f64>,
    optimizer: OptimizerState,
    /// `|w|^2` of the current weights.
    weight_norm2: f64,
    /// Plain SGD at batch size 1: the gradient is never formed.
    single_row: bool,
    sums: EpochSums,
    minibatch: Minibatch,
    initial_train_mse: f64,
    epochs: Vec<EpochStats>,
    /// Diverged: takes no more steps.
    diverged: bool,
}

/// Runs that train together, and their shared row order.
pub struct Group<'a> {
    members: Vec<Member<'a>>,
    epochs: u32,
    batch: usize,
    perm: Vec<u32>,
    shuffle: rand_chacha::ChaCha8Rng,
}

impl<'a> Group<'a> {
    /// A group of runs; all must share the training features, batch size, seed and epochs
    /// (checked: a mismatch is a bug of the caller). Inlined into the `train_*` functions, so that
    /// the initial full passes run at their SIMD level too.
    #[inline(always)]
    pub fn new(runs: &[(&'a TrainSettings, &'a Prepared)], sweep_seed: u64) -> Group<'a> {
        let (s0, p0) = runs[0];
        for (s, p) in runs {
            assert!(
                std::ptr::eq(p.x.as_ptr(), p0.x.as_ptr())
                    && s.batch_size == s0.batch_size
                    && s.seed == s0.seed
                    && s.epochs == s0.epochs,
                "runs grouped together must share features, batch size, seed and epochs"
            );
        }
        let n = p0.n();
        // A loop, not `map`: a closure would be compiled without the caller's target features.
        let mut members = Vec::with_capacity(runs.len());
        for (s, p) in runs {
            members.push(Member::new(s, p, sweep_seed));
        }
        Group {
            members,
            epochs: s0.epochs,
            batch: (s0.batch_size as usize).min(n),
            perm: (0..n as u32).collect(),
            shuffle: rng::stream(sweep_seed, s0.seed, "shuffle"),
        }
    }
}

impl<'a> Member<'a> {
    #[inline(always)]
    fn new(s: &'a TrainSettings, prep: &'a Prepared, sweep_seed: u64) -> Member<'a> {
        let d = prep.d();
        let params = initial_params(s, prep, sweep_seed);
        Member {
            s,
            prep,
            weight_norm2: norm2(&params[..d]),
            initial_train_mse: full_pass(prep, &params).0,
            params,
            grad: vec![0.0; d + 1],
            optimizer: OptimizerState::new(s.optimizer, s.momentum, d + 1),
            single_row: s.batch_size == 1 && s.optimizer == Optimizer::Sgd,
            sums: EpochSums::default(),
            minibatch: Minibatch::default(),
            epochs: Vec::with_capacity(s.epochs as usize),
            diverged: false,
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
    /// A loss or gradient norm was not finite: the run stops at the end of this epoch.
    blew_up: bool,
}

/// Sums over the rows of the current minibatch (training units).
#[derive(Default)]
struct Minibatch {
    loss: f64,
    prediction: f64,
    residual_sum: f64,
    rows: usize,
    /// `|w|` at the start of the step.
    weight_norm: f64,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,fma")]
pub unsafe fn train_avx512(runs: &[(&TrainSettings, &Prepared)], sweep_seed: u64) -> Vec<RunOutcome> {
    train_body(Group::new(runs, sweep_seed))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn train_avx2(runs: &[(&TrainSettings, &Prepared)], sweep_seed: u64) -> Vec<RunOutcome> {
    train_body(Group::new(runs, sweep_seed))
}

pub fn train_portable(runs: &[(&TrainSettings, &Prepared)], sweep_seed: u64) -> Vec<RunOutcome> {
    train_body(Group::new(runs, sweep_seed))
}

#[inline(always)]
fn train_body(mut group: Group) -> Vec<RunOutcome> {
    for epoch in 1..=group.epochs {
        if group.members.iter().all(|m| m.diverged) {
            break;
        }
        shuffle_epoch(&mut group.perm, &mut group.shuffle);
        run_epoch(&mut group);
        let mse = full_passes(&group.members);
        for (member, mse) in group.members.iter_mut().zip(mse) {
            if let Some(mse) = mse {
                member.end_epoch(epoch, mse);
            }
        }
    }
    group.members.into_iter().map(Member::outcome).collect()
}

/// One epoch of every member still training, minibatch by minibatch.
#[inline(always)]
fn run_epoch(group: &mut Group) {
    let n = group.perm.len();
    let prep = group.members[0].prep;
    let mut start = 0;
    while start < n {
        let end = (start + group.batch).min(n);
        let active = |m: &Member| !m.diverged && !m.sums.blew_up;
        for member in group.members.iter_mut().filter(|m| active(m)) {
            member.begin_step();
        }
        for position in start..end {
            if let Some(&ahead) = group.perm.get(position + PREFETCH_AHEAD) {
                prefetch(prep.row(ahead as usize));
            }
            let i = group.perm[position] as usize;
            for member in group.members.iter_mut().filter(|m| active(m)) {
                if member.single_row {
                    member.single_row_step(i);
                } else {
                    member.accumulate_row(i);
                }
            }
        }
        for member in group.members.iter_mut().filter(|m| active(m)) {
            if !member.single_row {
                member.finish_minibatch();
            }
        }
        start = end;
    }
}

impl Member<'_> {
    #[inline(always)]
    fn begin_step(&mut self) {
        self.minibatch = Minibatch {
            weight_norm: self.weight_norm2.sqrt(),
            ..Minibatch::default()
        };
        if !self.single_row {
            self.grad.fill(0.0);
        }
    }

    /// Records a finished step in the epoch's sums.
    #[inline(always)]
    fn record_step(&mut self, gradient_norm: f64, clipped: bool) {
        let (prep, batch) = (self.prep, &self.minibatch);
        let m = batch.rows as f64;
        let sums = &mut self.sums;
        sums.steps += 1;
        sums.weight_norm += batch.weight_norm;
        sums.prediction += (batch.prediction / m) * prep.y_scale + prep.y_mean;
        sums.loss += batch.loss / m;
        sums.gradient_norm += gradient_norm;
        sums.clipped += usize::from(clipped);
        if !(batch.loss.is_finite() && gradient_norm.is_finite()) {
            sums.blew_up = true;
        }
    }

    /// Plain SGD on one row: the gradient `2 r (x, 1) + wd (w, 0)` is never formed.
    #[inline(always)]
    fn single_row_step(&mut self, i: usize) {
        let (s, prep) = (self.s, self.prep);
        let d = prep.d();
        let x = prep.row(i);
        let (w, b) = self.params.split_at_mut(d);
        let wx = dot(w, x);
        let prediction = wx + b[0];
        let r = prediction - prep.y[i];
        let wd = s.weight_decay;
        // |g|^2 = 4 r^2 (|x|^2 + 1) + 4 r wd (w . x) + wd^2 |w|^2.
        let two_r = 2.0 * r;
        let norm2 = (two_r * two_r).mul_add(
            prep.row_norm2[i] + 1.0,
            (2.0 * two_r * wd).mul_add(wx, wd * wd * self.weight_norm2),
        );
        let gradient_norm = norm2.max(0.0).sqrt();
        let (factor, clipped) = clip_factor(s, gradient_norm);
        let step = s.learning_rate * factor;
        self.weight_norm2 = if wd == 0.0 {
            axpy_norm2(w, -step * two_r, x)
        } else {
            scale_axpy_norm2(w, (-step).mul_add(wd, 1.0), -step * two_r, x)
        };
        b[0] = (-step).mul_add(two_r, b[0]);
        self.minibatch.loss = r * r;
        self.minibatch.prediction = prediction;
        self.minibatch.rows = 1;
        self.record_step(gradient_norm, clipped);
    }

    /// Adds one row's prediction, residual and gradient to the minibatch.
    #[inline(always)]
    fn accumulate_row(&mut self, i: usize) {
        let prep = self.prep;
        let d = prep.d();
        let x = prep.row(i);
        let (w, b) = self.params.split_at(d);
        let p = dot(w, x) + b[0];
        let r = p - prep.y[i];
        let batch = &mut self.minibatch;
        batch.loss = r.mul_add(r, batch.loss);
        batch.prediction += p;
        batch.residual_sum += r;
        batch.rows += 1;
        axpy(&mut self.grad[..d], r, x);
    }

    /// Any optimizer, any batch: scale the accumulated gradient, clip, step.
    #[inline(always)]
    fn finish_minibatch(&mut self) {
        let (s, d) = (self.s, self.prep.d());
        let (gw, gb) = self.grad.split_at_mut(d);
        let scale = 2.0 / self.minibatch.rows as f64;
        for (g, wj) in gw.iter_mut().zip(&self.params[..d]) {
            *g = g.mul_add(scale, s.weight_decay * wj);
        }
        gb[0] = self.minibatch.residual_sum * scale;
        let gradient_norm = norm2(&self.grad).sqrt();
        let (factor, clipped) = clip_factor(s, gradient_norm);
        if clipped {
            self.grad.iter_mut().for_each(|g| *g *= factor);
        }
        self.weight_norm2 = self
            .optimizer
            .step(&mut self.params, &self.grad, s.learning_rate, d);
        self.record_step(gradient_norm, clipped);
    }

    /// The epoch's statistics with its full-pass MSE and R², and the divergence check.
    #[inline(always)]
    fn end_epoch(&mut self, epoch: u32, (train_mse, train_r2): (f64, f64)) {
        let sums = std::mem::take(&mut self.sums);
        let k = sums.steps as f64;
        let (weight_norm, gradient_norm) = (sums.weight_norm / k, sums.gradient_norm / k);
        self.epochs.push(EpochStats {
            epoch,
            weight_norm,
            prediction: sums.prediction / k,
            loss: sums.loss / k,
            gradient_norm,
            update_ratio: self.s.learning_rate * gradient_norm / weight_norm,
            clipped_fraction: sums.clipped as f64 / k,
            train_mse,
            train_r2,
        });
        if sums.blew_up
            || !train_mse.is_finite()
            || train_mse > DIVERGENCE_FACTOR * self.initial_train_mse
        {
            self.diverged = true;
        }
    }

    fn outcome(self) -> RunOutcome {
        let (s, prep) = (self.s, self.prep);
        let status = if self.diverged {
            Status::Diverged
        } else {
            let bound = (1.0 + s.converge_tol) * prep.reference.fit.mse;
            if self.epochs.last().is_some_and(|e| e.train_mse <= bound) {
                Status::Converged
            } else {
                Status::NotConverged
            }
        };
        RunOutcome {
            status,
            message: None,
            weights: prep.weights_in_feature_units(&self.params[..prep.d()]),
            epochs: self.epochs,
            initial_train_mse: self.initial_train_mse,
            params: self.params,
        }
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

/// [`full_pass`] of every member still training, in one pass over the rows they share; each
/// member's sums run in row order, as alone. `None` for a member that stopped.
#[inline(always)]
fn full_passes(members: &[Member]) -> Vec<Option<(f64, f64)>> {
    let prep = members[0].prep;
    let d = prep.d();
    let mut sse: Vec<Option<f64>> = members
        .iter()
        .map(|m| (!m.diverged).then_some(0.0))
        .collect();
    for (i, row) in prep.x.chunks_exact(d).enumerate() {
        for (member, sse) in members.iter().zip(sse.iter_mut()) {
            if let Some(sse) = sse {
                *sse = add_squared_error(member.prep, &member.params, row, i, *sse);
            }
        }
    }
    members
        .iter()
        .zip(sse)
        .map(|(m, sse)| sse.map(|sse| mse_and_r2(m.prep, sse)))
        .collect()
}

/// Train MSE and R² in original units of any parameters, by a pass over every row; the same
/// bits at every SIMD level.
#[inline(always)]
pub fn full_pass(prep: &Prepared, params: &[f64]) -> (f64, f64) {
    // A loop, not a closure: a closure would be compiled without the caller's target features.
    let mut sse = 0.0;
    for (i, row) in prep.x.chunks_exact(prep.d()).enumerate() {
        sse = add_squared_error(prep, params, row, i, sse);
    }
    mse_and_r2(prep, sse)
}

/// `sse` plus the squared error, in original units, of row `i` (whose features are `row`).
#[inline(always)]
fn add_squared_error(prep: &Prepared, params: &[f64], row: &[f64], i: usize, sse: f64) -> f64 {
    let (w, b) = params.split_at(prep.d());
    let prediction = (dot(w, row) + b[0]).mul_add(prep.y_scale, prep.y_mean);
    let r = prediction - prep.data.y[i];
    r.mul_add(r, sse)
}

fn mse_and_r2(prep: &Prepared, sse: f64) -> (f64, f64) {
    (sse / prep.n() as f64, 1.0 - sse / prep.sst)
}
