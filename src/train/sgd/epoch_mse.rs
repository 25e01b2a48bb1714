//! The train MSE a group records at the start and after every epoch, in original units over all
//! rows: by the exact quadratic identity of [`gram`](super::gram) when the runs' epochs repay
//! building `G` (no pass over the rows), else by a full pass in f64, one dot product per row and
//! run, all runs of the group in one pass over the rows they share.

use super::{Element, Member};
use crate::preprocess::Prepared;
use crate::simd::SimdLevel;
use crate::train::full_pass::{add_squared_error, full_pass, mse_and_r2};
use crate::train::gram::{self, Gram};
use crate::train::kernel::Real;

/// How a group computes its members' train MSE.
pub enum TrainMse<'a> {
    Pass,
    Identity(&'a Gram, SimdLevel),
}

impl<'a> TrainMse<'a> {
    /// The way for runs of `epochs` epochs on `prep`'s features, compiled at `level` (which
    /// also builds `G`, once per set of features, when the identity pays off).
    #[inline(always)]
    pub fn of(level: SimdLevel, epochs: u32, prep: &'a Prepared) -> TrainMse<'a> {
        if gram::pays_off(epochs, prep.d()) {
            TrainMse::Identity(prep.gram(level), level)
        } else {
            TrainMse::Pass
        }
    }

    /// The train MSE and R² of `params` (weights, then bias, in the run's type) on `prep`.
    #[inline(always)]
    pub fn of_params<T: Element>(&self, prep: &Prepared, params: &[T]) -> (f64, f64) {
        match self {
            TrainMse::Pass => full_pass(prep, params),
            TrainMse::Identity(gram, level) => identity_mse(gram, *level, prep, params),
        }
    }
}

/// The train MSE and R² of every member still training (`None` for one that stopped).
#[inline(always)]
pub fn of_members<T: Element>(
    train_mse: &TrainMse,
    members: &[Member<T>],
) -> Vec<Option<(f64, f64)>> {
    match train_mse {
        TrainMse::Pass => full_passes(members),
        TrainMse::Identity(gram, level) => {
            // A loop, not `map`: a closure would be compiled without the target features.
            let mut mse = Vec::with_capacity(members.len());
            for m in members {
                mse.push(if m.diverged {
                    None
                } else {
                    Some(identity_mse(gram, *level, m.prep, &m.params))
                });
            }
            mse
        }
    }
}

/// The train MSE and R² of `params` by the identity of [`gram`].
#[inline(always)]
fn identity_mse<T: Real>(
    gram: &Gram,
    level: SimdLevel,
    prep: &Prepared,
    params: &[T],
) -> (f64, f64) {
    // The weights without their padding, then the bias.
    let (d, stride) = (prep.d(), prep.stride());
    let mut theta = Vec::with_capacity(d + 1);
    for v in &params[..d] {
        theta.push(v.wide());
    }
    theta.push(params[stride].wide());
    let sse = gram.sse(prep.target_terms(level), &theta, prep.y_scale);
    mse_and_r2(prep, sse)
}

/// [`full_pass`] of every member still training, in one pass over the rows they share; each
/// member's sums run in row order, as alone. `None` for a member that stopped.
#[inline(always)]
fn full_passes<T: Element>(members: &[Member<T>]) -> Vec<Option<(f64, f64)>> {
    let prep = members[0].prep;
    let stride = prep.stride();
    let mut sse: Vec<Option<f64>> = members
        .iter()
        .map(|m| (!m.diverged).then_some(0.0))
        .collect();
    for (i, row) in T::rows(prep).chunks_exact(stride).enumerate() {
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
