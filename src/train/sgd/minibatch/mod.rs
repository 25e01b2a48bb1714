//! The minibatch step (every optimizer and batch size but plain SGD at batch 1), the members of
//! a group by up to four: their residuals on each row of the minibatch side by side
//! ([`MemberDots`](crate::train::member_dots::MemberDots), one load of the row); then each
//! member's gradient as a sum over the rows, by blocks of columns held in registers, each block
//! scaled (with the weight decay added) and squared into the gradient norm's partial sums as it
//! is stored; then each member's own clipping and update, which for plain SGD is one pass (clip,
//! step and the new `|w|^2` together). The kernels ([`kernels`]) are compiled per SIMD level out
//! of the training loop.
//!
//! Each member's arithmetic is its own, in the order it has alone: element `j` of a gradient is
//! `fma(r_k, x_kj, .)` over the rows in order from zero, then `fma(g_j, scale, wd v_j)`; the norm
//! keeps 16 partial sums (element `j` to sum `j % 16`, the bias to `d % 16`). So a member gives
//! the same bits alone, in any group, and at any SIMD level.

use super::{begin_steps, clip_factor, clip_quotients, Element, Member};
use crate::config::Optimizer;
use crate::simd::{dispatch_checked, SimdLevel};
use crate::train::kernel::dot;

mod kernels;

/// The minibatch step on the rows at `positions` of the epoch's order, for every member in
/// `members` that takes one (not a batch-1 plain-SGD member) and is still training, by up to
/// four in lockstep. `prefetch_rows`: prefetch rows ahead (when no batch-1 member read them).
#[inline(always)]
pub(super) fn minibatch_steps<T: Element>(
    level: SimdLevel,
    members: &mut [Member<T>],
    perm: &[u32],
    positions: std::ops::Range<usize>,
    prefetch_rows: bool,
    residuals: &mut [T],
) {
    let mut chunk: [Option<&mut Member<T>>; 4] = [None, None, None, None];
    let mut count = 0;
    let mut first = prefetch_rows;
    for member in members.iter_mut() {
        if !member.single_row && !member.diverged && !member.sums.blew_up {
            chunk[count] = Some(member);
            count += 1;
            if count == 4 {
                lockstep::<T, 4>(level, &mut chunk, perm, positions.clone(), first, residuals);
                (count, first) = (0, false);
            }
        }
    }
    match count {
        1 => lockstep::<T, 1>(level, &mut chunk, perm, positions, first, residuals),
        2 => lockstep::<T, 2>(level, &mut chunk, perm, positions, first, residuals),
        3 => lockstep::<T, 3>(level, &mut chunk, perm, positions, first, residuals),
        _ => {}
    }
}

/// [`minibatch_steps`] of the first `N` members of `chunk` (taken out of it). `residuals` holds
/// at least `4 x` the batch's rows.
#[inline(always)]
fn lockstep<T: Element, const N: usize>(
    level: SimdLevel,
    chunk: &mut [Option<&mut Member<T>>; 4],
    perm: &[u32],
    positions: std::ops::Range<usize>,
    prefetch_rows: bool,
    residuals: &mut [T],
) {
    let mut members: [&mut Member<T>; N] =
        std::array::from_fn(|k| chunk[k].take().expect("a member in each of the N places"));
    begin_steps(level, &mut members);
    let prep = members[0].prep;
    let stride = prep.stride();
    let rows = &perm[positions.clone()];
    let residuals = &mut residuals[..rows.len() * N];
    // Every row's residual, for every member.
    let sums = {
        let weights: [&[T]; N] = std::array::from_fn(|m| &members[m].params[..stride]);
        let bias: [T; N] = std::array::from_fn(|m| members[m].params[stride]);
        // The members share the features, not the targets.
        let targets: [&[f64]; N] = std::array::from_fn(|m| &members[m].prep.y[..]);
        let order = if prefetch_rows {
            &perm[positions.start..]
        } else {
            &[]
        };
        let x = T::rows(prep);
        // SAFETY: a group's level was asserted available before the group was made
        // (`train::train_group_at`), as for the two calls below.
        unsafe {
            dispatch_checked!(
                level,
                kernels::residuals_of_rows(
                    level, weights, bias, targets, x, stride, rows, order, residuals
                )
            )
        }
    };
    let scale = T::of(2.0 / rows.len() as f64);
    let x = T::rows(prep);
    let (mut norms2, mut gradient_biases) = ([T::ZERO; N], [T::ZERO; N]);
    for m in 0..N {
        let member = &mut *members[m];
        let batch = &mut member.minibatch;
        (batch.loss, batch.prediction, batch.residual_sum) = sums[m];
        batch.rows = rows.len();
        let decay = T::of(member.s.weight_decay);
        member.prepare_decay_source();
        let (g, v) = member.gradient_and_decay_source();
        let r = &residuals[m * rows.len()..(m + 1) * rows.len()];
        let gradient_bias = sums[m].2 * scale;
        // The padding is zero: the bias goes where it is unpadded.
        let bias = (gradient_bias, prep.d());
        // SAFETY: as above.
        norms2[m] = unsafe {
            dispatch_checked!(
                level,
                kernels::scaled_gradient(g, v, x, stride, rows, r, scale, decay, bias)
            )
        };
        gradient_biases[m] = gradient_bias;
    }
    // Every member's clipping and update after all the gradients, so that one member's chain of
    // dependent steps (norm, square root, clipping factor, update) overlaps the others' work.
    let gradient_norms = T::sqrt_each(level, norms2);
    let quotients = clip_quotients(level, &members, gradient_norms);
    for m in 0..N {
        members[m].finish_minibatch(level, gradient_biases[m], gradient_norms[m], quotients[m]);
    }
}

impl<T: Element> Member<'_, T> {
    /// The decay's source `v` (of `wd v`) when it is not the weights: `W W^T w'` for decay on the
    /// feature-unit weights of a whitened run, from the weights before the step.
    #[inline(always)]
    fn prepare_decay_source(&mut self) {
        if let Some(metric) = &self.decay_metric {
            let d = self.prep.d();
            let w = &self.params[..d];
            for (v, m) in self.decay_source.iter_mut().zip(metric.chunks_exact(d)) {
                *v = dot(m, w);
            }
        }
    }

    /// The gradient's weights (to be written) and the decay's source `v`.
    #[inline(always)]
    fn gradient_and_decay_source(&mut self) -> (&mut [T], &[T]) {
        let stride = self.prep.stride();
        let source = match self.decay_metric {
            Some(_) => &self.decay_source[..stride],
            None => &self.params[..stride],
        };
        (&mut self.grad[..stride], source)
    }

    /// Clipping and the update, from the bias's gradient, the gradient's norm and `quotient` =
    /// `clip_norm / gradient_norm`.
    #[inline(always)]
    fn finish_minibatch(
        &mut self,
        level: SimdLevel,
        gradient_bias: T,
        gradient_norm: T,
        quotient: T,
    ) {
        let (s, stride) = (self.s, self.prep.stride());
        self.grad[stride] = gradient_bias;
        let (factor, clipped) = clip_factor(s, gradient_norm, quotient);
        let lr = T::of(s.learning_rate);
        self.weight_norm2 = if s.optimizer == Optimizer::Sgd {
            // Clipping and the step in one pass.
            let (w, b) = self.params.split_at_mut(stride);
            let neg_lr = -lr;
            b[0] = neg_lr.mul_add(gradient_bias * factor, b[0]);
            let g = &self.grad[..stride];
            // SAFETY: a group's level was asserted available before the group was made.
            unsafe { dispatch_checked!(level, kernels::sgd_update(w, g, neg_lr, factor, clipped)) }
        } else {
            if clipped {
                self.grad.iter_mut().for_each(|g| *g *= factor);
            }
            self.optimizer
                .step(&mut self.params, &self.grad, lr, stride)
        };
        self.record_step(gradient_norm, clipped);
    }
}
