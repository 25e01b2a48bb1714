//! Closed-form and identity checks of the numerical kernels: OLS, whitening, SGD updates.

use std::sync::Arc;

use sweep::config::{DataConfig, Dtype, Init, Optimizer, TrainSettings, Whiten};
use sweep::data::{self, Dataset};
use sweep::preprocess::Prepared;
use sweep::reference::DD;
use sweep::reference::{self, Reference, Spectrum};
use sweep::train::{self, SimdLevel, Status};

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
fn prepared_in(data: Dataset, whiten: Whiten, eps: f64, normalize: bool, dtype: Dtype) -> Prepared {
    let reference = Arc::new(Reference::of(&data).unwrap());
    let data = Arc::new(data);
    let features = sweep::preprocess::Features::of(&data, &reference, whiten, eps)
        .unwrap()
        .with_dtype(dtype);
    Prepared::with_features(data, reference, &features, whiten, eps, normalize).unwrap()
}

/// The built-in generator's data at a small shape, 3 signal lags.
fn small_lagged(n_rows: u32, n_features: u32, seed: u64) -> Dataset {
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

fn three_rows() -> Dataset {
    dataset(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], vec![1.0, 2.0, 4.0], 2)
}

fn settings(epochs: u32, batch: u32, lr: f64) -> TrainSettings {
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
fn hand_step(p: [f64; 3], lr: f64, wd: f64, clip: Option<f64>) -> ([f64; 3], f64) {
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

/// The train MSE of `params` by a pass in double-double (products and sums exact to about 1e-32),
/// over the rows the preparation's runs train on (f32 rows widened exactly).
fn exact_mse(prep: &Prepared, params: &[f64]) -> f64 {
    let d = prep.d();
    let rows: Vec<f64> = match &prep.x32 {
        None => prep.x.to_vec(),
        Some(x32) => x32.iter().map(|v| f64::from(*v)).collect(),
    };
    let mut sse = DD::new(0.0);
    for (row, y) in rows.chunks_exact(prep.stride()).zip(prep.data.y.iter()) {
        let mut pred = DD::new(params[d]);
        for (w, x) in params[..d].iter().zip(row) {
            pred = pred + DD::new(*w).mul_f64(*x);
        }
        let r = pred.mul_f64(prep.y_scale).add_f64(prep.y_mean).add_f64(-y);
        sse = sse + r * r;
    }
    sse.to_f64() / prep.n() as f64
}

/// Both ways of computing the per-epoch train MSE against a double-double pass, on the built-in
/// data, at parameters far from OLS (He init, and 1e3 times it), mid-training, near OLS and at
/// OLS: the f64 pass within 1e-13 relative; the Gram identity within 1e-15 (a few roundings of
/// the result), never further from the exact value than the pass, in f64 and on f32 rows.
#[test]
fn the_per_epoch_train_mse_is_accurate_against_double_double() {
    let data = data::lagged_levels(&DataConfig::default(), 0).unwrap();
    for (whiten, normalize, dtype) in [
        (Whiten::None, false, Dtype::F64),
        (Whiten::None, true, Dtype::F64),
        (Whiten::Zca, true, Dtype::F64),
        (Whiten::None, false, Dtype::F32),
        (Whiten::Zca, false, Dtype::F32),
    ] {
        let prep = prepared_in(data.clone(), whiten, 0.0, normalize, dtype);
        let mut s = settings(3, 32, 1e-3);
        s.dtype = dtype;
        let he = train::initial_params(&s, &prep, 0);
        let far: Vec<f64> = he.iter().map(|v| v * 1e3).collect();
        let trained = train::train(&s, &prep, 0).params;
        s.init = Init::Ols;
        let ols = train::initial_params(&s, &prep, 0);
        let near: Vec<f64> = ols
            .iter()
            .enumerate()
            .map(|(j, v)| v + 1e-6 * ((j % 7) as f64 - 3.0) * v.abs().max(1e-3))
            .collect();
        let round = |p: &[f64]| -> Vec<f64> {
            match dtype {
                Dtype::F64 => p.to_vec(),
                Dtype::F32 => p.iter().map(|v| f64::from(*v as f32)).collect(),
            }
        };
        let (mut worst_pass, mut worst_identity) = (0.0f64, 0.0f64);
        for params in [&he, &far, &trained, &near, &ols].map(|p| round(p)) {
            let exact = exact_mse(&prep, &params);
            let rel = |mse: f64| ((mse - exact) / exact).abs();
            let identity = rel(train::identity_train_mse(&prep, &params).0);
            worst_identity = worst_identity.max(identity);
            if dtype == Dtype::F64 {
                let pass = rel(train::full_pass(&prep, &params).0);
                worst_pass = worst_pass.max(pass);
                assert!(
                    identity <= pass.max(f64::EPSILON),
                    "{whiten:?} normalize={normalize}: identity {identity:e} vs pass {pass:e}"
                );
            }
        }
        eprintln!(
            "{whiten:?} normalize={normalize} {dtype}: worst relative error of the train MSE, \
             pass {worst_pass:.1e}, Gram identity {worst_identity:.1e}"
        );
        assert!(
            worst_pass < 1e-13,
            "{whiten:?} normalize={normalize}: {worst_pass:e}"
        );
        assert!(
            worst_identity < 1e-15,
            "{whiten:?} normalize={normalize} {dtype}: {worst_identity:e}"
        );
    }
}

/// Every SIMD level the CPU runs gives the same bits (the kernels keep one order of operations),
/// for every optimizer, batch size, clipping and weight decay.
#[test]
fn every_simd_level_gives_the_same_bits() {
    let data = small_lagged(300, 20, 1);
    let preps = [
        (
            Dtype::F64,
            prepared_in(data.clone(), Whiten::Zca, 0.0, true, Dtype::F64),
        ),
        (
            Dtype::F32,
            prepared_in(data, Whiten::Zca, 0.0, true, Dtype::F32),
        ),
    ];
    let levels: Vec<SimdLevel> = SimdLevel::ALL
        .iter()
        .copied()
        .filter(|l| l.is_available())
        .collect();
    eprintln!("SIMD levels compared: {levels:?}");
    for ((dtype, prep), optimizer) in preps
        .iter()
        .flat_map(|p| [Optimizer::Sgd, Optimizer::Momentum, Optimizer::Adam].map(|o| (p, o)))
    {
        // 4 epochs compute the train MSE by a pass, 42 (at least d = 20) by the Gram identity.
        for (batch, clip, weight_decay, epochs) in [
            (1, true, 0.0, 4),
            (1, false, 1e-3, 4),
            (7, true, 0.0, 4),
            (32, false, 1e-4, 4),
            (1, true, 0.0, 42),
            (7, false, 1e-4, 42),
        ] {
            let mut s = settings(epochs, batch, 1e-2);
            s.dtype = *dtype;
            s.optimizer = optimizer;
            s.clip = clip;
            s.weight_decay = weight_decay;
            let runs: Vec<_> = levels
                .iter()
                .map(|l| train::train_at(*l, &s, prep, 5))
                .collect();
            for (level, run) in levels.iter().zip(&runs).skip(1) {
                assert_eq!(
                    run.epochs, runs[0].epochs,
                    "{level:?} vs portable: {dtype} {optimizer:?} batch {batch} clip {clip} wd {weight_decay}"
                );
                let bits = |p: &[f64]| p.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&run.params), bits(&runs[0].params));
            }
        }
    }
}

/// Training rows padded with zeros to a multiple of 16 values (as small data sets are stored) and
/// the same rows unpadded give the same bits, for every optimizer, batch 1 and minibatches,
/// weight decay, f32, and both routes of the train MSE.
#[test]
fn padded_and_unpadded_rows_give_the_same_bits() {
    let data = Arc::new(small_lagged(300, 21, 4));
    let reference = Arc::new(Reference::of(&data).unwrap());
    let base = sweep::preprocess::Features::of(&data, &reference, Whiten::Zca, 0.0).unwrap();
    assert_eq!(base.stride, 32, "a small data set is stored padded");
    for dtype in [Dtype::F64, Dtype::F32] {
        let variants = [base.clone(), base.clone().with_stride(21)].map(|f| {
            let f = f.with_dtype(dtype);
            Prepared::with_features(data.clone(), reference.clone(), &f, Whiten::Zca, 0.0, true)
                .unwrap()
        });
        assert_eq!((variants[0].stride(), variants[1].stride()), (32, 21));
        for (batch, optimizer, weight_decay, epochs) in [
            (1, Optimizer::Sgd, 0.0, 5),
            (1, Optimizer::Sgd, 1e-3, 25),
            (1, Optimizer::Adam, 0.0, 5),
            (8, Optimizer::Sgd, 0.0, 25),
            (8, Optimizer::Momentum, 1e-4, 5),
        ] {
            let mut s = settings(epochs, batch, 1e-2);
            (s.dtype, s.optimizer, s.weight_decay, s.clip) = (dtype, optimizer, weight_decay, true);
            let [padded, unpadded] = [&variants[0], &variants[1]].map(|p| train::train(&s, p, 6));
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&padded.params),
                bits(&unpadded.params),
                "{dtype} {s:?}"
            );
            assert_eq!(padded.epochs, unpadded.epochs, "{dtype} {s:?}");
        }
    }
}

/// Runs that share features, batch size, seed and epochs train together (each row loaded once
/// for all of them); every grouped run is bit-identical to the same run alone, whatever its
/// target normalization, clipping, optimizer or init, including one that diverges.
#[test]
fn grouped_runs_are_bit_identical_to_the_same_runs_alone() {
    let data = Arc::new(small_lagged(400, 12, 2));
    let reference = Arc::new(Reference::of(&data).unwrap());
    for dtype in [Dtype::F64, Dtype::F32] {
        let features = sweep::preprocess::Features::of(&data, &reference, Whiten::Zca, 0.0)
            .unwrap()
            .with_dtype(dtype);
        let variant = |normalize| {
            Prepared::with_features(
                data.clone(),
                reference.clone(),
                &features,
                Whiten::Zca,
                0.0,
                normalize,
            )
            .unwrap()
        };
        let (raw, normalized) = (variant(false), variant(true));
        // 6 epochs compute the train MSE by a pass, 26 (at least d = 12) by the Gram identity.
        for (batch, epochs) in [(1, 6), (8, 6), (1, 26), (8, 26)] {
            let mut members: Vec<(TrainSettings, &Prepared)> = Vec::new();
            for (normalize, clip, optimizer) in [
                (false, false, Optimizer::Sgd),
                (true, true, Optimizer::Sgd),
                (true, false, Optimizer::Adam),
                (false, true, Optimizer::Momentum),
            ] {
                let mut s = settings(epochs, batch, 1e-2);
                s.dtype = dtype;
                s.clip = clip;
                s.optimizer = optimizer;
                s.normalize_target = normalize;
                members.push((s, if normalize { &normalized } else { &raw }));
            }
            let mut diverging = settings(epochs, batch, 1e3);
            diverging.dtype = dtype;
            diverging.init = Init::Zeros;
            members.push((diverging, &normalized));
            let runs: Vec<(&TrainSettings, &Prepared)> =
                members.iter().map(|(s, p)| (s, *p)).collect();
            let grouped = train::train_group(&runs, 3);
            assert!(
                grouped.iter().any(|o| o.status == Status::Diverged),
                "the group holds a diverging run"
            );
            for ((s, p), together) in runs.iter().zip(&grouped) {
                let alone = train::train(s, p, 3);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&together.params),
                    bits(&alone.params),
                    "{dtype} batch {batch} epochs {epochs}: {s:?}"
                );
                assert_eq!(together.status, alone.status);
                assert_eq!(together.epochs.len(), alone.epochs.len());
                for (a, b) in together.epochs.iter().zip(&alone.epochs) {
                    assert_eq!(a.train_mse.to_bits(), b.train_mse.to_bits());
                    assert_eq!(a.weight_norm.to_bits(), b.weight_norm.to_bits());
                }
            }
        }
    }
}

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
