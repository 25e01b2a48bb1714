//! The NIST StRD linear-regression benchmark: parse a `.dat` file (certified values and data),
//! fit its model with [`super::ols`], and score the fit by the log relative error (LRE) of
//! every certified figure. The files are read from a folder given at run time (the project's
//! `../shared/data/nist-strd`); none is copied into the repository.

use std::path::Path;

use super::dd::DD;
use super::design::Design;
use super::ols;
use crate::error::{Error, Result};

/// The 11 datasets, with their model: polynomial degree in one predictor (or the number of
/// linear predictors for Longley) and whether the model has an intercept.
pub const DATASETS: [(&str, Model); 11] = [
    ("Norris", Model::Polynomial(1, true)),
    ("Pontius", Model::Polynomial(2, true)),
    ("NoInt1", Model::Polynomial(1, false)),
    ("NoInt2", Model::Polynomial(1, false)),
    ("Filip", Model::Polynomial(10, true)),
    ("Longley", Model::Linear),
    ("Wampler1", Model::Polynomial(5, true)),
    ("Wampler2", Model::Polynomial(5, true)),
    ("Wampler3", Model::Polynomial(5, true)),
    ("Wampler4", Model::Polynomial(5, true)),
    ("Wampler5", Model::Polynomial(5, true)),
];

/// A dataset's model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Model {
    /// `y = B0 + B1 x + ... + Bd x^d` (the bool: with intercept).
    Polynomial(u32, bool),
    /// `y = B0 + B1 x1 + ... + Bk xk` on every predictor column.
    Linear,
}

/// A parsed StRD file: certified values and the data as decimal text.
#[derive(Clone, Debug)]
pub struct StrdFile {
    pub name: String,
    pub certified_coefficients: Vec<f64>,
    pub certified_residual_sd: f64,
    pub certified_r2: f64,
    /// Rows of decimal text: `y` first, then the predictors.
    pub rows: Vec<Vec<String>>,
}

/// Reads and parses `DIR/<name>.dat`.
pub fn read(dir: &Path, name: &str) -> Result<StrdFile> {
    let path = dir.join(format!("{name}.dat"));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Data(format!("cannot read {}: {e}", path.display())))?;
    parse(name, &text).ok_or_else(|| {
        Error::Data(format!(
            "{} is not an StRD linear-regression file",
            path.display()
        ))
    })
}

/// Parses the text of an StRD file.
pub fn parse(name: &str, text: &str) -> Option<StrdFile> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let number = |s: &str| s.parse::<f64>().ok();
    let mut coefficients = Vec::new();
    let mut residual_sd = None;
    let mut r2 = None;
    let data_start = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with("Data:"))?
        + 1;
    for line in &lines[..data_start] {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        match tokens.as_slice() {
            [b, estimate, _sd] if b.starts_with('B') && b[1..].parse::<u32>().is_ok() => {
                coefficients.push(number(estimate)?)
            }
            ["Standard", "Deviation", value] => residual_sd = Some(number(value)?),
            ["R-Squared", value] => r2 = Some(number(value)?),
            _ => {}
        }
    }
    let rows: Vec<Vec<String>> = lines[data_start..]
        .iter()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|t| !t.is_empty())
        .collect();
    Some(StrdFile {
        name: name.to_string(),
        certified_coefficients: coefficients,
        certified_residual_sd: residual_sd?,
        certified_r2: r2?,
        rows,
    })
}

/// How the decimal data are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Each value rounded to the nearest f64, as a user's file would be read.
    F64,
    /// Each decimal parsed to double-double; polynomial terms formed in double-double.
    DoubleDouble,
}

/// Builds the model's design and target from the file.
pub fn design(file: &StrdFile, model: Model, precision: Precision) -> Option<(Design, Vec<DD>)> {
    let value = |s: &str| match precision {
        Precision::F64 => s.parse::<f64>().ok().map(DD::new),
        Precision::DoubleDouble => DD::parse(s),
    };
    let n = file.rows.len();
    let parsed: Vec<Vec<DD>> = file
        .rows
        .iter()
        .map(|r| r.iter().map(|v| value(v)).collect::<Option<Vec<_>>>())
        .collect::<Option<_>>()?;
    let y: Vec<DD> = parsed.iter().map(|r| r[0]).collect();
    let predictors = parsed.first()?.len() - 1;
    let (intercept, degree, k) = match model {
        Model::Polynomial(d, intercept) => (intercept, d, 1),
        Model::Linear => (true, 1, predictors),
    };
    let columns: Vec<Vec<DD>> = (0..k)
        .map(|j| parsed.iter().map(|r| r[j + 1]).collect())
        .collect();
    let names = (1..=k).map(|j| format!("x{j}")).collect();
    let mut design = Design::from_columns(&columns, n, names, intercept);
    if degree > 1 {
        design.add_powers(0, degree);
    }
    Some((design, y))
}

/// Log relative error, capped at 15; the absolute error when the certified value is 0.
pub fn lre(estimate: f64, certified: f64) -> f64 {
    let err = if certified == 0.0 {
        estimate.abs()
    } else {
        (estimate - certified).abs() / certified.abs()
    };
    if err == 0.0 {
        15.0
    } else {
        (-err.log10()).clamp(0.0, 15.0)
    }
}

/// The LRE scores of one dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    pub name: String,
    pub min_coefficient_lre: f64,
    pub residual_sd_lre: f64,
    pub r2_lre: f64,
    pub condition_number: f64,
}

/// Fits one dataset and scores it.
pub fn score(dir: &Path, name: &str, model: Model, precision: Precision) -> Result<Score> {
    let file = read(dir, name)?;
    let (design, y) = design(&file, model, precision)
        .ok_or_else(|| Error::Data(format!("{name}: data rows do not parse")))?;
    let fit = ols::fit(&design, &y)?;
    let estimates: Vec<f64> = fit
        .intercept
        .into_iter()
        .chain(fit.coefficients.iter().copied())
        .collect();
    if estimates.len() != file.certified_coefficients.len() {
        return Err(Error::Data(format!(
            "{name}: {} estimates for {} certified coefficients",
            estimates.len(),
            file.certified_coefficients.len()
        )));
    }
    let min_coefficient_lre = estimates
        .iter()
        .zip(&file.certified_coefficients)
        .map(|(e, c)| lre(*e, *c))
        .fold(f64::INFINITY, f64::min);
    Ok(Score {
        name: name.to_string(),
        min_coefficient_lre,
        residual_sd_lre: lre(fit.residual_sd, file.certified_residual_sd),
        r2_lre: lre(fit.r2, file.certified_r2),
        condition_number: fit.condition_number,
    })
}

/// The LRE table of every dataset, for both ways of reading the data.
pub fn table(dir: &Path) -> Result<String> {
    let mut out = format!(
        "{:<9}  {:>9}  {:>19}  {:>19}  {:>19}\n{:<9}  {:>9}  {:>19}  {:>19}  {:>19}\n",
        "",
        "cond",
        "min LRE coef",
        "LRE residual SD",
        "LRE R²",
        "dataset",
        "(scaled)",
        "f64 | dd",
        "f64 | dd",
        "f64 | dd"
    );
    for (name, model) in DATASETS {
        let a = score(dir, name, model, Precision::F64)?;
        let b = score(dir, name, model, Precision::DoubleDouble)?;
        out += &format!(
            "{:<9}  {:>9.2e}  {:>8.1} | {:>8.1}  {:>8.1} | {:>8.1}  {:>8.1} | {:>8.1}\n",
            name,
            a.condition_number,
            a.min_coefficient_lre,
            b.min_coefficient_lre,
            a.residual_sd_lre,
            b.residual_sd_lre,
            a.r2_lre,
            b.r2_lre
        );
    }
    Ok(out)
}
