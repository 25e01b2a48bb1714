//! The AVX-512 kernels of [`MemberDots`](super::MemberDots), written with intrinsics: each
//! member's sums in its own registers, combined in registers by the tree of
//! [`combine`](crate::train::kernel::combine).

use crate::train::kernel::{combine, PARTIALS};
use std::arch::x86_64::*;

/// The whole chunks of [`PARTIALS`] values every slice has, and the values after them.
#[inline(always)]
fn lengths<T, const N: usize>(ws: &[&[T]; N], x: &[T]) -> (usize, usize) {
    let n = ws.iter().fold(x.len(), |n, w| n.min(w.len()));
    (n / PARTIALS * PARTIALS, n)
}

/// AVX-512, f64: partial sums 0..8 and 8..16 of each member in two registers. Inlined (not a
/// `#[target_feature]` function of its own) so that it joins the AVX-512 loop that calls it.
///
/// # Safety
/// The CPU has AVX-512F and FMA.
#[inline(always)]
pub(super) unsafe fn dots_f64<const N: usize>(ws: [&[f64]; N], x: &[f64]) -> [f64; N] {
    let (full, n) = lengths(&ws, x);
    let mut lo = [_mm512_setzero_pd(); N];
    let mut hi = [_mm512_setzero_pd(); N];
    let mut j = 0;
    while j < full {
        // SAFETY: j + 16 <= full <= the length of every slice.
        let x0 = _mm512_loadu_pd(x.as_ptr().add(j));
        let x1 = _mm512_loadu_pd(x.as_ptr().add(j + 8));
        for m in 0..N {
            lo[m] = _mm512_fmadd_pd(_mm512_loadu_pd(ws[m].as_ptr().add(j)), x0, lo[m]);
            hi[m] = _mm512_fmadd_pd(_mm512_loadu_pd(ws[m].as_ptr().add(j + 8)), x1, hi[m]);
        }
        j += PARTIALS;
    }
    let mut out = [0.0; N];
    for m in 0..N {
        out[m] = if full == n {
            combine_f64(lo[m], hi[m])
        } else {
            // A tail (rows not padded): the partial sums through memory.
            let mut partials = [0.0; PARTIALS];
            _mm512_storeu_pd(partials.as_mut_ptr(), lo[m]);
            _mm512_storeu_pd(partials.as_mut_ptr().add(8), hi[m]);
            for (partial, k) in partials.iter_mut().zip(full..n) {
                *partial = ws[m][k].mul_add(x[k], *partial);
            }
            combine(partials)
        };
    }
    out
}

/// [`combine`] of partial sums 0..8 (`lo`) and 8..16 (`hi`) in registers, the same tree: sums
/// `k + 8`, then `k + 4`, then `(0 + 2) + (1 + 3)`. Through memory, the sums waited on store
/// forwarding, which a lone run at batch 1 has on its critical path.
#[inline(always)]
unsafe fn combine_f64(lo: __m512d, hi: __m512d) -> f64 {
    let half = _mm512_add_pd(lo, hi);
    let quarter = _mm256_add_pd(
        _mm512_castpd512_pd256(half),
        _mm512_extractf64x4_pd::<1>(half),
    );
    let pairs = _mm_add_pd(
        _mm256_castpd256_pd128(quarter),
        _mm256_extractf128_pd::<1>(quarter),
    );
    _mm_cvtsd_f64(_mm_add_sd(pairs, _mm_unpackhi_pd(pairs, pairs)))
}

/// [`combine`] of 16 partial sums in one register (see [`combine_f64`]).
#[inline(always)]
unsafe fn combine_f32(sums: __m512) -> f32 {
    let half = _mm256_add_ps(
        _mm512_castps512_ps256(sums),
        _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(sums))),
    );
    let quarter = _mm_add_ps(
        _mm256_castps256_ps128(half),
        _mm256_extractf128_ps::<1>(half),
    );
    // (q0 + q2, q1 + q3), then their sum.
    let pairs = _mm_add_ps(quarter, _mm_movehl_ps(quarter, quarter));
    _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)))
}

/// AVX-512, f32: the 16 partial sums of each member in one register (see [`dots_f64`]).
///
/// # Safety
/// The CPU has AVX-512F and FMA.
#[inline(always)]
pub(super) unsafe fn dots_f32<const N: usize>(ws: [&[f32]; N], x: &[f32]) -> [f32; N] {
    let (full, n) = lengths(&ws, x);
    let mut sums = [_mm512_setzero_ps(); N];
    let mut j = 0;
    while j < full {
        // SAFETY: j + 16 <= full <= the length of every slice.
        let xj = _mm512_loadu_ps(x.as_ptr().add(j));
        for m in 0..N {
            sums[m] = _mm512_fmadd_ps(_mm512_loadu_ps(ws[m].as_ptr().add(j)), xj, sums[m]);
        }
        j += PARTIALS;
    }
    let mut out = [0.0; N];
    for m in 0..N {
        out[m] = if full == n {
            combine_f32(sums[m])
        } else {
            // A tail (rows not padded): the partial sums through memory.
            let mut partials = [0.0; PARTIALS];
            _mm512_storeu_ps(partials.as_mut_ptr(), sums[m]);
            for (partial, k) in partials.iter_mut().zip(full..n) {
                *partial = ws[m][k].mul_add(x[k], *partial);
            }
            combine(partials)
        };
    }
    out
}

/// AVX-512, f64: [`MemberDots::step_then_dots_at`](super::MemberDots::step_then_dots_at), each member's step by two registers per chunk
/// of [`PARTIALS`], its new `|w|^2` and `w . next` by two registers of partial sums each.
///
/// # Safety
/// The CPU has AVX-512F and FMA; `x`, `next` and every `w` have the same length, a multiple of
/// [`PARTIALS`].
#[inline(always)]
pub(super) unsafe fn step_then_dots_f64<const N: usize>(
    ws: [&mut [f64]; N],
    beta: [f64; N],
    alpha: [f64; N],
    x: &[f64],
    next: &[f64],
) -> ([f64; N], [f64; N]) {
    let (mut norm_lo, mut norm_hi) = ([_mm512_setzero_pd(); N], [_mm512_setzero_pd(); N]);
    let (mut dot_lo, mut dot_hi) = ([_mm512_setzero_pd(); N], [_mm512_setzero_pd(); N]);
    let mut j = 0;
    while j < x.len() {
        // SAFETY: j + 16 <= the length of every slice (the caller's contract).
        let (x0, x1) = (
            _mm512_loadu_pd(x.as_ptr().add(j)),
            _mm512_loadu_pd(x.as_ptr().add(j + 8)),
        );
        let n0 = _mm512_loadu_pd(next.as_ptr().add(j));
        let n1 = _mm512_loadu_pd(next.as_ptr().add(j + 8));
        for m in 0..N {
            let w = ws[m].as_ptr().add(j) as *mut f64;
            let (b, a) = (_mm512_set1_pd(beta[m]), _mm512_set1_pd(alpha[m]));
            let v0 = _mm512_fmadd_pd(a, x0, _mm512_mul_pd(b, _mm512_loadu_pd(w)));
            let v1 = _mm512_fmadd_pd(a, x1, _mm512_mul_pd(b, _mm512_loadu_pd(w.add(8))));
            _mm512_storeu_pd(w, v0);
            _mm512_storeu_pd(w.add(8), v1);
            norm_lo[m] = _mm512_fmadd_pd(v0, v0, norm_lo[m]);
            norm_hi[m] = _mm512_fmadd_pd(v1, v1, norm_hi[m]);
            dot_lo[m] = _mm512_fmadd_pd(v0, n0, dot_lo[m]);
            dot_hi[m] = _mm512_fmadd_pd(v1, n1, dot_hi[m]);
        }
        j += PARTIALS;
    }
    let (mut norms, mut dots) = ([0.0; N], [0.0; N]);
    for m in 0..N {
        norms[m] = combine_f64(norm_lo[m], norm_hi[m]);
        dots[m] = combine_f64(dot_lo[m], dot_hi[m]);
    }
    (norms, dots)
}

/// AVX-512, f32: [`MemberDots::step_then_dots_at`](super::MemberDots::step_then_dots_at) (see [`step_then_dots_f64`]), one register
/// per chunk.
///
/// # Safety
/// As [`step_then_dots_f64`].
#[inline(always)]
pub(super) unsafe fn step_then_dots_f32<const N: usize>(
    ws: [&mut [f32]; N],
    beta: [f32; N],
    alpha: [f32; N],
    x: &[f32],
    next: &[f32],
) -> ([f32; N], [f32; N]) {
    let (mut norm, mut dot) = ([_mm512_setzero_ps(); N], [_mm512_setzero_ps(); N]);
    let mut j = 0;
    while j < x.len() {
        // SAFETY: j + 16 <= the length of every slice (the caller's contract).
        let (xj, nj) = (
            _mm512_loadu_ps(x.as_ptr().add(j)),
            _mm512_loadu_ps(next.as_ptr().add(j)),
        );
        for m in 0..N {
            let w = ws[m].as_ptr().add(j) as *mut f32;
            let (b, a) = (_mm512_set1_ps(beta[m]), _mm512_set1_ps(alpha[m]));
            let v = _mm512_fmadd_ps(a, xj, _mm512_mul_ps(b, _mm512_loadu_ps(w)));
            _mm512_storeu_ps(w, v);
            norm[m] = _mm512_fmadd_ps(v, v, norm[m]);
            dot[m] = _mm512_fmadd_ps(v, nj, dot[m]);
        }
        j += PARTIALS;
    }
    let (mut norms, mut dots) = ([0.0; N], [0.0; N]);
    for m in 0..N {
        norms[m] = combine_f32(norm[m]);
        dots[m] = combine_f32(dot[m]);
    }
    (norms, dots)
}
