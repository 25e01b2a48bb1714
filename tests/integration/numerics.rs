//! Closed-form and identity checks of the numerical kernels: OLS, whitening, SGD updates.

use std::sync::Arc;

use sweep::config::{DataConfig, Dtype, Init, Optimizer, TrainSettings, Whiten};
use sweep::data::{self, Dataset};
use sweep::preprocess::Prepared;
use sweep::reference::{self, Reference, Spectrum};
use sweep::train::{self, Status};

pub(crate) fn dataset(x: Vec<f64>, y: Vec<f64>, d: usize) -> Dataset {
    let n = y.len();
    Dataset {
        n,
        d,
        x: x.into(),
        y: y.into(),
        feature_names: (0..d).map(|j| format!("x{j}")).collect(),
        target_name: "y".into(),
    }
}

pub(crate) fn prepared(data: Dataset, whiten: Whiten, eps: f64, normalize: bool) -> Prepared {
    let reference = Reference::of(&data).unwrap();
    Prepared::new(Arc::new(data), Arc::new(reference), whiten, eps, normalize).unwrap()
}

/// The same preparation for runs in `dtype`.
pub(crate) fn prepared_in(
    data: Dataset,
    whiten: Whiten,
    eps: f64,
    normalize: bool,
    dtype: Dtype,
) -> Prepared {
    let reference = Arc::new(Reference::of(&data).unwrap());
    let data = Arc::new(data);
    let features = sweep::preprocess::Features::of(&data, &reference, whiten, eps)
        .unwrap()
        .with_dtype(dtype);
    Prepared::with_features(data, reference, &features, whiten, eps, normalize).unwrap()
}

/// The built-in generator's data at a small shape, 3 signal lags.
pub(crate) fn small_lagged(n_rows: u32, n_features: u32, seed: u64) -> Dataset {
    let cfg = DataConfig {
        n_rows,
        n_features,
        signal_lags: 3,
        ..DataConfig::default()
    };
    data::lagged_levels(&cfg, seed).unwrap()
}

/// A deterministic pseudo-random sequence for test designs (no dependence on rand's algorithms).
pub(crate) fn lcg(seed: u64, len: usize) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn ols_matches_the_closed_form_simple_regression() {
    // x = 1..4, y = 2,3,5,4: slope Sxy/Sxx = 4/5, intercept 3.5 - 0.8 * 2.5 = 1.5,
    // SSE = 0.09 + 0.01 + 1.21 + 0.49 = 1.8, SST = 5, R² = 0.64.
    let fit =
        reference::fit_rows(&[1.0, 2.0, 3.0, 4.0], &[2.0, 3.0, 5.0, 4.0], 4, 1, true).unwrap();
    assert!(
        (fit.coefficients[0] - 0.8).abs() < 1e-14,
        "{:?}",
        fit.coefficients
    );
    assert!((fit.intercept.unwrap() - 1.5).abs() < 1e-14);
    assert!((fit.mse - 0.45).abs() < 1e-14);
    assert!((fit.r2 - 0.64).abs() < 1e-14);
    assert!((fit.residual_sd - (1.8f64 / 2.0).sqrt()).abs() < 1e-14);
    assert_eq!(
        fit.rank, 2,
        "rank of the design, the intercept column included"
    );
}

#[test]
fn ols_residual_is_orthogonal_to_the_design() {
    let (n, d) = (300, 6);
    let x = lcg(7, n * d);
    let y: Vec<f64> = (0..n)
        .map(|i| x[i * d..(i + 1) * d].iter().sum::<f64>() + 0.1 * lcg(i as u64, 1)[0])
        .collect();
    let fit = reference::fit_rows(&x, &y, n, d, true).unwrap();
    let b0 = fit.intercept.unwrap();
    let resid: Vec<f64> = (0..n)
        .map(|i| {
            y[i] - b0
                - x[i * d..(i + 1) * d]
                    .iter()
                    .zip(&fit.coefficients)
                    .map(|(a, c)| a * c)
                    .sum::<f64>()
        })
        .collect();
    assert!(resid.iter().sum::<f64>().abs() < 1e-11);
    for j in 0..d {
        let dot: f64 = (0..n).map(|i| x[i * d + j] * resid[i]).sum();
        assert!(dot.abs() < 1e-11, "column {j}: X^T r = {dot}");
    }
}

#[test]
fn duplicate_column_gives_rank_deficient_minimum_norm_solution() {
    // Two copies of x: the minimum-norm solution splits the slope 0.8 equally.
    let x = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0];
    let fit = reference::fit_rows(&x, &[2.0, 3.0, 5.0, 4.0], 4, 2, true).unwrap();
    assert_eq!(fit.rank, 2, "intercept plus one independent column of two");
    assert!(
        (fit.coefficients[0] - 0.4).abs() < 1e-12 && (fit.coefficients[1] - 0.4).abs() < 1e-12,
        "{:?}",
        fit.coefficients
    );
    assert!((fit.intercept.unwrap() - 1.5).abs() < 1e-12);
    assert!((fit.r2 - 0.64).abs() < 1e-12);
    assert!(fit.condition_number.is_infinite() || fit.condition_number > 1e12);
}

#[test]
fn too_few_rows_is_an_error() {
    let err = reference::fit_rows(&[1.0, 2.0, 3.0, 5.0], &[1.0, 2.0], 2, 2, true).unwrap_err();
    assert!(err.to_string().contains("more rows than features"), "{err}");
}

fn covariance(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let m = reference::column_means(x, n, d);
    let mut c = vec![0.0; d * d];
    for row in x.chunks_exact(d) {
        for a in 0..d {
            for b in 0..d {
                c[a * d + b] += (row[a] - m[a]) * (row[b] - m[b]) / n as f64;
            }
        }
    }
    c
}

#[test]
fn whitening_gives_identity_covariance_on_a_well_conditioned_case() {
    let (n, d) = (500, 5);
    let mut x = lcg(11, n * d);
    // Mix the columns a little so the covariance is not diagonal.
    for row in x.chunks_exact_mut(d) {
        row[1] += 0.5 * row[0];
        row[3] -= 0.3 * row[2];
    }
    let spectrum = Spectrum::of(&x, n, d).unwrap();
    let sigma = covariance(&x, n, d);
    for zca in [true, false] {
        let (w, w_inv) = reference::whitening(&spectrum, zca, 0.0).unwrap();
        for a in 0..d {
            for b in 0..d {
                // (W Sigma W^T)_{ab}
                let mut v = 0.0;
                for i in 0..d {
                    for j in 0..d {
                        v += w[(a, i)] * sigma[i * d + j] * w[(b, j)];
                    }
                }
                let expected = if a == b { 1.0 } else { 0.0 };
                assert!((v - expected).abs() < 1e-10, "zca={zca} ({a},{b}) = {v}");
                let identity: f64 = (0..d).map(|k| w[(a, k)] * w_inv[(k, b)]).sum();
                assert!((identity - expected).abs() < 1e-10);
            }
        }
        if zca {
            for a in 0..d {
                for b in 0..d {
                    assert!(
                        (w[(a, b)] - w[(b, a)]).abs() < 1e-12,
                        "ZCA whitening must be symmetric"
                    );
                }
            }
        }
    }
}

#[test]
fn singular_covariance_without_eps_is_a_clear_error() {
    let base = lcg(3, 100);
    let x: Vec<f64> = base.iter().flat_map(|v| [*v, *v]).collect();
    let spectrum = Spectrum::of(&x, 100, 2).unwrap();
    assert_eq!(spectrum.rank, 1);
    let err = reference::whitening(&spectrum, true, 0.0).unwrap_err();
    assert!(err.to_string().contains("whiten_eps"), "{err}");
    assert!(reference::whitening(&spectrum, true, 1e-8).is_ok());
}

pub(crate) fn three_rows() -> Dataset {
    dataset(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], vec![1.0, 2.0, 4.0], 2)
}

pub(crate) fn settings(epochs: u32, batch: u32, lr: f64) -> TrainSettings {
    TrainSettings {
        epochs,
        batch_size: batch,
        learning_rate: lr,
        init: Init::Zeros,
        converge_tol: 0.01,
        ..TrainSettings::default()
    }
}

/// One full-batch gradient step written out for the 3-row problem: returns (new params, grad norm).
pub(crate) fn hand_step(p: [f64; 3], lr: f64, wd: f64, clip: Option<f64>) -> ([f64; 3], f64) {
    let rows = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
    let y = [1.0, 2.0, 4.0];
    let r: Vec<f64> = (0..3)
        .map(|i| p[0] * rows[i][0] + p[1] * rows[i][1] + p[2] - y[i])
        .collect();
    let mut g = [
        2.0 / 3.0 * (r[0] * 1.0 + r[2] * 1.0) + wd * p[0],
        2.0 / 3.0 * (r[1] * 1.0 + r[2] * 1.0) + wd * p[1],
        2.0 / 3.0 * (r[0] + r[1] + r[2]),
    ];
    let gnorm = (g[0] * g[0] + g[1] * g[1] + g[2] * g[2]).sqrt();
    if let Some(c) = clip {
        if gnorm > c {
            g.iter_mut().for_each(|v| *v *= c / gnorm);
        }
    }
    (
        [p[0] - lr * g[0], p[1] - lr * g[1], p[2] - lr * g[2]],
        gnorm,
    )
}

#[test]
fn one_epoch_of_full_batch_sgd_matches_the_hand_computed_update() {
    let prep = prepared(three_rows(), Whiten::None, 0.0, false);
    // From zeros: residuals -1, -2, -4; grad = 2/3 * (-5, -6, -7); step 0.1.
    let out = train::train(&settings(1, 3, 0.1), &prep, 0);
    let expected = [10.0 / 30.0, 12.0 / 30.0, 14.0 / 30.0];
    for (a, b) in out.params.iter().zip(expected) {
        assert!((a - b).abs() < 1e-15, "{:?}", out.params);
    }
    let e = &out.epochs[0];
    assert!((e.loss - 7.0).abs() < 1e-15, "loss (1 + 4 + 16) / 3");
    assert!((e.gradient_norm - (2.0 / 3.0) * (25.0f64 + 36.0 + 49.0).sqrt()).abs() < 1e-14);
    assert_eq!(e.weight_norm, 0.0);
    assert_eq!(e.clipped_fraction, 0.0);
    let (hand, _) = hand_step([0.0; 3], 0.1, 0.0, None);
    assert!(out
        .params
        .iter()
        .zip(hand)
        .all(|(a, b)| (a - b).abs() < 1e-15));
}

#[test]
fn clipping_and_weight_decay_match_the_hand_computed_updates() {
    let prep = prepared(three_rows(), Whiten::None, 0.0, false);
    let mut s = settings(2, 3, 0.1);
    s.weight_decay = 0.5;
    s.clip = true;
    s.clip_norm = 1.0;
    let out = train::train(&s, &prep, 0);
    let (p1, g1) = hand_step([0.0; 3], 0.1, 0.5, Some(1.0));
    let (p2, g2) = hand_step(p1, 0.1, 0.5, Some(1.0));
    for (a, b) in out.params.iter().zip(p2) {
        assert!((a - b).abs() < 1e-15, "{:?} vs {p2:?}", out.params);
    }
    assert!((out.epochs[0].gradient_norm - g1).abs() < 1e-14);
    assert!((out.epochs[1].gradient_norm - g2).abs() < 1e-14);
    assert_eq!(out.epochs[0].clipped_fraction, 1.0);
    // Without clipping the same two steps differ: the check above could fail.
    s.clip = false;
    let unclipped = train::train(&s, &prep, 0);
    let (q1, _) = hand_step([0.0; 3], 0.1, 0.5, None);
    let (q2, _) = hand_step(q1, 0.1, 0.5, None);
    for (a, b) in unclipped.params.iter().zip(q2) {
        assert!((a - b).abs() < 1e-15);
    }
    assert!((unclipped.params[0] - out.params[0]).abs() > 1e-3);
}

#[test]
fn batch_size_one_follows_the_epoch_permutation() {
    let prep = prepared(three_rows(), Whiten::None, 0.0, false);
    let s = settings(1, 1, 0.05);
    let out = train::train(&s, &prep, 9);
    let mut perm = vec![0u32; 3];
    train::shuffle_epoch(&mut perm, &mut sweep::rng::stream(9, s.seed, "shuffle"));
    let rows = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
    let y = [1.0, 2.0, 4.0];
    let mut p = [0.0f64; 3];
    for &i in &perm {
        let i = i as usize;
        let r = p[0] * rows[i][0] + p[1] * rows[i][1] + p[2] - y[i];
        p = [
            p[0] - 0.05 * 2.0 * r * rows[i][0],
            p[1] - 0.05 * 2.0 * r * rows[i][1],
            p[2] - 0.05 * 2.0 * r,
        ];
    }
    for (a, b) in out.params.iter().zip(p) {
        assert!((a - b).abs() < 1e-15, "{:?} vs {p:?}", out.params);
    }
}

#[test]
fn sgd_reaches_the_ols_loss_on_a_well_conditioned_problem() {
    let (n, d) = (400, 4);
    let x = lcg(5, n * d);
    let noise = lcg(6, n);
    let y: Vec<f64> = (0..n)
        .map(|i| 0.3 + 1.5 * x[i * d] - 2.0 * x[i * d + 1] + 0.5 * x[i * d + 3] + 0.2 * noise[i])
        .collect();
    let data = dataset(x, y, d);
    for dtype in [Dtype::F64, Dtype::F32] {
        let prep = prepared_in(data.clone(), Whiten::None, 0.0, false, dtype);
        // Adam's steady-state noise scales with its step size, so it gets a smaller one.
        for (optimizer, lr) in [
            (Optimizer::Sgd, 0.01),
            (Optimizer::Momentum, 0.002),
            (Optimizer::Adam, 0.001),
        ] {
            let mut s = settings(300, 8, lr);
            s.optimizer = optimizer;
            s.init = Init::HeNormal;
            s.dtype = dtype;
            let out = train::train(&s, &prep, 1);
            let ratio = out.final_train_mse() / prep.reference.fit.mse;
            assert_eq!(
                out.status,
                Status::Converged,
                "{dtype} {optimizer:?}: MSE ratio {ratio}"
            );
            assert!(ratio < 1.01);
        }
    }
}

/// An f32 run trains in f32 but reports in f64: its last train MSE is the f64 MSE of its
/// (f32) parameters on the f32 features, to the last few bits, and it differs from the f64 run.
#[test]
fn f32_runs_report_the_f64_mse_of_their_f32_model() {
    let (n, d) = (300, 5);
    let x = lcg(8, n * d);
    let noise = lcg(9, n);
    let y: Vec<f64> = (0..n)
        .map(|i| 1.0 - x[i * d] + 0.7 * x[i * d + 2] + 0.1 * noise[i])
        .collect();
    let data = dataset(x, y, d);
    let prep = prepared_in(data.clone(), Whiten::Zca, 0.0, true, Dtype::F32);
    let mut s = settings(20, 4, 0.01);
    s.dtype = Dtype::F32;
    let out = train::train(&s, &prep, 2);
    // Every parameter is an f32 widened exactly.
    assert!(out.params.iter().all(|p| f64::from(*p as f32) == *p));
    let x32 = prep.x32.as_deref().unwrap();
    let sse: f64 = (0..n)
        .map(|i| {
            // Stored rows may be padded with zeros to `stride` values.
            let row = &x32[i * prep.stride()..i * prep.stride() + d];
            let p: f64 = row
                .iter()
                .zip(&out.params)
                .map(|(a, w)| f64::from(*a) * w)
                .sum::<f64>()
                + out.params[d];
            let r = p * prep.y_scale + prep.y_mean - data.y[i];
            r * r
        })
        .sum();
    let reported = out.final_train_mse();
    assert!(
        ((reported - sse / n as f64) / reported).abs() < 1e-12,
        "{reported} vs {}",
        sse / n as f64
    );
    let mut s64 = s.clone();
    s64.dtype = Dtype::F64;
    let prep64 = prepared_in(data, Whiten::Zca, 0.0, true, Dtype::F64);
    let out64 = train::train(&s64, &prep64, 2);
    assert_ne!(out64.final_train_mse(), reported);
    assert!(((out64.final_train_mse() - reported) / reported).abs() < 1e-4);
}

#[test]
fn ols_init_starts_at_the_ols_loss_in_every_preprocessing() {
    let cfg = DataConfig {
        n_rows: 600,
        n_features: 12,
        signal_lags: 4,
        ..DataConfig::default()
    };
    let data = data::lagged_levels(&cfg, 3).unwrap();
    for (whiten, normalize) in [
        (Whiten::None, false),
        (Whiten::Zca, true),
        (Whiten::Pca, false),
        (Whiten::Pca, true),
    ] {
        let prep = prepared(data.clone(), whiten, 0.0, normalize);
        let mut s = settings(1, 32, 1e-3);
        s.init = Init::Ols;
        let p0 = train::initial_params(&s, &prep, 0);
        let (mse, _) = train::full_pass(&prep, &p0);
        let rel = (mse / prep.reference.fit.mse - 1.0).abs();
        assert!(
            rel < 1e-6,
            "{whiten:?} normalize={normalize}: relative MSE gap {rel}"
        );
        let w = prep.weights_in_feature_units(&p0[..prep.d()]);
        let dist: f64 = w
            .iter()
            .zip(&prep.reference.fit.coefficients)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            dist < 1e-6 * prep.reference.weight_norm,
            "{whiten:?}: distance {dist}"
        );
    }
}

#[test]
fn a_huge_learning_rate_diverges_instead_of_crashing() {
    let prep = prepared(three_rows(), Whiten::None, 0.0, false);
    let out = train::train(&settings(50, 3, 10.0), &prep, 0);
    assert_eq!(out.status, Status::Diverged);
    assert!(out.epochs.len() < 50);
}

#[test]
fn built_in_data_matches_the_report_figures() {
    let data = data::lagged_levels(&DataConfig::default(), 0).unwrap();
    assert_eq!((data.n, data.d), (9259, 121));
    let reference = Reference::of(&data).unwrap();
    let fit = &reference.fit;
    assert!((fit.mse / 8e-7 - 1.0).abs() < 0.01, "OLS MSE {}", fit.mse);
    assert!(fit.r2 > 0.49 && fit.r2 < 0.53, "OLS R² {}", fit.r2);
    let ev = &reference.spectrum.eigenvalues;
    let decades = (ev[0] / ev[ev.len() - 1]).log10();
    assert!(decades > 8.0, "eigenvalues span {decades} decades");
    // Standardized: every column has mean 0 and variance 1.
    let means = reference::column_means(&data.x, data.n, data.d);
    assert!(means.iter().all(|m| m.abs() < 1e-12));
    let var0: f64 = (0..data.n).map(|i| data.x[i * data.d].powi(2)).sum::<f64>() / data.n as f64;
    assert!((var0 - 1.0).abs() < 1e-12);
}
