//! Where a run starts and in which order it sees the rows: the seeded initial parameters (zeros,
//! He or Xavier normal, or the OLS solution; optionally scaled and partly zeroed) and the epoch's
//! shuffle. Both draw from the run's own ChaCha streams, so they depend only on the seeds.

use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};

use crate::config::{Init, TrainSettings};
use crate::preprocess::Prepared;
use crate::rng;

/// The epoch's permutation of `0..n`: identity shuffled by the run's stream.
pub fn shuffle_epoch(perm: &mut [u32], rng: &mut impl rand::Rng) {
    for (i, p) in perm.iter_mut().enumerate() {
        *p = i as u32;
    }
    perm.shuffle(rng);
}

/// Initial parameters (weights, then bias) in training coordinates.
pub fn initial_params(s: &TrainSettings, prep: &Prepared, sweep_seed: u64) -> Vec<f64> {
    let d = prep.d();
    let mut rng = rng::stream(sweep_seed, s.seed, "init");
    let mut params = match s.init {
        Init::Zeros => vec![0.0; d + 1],
        Init::Ols => prep.ols_params.clone(),
        Init::HeNormal | Init::XavierNormal => {
            let var = if s.init == Init::HeNormal {
                2.0 / d as f64
            } else {
                2.0 / (d as f64 + 1.0)
            };
            let normal = Normal::new(0.0, var.sqrt()).expect("finite positive std");
            let mut p: Vec<f64> = (0..d).map(|_| normal.sample(&mut rng)).collect();
            p.push(0.0);
            p
        }
    };
    params[..d].iter_mut().for_each(|v| *v *= s.init_scale);
    let zeroed = (s.init_zero_fraction * d as f64).round() as usize;
    if zeroed > 0 {
        let mut mask_rng = rng::stream(sweep_seed, s.seed, "init_zero");
        for j in rand::seq::index::sample(&mut mask_rng, d, zeroed) {
            params[j] = 0.0;
        }
    }
    params
}
