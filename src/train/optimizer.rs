//! The optimizers' state, and the heavy-ball momentum and Adam steps, each in place on the
//! parameter vector (weights, then bias) from a gradient that may have been clipped. Plain SGD
//! steps in the SGD loop's own kernels, fused with its clipping (`sgd::minibatch`, and
//! `sgd::single_row` at batch 1).

use super::kernel::{norm2, Real};
use crate::aligned::{AlignedBuf, Plain};
use crate::config::Optimizer;

/// Optimizer state in the run's floating-point type; buffers sized once per run, on cache lines
/// as the parameters.
pub(super) struct OptimizerState<T> {
    kind: Optimizer,
    momentum: T,
    first: AlignedBuf<T>,
    second: AlignedBuf<T>,
    steps: i32,
}

const ADAM_BETA1: f64 = 0.9;
const ADAM_BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

impl<T: Real + Plain> OptimizerState<T> {
    pub(super) fn new(kind: Optimizer, momentum: f64, len: usize) -> Self {
        let second = AlignedBuf::zeroed(if kind == Optimizer::Adam { len } else { 0 });
        OptimizerState {
            kind,
            momentum: T::of(momentum),
            first: AlignedBuf::zeroed(len),
            second,
            steps: 0,
        }
    }

    /// One momentum or Adam step on `params` (weights, then bias) from `grad`; returns the new
    /// `|w|^2` of the first `d` entries (the weights).
    #[inline(always)]
    pub(super) fn step(&mut self, params: &mut [T], grad: &[T], lr: T, d: usize) -> T {
        self.steps += 1;
        match self.kind {
            Optimizer::Sgd => unreachable!(
                "plain SGD steps with its clipping in one pass (the minibatch step) or in lockstep \
                 (batch 1)"
            ),
            Optimizer::Momentum => {
                for ((p, g), v) in params.iter_mut().zip(grad).zip(self.first.iter_mut()) {
                    *v = self.momentum.mul_add(*v, *g);
                    *p = (-lr).mul_add(*v, *p);
                }
            }
            Optimizer::Adam => {
                let c1 = T::of(1.0 - ADAM_BETA1.powi(self.steps));
                let c2 = T::of(1.0 - ADAM_BETA2.powi(self.steps));
                let (beta1, beta2) = (T::of(ADAM_BETA1), T::of(ADAM_BETA2));
                let (rest1, rest2) = (T::of(1.0 - ADAM_BETA1), T::of(1.0 - ADAM_BETA2));
                let eps = T::of(ADAM_EPS);
                for (((p, g), m), v) in params
                    .iter_mut()
                    .zip(grad)
                    .zip(self.first.iter_mut())
                    .zip(self.second.iter_mut())
                {
                    *m = beta1.mul_add(*m, rest1 * *g);
                    *v = beta2.mul_add(*v, rest2 * *g * *g);
                    *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                }
            }
        }
        norm2(&params[..d])
    }
}
