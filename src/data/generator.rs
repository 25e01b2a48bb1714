//! The built-in `lagged-levels` data set: a stand-in for the report's data, deterministic from
//! its seed. Features are lagged price levels (strongly collinear, eigenvalues over ten decades);
//! the target is a noisy combination of recent returns, scaled to an exact OLS MSE.

use std::sync::Arc;

use rand_distr::{Distribution, StandardNormal, StudentT};
use rayon::prelude::*;

use super::{standardize, zeroed, Dataset};
use crate::config::DataConfig;
use crate::error::{Error, Result};
use crate::reference::{Design, Factored, DD};
use crate::rng;

/// The `lagged-levels` generator. Returns follow an AR(1) with Student-t shocks; the features
/// are the last `n_features` levels (cumulative returns), standardized; the target is a fixed
/// random combination of the last `signal_lags` returns plus Student-t noise, mixed to the
/// requested R², then scaled so that the OLS training MSE equals `ols_mse` exactly.
pub fn lagged_levels(c: &DataConfig, seed: u64) -> Result<Dataset> {
    Ok(lagged_levels_factored(c, seed)?.0)
}

/// [`lagged_levels`] with the factorization of the design it fitted to scale the target, which
/// the reference's fit uses again. The random draws stay on one thread, in order.
pub fn lagged_levels_factored(c: &DataConfig, seed: u64) -> Result<(Dataset, Factored)> {
    let n = c.n_rows as usize;
    let d = c.n_features as usize;
    let lags = c.signal_lags as usize;
    let mut rng = rng::stream(0, seed, "data/lagged-levels");
    let shock =
        StudentT::new(c.nu).map_err(|e| Error::Config(format!("data.nu = {}: {e}", c.nu)))?;

    let mut r_prev = 0.0;
    for _ in 0..c.burn_in {
        r_prev = c.phi * r_prev + shock.sample(&mut rng);
    }
    // Returns r[k] for the n + d - 1 kept steps; level p[k] = r[0] + ... + r[k].
    let steps = n + d - 1;
    let mut returns = Vec::with_capacity(steps);
    for _ in 0..steps {
        r_prev = c.phi * r_prev + shock.sample(&mut rng);
        returns.push(r_prev);
    }
    let mut levels = Vec::with_capacity(steps);
    let mut acc = 0.0;
    for r in &returns {
        acc += r;
        levels.push(acc);
    }
    let beta: Vec<f64> = (0..lags).map(|_| StandardNormal.sample(&mut rng)).collect();

    // Row i is time t = i + d - 1: features p_t, p_{t-1}, ..., p_{t-d+1}.
    let mut x = zeroed(n * d);
    let rows = Arc::get_mut(&mut x).expect("a new allocation has one owner");
    rows.par_chunks_mut(d).enumerate().for_each(|(i, row)| {
        let t = i + d - 1;
        row.iter_mut()
            .enumerate()
            .for_each(|(lag, v)| *v = levels[t - lag]);
    });
    let signal: Vec<f64> = (0..n)
        .map(|i| {
            let t = i + d - 1;
            (0..lags).map(|j| beta[j] * returns[t - j]).sum::<f64>()
        })
        .collect();
    let noise_scale = ((c.nu - 2.0) / c.nu).sqrt();
    let signal_sd = std_dev(&signal);
    let mut y: Vec<f64> = signal
        .iter()
        .map(|s| {
            c.r2.sqrt() * s / signal_sd + (1.0 - c.r2).sqrt() * noise_scale * shock.sample(&mut rng)
        })
        .collect();

    if c.standardize {
        standardize(rows, n, d, &names(d))?;
    }
    // Scale y so that the OLS training MSE is exactly the requested value (MSE scales as c^2).
    let design = Design::shared(x.clone(), n, d, true);
    let y_dd: Vec<DD> = y.iter().map(|v| DD::new(*v)).collect();
    let factored = Factored::of(&design)?;
    let fit = factored.fit(&y_dd)?;
    drop((design, y_dd));
    let factor = (c.ols_mse / fit.mse).sqrt();
    y.iter_mut().for_each(|v| *v *= factor);
    let data = Dataset {
        n,
        d,
        x,
        y: y.into(),
        feature_names: names(d),
        target_name: "y".into(),
    };
    Ok((data, factored))
}

fn names(d: usize) -> Vec<String> {
    (0..d).map(|j| format!("x{j:03}")).collect()
}

fn std_dev(v: &[f64]) -> f64 {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}
