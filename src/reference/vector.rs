//! Small dense-vector helpers shared by the reference, the preprocessing and the SGD loop: dot
//! product (fixed reduction order, so deterministic), Euclidean norm, column means.

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
    let mut means = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for (m, v) in means.iter_mut().zip(row) {
            *m += v;
        }
    }
    means.iter_mut().for_each(|m| *m /= n as f64);
    means
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
