//! The minibatch step's kernels, compiled once per SIMD level out of the training loop (inlined
//! into that large function, their sums were left in memory rather than in vector registers):
//! every row's residual for all members ([`residuals_of_rows`]), a member's scaled gradient and
//! its norm ([`scaled_gradient`]), and plain SGD's clipped update ([`sgd_update`]). Each keeps
//! the order of operations documented in [`super`], whatever the level.

use crate::simd::{at_every_level, SimdLevel};
use crate::train::kernel::{combine, prefetch, update_norm2, Real, PARTIALS};
use crate::train::member_dots::MemberDots;
use crate::train::sgd::PREFETCH_AHEAD;

at_every_level! {
    #[allow(clippy::too_many_arguments)]
    fn residuals_of_rows[T: MemberDots, const N: usize](
        level: SimdLevel,
        weights: [&[T]; N],
        bias: [T; N],
        targets: [&[f64]; N],
        x: &[T],
        stride: usize,
        rows: &[u32],
        order: &[u32],
        residuals: &mut [T],
    ) -> [(T, T, T); N];
    fn sgd_update[T: Real](w: &mut [T], g: &[T], neg_lr: T, factor: T, clipped: bool) -> T;
    #[allow(clippy::too_many_arguments)]
    fn scaled_gradient[T: Real](
        g: &mut [T],
        v: &[T],
        x: &[T],
        stride: usize,
        rows: &[u32],
        residuals: &[T],
        scale: T,
        decay: T,
        bias: (T, usize),
    ) -> T;
}

/// The residuals of `N` members on the rows `rows` of the row-major `x` (rows of `stride`
/// values), member `m` with weights `weights[m]` (padded to the stride), bias `bias[m]` and
/// targets `targets[m]`: `residuals[m len + k]` for row `k` of `len`, and per member the sums over the rows
/// of the squared residuals (fused), the predictions and the residuals. `order` is the epoch's
/// order from the first of `rows` on, whose rows are prefetched a few ahead of use (empty: none).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn residuals_of_rows<T: MemberDots, const N: usize>(
    level: SimdLevel,
    weights: [&[T]; N],
    bias: [T; N],
    targets: [&[f64]; N],
    x: &[T],
    stride: usize,
    rows: &[u32],
    order: &[u32],
    residuals: &mut [T],
) -> [(T, T, T); N] {
    let mut sums = [(T::ZERO, T::ZERO, T::ZERO); N];
    let residuals = &mut residuals[..rows.len() * N];
    for (k, &i) in rows.iter().enumerate() {
        if let Some(&next) = order.get(k + PREFETCH_AHEAD) {
            let start = next as usize * stride;
            prefetch(&x[start..start + stride]);
        }
        let i = i as usize;
        let row = &x[i * stride..(i + 1) * stride];
        // The members' dot products side by side (see `MemberDots`).
        let wx = T::dots_at(level, weights, row);
        for m in 0..N {
            let (loss, prediction, residual_sum) = &mut sums[m];
            let p = wx[m] + bias[m];
            let r = p - T::of(targets[m][i]);
            *loss = r.mul_add(r, *loss);
            *prediction += p;
            *residual_sum += r;
            residuals[m * rows.len() + k] = r;
        }
    }
    sums
}

/// A member's scaled gradient on the rows `rows` of the row-major `x` (rows of `stride` values;
/// `residuals` its residual on each row): `g_j = fma(sum_k r_k x_kj, scale, decay v_j)` with the
/// sum `fma(r_k, x_kj, .)` over the rows in order from zero. Returns `|(g, bias)|^2`: the
/// [`PARTIALS`] partial sums of `g_j^2` (element `j` to sum `j % PARTIALS`), then `bias^2` added
/// to sum `bias_index % PARTIALS`, combined. Blocks of columns (eight vector registers' worth, then blocks of
/// [`PARTIALS`]) are held in registers over all the rows, so `g` is stored once; the blocking
/// changes no sum.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn scaled_gradient<T: Real>(
    g: &mut [T],
    v: &[T],
    x: &[T],
    stride: usize,
    rows: &[u32],
    residuals: &[T],
    scale: T,
    decay: T,
    (bias, bias_index): (T, usize),
) -> T {
    // `fma(a, scale, 0 v)` is `a scale` bit for bit (no sum `a` is -0: it starts at +0, and an
    // exact zero sum is +0), so without decay the multiplication by zero is left out.
    let mut partials = if decay == T::ZERO {
        Block::<T, false> {
            g,
            v,
            x,
            stride,
            rows,
            residuals,
            scale,
            decay,
        }
        .partials()
    } else {
        Block::<T, true> {
            g,
            v,
            x,
            stride,
            rows,
            residuals,
            scale,
            decay,
        }
        .partials()
    };
    // A select per lane, not a store at a computed index: the sums stay in registers.
    let k = bias_index % PARTIALS;
    for (lane, partial) in partials.iter_mut().enumerate() {
        if lane == k {
            *partial = bias.mul_add(bias, *partial);
        }
    }
    combine(partials)
}

/// Plain SGD's step with clipping: `w_j = fma(neg_lr, g_j factor, w_j)`, as scaling `g` and then
/// stepping would (without clipping `g_j * 1` is `g_j` bit for bit and is left out); returns the
/// new `|w|^2`.
#[inline(always)]
fn sgd_update<T: Real>(w: &mut [T], g: &[T], neg_lr: T, factor: T, clipped: bool) -> T {
    if clipped {
        update_norm2(w, g, |wj, gj| neg_lr.mul_add(gj * factor, wj))
    } else {
        update_norm2(w, g, |wj, gj| neg_lr.mul_add(gj, wj))
    }
}

/// The arguments of [`scaled_gradient`], shared by its blocks (`DECAY`: the decay is not zero).
struct Block<'a, T, const DECAY: bool> {
    g: &'a mut [T],
    v: &'a [T],
    x: &'a [T],
    stride: usize,
    rows: &'a [u32],
    residuals: &'a [T],
    scale: T,
    decay: T,
}

impl<T: Real, const DECAY: bool> Block<'_, T, DECAY> {
    /// The gradient by blocks of columns, returning the partial sums of its squares.
    #[inline(always)]
    fn partials(mut self) -> [T; PARTIALS] {
        let mut partials = [T::ZERO; PARTIALS];
        let mut j0 = 0;
        if std::mem::size_of::<T>() == 8 {
            self.run::<64>(&mut j0, &mut partials);
        } else {
            self.run::<128>(&mut j0, &mut partials);
        }
        self.run::<PARTIALS>(&mut j0, &mut partials);
        if j0 < self.stride {
            self.tail(j0, &mut partials);
        }
        partials
    }

    /// Blocks of `B` columns from `*j0` while a whole one fits in the row.
    #[inline(always)]
    fn run<const B: usize>(&mut self, j0: &mut usize, partials: &mut [T; PARTIALS]) {
        while *j0 + B <= self.stride {
            let mut acc = [T::ZERO; B];
            for (&i, &r) in self.rows.iter().zip(self.residuals) {
                let start = i as usize * self.stride + *j0;
                let xs: &[T; B] = self.x[start..start + B]
                    .try_into()
                    .expect("a block of B columns");
                for c in 0..B {
                    acc[c] = r.mul_add(xs[c], acc[c]);
                }
            }
            let v: &[T; B] = self.v[*j0..*j0 + B].try_into().expect("B values");
            let mut g = [T::ZERO; B];
            self.finish(&acc, v, &mut g, partials);
            self.g[*j0..*j0 + B].copy_from_slice(&g);
            *j0 += B;
        }
    }

    /// The last columns, fewer than [`PARTIALS`] (rows not padded), through zero-padded copies:
    /// a zero adds `+0`, which leaves every sum's bits as they are.
    #[inline(always)]
    fn tail(&mut self, j0: usize, partials: &mut [T; PARTIALS]) {
        let width = self.stride - j0;
        let mut acc = [T::ZERO; PARTIALS];
        for (&i, &r) in self.rows.iter().zip(self.residuals) {
            let start = i as usize * self.stride + j0;
            let xs = padded(&self.x[start..start + width]);
            for c in 0..PARTIALS {
                acc[c] = r.mul_add(xs[c], acc[c]);
            }
        }
        let mut g = [T::ZERO; PARTIALS];
        self.finish(&acc, &padded(&self.v[j0..]), &mut g, partials);
        self.g[j0..].copy_from_slice(&g[..width]);
    }

    /// `g_c = fma(acc_c, scale, decay v_c)`, each squared into partial sum `c % PARTIALS` (the
    /// block starts at a multiple of [`PARTIALS`]).
    #[inline(always)]
    fn finish<const B: usize>(
        &self,
        acc: &[T; B],
        v: &[T; B],
        g: &mut [T; B],
        partials: &mut [T; PARTIALS],
    ) {
        for q in 0..B / PARTIALS {
            for (k, partial) in partials.iter_mut().enumerate() {
                let c = q * PARTIALS + k;
                g[c] = if DECAY {
                    acc[c].mul_add(self.scale, self.decay * v[c])
                } else {
                    acc[c] * self.scale
                };
                *partial = g[c].mul_add(g[c], *partial);
            }
        }
    }
}

/// The first [`PARTIALS`] or fewer values of `v`, zero-padded.
#[inline(always)]
fn padded<T: Real>(v: &[T]) -> [T; PARTIALS] {
    let mut out = [T::ZERO; PARTIALS];
    for (o, x) in out.iter_mut().zip(v) {
        *o = *x;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::dispatch;
    use crate::train::kernel::{awkward_values as values, norm2};

    /// The documented order written out plainly: one fused axpy per row from zero, then the
    /// scaling with the decay, then the squared norm in its documented order.
    #[allow(clippy::too_many_arguments)]
    fn reference<T: Real>(
        x: &[T],
        stride: usize,
        rows: &[u32],
        r: &[T],
        scale: T,
        decay: T,
        v: &[T],
        bias: T,
    ) -> (Vec<T>, T) {
        let mut g = vec![T::ZERO; stride];
        for (&i, &rk) in rows.iter().zip(r) {
            let row = &x[i as usize * stride..(i as usize + 1) * stride];
            for (gj, xj) in g.iter_mut().zip(row) {
                *gj = rk.mul_add(*xj, *gj);
            }
        }
        for (gj, vj) in g.iter_mut().zip(v) {
            *gj = gj.mul_add(scale, decay * *vj);
        }
        // The bias at index stride + 3, zeros between (a zero adds +0 to its partial sum).
        let extended: Vec<T> = g
            .iter()
            .copied()
            .chain([T::ZERO; 3])
            .chain([bias])
            .collect();
        let n2 = norm2(&extended);
        (g, n2)
    }

    fn check<T: Real>(level: SimdLevel, of: fn(f64) -> T, bits: fn(T) -> u64) {
        // Strides: padded (multiples of 16, some of the wide block) and not (tails).
        for (n, stride) in [
            (1, 1),
            (3, 15),
            (7, 16),
            (32, 121),
            (5, 128),
            (9, 144),
            (4, 200),
        ] {
            let x: Vec<T> = values(n * stride, 3).into_iter().map(of).collect();
            let v: Vec<T> = values(stride, 5).into_iter().map(of).collect();
            // Rows in a scrambled order, one repeated.
            let rows: Vec<u32> = (0..n as u32).rev().chain([0]).collect();
            let r: Vec<T> = values(rows.len(), 4).into_iter().map(of).collect();
            let (scale, decay) = (of(2.0 / 3.0), of(1e-3));
            let bias = (of(0.75), stride + 3);
            let (expected, expected_norm2) =
                reference(&x, stride, &rows, &r, scale, decay, &v, bias.0);
            let mut g = vec![of(f64::NAN); stride];
            let norm2 = dispatch!(
                level,
                super::scaled_gradient(&mut g, &v, &x, stride, &rows, &r, scale, decay, bias)
            );
            let as_bits = |v: &[T]| v.iter().map(|x| bits(*x)).collect::<Vec<_>>();
            assert_eq!(
                as_bits(&g),
                as_bits(&expected),
                "{level}, n = {n}, stride = {stride}"
            );
            assert_eq!(
                bits(norm2),
                bits(expected_norm2),
                "{level}, stride = {stride}"
            );
        }
    }

    #[test]
    fn the_scaled_gradient_has_the_bits_of_one_axpy_per_row_at_every_level() {
        for level in SimdLevel::ALL.iter().copied().filter(|l| l.is_available()) {
            check::<f64>(level, |v| v, f64::to_bits);
            check::<f32>(level, |v| v as f32, |v| u64::from(v.to_bits()));
        }
    }

    #[test]
    fn a_gradient_of_small_integers_is_exact() {
        // Rows (1, 2, ..., 20) and (2, 4, ..., 40) with residuals 1 and -1: g_j = -(j + 1), then
        // scaled by 2 with decay 0.5 on v = 2: g_j = -2 (j + 1) + 1.
        let stride = 20;
        let x: Vec<f64> = (0..2 * stride)
            .map(|k| ((k % stride + 1) * (k / stride + 1)) as f64)
            .collect();
        let mut g = vec![0.0; stride];
        let v = vec![2.0; stride];
        let norm2 = scaled_gradient(
            &mut g,
            &v,
            &x,
            stride,
            &[0, 1],
            &[1.0, -1.0],
            2.0,
            0.5,
            (3.0, 7),
        );
        let expected: Vec<f64> = (0..stride).map(|j| -2.0 * (j as f64 + 1.0) + 1.0).collect();
        assert_eq!(g, expected);
        assert_eq!(norm2, expected.iter().map(|v| v * v).sum::<f64>() + 9.0);
    }
}
