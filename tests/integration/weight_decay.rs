//! What `weight_decay` penalizes: with `weight_decay_on = "features"` full-batch gradient descent
//! converges to the closed-form ridge solution in the data set's feature units, whatever the
//! whitening; with `"training"` (the default) a whitened run penalizes other weights.

use sweep::config::{DecayOn, Init, TrainSettings, Whiten};
use sweep::train;

use crate::numerics::{dataset, lcg, prepared};

/// Solves the small dense system `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (i, row) in lower.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + i] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x
}

#[test]
fn feature_decay_converges_to_the_ridge_solution_whatever_the_whitening() {
    // Four correlated features (a shared component), a linear target with noise.
    let (n, d, wd) = (300, 4, 0.2);
    let z = lcg(11, n * (d + 1));
    let x: Vec<f64> = (0..n * d)
        .map(|k| {
            let (i, j) = (k / d, k % d);
            0.8 * z[i * (d + 1) + d] + 0.6 * z[i * (d + 1) + j] + 0.1 * j as f64
        })
        .collect();
    let noise = lcg(12, n);
    let y: Vec<f64> = (0..n)
        .map(|i| 1.0 + 2.0 * x[i * d] - x[i * d + 2] + 0.5 * x[i * d + 3] + 0.3 * noise[i])
        .collect();
    // The ridge solution of the objective SGD minimizes, mean squared residual + (wd/2) |u|^2
    // with a free intercept: (Xc'Xc / n + wd/2 I) u = Xc'yc / n on the centred data.
    let mean = |v: &dyn Fn(usize) -> f64| (0..n).map(v).sum::<f64>() / n as f64;
    let mx: Vec<f64> = (0..d).map(|j| mean(&|i| x[i * d + j])).collect();
    let my = mean(&|i| y[i]);
    let a: Vec<Vec<f64>> = (0..d)
        .map(|j| {
            (0..d)
                .map(|k| {
                    let c = mean(&|i| (x[i * d + j] - mx[j]) * (x[i * d + k] - mx[k]));
                    c + if j == k { wd / 2.0 } else { 0.0 }
                })
                .collect()
        })
        .collect();
    let b: Vec<f64> = (0..d)
        .map(|j| mean(&|i| (x[i * d + j] - mx[j]) * (y[i] - my)))
        .collect();
    let ridge = solve(a, b);

    let data = dataset(x, y, d);
    let run = |whiten: Whiten, on: DecayOn| {
        let prep = prepared(data.clone(), whiten, 0.0, false);
        let s = TrainSettings {
            epochs: 3000,
            batch_size: n as u32,
            learning_rate: 0.1,
            init: Init::Zeros,
            whiten,
            weight_decay: wd,
            weight_decay_on: on,
            ..TrainSettings::default()
        };
        train::train(&s, &prep, 0).weights
    };
    let relative = |u: &[f64]| {
        let num: f64 = u.iter().zip(&ridge).map(|(a, b)| (a - b).powi(2)).sum();
        (num / ridge.iter().map(|v| v * v).sum::<f64>()).sqrt()
    };
    for whiten in [Whiten::None, Whiten::Zca, Whiten::Pca] {
        let u = run(whiten, DecayOn::Features);
        assert!(
            relative(&u) < 1e-10,
            "{whiten}: {u:?} against ridge {ridge:?}"
        );
    }
    // Without whitening the two settings are the same penalty; with it, the default penalizes the
    // whitened weights, a different objective with a different minimum.
    assert_eq!(
        run(Whiten::None, DecayOn::Training),
        run(Whiten::None, DecayOn::Features)
    );
    let whitened = run(Whiten::Zca, DecayOn::Training);
    assert!(
        relative(&whitened) > 1e-3,
        "{whitened:?} against ridge {ridge:?}"
    );
}
