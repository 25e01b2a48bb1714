//! Data sets as the runs see them before whitening: a dense row-major feature matrix, the
//! target, and their names. Two sources: the built-in `lagged-levels` generator (a stand-in for
//! the report's data) and the user's CSV or Parquet file, read with polars. Both end in the
//! same checks (finite values, no constant feature, more rows than parameters) and the same
//! optional standardization (here). This module does not whiten or normalize the target.

mod file;
mod generator;

use std::sync::Arc;

pub use file::read_file;
pub use generator::{lagged_levels, lagged_levels_factored};

use crate::config::{DataSource, DataSpec};
use crate::error::{Error, Result};
use rayon::prelude::*;

use crate::reference::{column_means, column_sums, Factored};

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

impl Dataset {
    /// The data set as a table: one column per feature, then the target.
    pub fn to_frame(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::{Column, DataFrame};
        let mut columns: Vec<Column> = self
            .feature_names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let values: Vec<f64> = (0..self.n).map(|i| self.x[i * self.d + j]).collect();
                Column::new(name.as_str().into(), values)
            })
            .collect();
        columns.push(Column::new(
            self.target_name.as_str().into(),
            self.y.to_vec(),
        ));
        DataFrame::new_infer_height(columns).map_err(|e| Error::table("building the data table", e))
    }
}

/// A zeroed shared buffer, allocated once (a `Vec` turned into an `Arc` would be copied: 800 MB
/// at 100,000 x 1,000) from zeroed pages, so that the first writes fault its pages in on the
/// threads that write them instead of a pass of zeros on one.
pub fn zeroed(len: usize) -> Arc<[f64]> {
    // SAFETY: all-zero bits are the f64 0.0.
    unsafe { Arc::<[f64]>::new_zeroed_slice(len).assume_init() }
}

/// Loads or generates the data set of a spec (`data_seed` applies to the generator only).
pub fn load(spec: &DataSpec, data_seed: Option<u64>) -> Result<Dataset> {
    Ok(load_factored(spec, data_seed)?.0)
}

/// [`load`], with the factorization of the design when making the data set took one (the
/// built-in generator's), for the reference to use again.
pub fn load_factored(
    spec: &DataSpec,
    data_seed: Option<u64>,
) -> Result<(Dataset, Option<Factored>)> {
    let seed = data_seed.unwrap_or(spec.config.seed);
    let data = match &spec.source {
        DataSource::LaggedLevels => {
            let (data, factored) = lagged_levels_factored(&spec.config, seed)?;
            return Ok((data, Some(factored)));
        }
        DataSource::File {
            path,
            target,
            features,
            format,
        } => read_file(
            path,
            target,
            features.as_deref(),
            spec.config.standardize,
            format,
        ),
        DataSource::None => Err(Error::Config(
            "data.source = \"none\" is not accepted here: this config has no data set (its command loads its \
             own data); give source = \"lagged-levels\" or \"file\""
                .into(),
        )),
    }?;
    Ok((data, None))
}

/// Standardizes each column of a row-major matrix to mean 0 and (population) variance 1.
pub fn standardize(x: &mut [f64], n: usize, d: usize, names: &[String]) -> Result<()> {
    let means = column_means(x, n, d);
    let var = column_sums(x, d, |j, v| (v - means[j]).powi(2));
    for j in 0..d {
        if var[j] == 0.0 {
            return Err(constant_column(&names[j]));
        }
    }
    let sd: Vec<f64> = var.iter().map(|v| (v / n as f64).sqrt()).collect();
    x.par_chunks_mut(d).for_each(|row| {
        for j in 0..d {
            row[j] = (row[j] - means[j]) / sd[j];
        }
    });
    Ok(())
}

pub(crate) fn constant_column(name: &str) -> Error {
    Error::Data(format!(
        "feature column \"{name}\" has zero variance (every row holds the same value): it carries no information \
         and makes the design singular; drop it from data.features"
    ))
}
