//! The optimizers: plain SGD, heavy-ball momentum and Adam, each one in-place step on the
//! parameter vector (weights, then bias) from a gradient that may have been clipped.

use super::kernel::{axpy_norm2, norm2};
use crate::config::Optimizer;

/// Optimizer state; buffers sized once per run.
pub(super) struct OptimizerState {
    kind: Optimizer,
    momentum: f64,
    first: Vec<f64>,
    second: Vec<f64>,
    steps: i32,
}

const ADAM_BETA1: f64 = 0.9;
const ADAM_BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

impl OptimizerState {
    pub(super) fn new(kind: Optimizer, momentum: f64, len: usize) -> Self {
        let second = if kind == Optimizer::Adam {
            vec![0.0; len]
        } else {
            Vec::new()
        };
        OptimizerState {
            kind,
            momentum,
            first: vec![0.0; len],
            second,
            steps: 0,
        }
    }

    /// One step on `params` (weights, then bias) from `grad`; returns the new `|w|^2` of the
    /// first `d` entries (the weights).
    #[inline(always)]
    pub(super) fn step(&mut self, params: &mut [f64], grad: &[f64], lr: f64, d: usize) -> f64 {
        self.steps += 1;
        match self.kind {
            Optimizer::Sgd => {
                let (w, b) = params.split_at_mut(d);
                let norm2 = axpy_norm2(w, -lr, &grad[..d]);
                b[0] = (-lr).mul_add(grad[d], b[0]);
                return norm2;
            }
            Optimizer::Momentum => {
                for ((p, g), v) in params.iter_mut().zip(grad).zip(&mut self.first) {
                    *v = self.momentum.mul_add(*v, *g);
                    *p = (-lr).mul_add(*v, *p);
                }
            }
            Optimizer::Adam => {
                let c1 = 1.0 - ADAM_BETA1.powi(self.steps);
                let c2 = 1.0 - ADAM_BETA2.powi(self.steps);
                for (((p, g), m), v) in params
                    .iter_mut()
                    .zip(grad)
                    .zip(&mut self.first)
                    .zip(&mut self.second)
                {
                    *m = ADAM_BETA1.mul_add(*m, (1.0 - ADAM_BETA1) * g);
                    *v = ADAM_BETA2.mul_add(*v, (1.0 - ADAM_BETA2) * g * g);
                    *p -= lr * (*m / c1) / ((*v / c2).sqrt() + ADAM_EPS);
                }
            }
        }
        norm2(&params[..d])
    }
}
