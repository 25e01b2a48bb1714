//! Small dense-vector helpers shared by the reference, the preprocessing and the SGD loop: dot
//! product (fixed reduction order, so deterministic), Euclidean norm, column sums and means.

use rayon::prelude::*;

/// Dot product with four independent accumulators (fixed order, so deterministic).
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Euclidean norm.
pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Column means of a row-major `n x d` matrix.
pub fn column_means(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut means = column_sums(x, d, |_, v| v);
    means.iter_mut().for_each(|m| *m /= n as f64);
    means
}

/// For each column `j` of the row-major `x` (`d` columns), the sum of `term(j, x_ij)` over the
/// rows in order, from zero. Ranges of columns go to the threads: each sum is its own, so the
/// bits are the same at any thread count.
pub fn column_sums(x: &[f64], d: usize, term: impl Fn(usize, f64) -> f64 + Sync) -> Vec<f64> {
    let width = d.div_ceil(rayon::current_num_threads()).max(8);
    let mut sums = vec![0.0; d];
    sums.par_chunks_mut(width)
        .enumerate()
        .for_each(|(t, sums)| {
            let start = t * width;
            for row in x.chunks_exact(d) {
                for (c, (s, v)) in sums.iter_mut().zip(&row[start..]).enumerate() {
                    *s += term(start + c, *v);
                }
            }
        });
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_norm_and_means_on_small_cases() {
        let a: Vec<f64> = (1..=7).map(f64::from).collect();
        // 1 + 4 + ... + 49 = 140, exact in any order.
        assert_eq!(dot(&a, &a), 140.0);
        assert_eq!(norm(&[3.0, 4.0]), 5.0);
        assert_eq!(column_means(&[1.0, 10.0, 3.0, 20.0], 2, 2), vec![2.0, 15.0]);
    }
}
