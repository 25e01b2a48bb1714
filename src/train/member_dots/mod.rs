//! `w_m . x` for up to four vectors `w_m` side by side, and the batch-1 step `w_m = beta_m w_m +
//! alpha_m x` fused with the next row's `w_m . x'` (the new weights meet the next row in
//! registers, instead of being stored and loaded again on the chain from one row to the next).
//! With AVX-512 they are written with
//! intrinsics (`avx512`): the compiler's vectorizer, given the sums in the portable form, paired the members
//! lane by lane (or left the sums in memory) instead of keeping each sum in its own registers.
//! Each sum has the bits of [`dot`]: [`PARTIALS`] partial sums (element `j` to sum
//! `j % PARTIALS`, in order, fused), combined by the same tree. Independent chains of fused
//! multiply-adds in one loop is what makes them fast: one dot product alone waits on its own
//! latency.

use super::kernel::{dot, scale_axpys_norm2, Real, PARTIALS};
use crate::simd::SimdLevel;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
mod avx512;

/// The element types with the lockstep's kernels: dot products of several vectors with one, the
/// batch-1 step fused with the next row's dot products, square roots and quotients side by side.
pub trait MemberDots: Real {
    /// `w_m . x` for each `m`, each with the bits of [`dot`], at SIMD level `level` (available
    /// on this CPU: the caller checked).
    fn dots_at<const N: usize>(level: SimdLevel, ws: [&[Self]; N], x: &[Self]) -> [Self; N];

    /// `w_m = beta_m w_m + alpha_m x` for each `m`, returning the new `|w_m|^2` (the bits of
    /// [`scale_axpys_norm2`]) and the new `w_m . next` (the bits of [`dot`]), at SIMD level
    /// `level` (available: the caller checked).
    fn step_then_dots_at<const N: usize>(
        level: SimdLevel,
        ws: [&mut [Self]; N],
        beta: [Self; N],
        alpha: [Self; N],
        x: &[Self],
        next: &[Self],
    ) -> ([Self; N], [Self; N]);

    /// The square root of each of up to four values, in one vector instruction where the level
    /// has one (a square root is correctly rounded: the same bits as one by one).
    fn sqrt_each<const N: usize>(level: SimdLevel, v: [Self; N]) -> [Self; N];

    /// `a_k / b_k` for each of up to four pairs, as [`MemberDots::sqrt_each`] (a quotient is
    /// correctly rounded).
    fn div_each<const N: usize>(level: SimdLevel, a: [Self; N], b: [Self; N]) -> [Self; N];
}

/// Up to four values in four lanes, zeros after them.
#[inline(always)]
fn four_lanes<T: Real, const N: usize>(v: [T; N]) -> [T; 4] {
    assert!(N <= 4, "at most four members side by side");
    let mut lanes = [T::ZERO; 4];
    lanes[..N].copy_from_slice(&v);
    lanes
}

/// The first `N` of four lanes.
#[inline(always)]
fn first_of<T: Real, const N: usize>(lanes: [T; 4]) -> [T; N] {
    std::array::from_fn(|k| lanes[k])
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

/// The portable form of the fused step: the step, then the dot products one by one.
#[inline(always)]
fn step_then_one_by_one<T: Real, const N: usize>(
    mut ws: [&mut [T]; N],
    beta: [T; N],
    alpha: [T; N],
    x: &[T],
    next: &[T],
) -> ([T; N], [T; N]) {
    let norms = scale_axpys_norm2(ws.each_mut().map(|w| &mut **w), beta, alpha, x);
    (norms, one_by_one(ws.each_ref().map(|w| &**w), next))
}

/// Whether every slice holds the same whole number of chunks (the intrinsics' case).
#[inline(always)]
fn whole_chunks<T, const N: usize>(ws: &[&mut [T]; N], x: &[T], next: &[T]) -> bool {
    let n = x.len();
    n.is_multiple_of(PARTIALS) && next.len() == n && ws.iter().all(|w| w.len() == n)
}

/// `MemberDots` for one float type: its AVX-512 kernels, and the four-lane AVX load, store,
/// square root and division of its square roots and quotients side by side.
macro_rules! member_dots {
    ($t:ty, $dots:ident, $step_then_dots:ident, $load:ident, $store:ident, $sqrt:ident, $div:ident) => {
        impl MemberDots for $t {
            #[inline(always)]
            fn dots_at<const N: usize>(level: SimdLevel, ws: [&[$t]; N], x: &[$t]) -> [$t; N] {
                #[cfg(target_arch = "x86_64")]
                if level == SimdLevel::Avx512 {
                    // SAFETY: the caller checked that this CPU has the level's features.
                    return unsafe { avx512::$dots(ws, x) };
                }
                let _ = level;
                one_by_one(ws, x)
            }

            #[inline(always)]
            fn step_then_dots_at<const N: usize>(
                level: SimdLevel,
                ws: [&mut [$t]; N],
                beta: [$t; N],
                alpha: [$t; N],
                x: &[$t],
                next: &[$t],
            ) -> ([$t; N], [$t; N]) {
                #[cfg(target_arch = "x86_64")]
                if level == SimdLevel::Avx512 && whole_chunks(&ws, x, next) {
                    // SAFETY: the caller checked that this CPU has the level's features; the
                    // lengths were just checked.
                    return unsafe { avx512::$step_then_dots(ws, beta, alpha, x, next) };
                }
                let _ = level;
                step_then_one_by_one(ws, beta, alpha, x, next)
            }

            #[inline(always)]
            fn sqrt_each<const N: usize>(level: SimdLevel, v: [$t; N]) -> [$t; N] {
                #[cfg(target_arch = "x86_64")]
                if level != SimdLevel::Portable {
                    let mut lanes = four_lanes(v);
                    // SAFETY: AVX (part of both vector levels) is available: the caller
                    // checked; the loads and stores stay within the four lanes.
                    unsafe { $store(lanes.as_mut_ptr(), $sqrt($load(lanes.as_ptr()))) };
                    return first_of(lanes);
                }
                let _ = level;
                v.map(|x| x.sqrt())
            }

            #[inline(always)]
            fn div_each<const N: usize>(level: SimdLevel, a: [$t; N], b: [$t; N]) -> [$t; N] {
                #[cfg(target_arch = "x86_64")]
                if level != SimdLevel::Portable {
                    let (mut lanes, divisors) = (four_lanes(a), four_lanes(b));
                    // SAFETY: as in `sqrt_each`. Lanes past `N` divide zero by zero and are
                    // dropped.
                    unsafe {
                        let quotients = $div($load(lanes.as_ptr()), $load(divisors.as_ptr()));
                        $store(lanes.as_mut_ptr(), quotients)
                    };
                    return first_of(lanes);
                }
                let _ = level;
                std::array::from_fn(|k| a[k] / b[k])
            }
        }
    };
}

member_dots!(
    f64,
    dots_f64,
    step_then_dots_f64,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_sqrt_pd,
    _mm256_div_pd
);
member_dots!(
    f32,
    dots_f32,
    step_then_dots_f32,
    _mm_loadu_ps,
    _mm_storeu_ps,
    _mm_sqrt_ps,
    _mm_div_ps
);

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

    #[test]
    fn the_fused_step_has_the_bits_of_the_step_then_the_dot_products_at_every_level() {
        for level in SimdLevel::ALL.iter().copied().filter(|l| l.is_available()) {
            for n in [1, 16, 121, 128, 1000] {
                check_step::<f64>(level, n, |v| v);
                check_step::<f32>(level, n, |v| v as f32);
            }
        }
    }

    /// Four members (two of them with `beta` 1, as without weight decay) against each member's
    /// [`scale_axpys_norm2`] alone followed by [`dot`] with the next row.
    fn check_step<T: MemberDots>(level: SimdLevel, n: usize, of: fn(f64) -> T) {
        let values = |seed| {
            awkward_values(n, seed)
                .into_iter()
                .map(of)
                .collect::<Vec<T>>()
        };
        let (x, next) = (values(1), values(2));
        let beta = [of(1.0), of(0.999_7), of(1.0), of(1.000_3)];
        let alpha = [of(-3e-3), of(2.5e-2), of(7.0), of(-1e-5)];
        let mut fused: Vec<Vec<T>> = (0..4).map(|m| values(3 + m)).collect();
        let mut alone = fused.clone();
        let [a, b, c, d] = &mut fused[..] else {
            unreachable!()
        };
        let (norms, dots) = T::step_then_dots_at(
            level,
            [a, b, c, d].map(|w| &mut w[..]),
            beta,
            alpha,
            &x,
            &next,
        );
        for m in 0..4 {
            let norm = scale_axpys_norm2([&mut alone[m][..]], [beta[m]], [alpha[m]], &x)[0];
            let message = format!(
                "{level}, {}, n = {n}, member {m}",
                std::any::type_name::<T>()
            );
            let bits = |v: T| v.wide().to_bits();
            let all_bits = |w: &[T]| w.iter().map(|v| bits(*v)).collect::<Vec<u64>>();
            assert_eq!(
                all_bits(&fused[m]),
                all_bits(&alone[m]),
                "weights, {message}"
            );
            assert_eq!(bits(norms[m]), bits(norm), "|w|^2, {message}");
            assert_eq!(
                bits(dots[m]),
                bits(dot(&alone[m], &next)),
                "w . next, {message}"
            );
        }
    }

    #[test]
    fn square_roots_and_quotients_side_by_side_have_the_bits_of_one_by_one_at_every_level() {
        let values = [2.0, 1e-300, 0.0, 7.25e12];
        for level in SimdLevel::ALL.iter().copied().filter(|l| l.is_available()) {
            let four = f64::sqrt_each(level, values);
            let two = f64::sqrt_each(level, [values[1], values[3]]);
            let narrow = f32::sqrt_each(level, values.map(|v| v as f32));
            for k in 0..4 {
                assert_eq!(
                    four[k].to_bits(),
                    values[k].sqrt().to_bits(),
                    "{level}, {k}"
                );
                assert_eq!(
                    narrow[k].to_bits(),
                    (values[k] as f32).sqrt().to_bits(),
                    "{level}"
                );
            }
            assert_eq!(two, [values[1].sqrt(), values[3].sqrt()], "{level}");
            assert_eq!(four[0], std::f64::consts::SQRT_2, "{level}");
            let quotients = f64::div_each(level, values, [3.0, 7.0, 1.5, 1e-310]);
            let narrow = f32::div_each(level, [1.0, 2.0, 3.0], [3.0, 7.0, 0.1]);
            for k in 0..4 {
                let alone = values[k] / [3.0, 7.0, 1.5, 1e-310][k];
                assert_eq!(quotients[k].to_bits(), alone.to_bits(), "{level}, {k}");
            }
            assert_eq!(narrow, [1.0f32 / 3.0, 2.0 / 7.0, 3.0 / 0.1], "{level}");
            assert_eq!(quotients[2], 0.0, "{level}");
        }
    }
}
