//! The vector kernels of the SGD loop, and the SIMD level they run at.
//!
//! Every reduction (dot product, squared norm) keeps [`PARTIALS`] partial sums, element `j` going
//! to sum `j % PARTIALS`, combined by a fixed tree; every multiply-add is a fused one (`mul_add`).
//! So the order of operations, and with it every bit of the result, does not depend on how many
//! lanes the CPU has: a 2-lane, 4-lane or 8-lane build computes the same numbers. The loop that
//! calls these kernels is compiled once per [`SimdLevel`](crate::simd::SimdLevel) (with `#[target_feature]`, chosen at run
//! time for the CPU at hand, never by a build flag), so the compiler can map the partial sums to
//! the widest registers and the fused multiply-adds to FMA instructions.

/// Partial sums of every reduction, whatever the SIMD width.
pub const PARTIALS: usize = 16;

/// The element type runs train in: f64 or f32 (`dtype`). Arithmetic is the type's own; the
/// conversions to and from f64 are where reported figures and settings cross over.
pub trait Real:
    Copy
    + PartialOrd
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + Send
    + Sync
    + 'static
{
    const ZERO: Self;
    fn mul_add(self, a: Self, b: Self) -> Self;
    fn sqrt(self) -> Self;
    fn max(self, other: Self) -> Self;
    /// Rounded to the nearest value of the type.
    fn of(v: f64) -> Self;
    /// Exact.
    fn wide(self) -> f64;
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    #[inline(always)]
    fn mul_add(self, a: f64, b: f64) -> f64 {
        f64::mul_add(self, a, b)
    }
    #[inline(always)]
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn max(self, other: f64) -> f64 {
        f64::max(self, other)
    }
    #[inline(always)]
    fn of(v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn wide(self) -> f64 {
        self
    }
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    #[inline(always)]
    fn mul_add(self, a: f32, b: f32) -> f32 {
        f32::mul_add(self, a, b)
    }
    #[inline(always)]
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn max(self, other: f32) -> f32 {
        f32::max(self, other)
    }
    #[inline(always)]
    fn of(v: f64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn wide(self) -> f64 {
        f64::from(self)
    }
}

/// Combines the partial sums by a fixed pairwise tree.
#[inline(always)]
pub fn combine<T: Real>(acc: [T; PARTIALS]) -> T {
    let mut half = [T::ZERO; 8];
    for k in 0..8 {
        half[k] = acc[k] + acc[k + 8];
    }
    let quarter = [
        half[0] + half[4],
        half[1] + half[5],
        half[2] + half[6],
        half[3] + half[7],
    ];
    (quarter[0] + quarter[2]) + (quarter[1] + quarter[3])
}

/// [`combine`] of each of `N` sets of partial sums (a loop: `map` may be left out of line).
#[inline(always)]
fn combine_each<T: Real, const N: usize>(acc: [[T; PARTIALS]; N]) -> [T; N] {
    let mut out = [T::ZERO; N];
    for m in 0..N {
        out[m] = combine(acc[m]);
    }
    out
}

/// `a . b`.
#[inline(always)]
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; PARTIALS];
    let (ca, cb) = (a.chunks_exact(PARTIALS), b.chunks_exact(PARTIALS));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..PARTIALS {
            acc[k] = x[k].mul_add(y[k], acc[k]);
        }
    }
    for (k, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[k] = x.mul_add(*y, acc[k]);
    }
    combine(acc)
}

/// `y_m = beta_m y_m + alpha_m x` for `N` vectors `y_m` at once, each with the bits of
/// [`scale_axpy_norm2`]`(y_m, beta_m, alpha_m, x)` (and of [`axpy_norm2`] when `beta_m` is 1),
/// returning their new `|y_m|^2`: one pass over `x`, the `N` updates side by side (the last,
/// partial chunk through zero-padded copies: a zero lane adds `+0`, which leaves a sum's bits).
#[inline(always)]
pub fn scale_axpys_norm2<T: Real, const N: usize>(
    ys: [&mut [T]; N],
    beta: [T; N],
    alpha: [T; N],
    x: &[T],
) -> [T; N] {
    let mut acc = [[T::ZERO; PARTIALS]; N];
    let chunks = x.chunks_exact(PARTIALS);
    let (tail, full) = (chunks.remainder(), x.len() - chunks.remainder().len());
    for (c, xs) in chunks.enumerate() {
        for m in 0..N {
            let y: &mut [T; PARTIALS] = (&mut ys[m][c * PARTIALS..(c + 1) * PARTIALS])
                .try_into()
                .expect("a chunk of PARTIALS");
            let mut v = [T::ZERO; PARTIALS];
            for k in 0..PARTIALS {
                v[k] = alpha[m].mul_add(xs[k], beta[m] * y[k]);
            }
            *y = v;
            for k in 0..PARTIALS {
                acc[m][k] = v[k].mul_add(v[k], acc[m][k]);
            }
        }
    }
    if !tail.is_empty() {
        let xt = padded(tail);
        for m in 0..N {
            let yt = padded(&ys[m][full..]);
            let mut v = [T::ZERO; PARTIALS];
            for k in 0..PARTIALS {
                v[k] = alpha[m].mul_add(xt[k], beta[m] * yt[k]);
            }
            ys[m][full..].copy_from_slice(&v[..tail.len()]);
            for k in 0..PARTIALS {
                acc[m][k] = v[k].mul_add(v[k], acc[m][k]);
            }
        }
    }
    combine_each(acc)
}

/// The first `PARTIALS` or fewer values of `v`, zero-padded.
#[inline(always)]
fn padded<T: Real>(v: &[T]) -> [T; PARTIALS] {
    let mut out = [T::ZERO; PARTIALS];
    for (o, x) in out.iter_mut().zip(v) {
        *o = *x;
    }
    out
}

/// `a . b` in f64, each element widened exactly first (the same bits as [`dot`] for f64).
#[inline(always)]
pub fn dot_wide<T: Real>(a: &[T], b: &[T]) -> f64 {
    let mut acc = [0.0; PARTIALS];
    let (ca, cb) = (a.chunks_exact(PARTIALS), b.chunks_exact(PARTIALS));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..PARTIALS {
            acc[k] = x[k].wide().mul_add(y[k].wide(), acc[k]);
        }
    }
    for (k, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[k] = x.wide().mul_add(y.wide(), acc[k]);
    }
    combine(acc)
}

/// `|a|^2`.
#[inline(always)]
pub fn norm2<T: Real>(a: &[T]) -> T {
    dot(a, a)
}

/// `y = beta y + alpha x`, returning the new `|y|^2` (computed in the same pass; the reference
/// order of [`scale_axpys_norm2`]).
#[cfg(test)]
fn scale_axpy_norm2<T: Real>(y: &mut [T], beta: T, alpha: T, x: &[T]) -> T {
    update_norm2(y, x, |yj, xj| alpha.mul_add(xj, beta * yj))
}

/// `y += alpha x`, returning the new `|y|^2` (computed in the same pass; the reference order of
/// [`scale_axpys_norm2`] with `beta` 1).
#[cfg(test)]
fn axpy_norm2<T: Real>(y: &mut [T], alpha: T, x: &[T]) -> T {
    update_norm2(y, x, |yj, xj| alpha.mul_add(xj, yj))
}

/// `y_j = f(y_j, x_j)` for every `j`, returning the new `|y|^2`. Each block of [`PARTIALS`] goes
/// through a local array so that the compiler keeps it in vector registers.
#[inline(always)]
pub fn update_norm2<T: Real>(y: &mut [T], x: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::ZERO; PARTIALS];
    let (cy, cx) = (y.chunks_exact_mut(PARTIALS), x.chunks_exact(PARTIALS));
    let tail = cy.len() * PARTIALS;
    for (yc, xc) in cy.zip(cx) {
        let mut v = [T::ZERO; PARTIALS];
        for k in 0..PARTIALS {
            v[k] = f(yc[k], xc[k]);
        }
        yc.copy_from_slice(&v);
        for k in 0..PARTIALS {
            acc[k] = v[k].mul_add(v[k], acc[k]);
        }
    }
    for (k, (yj, xj)) in y[tail..].iter_mut().zip(&x[tail..]).enumerate() {
        let v = f(*yj, *xj);
        *yj = v;
        acc[k] = v.mul_add(v, acc[k]);
    }
    combine(acc)
}

/// Asks the CPU to bring the slice `start` into cache ahead of use (no-op where the
/// architecture has no prefetch instruction here): one request per 64-byte line, by a plain
/// pointer walk (a row of 121 f64 spans 16 lines, and the loop runs once per row and step).
#[inline(always)]
pub fn prefetch<T>(start: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(start);
        if bytes == 0 {
            return;
        }
        let first = start.as_ptr() as *const i8;
        // The lines holding the first and the last byte, and every line between.
        let lines = ((first as usize + bytes - 1) / 64) - (first as usize / 64) + 1;
        for line in 0..lines {
            // SAFETY: prefetching is a hint and never faults; the addresses are computed without
            // dereferencing (wrapping arithmetic), within a line of the live slice.
            unsafe {
                std::arch::x86_64::_mm_prefetch(
                    first.wrapping_add(line * 64),
                    std::arch::x86_64::_MM_HINT_T0,
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = start;
}

/// A fixed, sign-alternating sequence of awkward magnitudes: the kernels' tests' data.
#[cfg(test)]
pub(crate) fn awkward_values(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let t = (i as f64 + 1.0) * 0.618_033_988_749_894_9 + seed as f64;
            (t.fract() - 0.5) * 10f64.powi((i % 7) as i32 - 3)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use awkward_values as values;

    #[test]
    fn reductions_match_exact_sums_on_small_integers() {
        let a: Vec<f64> = (1..=37).map(f64::from).collect();
        // 1 + 4 + ... + 37^2 = 37 * 38 * 75 / 6.
        assert_eq!(dot(&a, &a), 17575.0);
        assert_eq!(norm2(&[3.0, 4.0]), 25.0);
        let mut y = vec![1.0; 37];
        let n2 = axpy_norm2(&mut y, 2.0, &a);
        assert_eq!(y[36], 75.0);
        assert_eq!(n2, norm2(&y));
        let n2 = scale_axpy_norm2(&mut y, 0.5, -1.0, &a);
        assert_eq!(y[0], 0.5 * 3.0 - 1.0);
        assert_eq!(n2, norm2(&y));
    }

    #[test]
    fn several_vectors_at_once_have_the_bits_of_each_alone() {
        for n in [1, 15, 16, 17, 121, 1000] {
            let x = values(n, 9);
            let ws: Vec<Vec<f64>> = (0..4).map(|m| values(n, 10 + m)).collect();
            let (beta, alpha) = ([1.0, 0.999, 1.0, 0.5], [-0.25, 1e-3, 3.0, -7.0]);
            let mut alone = ws.clone();
            let expected: Vec<f64> = (0..4)
                .map(|m| match beta[m] {
                    1.0 => axpy_norm2(&mut alone[m], alpha[m], &x),
                    b => scale_axpy_norm2(&mut alone[m], b, alpha[m], &x),
                })
                .collect();
            let mut ys = ws.clone();
            let [a, b, c, d] = &mut ys[..] else {
                unreachable!()
            };
            let norms = scale_axpys_norm2([&mut a[..], b, c, d], beta, alpha, &x);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&norms), bits(&expected), "n = {n}");
            for (y, e) in ys.iter().zip(&alone) {
                assert_eq!(bits(y), bits(e), "n = {n}");
            }
        }
    }

    #[test]
    fn the_dot_product_follows_its_documented_order() {
        // The documented order, written out plainly: sum j goes to partial j % 16, fused.
        for n in [1, 15, 16, 17, 121, 1000] {
            let (a, b) = (values(n, 1), values(n, 2));
            let mut acc = [0.0; PARTIALS];
            for j in 0..n {
                acc[j % PARTIALS] = a[j].mul_add(b[j], acc[j % PARTIALS]);
            }
            assert_eq!(dot(&a, &b).to_bits(), combine(acc).to_bits(), "n = {n}");
        }
    }
}
