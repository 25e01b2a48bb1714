//! The exact least-squares reference every run is measured against, and the linear algebra it
//! rests on: double-double arithmetic (`dd`), the refined OLS solver (`ols`), the covariance
//! spectrum and whitening (`spectrum`), the NIST StRD check of the solver (`nist`), and small
//! vector helpers (`vector`). Nothing here knows about configs or training.

mod dd;
pub mod nist;
mod ols;
mod spectrum;
mod vector;

pub use dd::DD;
pub use ols::{fit, fit_rows, rank_tolerance, Design, Fit};
pub use spectrum::{to_mat, whitening, Spectrum};
pub use vector::{column_means, dot, norm};

use crate::data::Dataset;
use crate::error::Result;

/// The exact least-squares reference of one data set.
#[derive(Clone, Debug)]
pub struct Reference {
    pub fit: Fit,
    /// Spectrum of the (standardized) feature covariance.
    pub spectrum: Spectrum,
    /// Euclidean norm of the OLS coefficients (intercept excluded).
    pub weight_norm: f64,
}

impl Reference {
    pub fn of(data: &Dataset) -> Result<Reference> {
        let fit = fit_rows(&data.x, &data.y, data.n, data.d, true)?;
        let spectrum = Spectrum::of(&data.x, data.n, data.d)?;
        let weight_norm = norm(&fit.coefficients);
        Ok(Reference {
            fit,
            spectrum,
            weight_norm,
        })
    }
}
