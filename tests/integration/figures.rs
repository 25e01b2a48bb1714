//! The spectral split on a design with a known spectrum, the figures (plotted series against the
//! epochs table, well-formed SVG) and `sweep report`.

use std::path::Path;
use std::sync::Arc;

use crate::common::{read, run_ok, sweep};
use sweep::config::Whiten;
use sweep::data::Dataset;
use sweep::preprocess::Prepared;
use sweep::reference::Reference;

/// Sylvester Hadamard matrix of order 8: columns 1..3 are orthogonal with mean 0.
fn hadamard8() -> Vec<Vec<f64>> {
    let mut h = vec![vec![1.0]];
    while h.len() < 8 {
        let n = h.len();
        let mut next = vec![vec![0.0; 2 * n]; 2 * n];
        for i in 0..n {
            for j in 0..n {
                next[i][j] = h[i][j];
                next[i][j + n] = h[i][j];
                next[i + n][j] = h[i][j];
                next[i + n][j + n] = -h[i][j];
            }
        }
        h = next;
    }
    h
}

#[test]
fn spectral_split_on_a_problem_with_a_known_spectrum() {
    // Covariance diag(4, 1, 1e-4) exactly; y = x1 + x2 + x3, so w_ols = (1, 1, 1).
    let lambda = [4.0f64, 1.0, 1e-4];
    let h = hadamard8();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for row in &h {
        let values: Vec<f64> = (0..3).map(|j| row[j + 1] * lambda[j].sqrt()).collect();
        y.push(values.iter().sum::<f64>());
        x.extend(values);
    }
    let data = Dataset {
        n: 8,
        d: 3,
        x: x.into(),
        y: y.into(),
        feature_names: vec!["a".into(), "b".into(), "c".into()],
        target_name: "y".into(),
    };
    let reference = Reference::of(&data).unwrap();
    let prep = Prepared::new(
        Arc::new(data),
        Arc::new(reference),
        Whiten::None,
        0.0,
        false,
    )
    .unwrap();
    for (k, l) in prep.train_eigenvalues.iter().enumerate() {
        assert!(
            (l - lambda[k]).abs() < 1e-12 * lambda[k].max(1.0),
            "eigenvalue {k}: {l}"
        );
    }
    let ols = prep.ols_params.clone();
    assert!(ols[..3].iter().all(|w| (w - 1.0).abs() < 1e-10), "{ols:?}");
    // Offsets 0.1, 0.2, 0.3 along the axes: excess parts 4*0.01, 1*0.04, 1e-4*0.09.
    let params = vec![ols[0] + 0.1, ols[1] + 0.2, ols[2] + 0.3, ols[3]];
    let (a, b, c) = (0.04, 0.04, 9e-6);
    // lr 0.1, 100 steps: threshold 1/(2*0.1*100) = 0.05, so only the 1e-4 direction is slow.
    let dx = sweep::train::diagnose(&prep, &params, 0.1, 100, 2);
    let share = dx.slow_share.unwrap();
    assert!(
        (share - c / (a + b + c)).abs() < 1e-12,
        "slow share {share}"
    );
    // lr 1e-3: threshold 5, every direction is slow.
    assert!(
        (sweep::train::diagnose(&prep, &params, 1e-3, 100, 2)
            .slow_share
            .unwrap()
            - 1.0)
            .abs()
            < 1e-12
    );
    // The 1e-4 direction explains 2e-5 of the fit (< 0.1%): the slowest signal direction is lambda = 1.
    let epochs = dx.slowest_signal_epochs.unwrap();
    assert!(
        (epochs - 1.0 / (2.0 * 0.1 * 1.0 * 2.0)).abs() < 1e-9,
        "{epochs}"
    );
    // A bias offset adds (0.1)^2 to the excess, not to the slow part.
    let params_b = vec![params[0], params[1], params[2], ols[3] + 0.1];
    let share_b = sweep::train::diagnose(&prep, &params_b, 0.1, 100, 2)
        .slow_share
        .unwrap();
    assert!(
        (share_b - c / (a + b + c + 0.01)).abs() < 1e-12,
        "{share_b}"
    );
}

pub(crate) const SMALL: &str = r#"
name = "fig"
[data]
n_rows = 300
n_features = 6
signal_lags = 2
[train]
epochs = 12
batch_size = 16
learning_rate = 1e-2
[grid]
whiten = ["none", "zca"]
clip = [false, true]
seed = [0, 1]
[ablation]
factors = { whiten = "zca", clip = true }
alpha = 0.5
"#;

fn run_small(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("fig.toml");
    std::fs::write(&config, SMALL).unwrap();
    let out = dir.join("fig");
    run_ok(&config, &out, &["--quiet"]);
    out
}

fn epochs_values(out: &Path, run_id: &str, column: &str) -> Vec<f64> {
    let df = read(&out.join("epochs.parquet"));
    let ids = df.column("run_id").unwrap().str().unwrap().clone();
    let values = df.column(column).unwrap().f64().unwrap().clone();
    ids.iter()
        .zip(values.iter())
        .filter(|(id, _)| *id == Some(run_id))
        .map(|(_, v)| v.unwrap())
        .collect()
}

#[test]
fn plotted_series_equal_the_epochs_table_and_the_svg_is_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_small(dir.path());
    let runs = read(&out.join("runs.parquet"));
    let run_id = runs
        .column("run_id")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();

    let curves = sweep::report::read_curves(&out).unwrap();
    let stem = dir.path().join("diag");
    let (files, plotted) =
        sweep::report::diagnostics(&stem, "test", &[curves[&run_id].clone()]).unwrap();
    assert_eq!(files.len(), 2);
    let table = epochs_values(&out, &run_id, "weight_norm");
    assert_eq!(table.len(), 12);
    // The values themselves are plotted (a log axis, when there is one, is the axis's business).
    let series = &plotted[0][0];
    assert_eq!(series.len(), table.len());
    for ((i, (x, y)), v) in series.iter().enumerate().zip(&table) {
        assert_eq!(*x, (i + 1) as f64);
        assert_eq!(y.to_bits(), v.to_bits(), "epoch {}: {y} vs {v}", i + 1);
    }

    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::to_string))
        .collect();
    for label in [
        "epoch",
        "weight_norm",
        "gradient_norm",
        "update_ratio",
        "prediction",
        "loss",
    ] {
        assert!(
            texts.iter().any(|t| t.contains(label)),
            "no axis or title naming {label}: {texts:?}"
        );
    }
    // One polyline per panel holds the run's 12 points; in the first, pixel y falls as the value rises.
    let polylines: Vec<Vec<(f64, f64)>> = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .map(|n| {
            n.attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|p| {
                    p.split_once(',')
                        .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
                })
                .collect()
        })
        .filter(|p: &Vec<(f64, f64)>| p.len() == 12)
        .collect();
    assert!(
        polylines.len() >= 6,
        "expected a 12-point line per panel, found {}",
        polylines.len()
    );
    let first = &polylines[0];
    for i in 0..12 {
        for j in 0..12 {
            if table[i] < table[j] {
                assert!(
                    first[i].1 >= first[j].1,
                    "pixel order disagrees with the table at epochs {} and {}",
                    i + 1,
                    j + 1
                );
            }
        }
    }
    let png = std::fs::read(stem.with_extension("png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn report_writes_markdown_with_verdict_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_small(dir.path());
    let output = sweep().arg("report").arg(&out).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("verdict:") && text.contains("whiten") && text.contains("cells:"),
        "{text}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## Verdict") && md.contains("figures/excess_by_cell.png"),
        "{md}"
    );
    assert!(out.join("figures/excess_by_cell.svg").exists());
    // The excess figure: a real log axis (ticks at powers of ten), the tolerance line labelled.
    let excess = std::fs::read_to_string(out.join("figures/excess_by_cell.svg")).unwrap();
    let doc = roxmltree::Document::parse(&excess).expect("well-formed SVG");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    assert!(texts.iter().any(|t| t.ends_with("(log axis)")), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.starts_with("1e-") || t == "1e0"),
        "ticks at powers of ten: {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("converge_tol")),
        "the tolerance line is labelled"
    );
    // The labels against converge_tol, one panel per context and fix.
    let svg = std::fs::read_to_string(out.join("figures/verdict_by_tolerance.svg")).unwrap();
    assert!(svg.contains("converge_tol") && svg.contains("whiten") && svg.contains("clip"));
    assert!(md.contains("figures/verdict_by_tolerance.png"));
    let verdict = read(&out.join("verdict.parquet"));
    assert_eq!(verdict.height(), 2, "one context x two factors");
    // The tables for papers: bare booktabs tabulars, escaped, and the same rows as CSV.
    for name in ["verdict", "cells"] {
        let tex = std::fs::read_to_string(out.join(format!("tables/{name}.tex"))).unwrap();
        check_tabular(&tex, dir.path(), name);
        let csv = std::fs::read_to_string(out.join(format!("tables/{name}.csv"))).unwrap();
        assert_eq!(
            csv.lines().count(),
            tex.lines().filter(|l| l.ends_with("\\\\")).count(),
            "{name}: a header and the same rows"
        );
    }
    assert!(
        md.contains("## Reproduce") && md.contains("sweep reproduce"),
        "{md}"
    );
    let runs = read(&out.join("runs.parquet"));
    let share = runs.column("slow_share").unwrap().f64().unwrap().clone();
    assert!(share.iter().flatten().all(|v| (0.0..=1.0).contains(&v)));
}

/// A LaTeX tabular from `sweep report`: one balanced booktabs `tabular`, no float, every
/// underscore escaped; compiled by `pdflatex` when this machine has one.
fn check_tabular(tex: &str, dir: &Path, name: &str) {
    assert_eq!(tex.matches("\\begin{tabular}").count(), 1, "{name}: {tex}");
    assert_eq!(tex.matches("\\end{tabular}").count(), 1, "{name}");
    for rule in ["\\toprule", "\\midrule", "\\bottomrule"] {
        assert_eq!(tex.matches(rule).count(), 1, "{name}: {rule}");
    }
    assert!(!tex.contains("\\begin{table}"), "{name}: a bare tabular");
    let unescaped = tex
        .char_indices()
        .filter(|(i, c)| *c == '_' && !tex[..*i].ends_with('\\'))
        .count();
    assert_eq!(unescaped, 0, "{name}: unescaped underscores in {tex}");
    let has_pdflatex = std::process::Command::new("pdflatex")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_pdflatex {
        let doc = dir.join(format!("{name}-doc.tex"));
        std::fs::write(&doc, format!(
            "\\documentclass{{article}}\n\\usepackage{{booktabs}}\n\\usepackage[margin=5mm,paperwidth=120cm]{{geometry}}\n\\begin{{document}}\n{tex}\\end{{document}}\n"
        ))
        .unwrap();
        let run = std::process::Command::new("pdflatex")
            .args(["-interaction=nonstopmode", "-halt-on-error"])
            .arg(&doc)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&run.stdout)
        );
    }
}
