//! The SGD loop, compiled once per SIMD level (the `train_*` functions differ only in the
//! instruction set they enable; the body is the same inlined code, so they give the same bits).
//!
//! It trains a group of runs together: runs on the same training features with the same batch
//! size, seed and epochs see the same rows in the same order, so each row is loaded once per step
//! for all of them. Each run keeps its own parameters and does exactly the arithmetic it would do
//! alone, in the same order, so a grouped run gives the same bits as the run alone; a run alone is
//! a group of one.
//!
//! A minibatch step ([`minibatch`]) takes every row's residual for all members side by side
//! ([`MemberDots`]), then each member's gradient as a sum over the rows by blocks of columns held
//! in registers, scaled and squared into the norm as it is stored, then one pass for clipping and
//! the update, which also yields the new weight norm. At batch size 1 with plain SGD the gradient
//! is `2 r (x, 1) + wd (w, 0)`, so its norm follows from `|x|^2` (computed once per data set),
//! `w . x` and `|w|^2` with no pass at all, and the update is a single scaled axpy; the members of
//! a group take those steps in lockstep ([`single_row`]). The hot kernels are compiled per SIMD
//! level outside this (large) function, where the compiler keeps their sums in registers. The
//! weights are padded with zeros to the stored rows' stride (a multiple of 16 for small data
//! sets), so the kernels run without tails; zero lanes leave every sum's bits as they are. The
//! per-epoch train MSE comes from [`epoch_mse`]: the exact quadratic identity (`O(d^2)` in
//! double-double, no pass over the rows) when the run's epochs repay building `G`, else a full
//! pass. Rows are prefetched a few steps ahead, since the epoch visits them in a random order.
//!
//! The loop is generic over the run's element type ([`Element`]: f64, or f32 for `dtype = "f32"`):
//! features, parameters, gradients and optimizer state are of that type; the per-epoch train MSE
//! widens every value exactly and sums in f64, so reported figures are f64 whatever the type.

use super::init::{initial_params, shuffle_epoch};
use super::kernel::{norm2, prefetch, Real};
use super::member_dots::MemberDots;
use super::optimizer::OptimizerState;
use super::{EpochStats, RunOutcome, Status, DIVERGENCE_FACTOR};
use crate::aligned::{AlignedBuf, Plain};
use crate::config::{DecayOn, Dtype, Optimizer, TrainSettings};
use crate::preprocess::Prepared;
use crate::rng;
use crate::simd::SimdLevel;
use epoch_mse::TrainMse;

mod epoch_mse;
mod minibatch;
mod single_row;

use minibatch::minibatch_steps;
use single_row::single_row_steps;

/// How many rows ahead of use a row is prefetched.
const PREFETCH_AHEAD: usize = 4;

/// The element types a run trains in, and where each finds its training rows.
pub trait Element: MemberDots + Plain {
    /// The training features, row-major, in this type.
    fn rows(prep: &Prepared) -> &[Self];
}

impl Element for f64 {
    #[inline(always)]
    fn rows(prep: &Prepared) -> &[f64] {
        &prep.x
    }
}

impl Element for f32 {
    #[inline(always)]
    fn rows(prep: &Prepared) -> &[f32] {
        prep.x32.as_deref().expect("f32 runs train on f32 features")
    }
}

/// Training row `i` in the run's type.
#[inline(always)]
fn row<T: Element>(prep: &Prepared, i: usize) -> &[T] {
    let stride = prep.stride();
    &T::rows(prep)[i * stride..(i + 1) * stride]
}

/// One run of a group: settings, data, state (in the run's type `T`), and what it has recorded.
pub struct Member<'a, T> {
    s: &'a TrainSettings,
    prep: &'a Prepared,
    /// The weights (padded), then the bias, and the gradient alike: on a cache line, as the rows.
    params: AlignedBuf<T>,
    grad: AlignedBuf<T>,
    optimizer: OptimizerState<T>,
    /// `|w|^2` of the current weights.
    weight_norm2: T,
    /// Plain SGD at batch size 1: the gradient is never formed.
    single_row: bool,
    /// Plain SGD at batch size 1: the next row and its `w . x` with the current weights, taken
    /// during the last step's update.
    wx_ahead: Option<(usize, T)>,
    /// `W W^T` (row-major), when weight decay acts on the feature-unit weights `W^T w'` of a
    /// whitened run: the decay's gradient is `weight_decay W W^T w'`.
    decay_metric: Option<Vec<T>>,
    /// `W W^T w'` of the step's weights, with `decay_metric` (padded to the stride).
    decay_source: Vec<T>,
    sums: EpochSums,
    minibatch: Minibatch<T>,
    initial_train_mse: f64,
    epochs: Vec<EpochStats>,
    /// Diverged: takes no more steps.
    diverged: bool,
}

/// Runs that train together, and their shared row order.
pub struct Group<'a, T> {
    level: SimdLevel,
    members: Vec<Member<'a, T>>,
    train_mse: TrainMse<'a>,
    epochs: u32,
    batch: usize,
    perm: Vec<u32>,
    shuffle: rand_chacha::ChaCha8Rng,
    /// The minibatch step's residuals, for up to four members (sized once).
    residuals: Vec<T>,
}

impl<'a, T: Element> Group<'a, T> {
    /// A group of runs; all must share the training features, batch size, seed and epochs
    /// (checked: a mismatch is a bug of the caller). Inlined into the `train_*` functions, so that
    /// the initial train MSEs (and `G`, when the identity pays off) run at their SIMD level too.
    #[inline(always)]
    pub fn new(
        level: SimdLevel,
        runs: &[(&'a TrainSettings, &'a Prepared)],
        sweep_seed: u64,
    ) -> Group<'a, T> {
        let (s0, p0) = runs[0];
        for (s, p) in runs {
            assert!(
                std::ptr::eq(p.x.as_ptr(), p0.x.as_ptr())
                    && p.dtype() == s.dtype
                    && s.dtype == s0.dtype
                    && s.batch_size == s0.batch_size
                    && s.seed == s0.seed
                    && s.epochs == s0.epochs,
                "runs grouped together must share features, batch size, seed and epochs"
            );
        }
        let n = p0.n();
        let batch = (s0.batch_size as usize).min(n);
        let train_mse = TrainMse::of(level, s0.epochs, p0);
        // A loop, not `map`: a closure would be compiled without the caller's target features.
        let mut members = Vec::with_capacity(runs.len());
        for (s, p) in runs {
            members.push(Member::new(s, p, sweep_seed, &train_mse));
        }
        Group {
            level,
            members,
            train_mse,
            epochs: s0.epochs,
            batch,
            perm: (0..n as u32).collect(),
            residuals: vec![T::ZERO; 4 * batch],
            shuffle: rng::stream(sweep_seed, s0.seed, "shuffle"),
        }
    }
}

impl<'a, T: Element> Member<'a, T> {
    #[inline(always)]
    fn new(
        s: &'a TrainSettings,
        prep: &'a Prepared,
        sweep_seed: u64,
        train_mse: &TrainMse,
    ) -> Member<'a, T> {
        let (d, stride) = (prep.d(), prep.stride());
        // Weights padded with zeros to the rows' stride, then the bias.
        let initial = initial_params(s, prep, sweep_seed);
        let mut params = AlignedBuf::zeroed(stride + 1);
        for (p, v) in params.iter_mut().zip(&initial[..d]) {
            *p = T::of(*v);
        }
        params[stride] = T::of(initial[d]);
        let decay_metric = (s.weight_decay_on == DecayOn::Features && s.weight_decay != 0.0)
            .then(|| prep.decay_metric())
            .flatten()
            .map(|m| m.iter().map(|v| T::of(*v)).collect::<Vec<T>>());
        Member {
            s,
            prep,
            weight_norm2: norm2(&params[..stride]),
            initial_train_mse: train_mse.of_params(prep, &params).0,
            params,
            grad: AlignedBuf::zeroed(stride + 1),
            optimizer: OptimizerState::new(s.optimizer, s.momentum, stride + 1),
            single_row: s.batch_size == 1
                && s.optimizer == Optimizer::Sgd
                && decay_metric.is_none(),
            wx_ahead: None,
            decay_source: vec![T::ZERO; if decay_metric.is_some() { stride } else { 0 }],
            decay_metric,
            sums: EpochSums::default(),
            minibatch: Minibatch::new(T::ZERO),
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

/// Sums over the rows of the current minibatch (training units, the run's type).
struct Minibatch<T> {
    loss: T,
    prediction: T,
    residual_sum: T,
    rows: usize,
    /// `|w|` at the start of the step.
    weight_norm: T,
}

impl<T: Real> Minibatch<T> {
    #[inline(always)]
    fn new(weight_norm: T) -> Minibatch<T> {
        Minibatch {
            loss: T::ZERO,
            prediction: T::ZERO,
            residual_sum: T::ZERO,
            rows: 0,
            weight_norm,
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,fma")]
pub unsafe fn train_avx512(
    runs: &[(&TrainSettings, &Prepared)],
    sweep_seed: u64,
) -> Vec<RunOutcome> {
    train_in_dtype(SimdLevel::Avx512, runs, sweep_seed)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn train_avx2(runs: &[(&TrainSettings, &Prepared)], sweep_seed: u64) -> Vec<RunOutcome> {
    train_in_dtype(SimdLevel::Avx2, runs, sweep_seed)
}

pub fn train_portable(runs: &[(&TrainSettings, &Prepared)], sweep_seed: u64) -> Vec<RunOutcome> {
    train_in_dtype(SimdLevel::Portable, runs, sweep_seed)
}

/// The group trained in its runs' `dtype` (all members share it).
#[inline(always)]
fn train_in_dtype(
    level: SimdLevel,
    runs: &[(&TrainSettings, &Prepared)],
    sweep_seed: u64,
) -> Vec<RunOutcome> {
    match runs[0].0.dtype {
        Dtype::F64 => train_body(Group::<f64>::new(level, runs, sweep_seed)),
        Dtype::F32 => train_body(Group::<f32>::new(level, runs, sweep_seed)),
    }
}

#[inline(always)]
fn train_body<T: Element>(mut group: Group<T>) -> Vec<RunOutcome> {
    for epoch in 1..=group.epochs {
        if group.members.iter().all(|m| m.diverged) {
            break;
        }
        shuffle_epoch(&mut group.perm, &mut group.shuffle);
        run_epoch(&mut group);
        let mse = epoch_mse::of_members(&group.train_mse, &group.members);
        for (member, mse) in group.members.iter_mut().zip(mse) {
            if let Some(mse) = mse {
                member.end_epoch(epoch, mse);
            }
        }
    }
    group.members.into_iter().map(Member::outcome).collect()
}

/// One epoch of every member still training, minibatch by minibatch. Plain SGD at batch 1 steps
/// row by row, every member on a row before the next row ([`single_row`]); the other members take
/// the minibatch in lockstep too ([`minibatch`]).
#[inline(always)]
fn run_epoch<T: Element>(group: &mut Group<T>) {
    let n = group.perm.len();
    let prep = group.members[0].prep;
    let single_rows = group.members.iter().any(|m| m.single_row);
    let mut start = 0;
    while start < n {
        let end = (start + group.batch).min(n);
        if single_rows {
            for position in start..end {
                if let Some(&ahead) = group.perm.get(position + PREFETCH_AHEAD) {
                    prefetch(row::<T>(prep, ahead as usize));
                }
                let i = group.perm[position] as usize;
                let next = group.perm.get(position + 1).map(|&j| j as usize);
                single_row_steps(group.level, &mut group.members, i, next);
            }
        }
        minibatch_steps(
            group.level,
            &mut group.members,
            &group.perm,
            start..end,
            !single_rows,
            &mut group.residuals,
        );
        start = end;
    }
}

impl<T: Element> Member<'_, T> {
    /// Starts a step from weights of norm `weight_norm` (computed by the lockstep, with the
    /// other members' norms).
    #[inline(always)]
    fn begin_step(&mut self, weight_norm: T) {
        self.minibatch = Minibatch::new(weight_norm);
    }

    /// Records a finished step in the epoch's sums.
    #[inline(always)]
    fn record_step(&mut self, gradient_norm: T, clipped: bool) {
        let (prep, batch) = (self.prep, &self.minibatch);
        // Means over the minibatch's rows; `v / 1` is `v` bit for bit, so batch 1 skips the
        // divisions (which share a unit with the square roots of every step).
        let m = batch.rows as f64;
        let mean = |v: T| {
            if batch.rows == 1 {
                v.wide()
            } else {
                v.wide() / m
            }
        };
        let gradient_norm = gradient_norm.wide();
        let sums = &mut self.sums;
        sums.steps += 1;
        sums.weight_norm += batch.weight_norm.wide();
        sums.prediction += mean(batch.prediction) * prep.y_scale + prep.y_mean;
        sums.loss += mean(batch.loss);
        sums.gradient_norm += gradient_norm;
        sums.clipped += usize::from(clipped);
        if !(batch.loss.wide().is_finite() && gradient_norm.is_finite()) {
            sums.blew_up = true;
        }
    }

    /// The epoch's statistics with its train MSE and R² over all rows, and the divergence check.
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
            extra: Default::default(),
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
        let (d, stride) = (prep.d(), prep.stride());
        let params: Vec<f64> = (self.params[..d].iter())
            .chain([&self.params[stride]])
            .map(|v| v.wide())
            .collect();
        RunOutcome {
            status,
            message: None,
            weights: prep.weights_in_feature_units(&params[..prep.d()]),
            epochs: self.epochs,
            initial_train_mse: self.initial_train_mse,
            params,
            process: None,
        }
    }
}

/// Starts the step of each member of a lockstep, their `|w|` side by side.
#[inline(always)]
fn begin_steps<T: Element, const N: usize>(level: SimdLevel, members: &mut [&mut Member<T>; N]) {
    let weight_norms: [T; N] =
        T::sqrt_each(level, std::array::from_fn(|k| members[k].weight_norm2));
    for k in 0..N {
        members[k].begin_step(weight_norms[k]);
    }
}

/// `clip_norm / gradient_norm` of each member of a lockstep, side by side (used only when the
/// member clips: see [`clip_factor`]).
#[inline(always)]
fn clip_quotients<T: Element, const N: usize>(
    level: SimdLevel,
    members: &[&mut Member<T>; N],
    gradient_norms: [T; N],
) -> [T; N] {
    let clip_norms = std::array::from_fn(|k| T::of(members[k].s.clip_norm));
    T::div_each(level, clip_norms, gradient_norms)
}

/// The clipping factor for a gradient norm (1 when not clipping), given the quotient
/// `clip_norm / gradient_norm` (computed side by side with other members').
#[inline(always)]
fn clip_factor<T: Real>(s: &TrainSettings, gradient_norm: T, quotient: T) -> (T, bool) {
    if s.clip && gradient_norm > T::of(s.clip_norm) {
        (quotient, true)
    } else {
        (T::of(1.0), false)
    }
}
