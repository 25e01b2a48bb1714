//! Data sets as the runs see them before whitening: a dense row-major feature matrix, the
//! target, and their names. Two sources: the built-in `lagged-levels` generator (a stand-in for
//! the report's data) and the user's CSV or Parquet file, read with polars. Both end in the
//! same checks (finite values, no constant feature, more rows than parameters) and the same
//! optional standardization. This module does not whiten or normalize the target.

use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;
use rand_distr::{Distribution, StandardNormal, StudentT};

use crate::config::{DataConfig, DataSource, DataSpec};
use crate::error::{Error, Result};
use crate::{linalg, rng};

/// A data set: `n` rows, `d` features, stored once and shared by every run.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub n: usize,
    pub d: usize,
    /// Row-major `n x d` features (standardized when the spec asks for it).
    pub x: Arc<[f64]>,
    /// Target in original units.
    pub y: Arc<[f64]>,
    pub feature_names: Vec<String>,
    pub target_name: String,
}

/// Loads or generates the data set of a spec (`data_seed` applies to the generator only).
pub fn load(spec: &DataSpec, data_seed: Option<u64>) -> Result<Dataset> {
    match &spec.source {
        DataSource::LaggedLevels => {
            lagged_levels(&spec.config, data_seed.unwrap_or(spec.config.seed))
        }
        DataSource::File {
            path,
            target,
            features,
        } => read_file(path, target, features.as_deref(), spec.config.standardize),
    }
}

/// The `lagged-levels` generator. Returns follow an AR(1) with Student-t shocks; the features
/// are the last `n_features` levels (cumulative returns), standardized; the target is a fixed
/// random combination of the last `signal_lags` returns plus Student-t noise, mixed to the
/// requested R², then scaled so that the OLS training MSE equals `ols_mse` exactly.
pub fn lagged_levels(c: &DataConfig, seed: u64) -> Result<Dataset> {
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
    let mut x = Vec::with_capacity(n * d);
    let mut signal = Vec::with_capacity(n);
    for i in 0..n {
        let t = i + d - 1;
        x.extend((0..d).map(|lag| levels[t - lag]));
        signal.push((0..lags).map(|j| beta[j] * returns[t - j]).sum::<f64>());
    }
    let noise_scale = ((c.nu - 2.0) / c.nu).sqrt();
    let signal_sd = std_dev(&signal);
    let mut y: Vec<f64> = signal
        .iter()
        .map(|s| {
            c.r2.sqrt() * s / signal_sd + (1.0 - c.r2).sqrt() * noise_scale * shock.sample(&mut rng)
        })
        .collect();

    if c.standardize {
        standardize(&mut x, n, d, &names(d))?;
    }
    // Scale y so that the OLS training MSE is exactly the requested value (MSE scales as c^2).
    let fit = linalg::ols(&x, &y, n, d, true)?;
    let factor = (c.ols_mse / fit.mse).sqrt();
    y.iter_mut().for_each(|v| *v *= factor);
    Ok(Dataset {
        n,
        d,
        x: x.into(),
        y: y.into(),
        feature_names: names(d),
        target_name: "y".into(),
    })
}

fn names(d: usize) -> Vec<String> {
    (0..d).map(|j| format!("x{j:03}")).collect()
}

fn std_dev(v: &[f64]) -> f64 {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

/// Standardizes each column of a row-major matrix to mean 0 and (population) variance 1.
pub fn standardize(x: &mut [f64], n: usize, d: usize, names: &[String]) -> Result<()> {
    let means = linalg::column_means(x, n, d);
    let mut var = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for j in 0..d {
            var[j] += (row[j] - means[j]).powi(2);
        }
    }
    for j in 0..d {
        if var[j] == 0.0 {
            return Err(constant_column(&names[j]));
        }
    }
    let sd: Vec<f64> = var.iter().map(|v| (v / n as f64).sqrt()).collect();
    for row in x.chunks_exact_mut(d) {
        for j in 0..d {
            row[j] = (row[j] - means[j]) / sd[j];
        }
    }
    Ok(())
}

fn constant_column(name: &str) -> Error {
    Error::Data(format!(
        "feature column \"{name}\" has zero variance (every row holds the same value): it carries no information \
         and makes the design singular; drop it from data.features"
    ))
}

/// Reads a CSV (with a header row) or Parquet file into a data set.
pub fn read_file(
    path: &Path,
    target: &str,
    features: Option<&[String]>,
    standardize_features: bool,
) -> Result<Dataset> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Data(format!("data file {shown}: cannot open it ({e})")))?;
    if meta.len() == 0 {
        return Err(Error::Data(format!(
            "data file {shown} is empty: it needs a header row and data rows"
        )));
    }
    let is_csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let frame = if is_csv {
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(None)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
    } else {
        std::fs::File::open(path)
            .map_err(|e| PolarsError::IO {
                error: Arc::new(e),
                msg: None,
            })
            .and_then(|f| ParquetReader::new(f).finish())
    }
    .map_err(|e| Error::Data(format!("data file {shown} cannot be read: {e}")))?;
    from_frame(
        &frame,
        &shown.to_string(),
        is_csv,
        target,
        features,
        standardize_features,
    )
}

fn from_frame(
    frame: &DataFrame,
    shown: &str,
    is_csv: bool,
    target: &str,
    features: Option<&[String]>,
    standardize_features: bool,
) -> Result<Dataset> {
    let columns: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    if frame.height() == 0 {
        return Err(Error::Data(format!(
            "data file {shown} has a header but no data rows"
        )));
    }
    let missing = |name: &str, key: &str| {
        Error::Data(format!(
            "data file {shown}: {key} names column \"{name}\", which the file does not have; its columns are: {}",
            columns.join(", ")
        ))
    };
    if !columns.iter().any(|c| c == target) {
        return Err(missing(target, "data.target"));
    }
    let feature_names: Vec<String> = match features {
        Some(list) => {
            for f in list {
                if !columns.iter().any(|c| c == f) {
                    return Err(missing(f, "data.features"));
                }
            }
            list.to_vec()
        }
        None => frame
            .columns()
            .iter()
            .filter(|c| c.name().as_str() != target && c.dtype().is_primitive_numeric())
            .map(|c| c.name().to_string())
            .collect(),
    };
    if feature_names.is_empty() {
        return Err(Error::Data(format!(
            "data file {shown} has no numeric feature column besides the target \"{target}\"; its columns are: {}",
            columns.join(", ")
        )));
    }
    let n = frame.height();
    let d = feature_names.len();
    let row_label = |i: usize| {
        if is_csv {
            format!("row {} (line {} of the file)", i + 1, i + 2)
        } else {
            format!("row {}", i + 1)
        }
    };
    let numeric = |name: &str| -> Result<Vec<f64>> {
        let column = frame
            .column(name)
            .map_err(|e| Error::table(format!("column {name}"), e))?;
        if !column.dtype().is_primitive_numeric() {
            let texts = column
                .cast(&DataType::String)
                .map_err(|e| Error::table(format!("column {name}"), e))?;
            let texts = texts
                .str()
                .map_err(|e| Error::table(format!("column {name}"), e))?;
            let bad = texts
                .iter()
                .enumerate()
                .find(|(_, v)| v.is_some_and(|s| s.trim().parse::<f64>().is_err()));
            let detail = match bad {
                Some((i, Some(v))) => format!(": {} holds \"{v}\"", row_label(i)),
                _ => String::new(),
            };
            return Err(Error::Data(format!(
                "data file {shown}: column \"{name}\" is not numeric (type {}){detail}; every feature and the target must be numbers",
                column.dtype()
            )));
        }
        let values = column
            .cast(&DataType::Float64)
            .map_err(|e| Error::table(format!("column {name}"), e))?;
        let values = values
            .f64()
            .map_err(|e| Error::table(format!("column {name}"), e))?;
        let mut out = Vec::with_capacity(n);
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) if v.is_finite() => out.push(v),
                Some(v) => {
                    return Err(Error::Data(format!(
                        "data file {shown}: {} of column \"{name}\" is {v}; every value must be a finite number",
                        row_label(i)
                    )))
                }
                None => {
                    return Err(Error::Data(format!(
                        "data file {shown}: {} of column \"{name}\" is empty (missing); every value must be a finite number",
                        row_label(i)
                    )))
                }
            }
        }
        Ok(out)
    };
    let y = numeric(target)?;
    let mut x = vec![0.0; n * d];
    for (j, name) in feature_names.iter().enumerate() {
        for (i, v) in numeric(name)?.into_iter().enumerate() {
            x[i * d + j] = v;
        }
    }
    if n <= d {
        return Err(Error::Data(format!(
            "data file {shown} has {n} rows for {d} features: least squares needs more rows than features"
        )));
    }
    if standardize_features {
        standardize(&mut x, n, d, &feature_names)?;
    } else {
        for (j, name) in feature_names.iter().enumerate() {
            let first = x[j];
            if (0..n).all(|i| x[i * d + j] == first) {
                return Err(constant_column(name));
            }
        }
    }
    Ok(Dataset {
        n,
        d,
        x: x.into(),
        y: y.into(),
        feature_names,
        target_name: target.to_string(),
    })
}
