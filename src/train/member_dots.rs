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
        let mut partials = [0.0; PARTIALS];
        _mm512_storeu_pd(partials.as_mut_ptr(), lo[m]);
        _mm512_storeu_pd(partials.as_mut_ptr().add(8), hi[m]);
        for (partial, k) in partials.iter_mut().zip(full..n) {
            *partial = ws[m][k].mul_add(x[k], *partial);
        }
        out[m] = combine(partials);
    }
    out
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
        let mut partials = [0.0; PARTIALS];
        _mm512_storeu_ps(partials.as_mut_ptr(), sums[m]);
        for (partial, k) in partials.iter_mut().zip(full..n) {
            *partial = ws[m][k].mul_add(x[k], *partial);
        }
        out[m] = combine(partials);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sum_has_the_bits_of_a_dot_product_alone_at_every_level() {
        for level in SimdLevel::ALL.iter().copied().filter(|l| l.is_available()) {
            check(level);
        }
    }

    fn check(level: SimdLevel) {
        let value = |i: usize, seed: f64| {
            let t = (i as f64 + 1.0) * 0.618_033_988_749_894_9 + seed;
            (t.fract() - 0.5) * 10f64.powi((i % 7) as i32 - 3)
        };
        for n in [1, 15, 16, 17, 121, 128, 1000] {
            let x: Vec<f64> = (0..n).map(|i| value(i, 1.0)).collect();
            let ws: Vec<Vec<f64>> = (0..4)
                .map(|m| (0..n).map(|i| value(i, 2.0 + m as f64)).collect())
                .collect();
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
