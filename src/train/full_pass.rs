//! The per-epoch full pass: train MSE and R² in original units, one dot product per row, summed
//! in f64 in row order whatever the run's type, so the figures have the same bits at every SIMD
//! level and whether a run trains alone or in a group.

use super::kernel::{dot_wide, Real};
use super::sgd::Element;
use crate::preprocess::Prepared;

/// Train MSE and R² in original units of any parameters (in the run's type, on the rows of
/// that type: the weights padded with zeros to the rows' stride, then the bias), by a pass over
/// every row in f64; the same bits at every SIMD level.
#[inline(always)]
pub fn full_pass<T: Element>(prep: &Prepared, params: &[T]) -> (f64, f64) {
    // A loop, not a closure: a closure would be compiled without the caller's target features.
    let mut sse = 0.0;
    for (i, row) in T::rows(prep).chunks_exact(prep.stride()).enumerate() {
        sse = add_squared_error(prep, params, row, i, sse);
    }
    mse_and_r2(prep, sse)
}

/// `sse` plus the squared error, in original units, of row `i` (whose features are `row`),
/// computed in f64 whatever the run's type.
#[inline(always)]
pub(super) fn add_squared_error<T: Real>(
    prep: &Prepared,
    params: &[T],
    row: &[T],
    i: usize,
    sse: f64,
) -> f64 {
    let (w, b) = params.split_at(prep.stride());
    let prediction = (dot_wide(w, row) + b[0].wide()).mul_add(prep.y_scale, prep.y_mean);
    let r = prediction - prep.data.y[i];
    r.mul_add(r, sse)
}

pub(super) fn mse_and_r2(prep: &Prepared, sse: f64) -> (f64, f64) {
    (sse / prep.n() as f64, 1.0 - sse / prep.sst)
}
