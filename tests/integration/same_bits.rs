//! The training kernels' bits and the per-epoch train MSE: every SIMD level, padded and unpadded
//! rows, grouped runs against the same runs alone give the same bits; the train MSE by the pass
//! and by the identity against a double-double pass.

use std::sync::Arc;

use sweep::config::{DataConfig, Dtype, Init, Optimizer, TrainSettings, Whiten};
use sweep::data;
use sweep::preprocess::Prepared;
use sweep::reference::Reference;
use sweep::reference::DD;
use sweep::train::{self, SimdLevel, Status};

use crate::numerics::{prepared_in, settings, small_lagged};

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
