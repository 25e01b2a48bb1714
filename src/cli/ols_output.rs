//! `sweep ols`: the design from a file and `--poly`, the fit, and its two output formats, an
//! aligned table and one line of JSON (numbers printed with Rust's shortest round-trip form,
//! non-finite ones as null).

use crate::config::CsvFormat;
use crate::data;
use crate::error::{Error, Result};
use crate::reference::{fit, Design, Fit, DD};

use super::{Format, OlsArgs};

/// The highest `--poly` degree accepted: beyond it the powers of a standardized column
/// overflow or the design is hopelessly ill-conditioned.
pub const MAX_POLY_DEGREE: u32 = 100;

/// The text `sweep ols` prints.
pub(super) fn ols_text(args: &OlsArgs) -> Result<String> {
    let features = (!args.features.is_empty()).then_some(args.features.as_slice());
    let start = std::time::Instant::now();
    let missing = (!args.missing.is_empty()).then_some(args.missing.as_slice());
    let format = CsvFormat::parse(args.separator.as_deref(), missing)
        .map_err(|(key, message)| Error::Usage(format!("--{key}: {message}")))?;
    let data = data::read_file(
        &args.file,
        &args.target,
        features,
        args.standardize,
        &format,
    )?;
    let read = start.elapsed();
    let mut design = Design::shared(data.x.clone(), data.n, data.d, !args.no_intercept);
    design.names = data.feature_names.clone();
    for spec in &args.poly {
        let (column, degree) = parse_poly(spec, &data.feature_names)?;
        design.add_powers(column, degree);
    }
    let y: Vec<DD> = data.y.iter().map(|v| DD::new(*v)).collect();
    let fit = fit(&design, &y)?;
    if args.timing {
        eprintln!(
            "read_seconds={:.6} fit_seconds={:.6}",
            read.as_secs_f64(),
            (start.elapsed() - read).as_secs_f64()
        );
    }
    Ok(match args.format {
        Format::Json => json(&design, &fit),
        Format::Table => table(&design, &fit),
    })
}

/// `COL:DEG` into the column's index and the degree.
fn parse_poly(spec: &str, features: &[String]) -> Result<(usize, u32)> {
    let bad = |m: &str| {
        Error::Usage(format!(
            "--poly {spec}: {m}; expected COL:DEG with DEG in [2, {MAX_POLY_DEGREE}], e.g. --poly x:10"
        ))
    };
    let (column, degree) = spec.split_once(':').ok_or_else(|| bad("no ':'"))?;
    let degree: u32 = degree
        .parse()
        .ok()
        .filter(|d| (2..=MAX_POLY_DEGREE).contains(d))
        .ok_or_else(|| bad(&format!("DEG is not an integer in [2, {MAX_POLY_DEGREE}]")))?;
    let j = features
        .iter()
        .position(|f| f == column)
        .ok_or_else(|| bad("COL is not a feature column"))?;
    Ok((j, degree))
}

fn json_number(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "null".into()
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            c if (c as u32) < 0x20 => out += &format!("\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out + "\""
}

fn json(design: &Design, fit: &Fit) -> String {
    let coefficients: Vec<String> = design
        .names
        .iter()
        .zip(&fit.coefficients)
        .map(|(n, c)| format!("{}: {}", json_string(n), json_number(*c)))
        .collect();
    format!(
        "{{\"intercept\": {}, \"coefficients\": {{{}}}, \"residual_sd\": {}, \"r2\": {}, \"rank\": {}, \"condition_number\": {}, \"n\": {}, \"p\": {}}}\n",
        fit.intercept.map_or("null".into(), json_number),
        coefficients.join(", "),
        json_number(fit.residual_sd),
        json_number(fit.r2),
        fit.rank,
        json_number(fit.condition_number),
        fit.n,
        fit.p
    )
}

fn table(design: &Design, fit: &Fit) -> String {
    let width = design
        .names
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(9)
        .max(9);
    let mut s = format!("{:<width$}  {:>24}\n", "term", "coefficient");
    if let Some(b0) = fit.intercept {
        s += &format!("{:<width$}  {:>24.16e}\n", "intercept", b0);
    }
    for (n, c) in design.names.iter().zip(&fit.coefficients) {
        s += &format!("{n:<width$}  {c:>24.16e}\n");
    }
    s += &format!(
        "\nresidual SD {:.16e}\nR² {:.16}\nrank {} of {}\ncondition number {:.3e} (centred, unit-norm columns)\nn {}, p {}\n",
        fit.residual_sd, fit.r2, fit.rank, fit.p, fit.condition_number, fit.n, fit.p
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poly_specs_are_checked() {
        let names = vec!["x".to_string(), "z".to_string()];
        assert_eq!(parse_poly("z:3", &names).unwrap(), (1, 3));
        for bad in ["x", "x:1", "x:101", "x:4294967296", "w:2", "x:two"] {
            let err = parse_poly(bad, &names).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn json_strings_and_numbers_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(json_number(f64::NAN), "null");
        assert_eq!(json_number(0.5), "0.5");
    }
}
