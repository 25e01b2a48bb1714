//! Momentum and Adam against their definitions written out on a 3-row problem, and the
//! initial weights' distributions (He, Xavier, zeroed fraction).

use sweep::config::{Init, Optimizer, Whiten};
use sweep::train;

use crate::numerics::{dataset, hand_step, lcg, prepared, settings, three_rows};

/// The full-batch gradient of the 3-row problem at `p` (no weight decay).
fn hand_gradient(p: [f64; 3]) -> [f64; 3] {
    let (after, _) = hand_step(p, 1.0, 0.0, None);
    // p - 1 * g = after, so g = p - after.
    [p[0] - after[0], p[1] - after[1], p[2] - after[2]]
}

/// Two full-batch steps of heavy-ball momentum and of Adam (bias correction included), written
/// out from their definitions, against the run's parameters.
#[test]
fn momentum_and_adam_steps_match_the_hand_computed_updates() {
    let prep = prepared(three_rows(), Whiten::None, 0.0, false);
    let lr = 0.1;
    let close = |got: &[f64], want: [f64; 3], what: &str| {
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-14, "{what}: {got:?} vs {want:?}");
        }
    };
    // Momentum: v = m v + g; p -= lr v.
    let mut s = settings(2, 3, lr);
    s.optimizer = Optimizer::Momentum;
    s.momentum = 0.9;
    let out = train::train(&s, &prep, 0);
    let g1 = hand_gradient([0.0; 3]);
    let p1 = [-lr * g1[0], -lr * g1[1], -lr * g1[2]];
    let g2 = hand_gradient(p1);
    let v2: Vec<f64> = (0..3).map(|k| 0.9 * g1[k] + g2[k]).collect();
    close(
        &out.params,
        [p1[0] - lr * v2[0], p1[1] - lr * v2[1], p1[2] - lr * v2[2]],
        "momentum",
    );
    // Adam: m = 0.9 m + 0.1 g; v = 0.999 v + 0.001 g^2; p -= lr (m / (1 - 0.9^t)) / (sqrt(v / (1 - 0.999^t)) + 1e-8).
    s.optimizer = Optimizer::Adam;
    let out = train::train(&s, &prep, 0);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    let mut p = [0.0; 3];
    let (mut m, mut v) = ([0.0; 3], [0.0; 3]);
    for t in 1..=2 {
        let g = hand_gradient(p);
        for k in 0..3 {
            m[k] = b1 * m[k] + (1.0 - b1) * g[k];
            v[k] = b2 * v[k] + (1.0 - b2) * g[k] * g[k];
            let m_hat = m[k] / (1.0 - b1.powi(t));
            let v_hat = v[k] / (1.0 - b2.powi(t));
            p[k] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
        if t == 1 {
            // After one bias-corrected step every coordinate moved by lr |g| / (|g| + eps), against g.
            assert!(p
                .iter()
                .zip(g)
                .all(
                    |(pk, gk)| (pk + lr * gk.signum() * gk.abs() / (gk.abs() + eps)).abs() < 1e-15
                ));
        }
    }
    close(&out.params, p, "adam");
}

/// He-normal draws N(0, 2/d) and Xavier-normal N(0, 2/(d+1)) weights, and `init_zero_fraction`
/// zeroes exactly round(f x d) of them. The variance check pools 40 seeds x 200 weights = 8000
/// draws: the sample variance's relative standard error is sqrt(2/8000) = 1.6%, so a bound of 8%
/// (5 standard errors) fails by chance with probability below 1e-6; the mean gets 5 standard
/// errors too.
#[test]
fn initializations_have_their_documented_variance_and_zero_count() {
    let (n, d) = (300, 200);
    let x = lcg(21, n * d);
    let y = lcg(22, n);
    let prep = prepared(dataset(x, y, d), Whiten::None, 0.0, false);
    for (init, variance) in [
        (Init::HeNormal, 2.0 / d as f64),
        (Init::XavierNormal, 2.0 / (d as f64 + 1.0)),
    ] {
        let mut draws = Vec::new();
        for seed in 0..40 {
            let mut s = settings(1, 32, 1e-3);
            s.init = init;
            s.seed = seed;
            let p = train::initial_params(&s, &prep, 0);
            assert_eq!(p[d], 0.0, "the bias starts at 0");
            draws.extend_from_slice(&p[..d]);
        }
        let count = draws.len() as f64;
        let mean = draws.iter().sum::<f64>() / count;
        let var = draws.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / (count - 1.0);
        assert!(
            (var / variance - 1.0).abs() < 5.0 * (2.0 / count).sqrt(),
            "{init:?}: variance {var} vs {variance}"
        );
        assert!(
            mean.abs() < 5.0 * (variance / count).sqrt(),
            "{init:?}: mean {mean}"
        );
    }
    for (fraction, zeros) in [(0.3, 60), (0.5, 100), (0.0025, 1), (0.999, 200)] {
        let mut s = settings(1, 32, 1e-3);
        s.init = Init::HeNormal;
        s.init_zero_fraction = fraction;
        let p = train::initial_params(&s, &prep, 0);
        assert_eq!(
            p[..d].iter().filter(|w| **w == 0.0).count(),
            zeros,
            "fraction {fraction}"
        );
    }
}

/// `epochs_to_converge` is the first epoch from which the train MSE stays within the bound to the
/// end, on hand-made trajectories.
#[test]
fn epochs_to_converge_on_hand_made_trajectories() {
    let trajectory = |mse: &[f64]| -> Vec<train::EpochStats> {
        mse.iter()
            .enumerate()
            .map(|(i, m)| train::EpochStats {
                epoch: i as u32 + 1,
                train_mse: *m,
                ..Default::default()
            })
            .collect()
    };
    assert_eq!(
        train::epochs_to_converge(&trajectory(&[5.0, 3.0, 1.0, 2.0, 0.9, 1.0]), 1.0),
        Some(5)
    );
    assert_eq!(
        train::epochs_to_converge(&trajectory(&[0.5, 0.7, 0.9]), 1.0),
        Some(1)
    );
    assert_eq!(
        train::epochs_to_converge(&trajectory(&[0.5, 0.7, 1.1]), 1.0),
        None
    );
    assert_eq!(train::epochs_to_converge(&trajectory(&[]), 1.0), None);
}
