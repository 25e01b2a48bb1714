//! What a paper takes from a results folder: the verdict, scenario and cell tables as bare booktabs
//! `tabular`s (no float and no macro, so that a paper can `\input` them; numbers to
//! [`SIGNIFICANT`] significant digits; LaTeX's special characters escaped) and as CSV (every digit),
//! under `tables/`; and the "Reproduce" section that ends `report.md`: the commands that re-run
//! and check the folder, and the provenance its tables record.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::Result;
use crate::results::{read_metadata_value, write_csv, write_text};

/// Significant digits of the numbers in the LaTeX tables.
pub const SIGNIFICANT: usize = 4;

/// Writes `tables/<name>.tex` and `tables/<name>.csv` for every (name, table); returns the paths.
pub fn write_tables(dir: &Path, tables: &mut [(&str, DataFrame)]) -> Result<Vec<PathBuf>> {
    let folder = dir.join("tables");
    std::fs::create_dir_all(&folder)
        .map_err(|e| crate::error::Error::io(format!("creating {}", folder.display()), e))?;
    let mut written = Vec::new();
    for (name, df) in tables.iter_mut() {
        let tex = folder.join(format!("{name}.tex"));
        write_text(&tex, &tabular(df))?;
        let csv = folder.join(format!("{name}.csv"));
        write_csv(&csv, df)?;
        written.extend([tex, csv]);
    }
    Ok(written)
}

/// A bare booktabs `tabular`: numbers right-aligned, everything else left-aligned.
pub fn tabular(df: &DataFrame) -> String {
    let numeric: Vec<bool> = df
        .columns()
        .iter()
        .map(|c| c.dtype().is_primitive_numeric())
        .collect();
    let spec: String = numeric.iter().map(|n| if *n { 'r' } else { 'l' }).collect();
    let header: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| escape(n.as_str()))
        .collect();
    let mut out = format!(
        "\\begin{{tabular}}{{{spec}}}\n\\toprule\n{} \\\\\n\\midrule\n",
        header.join(" & ")
    );
    for i in 0..df.height() {
        let row: Vec<String> = df
            .columns()
            .iter()
            .map(|c| cell(&c.get(i).unwrap_or(AnyValue::Null)))
            .collect();
        out += &format!("{} \\\\\n", row.join(" & "));
    }
    out + "\\bottomrule\n\\end{tabular}\n"
}

fn cell(value: &AnyValue) -> String {
    match value {
        AnyValue::Null => "--".into(),
        AnyValue::Float64(v) => number(*v),
        AnyValue::Float32(v) => number(f64::from(*v)),
        AnyValue::String(s) => escape(s),
        AnyValue::StringOwned(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

/// A number to [`SIGNIFICANT`] significant digits: plain between 1e-3 and 1e5, otherwise
/// `$m \times 10^{e}$`.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.is_nan() {
        return "--".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "$\\infty$" } else { "$-\\infty$" }.into();
    }
    // The exponent after rounding to the significant digits (9999.6 is 1.000e4).
    let rounded: f64 = format!("{v:.*e}", SIGNIFICANT - 1)
        .parse()
        .expect("a number");
    let exponent = rounded.abs().log10().floor() as i32;
    if (-3..5).contains(&exponent) {
        let decimals = (SIGNIFICANT as i32 - 1 - exponent).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        let text = format!("{v:.*e}", SIGNIFICANT - 1);
        let (mantissa, power) = text.split_once('e').expect("scientific notation");
        format!("${mantissa} \\times 10^{{{power}}}$")
    }
}

/// Escapes LaTeX's special characters in text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            _ => out.push(c),
        }
    }
    out
}

/// The "Reproduce" section of `report.md`: the commands, and the provenance of `runs.parquet`.
pub fn reproduce_section(dir: &Path) -> Result<String> {
    let runs = dir.join("runs.parquet");
    let value = |key: &str| -> Result<String> {
        Ok(read_metadata_value(&runs, key)?.unwrap_or_else(|| "not recorded".into()))
    };
    let hash = value("sweep.config_hash")?;
    let mut md = format!(
        "\n## Reproduce\n\n\
         Every table of this folder records the resolved config (`sweep.config`, hash `{}`) and the build \
         that made it. To re-run the sweep from that record and compare every table, value for value:\n\n\
         ```sh\nsweep reproduce {dir}             # exit 0: reproduced; 4: a table differs (the report names it)\n\
         sweep reproduce {dir} --runs 10   # a quick check: the 10 smallest run ids only\n\
         sweep reproduce {dir} --rtol 1e-9 # on another CPU kind: numbers within 1e-9, labels identical\n```\n\n\
         The config itself is in `{dir}/manifest.toml` (`config`); saved as a file, `sweep run CONFIG --out DIR` \
         runs the sweep again.\n\n| provenance | value |\n| --- | --- |\n",
        &hash[..hash.len().min(16)],
        dir = dir.display()
    );
    for (key, _) in crate::build_facts() {
        md += &format!("| `{key}` | {} |\n", value(&key)?);
    }
    if let Some(sha) = read_metadata_value(&runs, "sweep.data_sha256")? {
        md += &format!("| `sweep.data_sha256` | {sha} |\n");
    }
    if let Ok(Some(m)) = crate::sweep::read_manifest(dir) {
        if !m.cpu.is_empty() {
            md += &format!(
                "| machine (manifest) | {}, {}, host {} |\n",
                m.cpu, m.simd, m.host
            );
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_four_significant_digits_and_text_is_escaped() {
        assert_eq!(number(0.50774), "0.5077");
        assert_eq!(number(-21.1090), "-21.11");
        assert_eq!(number(1234.4), "1234");
        assert_eq!(number(0.0012344), "0.001234");
        assert_eq!(number(7.93e-3), "0.007930");
        assert_eq!(number(1.289e-8), "$1.289 \\times 10^{-8}$");
        assert_eq!(number(2.5e6), "$2.500 \\times 10^{6}$");
        assert_eq!(number(f64::NAN), "--");
        assert_eq!(number(0.99995), "1.000");
        assert_eq!(number(99999.6), "$1.000 \\times 10^{5}$");
        assert_eq!(
            escape("normalize_target & 100%"),
            "normalize\\_target \\& 100\\%"
        );
        assert_eq!(
            escape("a^b~{c}\\"),
            "a\\textasciicircum{}b\\textasciitilde{}\\{c\\}\\textbackslash{}"
        );
    }

    #[test]
    fn a_tabular_is_bare_booktabs_with_aligned_columns() {
        let df = DataFrame::new_infer_height(vec![
            Column::new("factor".into(), vec!["normalize_target", "clip"]),
            Column::new("fisher_p".into(), vec![Some(0.0079365), None]),
        ])
        .unwrap();
        let t = tabular(&df);
        assert!(
            t.starts_with("\\begin{tabular}{lr}\n\\toprule\nfactor & fisher\\_p \\\\\n\\midrule\n")
        );
        assert!(t.contains("normalize\\_target & 0.007937 \\\\\nclip & -- \\\\\n"));
        assert!(t.ends_with("\\bottomrule\n\\end{tabular}\n"));
        assert!(!t.contains("\\begin{table}"), "no float");
    }
}
