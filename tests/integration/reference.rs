//! The exact reference: every NIST StRD linear-regression dataset, rank deficiency, whitening
//! accuracy on the built-in data, and the errors of `sweep ols`.
//!
//! The NIST data come from the copy built into sweep, or from `$SWEEP_NIST_DIR` when it is set;
//! one test checks the built-in copy against NIST's own files when they are at hand.

use std::path::PathBuf;
use std::sync::Arc;

use assert_cmd::Command;
use sweep::config::{DataConfig, Whiten};
use sweep::preprocess::Prepared;
use sweep::reference::nist::{self, Precision, Source};
use sweep::reference::{self, Design, Reference, DD};

fn nist_source() -> Source {
    Source::resolve(None)
}

/// NIST's own files: `$SWEEP_NIST_DIR`, else `../shared/data/nist-strd` beside the project.
fn nist_files_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SWEEP_NIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/nist-strd")
        });
    dir.join("Filip.dat").exists().then_some(dir)
}

#[test]
fn built_in_nist_copy_equals_nists_files() {
    let Some(dir) = nist_files_dir() else {
        // CI sets SWEEP_REQUIRE_NIST_FILES where the files are at hand, so this cannot pass unseen.
        assert!(
            std::env::var_os("SWEEP_REQUIRE_NIST_FILES").is_none(),
            "SWEEP_REQUIRE_NIST_FILES is set but NIST's files are not found"
        );
        eprintln!("NIST's .dat files are not at hand: the built-in copy is not compared");
        return;
    };
    let built_in = nist::built_in();
    assert_eq!(built_in.len(), nist::DATASETS.len());
    for (file, (name, _)) in built_in.iter().zip(nist::DATASETS) {
        let original = nist::read(&dir, name).unwrap();
        assert_eq!(
            *file,
            original,
            "{name}: the built-in copy differs from {}",
            dir.display()
        );
    }
}

#[test]
fn built_in_nist_copy_has_the_documented_shape() {
    // Observation counts and parameter counts of NIST's headers (shared/data/nist-strd/README.md).
    let shape = [
        ("Norris", 36, 2),
        ("Pontius", 40, 3),
        ("NoInt1", 11, 1),
        ("NoInt2", 3, 1),
        ("Filip", 82, 11),
        ("Longley", 16, 7),
        ("Wampler1", 21, 6),
        ("Wampler5", 21, 6),
    ];
    for (name, rows, params) in shape {
        let file = Source::BuiltIn.read(name).unwrap();
        assert_eq!(
            (file.rows.len(), file.coefficients.len()),
            (rows, params),
            "{name}"
        );
        assert!(
            file.rows.iter().all(|r| r.len() == file.columns.len()),
            "{name}"
        );
    }
    assert_eq!(Source::BuiltIn.read("Longley").unwrap().rows[0][0], "60323");
    assert_eq!(
        Source::BuiltIn.read("Filip").unwrap().coefficients[10][1],
        "-0.402962525080404E-04"
    );
}

#[test]
fn nist_export_writes_files_that_read_back_as_the_built_in_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("strd");
    Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["nist", "--export"])
        .arg(&out)
        .env_remove("SWEEP_NIST_DIR")
        .current_dir(tmp.path())
        .assert()
        .success();
    let exported = Source::Dir(out);
    for file in nist::built_in() {
        assert_eq!(exported.read(&file.name).unwrap(), *file);
    }
}

#[test]
fn sweep_nist_needs_no_folder_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .arg("nist")
        .env_remove("SWEEP_NIST_DIR")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("NIST StRD data: the copy built into sweep"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("Wampler")).count(),
        5,
        "{text}"
    );
    // A folder that is not there is an error naming the file, exit 2.
    let missing = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["nist", "no-such-folder"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("no-such-folder/Norris.dat"), "{stderr}");
}

#[test]
fn every_nist_dataset_read_as_f64_meets_the_lre_bounds() {
    let source = nist_source();
    for (name, model) in nist::DATASETS {
        let s = nist::score(&source, name, model, Precision::F64).unwrap();
        let bound = if name == "Filip" { 7.0 } else { 9.0 };
        for (what, lre) in [
            ("coefficients", s.min_coefficient_lre),
            ("residual SD", s.residual_sd_lre),
            ("R²", s.r2_lre),
        ] {
            assert!(lre >= bound, "{name}: LRE of {what} {lre:.1} < {bound}");
        }
    }
}

#[test]
fn every_nist_dataset_read_in_double_double_has_lre_at_least_10() {
    let source = nist_source();
    for (name, model) in nist::DATASETS {
        let s = nist::score(&source, name, model, Precision::DoubleDouble).unwrap();
        for (what, lre) in [
            ("coefficients", s.min_coefficient_lre),
            ("residual SD", s.residual_sd_lre),
            ("R²", s.r2_lre),
        ] {
            assert!(lre >= 10.0, "{name}: LRE of {what} {lre:.1} < 10");
        }
    }
}

#[test]
fn filip_is_as_ill_conditioned_as_documented() {
    let s = nist::score(
        &nist_source(),
        "Filip",
        nist::Model::Polynomial(10, true),
        Precision::F64,
    )
    .unwrap();
    assert!(
        s.condition_number > 1e9 && s.condition_number < 1e10,
        "{}",
        s.condition_number
    );
}

#[test]
fn lre_definition() {
    assert_eq!(nist::lre(1.0, 1.0), 15.0);
    assert!((nist::lre(1.001, 1.0) - 3.0).abs() < 1e-9);
    assert!((nist::lre(1e-7, 0.0) - 7.0).abs() < 1e-9);
    assert_eq!(nist::lre(5.0, 1.0), 0.0);
}

#[test]
fn duplicate_column_gives_the_pseudo_inverse_solution_and_rank_d_minus_1() {
    // Columns: u, u, v with an intercept; the pseudo-inverse of the centred design splits u's
    // coefficient equally between its copies: closed form from the fit on (u, v) alone.
    let n = 40;
    let u: Vec<f64> = (0..n).map(|i| ((i * 7919) % 97) as f64 / 97.0).collect();
    let v: Vec<f64> = (0..n).map(|i| ((i * 104729) % 89) as f64 / 89.0).collect();
    let y: Vec<DD> = (0..n)
        .map(|i| DD::new(0.5 + 2.0 * u[i] - 1.0 * v[i] + 0.01 * ((i % 5) as f64 - 2.0)))
        .collect();
    let rows3: Vec<f64> = (0..n).flat_map(|i| [u[i], u[i], v[i]]).collect();
    let rows2: Vec<f64> = (0..n).flat_map(|i| [u[i], v[i]]).collect();
    let dup = reference::fit(&Design::from_rows(&rows3, n, 3, true), &y).unwrap();
    let single = reference::fit(&Design::from_rows(&rows2, n, 2, true), &y).unwrap();
    assert_eq!(
        dup.rank, 3,
        "4 design columns (intercept, u, u, v) of rank 3"
    );
    assert_eq!(single.rank, 3);
    let expected = [
        single.coefficients[0] / 2.0,
        single.coefficients[0] / 2.0,
        single.coefficients[1],
    ];
    for (a, b) in dup.coefficients.iter().zip(expected) {
        assert!(
            (a - b).abs() < 1e-10,
            "{:?} vs {expected:?}",
            dup.coefficients
        );
    }
    assert!((dup.intercept.unwrap() - single.intercept.unwrap()).abs() < 1e-10);
    assert!((dup.r2 - single.r2).abs() < 1e-12);
}

#[test]
fn whitening_accuracy_on_the_built_in_data() {
    let data = sweep::data::lagged_levels(&DataConfig::default(), 0).unwrap();
    let reference = Reference::of(&data).unwrap();
    let ev = reference.spectrum.eigenvalues.clone();
    let decades = (ev[0] / ev[ev.len() - 1]).log10();
    assert!(decades > 8.0, "{decades}");
    let data = Arc::new(data);
    let reference = Arc::new(reference);
    let (n, d) = (data.n, data.d);
    let mut report = Vec::new();
    for eps in [0.0, 1e-8] {
        let prep = Prepared::new(data.clone(), reference.clone(), Whiten::Zca, eps, false).unwrap();
        // Covariance of the whitened features, minus the identity: max abs entry.
        let x: Vec<f64> = (0..n).flat_map(|i| prep.row(i).to_vec()).collect();
        let mean = reference::column_means(&x, n, d);
        let mut worst: f64 = 0.0;
        for a in 0..d {
            for b in a..d {
                let c: f64 = x
                    .chunks_exact(d)
                    .map(|r| (r[a] - mean[a]) * (r[b] - mean[b]))
                    .sum::<f64>()
                    / n as f64;
                worst = worst.max((c - if a == b { 1.0 } else { 0.0 }).abs());
            }
        }
        report.push((eps, worst));
    }
    println!("eigenvalues span {decades:.1} decades; max |W Sigma W^T - I|: {report:?}");
    // eps = 0: identity up to rounding amplified by the spread of the spectrum.
    assert!(report[0].1 < 1e-9, "{report:?}");
    // eps > 0 shrinks the smallest directions on purpose: their variance becomes lambda / (lambda + eps),
    // so the deviation is bounded by the spectral norm 1 - lambda_min / (lambda_min + eps) and visible.
    let bound = 1.0 - ev[d - 1] / (ev[d - 1] + 1e-8);
    println!("eps = 1e-8: bound {bound:.4}");
    assert!(
        report[1].1 <= bound + 1e-9 && report[1].1 > 1e-3,
        "{report:?} vs bound {bound}"
    );
}

fn ols_cmd(args: &[&str], csv: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.csv");
    std::fs::write(&path, csv).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sweep"))
        .arg("ols")
        .arg(&path)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn ols_command_prints_json_and_rejects_bad_input() {
    let csv = "x,y\n1,2\n2,3\n3,5\n4,4\n";
    let out = ols_cmd(&["--target", "y", "--format", "json"], csv);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"intercept\": 1.5")
            && text.contains("\"x\": 0.8")
            && text.contains("\"rank\": 2"),
        "{text}"
    );
    assert!(text.contains("\"n\": 4, \"p\": 2"), "{text}");
    let out = ols_cmd(
        &["--target", "y", "--no-intercept", "--format", "json"],
        csv,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"intercept\": null"));

    for (args, csv, expected) in [
        (
            vec!["--target", "y"],
            "x,y\n1,2\n",
            "more rows than features",
        ),
        (vec!["--target", "y"], "", "is empty"),
        (vec!["--target", "z"], csv, "\"z\""),
        (vec!["--target", "y"], "x,y\n1,2\n2,NaN\n3,4\n", "row 2"),
        (vec!["--target", "y", "--poly", "x:1"], csv, "--poly x:1"),
    ] {
        let out = ols_cmd(&args, csv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
