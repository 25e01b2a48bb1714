//! Plain SGD at batch size 1, the members of a group in lockstep: their `w . x` side by side
//! ([`MemberDots`](crate::train::member_dots::MemberDots)), each member's scalar work (residual,
//! gradient norm from `|x|^2`, `w . x` and `|w|^2`, clipping, the bias's step), then their weight
//! updates in one pass, so that the members' chains of dependent operations run side by side. The
//! update pass also takes the next row's `w . x` from the new weights as they are formed
//! ([`MemberDots::step_then_dots_at`](crate::train::member_dots::MemberDots::step_then_dots_at)), so a row's dot product waits neither on the weights'
//! stores nor on a pass of its own. A member alone takes the same path, and each member's
//! arithmetic is its own, in the order it has alone: the same bits.

use super::{begin_steps, clip_factor, clip_quotients, row, Element, Member};
use crate::simd::SimdLevel;

/// The plain-SGD batch-1 step on row `i` of every such member still training, by up to four in
/// lockstep; `next` is the row of the next step, if any in this epoch.
#[inline(always)]
pub(super) fn single_row_steps<T: Element>(
    level: SimdLevel,
    members: &mut [Member<T>],
    i: usize,
    next: Option<usize>,
) {
    let mut chunk: [Option<&mut Member<T>>; 4] = [None, None, None, None];
    let mut count = 0;
    for member in members.iter_mut() {
        if member.single_row && !member.diverged && !member.sums.blew_up {
            chunk[count] = Some(member);
            count += 1;
            if count == 4 {
                lockstep::<T, 4>(level, &mut chunk, i, next);
                count = 0;
            }
        }
    }
    match count {
        1 => lockstep::<T, 1>(level, &mut chunk, i, next),
        2 => lockstep::<T, 2>(level, &mut chunk, i, next),
        3 => lockstep::<T, 3>(level, &mut chunk, i, next),
        _ => {}
    }
}

/// [`single_row_steps`] of the first `N` members of `chunk` (taken out of it).
#[inline(always)]
fn lockstep<T: Element, const N: usize>(
    level: SimdLevel,
    chunk: &mut [Option<&mut Member<T>>; 4],
    i: usize,
    next: Option<usize>,
) {
    let mut members: [&mut Member<T>; N] =
        std::array::from_fn(|k| chunk[k].take().expect("a member in each of the N places"));
    let prep = members[0].prep;
    // The padded weights, as long as the stored row.
    let (x, stride) = (row::<T>(prep, i), prep.stride());
    // Row `i`'s `w . x`, taken by the step before (the same bits), or here (an epoch's first row).
    let wx: [T; N] = if members
        .iter()
        .all(|m| matches!(m.wx_ahead, Some((r, _)) if r == i))
    {
        std::array::from_fn(|k| members[k].wx_ahead.map_or(T::ZERO, |(_, v)| v))
    } else {
        T::dots_at(
            level,
            std::array::from_fn(|k| &members[k].params[..stride]),
            x,
        )
    };
    begin_steps(level, &mut members);
    let mut residuals = [(T::ZERO, T::ZERO); N];
    let mut gradient_norms2 = [T::ZERO; N];
    for k in 0..N {
        residuals[k] = members[k].single_row_residual(i, wx[k]);
        gradient_norms2[k] = members[k].single_row_gradient_norm2(i, wx[k], residuals[k].1);
    }
    // The members' square roots and clipping quotients side by side.
    let gradient_norms = T::sqrt_each(level, gradient_norms2);
    let quotients = clip_quotients(level, &members, gradient_norms);
    let (mut beta, mut alpha) = ([T::ZERO; N], [T::ZERO; N]);
    for k in 0..N {
        (beta[k], alpha[k]) =
            members[k].single_row_coefficients(residuals[k], gradient_norms[k], quotients[k]);
    }
    // Without a next row the dot products are taken against this row and dropped.
    let next_row = next.map_or(x, |j| row::<T>(prep, j));
    let (norms, ahead) = T::step_then_dots_at(
        level,
        members.each_mut().map(|m| &mut m.params[..stride]),
        beta,
        alpha,
        x,
        next_row,
    );
    for k in 0..N {
        members[k].weight_norm2 = norms[k];
        members[k].wx_ahead = next.map(|j| (j, ahead[k]));
    }
}

impl<T: Element> Member<'_, T> {
    /// The prediction and the residual on row `i`, whose `w . x` is `wx`.
    #[inline(always)]
    fn single_row_residual(&self, i: usize, wx: T) -> (T, T) {
        let prediction = wx + self.params[self.prep.stride()];
        (prediction, prediction - T::of(self.prep.y[i]))
    }

    /// Plain SGD on row `i`, whose `w . x` is `wx` and residual `r`: the gradient
    /// `2 r (x, 1) + wd (w, 0)` is never formed; its `|g|^2` (returned, not below zero) follows
    /// from `|x|^2`, `w . x` and `|w|^2`.
    #[inline(always)]
    fn single_row_gradient_norm2(&self, i: usize, wx: T, r: T) -> T {
        let wd = T::of(self.s.weight_decay);
        // |g|^2 = 4 r^2 (|x|^2 + 1) + 4 r wd (w . x) + wd^2 |w|^2.
        let two = T::of(2.0);
        let two_r = two * r;
        let norm2 = (two_r * two_r).mul_add(
            T::of(self.prep.row_norm2[i] + 1.0),
            (two * two_r * wd).mul_add(wx, wd * wd * self.weight_norm2),
        );
        norm2.max(T::ZERO)
    }

    /// Plain SGD on a row (its prediction and residual, the gradient norm, `quotient` =
    /// `clip_norm / gradient_norm`), all but the weights' update: the bias steps here; returns
    /// `(beta, alpha)` of the weights' step `w = beta w + alpha x` (`beta` is exactly 1 without
    /// weight decay).
    #[inline(always)]
    fn single_row_coefficients(
        &mut self,
        (prediction, r): (T, T),
        gradient_norm: T,
        quotient: T,
    ) -> (T, T) {
        let (s, prep) = (self.s, self.prep);
        let b = &mut self.params[prep.stride()];
        let wd = T::of(s.weight_decay);
        let two = T::of(2.0);
        let two_r = two * r;
        let (factor, clipped) = clip_factor(s, gradient_norm, quotient);
        let step = T::of(s.learning_rate) * factor;
        *b = (-step).mul_add(two_r, *b);
        self.minibatch.loss = r * r;
        self.minibatch.prediction = prediction;
        self.minibatch.rows = 1;
        self.record_step(gradient_norm, clipped);
        // Without decay `1 * w` is `w` bit for bit, so one form serves both.
        let beta = if s.weight_decay == 0.0 {
            T::of(1.0)
        } else {
            (-step).mul_add(wd, T::of(1.0))
        };
        (beta, -step * two_r)
    }
}
