//! `w_m . x` for up to four vectors `w_m` side by side. With AVX-512 they are written with
//! intrinsics: the compiler's vectorizer, given the sums in the portable form, paired the members
//! lane by lane (or left the sums in memory) instead of keeping each sum in its own registers.
//! Each sum has the bits of [`dot`]: [`PARTIALS`] partial sums (element `j` to sum
//! `j % PARTIALS`, in order, fused), combined by the same tree. Independent chains of fused
//! multiply-adds in one loop is what makes them fast: one dot product alone waits on its own
//! latency.

use super::kernel::{combine, dot, Real, PARTIALS};
use crate::simd::SimdLevel;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The element types with dot products of several vectors with one.
pub trait MemberDots: Real {
    /// `w_m . x` for each `m`, each with the bits of [`dot`], at SIMD level `level` (available
    /// on this CPU: the caller checked).
    fn dots_at<const N: usize>(level: SimdLevel, ws: [&[Self]; N], x: &[Self]) -> [Self; N];
}

/// The portable form: one dot product after the other.
#[inline(always)]
fn one_by_one<T: Real, const N: usize>(ws: [&[T]; N], x: &[T]) -> [T; N] {
    let mut out = [T::ZERO; N];
    for m in 0..N {
        out[m] = dot(ws[m], x);
    }
    out
}

impl MemberDots for f64 {
    #[inline(always)]
    fn dots_at<const N: usize>(level: SimdLevel, ws: [&[f64]; N], x: &[f64]) -> [f64; N] {
        #[cfg(target_arch = "x86_64")]
        if level == SimdLevel::Avx512 {
            // SAFETY: the caller checked that this CPU has the level's features.
            return unsafe { dots_f64(ws, x) };
        }
        let _ = level;
        one_by_one(ws, x)
    }
}

impl MemberDots for f32 {
    #[inline(always)]
    fn dots_at<const N: usize>(level: SimdLevel, ws: [&[f32]; N], x: &[f32]) -> [f32; N] {
        #[cfg(target_arch = "x86_64")]
        if level == SimdLevel::Avx512 {
            // SAFETY: the caller checked that this CPU has the level's features.
            return unsafe { dots_f32(ws, x) };
        }
        let _ = level;
        one_by_one(ws, x)
    }
}

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
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dots_f64<const N: usize>(ws: [&[f64]; N], x: &[f64]) -> [f64; N] {
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
#[cfg(target_arch = "x86_64")]
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
#[cfg(target_arch = "x86_64")]
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
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dots_f32<const N: usize>(ws: [&[f32]; N], x: &[f32]) -> [f32; N] {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::kernel::awkward_values;

    #[test]
    fn each_sum_has_the_bits_of_a_dot_product_alone_at_every_level() {
        for level in SimdLevel::ALL.iter().copied().filter(|l| l.is_available()) {
            check(level);
        }
    }

    fn check(level: SimdLevel) {
        for n in [1, 15, 16, 17, 121, 128, 1000] {
            let x = awkward_values(n, 1);
            let ws: Vec<Vec<f64>> = (0..4).map(|m| awkward_values(n, 2 + m)).collect();
            let four = f64::dots_at(level, [&ws[0][..], &ws[1], &ws[2], &ws[3]], &x);
            let three = f64::dots_at(level, [&ws[0][..], &ws[1], &ws[2]], &x);
            for m in 0..4 {
                let alone = dot(&ws[m], &x).to_bits();
                assert_eq!(four[m].to_bits(), alone, "{level}, n = {n}, member {m}");
                if m < 3 {
                    assert_eq!(three[m].to_bits(), alone, "{level}, n = {n}, member {m}");
                }
            }
            let narrow = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
            let (x, ws): (Vec<f32>, Vec<Vec<f32>>) =
                (narrow(&x), ws.iter().map(|w| narrow(w)).collect());
            let four = f32::dots_at(level, [&ws[0][..], &ws[1], &ws[2], &ws[3]], &x);
            for m in 0..4 {
                let alone = dot(&ws[m], &x).to_bits();
                assert_eq!(
                    four[m].to_bits(),
                    alone,
                    "{level}, f32, n = {n}, member {m}"
                );
            }
        }
    }
}
