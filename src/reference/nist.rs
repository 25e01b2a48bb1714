//! The NIST StRD linear-regression benchmark: parse a `.dat` file (certified values and data),
//! fit its model with [`super::ols`], and score the fit by the log relative error (LRE) of
//! every certified figure. NIST's data and certified values (public domain) are built into the
//! binary in a compact form of NIST's own decimal text (`nist-strd.txt`); a folder of NIST's
//! `.dat` files can be read instead.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// NIST's StRD linear datasets as built into the binary (`scripts/nist_compact.py` wrote it).
const BUILT_IN: &str = include_str!("nist-strd.txt");

/// Where the StRD files come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The copy built into the binary.
    BuiltIn,
    /// A folder of NIST's own `.dat` files.
    Dir(PathBuf),
}

impl Source {
    /// `dir` when given, else `$SWEEP_NIST_DIR` when set, else the built-in copy.
    pub fn resolve(dir: Option<PathBuf>) -> Source {
        dir.or_else(|| std::env::var_os("SWEEP_NIST_DIR").map(PathBuf::from))
            .map_or(Source::BuiltIn, Source::Dir)
    }

    /// Reads one dataset.
    pub fn read(&self, name: &str) -> Result<StrdFile> {
        match self {
            Source::Dir(dir) => read(dir, name),
            Source::BuiltIn => built_in()
                .iter()
                .find(|f| f.name == name)
                .cloned()
                .ok_or_else(|| Error::Data(format!("{name} is not an StRD linear dataset"))),
        }
    }

    /// Where the data came from, as the table's first line says.
    pub fn describe(&self) -> String {
        match self {
            Source::BuiltIn => "the copy built into sweep".to_string(),
            Source::Dir(dir) => dir.display().to_string(),
        }
    }
}

/// The built-in copy, parsed once.
pub fn built_in() -> &'static [StrdFile] {
    static FILES: OnceLock<Vec<StrdFile>> = OnceLock::new();
    FILES.get_or_init(|| parse_compact(BUILT_IN).expect("the built-in NIST copy parses"))
}

/// A parsed StRD file: certified values and data, every number as NIST's decimal text.
#[derive(Clone, Debug, PartialEq)]
pub struct StrdFile {
    pub name: String,
    /// One `[name, estimate, standard deviation of the estimate]` per certified coefficient.
    pub coefficients: Vec<[String; 3]>,
    pub residual_sd: String,
    pub r2: String,
    /// The data's column names, `y` first.
    pub columns: Vec<String>,
    /// Rows of decimal text: `y` first, then the predictors.
    pub rows: Vec<Vec<String>>,
}

impl StrdFile {
    pub fn certified_coefficients(&self) -> Vec<f64> {
        self.coefficients
            .iter()
            .map(|[_, estimate, _]| decimal(estimate))
            .collect()
    }
    pub fn certified_residual_sd(&self) -> f64 {
        decimal(&self.residual_sd)
    }
    pub fn certified_r2(&self) -> f64 {
        decimal(&self.r2)
    }

    /// The file in NIST's layout, as far as the parsers here and in `scripts/` read it: the
    /// certified values, then `Data:` with the column names and the rows.
    pub fn dat_text(&self) -> String {
        let mut out = format!(
            "NIST/ITL StRD\nDataset Name:  {name} ({name}.dat), written by `sweep nist --export` \
             from its built-in copy\n\n     Parameter         Estimate              of Estimate\n\n",
            name = self.name
        );
        for [b, estimate, sd] in &self.coefficients {
            out += &format!("        {b:<4} {estimate:<25} {sd}\n");
        }
        out += &format!(
            "\n     Residual\n     Standard Deviation   {}\n\n     R-Squared            {}\n\n",
            self.residual_sd, self.r2
        );
        out += &format!("Data:     {}\n", self.columns.join("  "));
        for row in &self.rows {
            out += &format!("        {}\n", row.join("  "));
        }
        out
    }
}

/// A certified value's text as f64 (checked when the file was parsed).
fn decimal(text: &str) -> f64 {
    text.parse()
        .expect("certified values are checked as numbers when parsed")
}

/// Reads and parses `DIR/<name>.dat`.
pub fn read(dir: &Path, name: &str) -> Result<StrdFile> {
    let path = dir.join(format!("{name}.dat"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Data(format!(
            "cannot read {}: {e} (without a folder, `sweep nist` uses its built-in copy)",
            path.display()
        ))
    })?;
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
    let is_number = |s: &str| s.parse::<f64>().is_ok();
    let mut coefficients = Vec::new();
    let mut residual_sd = None;
    let mut r2 = None;
    let data_line = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with("Data:"))?;
    for line in &lines[..data_line] {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        match tokens.as_slice() {
            [b, estimate, sd] if b.starts_with('B') && b[1..].parse::<u32>().is_ok() => {
                if !is_number(estimate) {
                    return None;
                }
                coefficients.push([b.to_string(), estimate.to_string(), sd.to_string()])
            }
            ["Standard", "Deviation", value] => residual_sd = Some(value.to_string()),
            ["R-Squared", value] => r2 = Some(value.to_string()),
            _ => {}
        }
    }
    let columns = lines[data_line]
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    let rows = lines[data_line + 1..]
        .iter()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|t| !t.is_empty())
        .collect();
    let (residual_sd, r2) = (residual_sd?, r2?);
    (is_number(&residual_sd) && is_number(&r2)).then(|| StrdFile {
        name: name.to_string(),
        coefficients,
        residual_sd,
        r2,
        columns,
        rows,
    })
}

/// Parses the compact form of `nist-strd.txt` (its header comment says the layout).
pub fn parse_compact(text: &str) -> Option<Vec<StrdFile>> {
    let mut files: Vec<StrdFile> = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let owned = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        if let ["dataset", name] = tokens.as_slice() {
            files.push(StrdFile {
                name: name.to_string(),
                coefficients: Vec::new(),
                residual_sd: String::new(),
                r2: String::new(),
                columns: Vec::new(),
                rows: Vec::new(),
            });
            continue;
        }
        let file = files.last_mut()?;
        match tokens.as_slice() {
            ["coefficient", b, estimate, sd] => {
                file.coefficients
                    .push([b.to_string(), estimate.to_string(), sd.to_string()])
            }
            ["residual_sd", value] => file.residual_sd = value.to_string(),
            ["r2", value] => file.r2 = value.to_string(),
            ["columns", names @ ..] => file.columns = owned(names),
            values if values.iter().all(|v| v.parse::<f64>().is_ok()) => {
                file.rows.push(owned(values))
            }
            _ => return None,
        }
    }
    let complete = |f: &StrdFile| {
        [&f.residual_sd, &f.r2]
            .iter()
            .all(|v| v.parse::<f64>().is_ok())
            && f.coefficients.iter().all(|c| c[1].parse::<f64>().is_ok())
            && !f.rows.is_empty()
    };
    files.iter().all(complete).then_some(files)
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
pub fn score(source: &Source, name: &str, model: Model, precision: Precision) -> Result<Score> {
    let file = source.read(name)?;
    let (design, y) = design(&file, model, precision)
        .ok_or_else(|| Error::Data(format!("{name}: data rows do not parse")))?;
    let fit = ols::fit(&design, &y)?;
    let estimates: Vec<f64> = fit
        .intercept
        .into_iter()
        .chain(fit.coefficients.iter().copied())
        .collect();
    let certified = file.certified_coefficients();
    if estimates.len() != certified.len() {
        return Err(Error::Data(format!(
            "{name}: {} estimates for {} certified coefficients",
            estimates.len(),
            certified.len()
        )));
    }
    let min_coefficient_lre = estimates
        .iter()
        .zip(&certified)
        .map(|(e, c)| lre(*e, *c))
        .fold(f64::INFINITY, f64::min);
    Ok(Score {
        name: name.to_string(),
        min_coefficient_lre,
        residual_sd_lre: lre(fit.residual_sd, file.certified_residual_sd()),
        r2_lre: lre(fit.r2, file.certified_r2()),
        condition_number: fit.condition_number,
    })
}

/// The LRE table of every dataset, for both ways of reading the data.
pub fn table(source: &Source) -> Result<String> {
    let mut out = format!(
        "NIST StRD data: {}\n{:<9}  {:>9}  {:>19}  {:>19}  {:>19}\n{:<9}  {:>9}  {:>19}  {:>19}  {:>19}\n",
        source.describe(),
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
        let a = score(source, name, model, Precision::F64)?;
        let b = score(source, name, model, Precision::DoubleDouble)?;
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
