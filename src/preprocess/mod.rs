//! Preprocessing variants shared by runs: the OLS reference of a data set, and the data as a
//! run trains on it (whitened features, normalized target). Each distinct variant is computed
//! once per sweep and shared through `Arc`; runs never copy data.
//!
//! A run trains `y' = w'.x' + b'` with `x' = W x` and `y = sigma * y' + mu`. The same model in
//! the data set's (standardized) feature units is `w = sigma * W^T w'`, `b = sigma * b' + mu`;
//! `Prepared` converts both ways so that every reported MSE, R² and distance is in those units.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use faer::Mat;
use rayon::prelude::*;

use crate::config::{Dtype, RunSpec, Whiten};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::reference::{self, Factored, Reference};
use crate::simd::SimdLevel;
use crate::train::{Gram, TargetTerms};

mod features;
pub use features::{padded_width, Features, Rows};

/// What distinguishes one preprocessing variant from another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PrepKey {
    pub data_seed: Option<u64>,
    pub whiten: Whiten,
    /// `whiten_eps` as bits (0 when not whitening), so the key is `Ord`.
    pub whiten_eps_bits: u64,
    pub normalize_target: bool,
    pub dtype: Dtype,
}

impl PrepKey {
    pub fn of(run: &RunSpec) -> PrepKey {
        let s = &run.settings;
        PrepKey {
            data_seed: run.data_seed,
            whiten: s.whiten,
            whiten_eps_bits: if s.whiten == Whiten::None {
                0
            } else {
                s.whiten_eps.to_bits()
            },
            normalize_target: s.normalize_target,
            dtype: s.dtype,
        }
    }
}

/// A data set as one family of runs trains on it.
#[derive(Debug)]
pub struct Prepared {
    pub data: Arc<Dataset>,
    pub reference: Arc<Reference>,
    /// Training features, row-major, `n` rows of [`Prepared::stride`] values: the `d` features,
    /// then zeros (the data set's own rows when not whitening and not padded; see [`padded_width`]).
    pub x: Rows<f64>,
    /// The same rounded to f32, for runs with `dtype = "f32"` (`None` for f64 runs).
    pub x32: Option<Rows<f32>>,
    /// Values per stored row of `x` and `x32`.
    stride: usize,
    /// Training target (normalized or the original).
    pub y: Arc<[f64]>,
    /// `y = y_scale * y' + y_mean`.
    pub y_mean: f64,
    pub y_scale: f64,
    /// `W`, when whitening.
    pub whitening: Option<Mat<f64>>,
    /// `W^{-1}`, when whitening.
    pub whitening_inverse: Option<Mat<f64>>,
    /// The OLS reference in training coordinates: weights, then bias.
    pub ols_params: Vec<f64>,
    /// Total sum of squares of the original target (for R²).
    pub sst: f64,
    /// Eigenvalues (descending) of the covariance of the training features `x'`.
    pub train_eigenvalues: Vec<f64>,
    /// Their eigenvectors as columns; `None` means the identity (PCA whitening).
    pub train_eigenvectors: Option<Mat<f64>>,
    /// Column means of the training features.
    pub train_x_mean: Vec<f64>,
    /// `|x'_i|^2` of every training row (of the f32 rows for f32 runs), in f64.
    pub row_norm2: Arc<[f64]>,
    /// `W W^T` row-major, made once when a run first asks for it (see [`Prepared::decay_metric`]).
    decay_metric: OnceLock<Vec<f64>>,
    /// `G = A'A` of the training design, shared with the other targets on these features, and
    /// the target's terms of the train-MSE identity, made when a run first asks for them.
    gram: Arc<OnceLock<Gram>>,
    target_terms: OnceLock<TargetTerms>,
}

impl Prepared {
    pub fn new(
        data: Arc<Dataset>,
        reference: Arc<Reference>,
        whiten: Whiten,
        eps: f64,
        normalize: bool,
    ) -> Result<Prepared> {
        let features = Features::of(&data, &reference, whiten, eps)?;
        Prepared::with_features(data, reference, &features, whiten, eps, normalize)
    }

    /// A variant on training features already built (shared by the variants that differ only
    /// in the target's normalization).
    pub fn with_features(
        data: Arc<Dataset>,
        reference: Arc<Reference>,
        features: &Features,
        whiten: Whiten,
        eps: f64,
        normalize: bool,
    ) -> Result<Prepared> {
        let target = TrainingTarget::of(&data, normalize)?;
        let ols_params = ols_in_training_coordinates(
            &reference.fit,
            features.whitening_inverse.as_ref(),
            &target,
            data.d,
        );
        let (train_eigenvalues, train_eigenvectors) =
            training_spectrum(&reference.spectrum, whiten, eps);
        Ok(Prepared {
            data,
            reference,
            x: features.x.clone(),
            x32: features.x32.clone(),
            stride: features.stride,
            y: target.y,
            y_mean: target.mean,
            y_scale: target.scale,
            whitening: features.whitening.clone(),
            whitening_inverse: features.whitening_inverse.clone(),
            ols_params,
            sst: target.sst,
            train_eigenvalues,
            train_eigenvectors,
            train_x_mean: features.mean.clone(),
            row_norm2: features.row_norm2.clone(),
            decay_metric: OnceLock::new(),
            gram: features.gram.clone(),
            target_terms: OnceLock::new(),
        })
    }

    /// Training row `i` (its `d` features).
    #[inline(always)]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.stride..i * self.stride + self.d()]
    }

    /// Values per stored training row: `d`, or `d` rounded up to a multiple of 16 when padded.
    pub fn stride(&self) -> usize {
        self.stride
    }

    pub fn n(&self) -> usize {
        self.data.n
    }

    pub fn d(&self) -> usize {
        self.data.d
    }

    /// The floating-point type runs train in on these features.
    pub fn dtype(&self) -> Dtype {
        if self.x32.is_some() {
            Dtype::F32
        } else {
            Dtype::F64
        }
    }

    /// `W W^T` (row-major, `d x d`) of the whitening, when whitening: weight decay on the
    /// feature-unit weights `W^T w'` has the gradient `weight_decay W W^T w'`. Made once per
    /// preparation, shared by its runs.
    pub fn decay_metric(&self) -> Option<&[f64]> {
        let w = self.whitening.as_ref()?;
        Some(self.decay_metric.get_or_init(|| {
            let m = w * w.transpose();
            let d = m.nrows();
            let mut out = Vec::with_capacity(d * d);
            for j in 0..d {
                for k in 0..d {
                    out.push(m[(j, k)]);
                }
            }
            out
        }))
    }

    /// `G = A'A` of the training design `A = [X' 1]` in the runs' type (see [`Gram`]), made at
    /// `level` by the first run to ask (every level gives the same bits) and shared by the
    /// preparations on the same features.
    pub fn gram(&self, level: SimdLevel) -> &Gram {
        let (d, stride) = (self.d(), self.stride);
        self.gram.get_or_init(|| match &self.x32 {
            None => Gram::of(level, &self.x, d, stride),
            Some(x32) => Gram::of(level, x32, d, stride),
        })
    }

    /// The target's terms of the train-MSE identity (see [`Gram`]), made once per preparation.
    pub fn target_terms(&self, level: SimdLevel) -> &TargetTerms {
        self.target_terms.get_or_init(|| {
            let (y, mean, d, stride) = (&self.data.y, self.y_mean, self.d(), self.stride);
            match &self.x32 {
                None => TargetTerms::of(level, &self.x, d, stride, y, mean),
                Some(x32) => TargetTerms::of(level, x32, d, stride, y, mean),
            }
        })
    }

    /// Converts training-coordinate weights `w'` to the data set's feature units: `sigma W^T w'`.
    pub fn weights_in_feature_units(&self, w: &[f64]) -> Vec<f64> {
        let d = self.d();
        let mut out: Vec<f64> = match &self.whitening {
            None => w.to_vec(),
            Some(wm) => (0..d)
                .map(|j| (0..d).map(|k| wm[(k, j)] * w[k]).sum())
                .collect(),
        };
        out.iter_mut().for_each(|v| *v *= self.y_scale);
        out
    }
}

/// The target a run trains on: `y' = (y - mean) / scale` (mean 0 and scale 1 without
/// normalization), and the total sum of squares of the original target.
struct TrainingTarget {
    y: Arc<[f64]>,
    mean: f64,
    scale: f64,
    sst: f64,
}

impl TrainingTarget {
    fn of(data: &Dataset, normalize: bool) -> Result<TrainingTarget> {
        let n = data.n;
        let mean = data.y.iter().sum::<f64>() / n as f64;
        let sst: f64 = data.y.iter().map(|v| (v - mean).powi(2)).sum();
        if sst == 0.0 {
            return Err(Error::Data(format!(
                "the target \"{}\" has zero variance: every row holds the same value, so R² is undefined",
                data.target_name
            )));
        }
        if !normalize {
            return Ok(TrainingTarget {
                y: data.y.clone(),
                mean: 0.0,
                scale: 1.0,
                sst,
            });
        }
        let scale = (sst / n as f64).sqrt();
        Ok(TrainingTarget {
            y: data.y.iter().map(|v| (v - mean) / scale).collect(),
            mean,
            scale,
            sst,
        })
    }
}

/// OLS in training coordinates: `w' = W^{-T} w_ols / sigma`, `b' = (b_ols - mu) / sigma`.
fn ols_in_training_coordinates(
    fit: &reference::Fit,
    whitening_inverse: Option<&Mat<f64>>,
    target: &TrainingTarget,
    d: usize,
) -> Vec<f64> {
    let mut params: Vec<f64> = match whitening_inverse {
        None => fit.coefficients.clone(),
        Some(w_inv) => (0..d)
            .map(|k| (0..d).map(|j| w_inv[(j, k)] * fit.coefficients[j]).sum())
            .collect(),
    };
    params.iter_mut().for_each(|v| *v /= target.scale);
    params.push((fit.intercept.unwrap_or(0.0) - target.mean) / target.scale);
    params
}

/// Eigenvalues and eigenvectors of the covariance of `x' = W x`, which is `W Sigma W^T`: ZCA keeps
/// `U` with eigenvalues `lambda / (lambda + eps)`, PCA has the same eigenvalues on the coordinate
/// axes (`None`: the identity).
fn training_spectrum(
    spectrum: &reference::Spectrum,
    whiten: Whiten,
    eps: f64,
) -> (Vec<f64>, Option<Mat<f64>>) {
    match whiten {
        Whiten::None => (
            spectrum.eigenvalues.clone(),
            Some(spectrum.eigenvectors.clone()),
        ),
        Whiten::Zca | Whiten::Pca => {
            let ev = spectrum
                .eigenvalues
                .iter()
                .map(|l| l.max(0.0) / (l.max(0.0) + eps))
                .collect();
            (
                ev,
                (whiten == Whiten::Zca).then(|| spectrum.eigenvectors.clone()),
            )
        }
    }
}

/// A data set and its reference, shared by every variant built on it.
pub type Shared = (Arc<Dataset>, Arc<Reference>);

/// Every data set, reference and preprocessing variant a list of runs needs, built once each.
pub struct Prepare {
    pub datasets: BTreeMap<Option<u64>, Shared>,
    pub variants: BTreeMap<PrepKey, Arc<Prepared>>,
}

impl Prepare {
    /// No data set (`source = "none"`).
    pub fn nothing() -> Prepare {
        Prepare {
            datasets: BTreeMap::new(),
            variants: BTreeMap::new(),
        }
    }

    /// The feature names of the data (every data set of a sweep has the same).
    pub fn feature_names(&self) -> &[String] {
        self.datasets
            .values()
            .next()
            .map_or(&[], |(data, _)| data.feature_names.as_slice())
    }

    /// Builds the variants for `runs`, loading each distinct data set with `load` (which returns
    /// the data set and, when making it factored the design, that factorization). Data sets and
    /// variants are made in parallel, and a big one's linear algebra splits over the threads
    /// within (see [`reference::parallelism`]).
    pub fn build(
        runs: &[RunSpec],
        load: impl Fn(Option<u64>) -> Result<(Dataset, Option<Factored>)> + Sync,
    ) -> Result<Prepare> {
        let mut seeds: Vec<Option<u64>> = runs.iter().map(|r| r.data_seed).collect();
        seeds.sort();
        seeds.dedup();
        let datasets: Vec<(Option<u64>, Shared)> = seeds
            .par_iter()
            .map(|&seed| {
                let (data, factored) = load(seed)?;
                let reference = match factored {
                    Some(factored) => Reference::from_factored(&data, &factored)?,
                    None => Reference::of(&data)?,
                };
                Ok((seed, (Arc::new(data), Arc::new(reference))))
            })
            .collect::<Result<_>>()?;
        let datasets: BTreeMap<_, _> = datasets.into_iter().collect();

        let mut keys: Vec<(PrepKey, f64)> = runs
            .iter()
            .map(|r| (PrepKey::of(r), r.settings.whiten_eps))
            .collect();
        keys.sort_by_key(|k| k.0);
        keys.dedup_by(|a, b| a.0 == b.0);
        // One set of training features per data set and whitening, shared by both targets; the
        // f32 copy of a set is rounded from the f64 one, not whitened again.
        let features_key = |k: &PrepKey, dtype: Dtype| PrepKey {
            normalize_target: false,
            dtype,
            ..*k
        };
        let mut base_keys: Vec<(PrepKey, f64)> = keys
            .iter()
            .map(|(k, eps)| (features_key(k, Dtype::F64), *eps))
            .collect();
        base_keys.sort_by_key(|k| k.0);
        base_keys.dedup_by(|a, b| a.0 == b.0);
        let base: BTreeMap<PrepKey, Features> = base_keys
            .par_iter()
            .map(|(key, eps)| {
                let (data, reference) = &datasets[&key.data_seed];
                Ok((*key, Features::of(data, reference, key.whiten, *eps)?))
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .collect();
        let mut features: BTreeMap<PrepKey, Features> = BTreeMap::new();
        for (k, _) in &keys {
            features.entry(features_key(k, k.dtype)).or_insert_with(|| {
                base[&features_key(k, Dtype::F64)]
                    .clone()
                    .with_dtype(k.dtype)
            });
        }
        let variants: Vec<(PrepKey, Arc<Prepared>)> = keys
            .par_iter()
            .map(|(key, eps)| {
                let (data, reference) = &datasets[&key.data_seed];
                let shared = &features[&features_key(key, key.dtype)];
                let prepared = Prepared::with_features(
                    data.clone(),
                    reference.clone(),
                    shared,
                    key.whiten,
                    *eps,
                    key.normalize_target,
                )?;
                Ok((*key, Arc::new(prepared)))
            })
            .collect::<Result<_>>()?;
        Ok(Prepare {
            datasets,
            variants: variants.into_iter().collect(),
        })
    }

    /// The fewest rows of any data set (0 when there is none).
    pub fn min_rows(&self) -> usize {
        self.datasets.values().map(|(d, _)| d.n).min().unwrap_or(0)
    }

    /// The most rows of any data set (1 when there is none).
    pub fn max_rows(&self) -> usize {
        self.datasets.values().map(|(d, _)| d.n).max().unwrap_or(1)
    }

    pub fn for_run(&self, run: &RunSpec) -> &Arc<Prepared> {
        &self.variants[&PrepKey::of(run)]
    }

    /// The run's variant, if the sweep has a data set.
    pub fn get(&self, run: &RunSpec) -> Option<&Arc<Prepared>> {
        self.variants.get(&PrepKey::of(run))
    }
}
