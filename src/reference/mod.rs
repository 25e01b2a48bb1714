//! The exact least-squares reference every run is measured against, and the linear algebra it
//! rests on: double-double arithmetic (`dd`), the design and its double-double products
//! (`design`), the centring and scaling the solver factors (`scaling`), the refined OLS solver
//! (`ols`), the covariance
//! spectrum and whitening (`spectrum`), the NIST StRD check of the solver (`nist`), and small
//! vector helpers (`vector`). Nothing here knows about configs or training.

mod dd;
mod design;
pub mod nist;
mod ols;
mod qr;
mod scaling;
mod spectrum;
mod vector;

pub use dd::{accumulate, normalized, two_sum, Compensated, DD, LANES};
pub use design::Design;
pub use ols::{fit, fit_rows, parallelism, rank_tolerance, Factored, Fit, PARALLEL_WORK, PARTS};
pub use spectrum::{whitening, Spectrum};
pub use vector::{column_means, column_sums, dot, norm};

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
    /// The reference of a data set: its design factored, then fitted.
    pub fn of(data: &Dataset) -> Result<Reference> {
        let design = Design::shared(data.x.clone(), data.n, data.d, true);
        Reference::from_factored(data, &Factored::of(&design)?)
    }

    /// The reference from the data set's design factored already (by the built-in generator,
    /// which fits the design to scale its target): one factorization serves the generator, the
    /// fit and the covariance spectrum.
    pub fn from_factored(data: &Dataset, factored: &Factored) -> Result<Reference> {
        assert!(
            factored.factors(&data.x),
            "the factorization is of another design than the data set's"
        );
        let y: Vec<DD> = data.y.iter().map(|v| DD::new(*v)).collect();
        // The spectrum's SVD (one thread) beside the fit's passes (any thread free).
        let (fit, spectrum) = rayon::join(
            || factored.fit(&y),
            || Spectrum::of_centred(&factored.centred_triangle(), data.n),
        );
        let (fit, spectrum) = (fit?, spectrum?);
        let weight_norm = norm(&fit.coefficients);
        Ok(Reference {
            fit,
            spectrum,
            weight_norm,
        })
    }
}
