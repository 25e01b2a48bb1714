//! The bad-input corpus: every case runs the real binary and checks exit code 2, a message that
//! names what is at fault (file, key, line, column, row or value) and what is accepted, and that
//! nothing was written.

use std::path::Path;

use crate::common::{run_ok, sweep};

/// A small valid base config; cases append to it or replace it.
const BASE: &str = "[data]\nn_rows = 120\nn_features = 4\nsignal_lags = 2\n[train]\nepochs = 2\n";

const CSV_OK: &str = "a,b,y\n1,2,3\n2,1,4\n3,5,2\n4,3,1\n5,8,2\n";

struct Case {
    name: &'static str,
    config: String,
    args: Vec<&'static str>,
    files: Vec<(&'static str, &'static str)>,
    expect: Vec<&'static str>,
}

fn case(name: &'static str, config: &str, expect: &[&'static str]) -> Case {
    Case {
        name,
        config: config.to_string(),
        args: vec![],
        files: vec![],
        expect: expect.to_vec(),
    }
}

fn with_args(mut c: Case, args: &[&'static str]) -> Case {
    c.args = args.to_vec();
    c
}

fn with_file(mut c: Case, name: &'static str, text: &'static str) -> Case {
    c.files.push((name, text));
    c
}

fn file_config(extra: &str) -> String {
    format!(
        "[data]\npath = \"d.csv\"\ntarget = \"y\"\n{extra}[train]\nepochs = 2\nbatch_size = 2\n"
    )
}

fn corpus() -> Vec<Case> {
    let base = |extra: &str| format!("{BASE}{extra}");
    vec![
        // TOML syntax.
        case("missing value", "[train]\nepochs = \n", &["bad.toml", "line 2", "column"]),
        case("unclosed array", "[grid]\nseed = [1, 2\n", &["bad.toml", "line"]),
        case("duplicate key", "[train]\nepochs = 1\nepochs = 2\n", &["bad.toml", "line 3", "duplicate"]),
        case("unclosed table header", "[train\nepochs = 1\n", &["bad.toml", "line 1"]),
        // Unknown keys, with suggestions.
        case("unknown top-level key", "nmae = \"x\"\n", &["bad.toml:1:1", "nmae", "did you mean `name`"]),
        case("unknown train key", &base("learning_rat = 0.1\n"), &["bad.toml:7:1", "train.learning_rat", "did you mean `learning_rate`"]),
        case("unknown data key", "[data]\nn_row = 10\n", &["bad.toml:2:1", "data.n_row", "did you mean `n_rows`"]),
        case("unknown grid key", &base("[grid]\nbatchsize = [1, 2]\n"), &["grid.batchsize", "did you mean `batch_size`"]),
        case("unknown ablation key", &base("[grid]\nclip = [false, true]\n[ablation]\nfactor = { clip = true }\n"), &["ablation.factor", "did you mean `factors`"]),
        // Too few seeds for the verdict's significance level: 3 seeds give Fisher p >= 0.10.
        case("seeds cannot reach alpha", &base("[grid]\nclip = [false, true]\nseed = [0, 1, 2]\n[ablation]\nfactors = { clip = true }\n"), &["grid.seed", "3 seed(s)", "at least 4 seeds", "0.100"]),
        case("alpha out of range", &base("[grid]\nclip = [false, true]\nseed = [0, 1, 2, 3, 4]\n[ablation]\nfactors = { clip = true }\nalpha = 1.5\n"), &["ablation.alpha", "1.5", "(0, 1)"]),
        // Wrong types.
        case("epochs as text", &base("[grid]\nepochs = [\"many\"]\n"), &["grid.epochs", "\"many\"", "whole number"]),
        case("clip as text", "[train]\nclip = \"yes\"\n", &["bad.toml:2:1", "train.clip", "bool"]),
        case("train not a table", "train = 5\n", &["bad.toml:1:1", "train", "expected a table"]),
        case("grid value not a list", &base("[grid]\nseed = 3\n"), &["grid.seed", "list"]),
        case("learning rate as text", "[train]\nlearning_rate = \"fast\"\n", &["train.learning_rate", "\"fast\"", "number"]),
        // Empty or duplicate grid values.
        case("empty grid list", &base("[grid]\nseed = []\n"), &["grid.seed", "empty"]),
        case("duplicate grid values", &base("[grid]\nbatch_size = [4, 4]\n"), &["grid.batch_size", "duplicate"]),
        case("duplicate after canonicalization", &base("[grid]\nlearning_rate = [1, 1.0]\n"), &["grid.learning_rate", "duplicate"]),
        // Out-of-range values.
        case("learning rate zero", "[train]\nlearning_rate = 0.0\n", &["train.learning_rate", "> 0"]),
        case("learning rate negative", "[train]\nlearning_rate = -1e-3\n", &["train.learning_rate", "> 0"]),
        case("learning rate nan", "[train]\nlearning_rate = nan\n", &["train.learning_rate", "finite"]),
        case("learning rate inf", "[train]\nlearning_rate = inf\n", &["train.learning_rate", "finite"]),
        case("batch size zero", "[train]\nbatch_size = 0\n", &["train.batch_size", ">= 1"]),
        case("batch size above rows", &base("[grid]\nbatch_size = [8, 500]\n"), &["batch_size = 500", "120 rows", "[1, 120]"]),
        case("epochs zero", "[train]\nepochs = 0\n", &["train.epochs", ">= 1"]),
        case("clip norm zero", "[train]\nclip_norm = 0.0\n", &["train.clip_norm", "> 0"]),
        case("init zero fraction one", "[train]\ninit_zero_fraction = 1.0\n", &["train.init_zero_fraction", "[0, 1)"]),
        case("init zero fraction negative", "[train]\ninit_zero_fraction = -0.5\n", &["train.init_zero_fraction", "[0, 1)"]),
        case("negative weight decay", "[train]\nweight_decay = -1e-4\n", &["train.weight_decay", ">= 0"]),
        case("unknown init", "[train]\ninit = \"he\"\n", &["train.init", "\"he\"", "he_normal"]),
        case("unknown whiten", &base("[grid]\nwhiten = [\"none\", \"zac\"]\n"), &["grid.whiten", "\"zac\"", "zca"]),
        case("unknown optimizer", "[train]\noptimizer = \"sgdm\"\n", &["train.optimizer", "\"sgdm\"", "momentum"]),
        case("momentum one", "[train]\nmomentum = 1.0\n", &["train.momentum", "[0, 1)"]),
        case("negative seed", "seed = -1\n", &["seed", "-1", ">= 0"]),
        case("bad name", "name = \"a/b\"\n", &["name", "\"a/b\""]),
        case("grid above max_runs", "max_runs = 3\n[grid]\nseed = [0, 1, 2, 3]\n", &["4 runs", "max_runs = 3"]),
        case("epochs beyond memory", "[train]\nepochs = 4294967295\n", &["train.epochs", "epochs.parquet", "fit in memory"]),
        case("epochs beyond memory on the grid", &base("[grid]\nepochs = [2, 40000000]\nseed = [0, 1]\n"), &["grid.epochs", "80000004"]),
        case("unknown data source", "[data]\nsource = \"random\"\n", &["data.source", "\"random\"", "lagged-levels"]),
        case("generator phi out of range", "[data]\nphi = 1.5\n", &["data.phi", "1.5", "(-1, 1)"]),
        // Excludes.
        case("exclude names an unknown key", &base("[grid]\nclip = [false, true]\n[[grid.exclude]]\nclipp = true\n"), &["grid.exclude", "clipp", "not a grid axis"]),
        case("exclude value not on the axis", &base("[grid]\nclip = [false]\n[[grid.exclude]]\nclip = true\n"), &["clip = true", "not one of the axis values"]),
        case(
            "excludes remove every run",
            &base("[grid]\nclip = [false, true]\n[[grid.exclude]]\nclip = false\n[[grid.exclude]]\nclip = true\n"),
            &["remove all 2 runs"],
        ),
        // Ablation and scenarios.
        case("ablation factor not an axis", &base("[ablation]\nfactors = { clip = true }\n"), &["ablation.factors", "clip", "not a grid axis"]),
        case("scenario with an unknown metric", &base("[[scenario]]\nname = \"s\"\nmetric = \"r2\"\ncheck = \"value\"\nreported = 1.0\n"), &["scenario", "r2", "final_train_r2"]),
        // --set.
        with_args(case("--set with an unknown path", BASE, &["--set trian.epochs=3", "did you mean `train`"]), &["--set", "trian.epochs=3"]),
        with_args(case("--set with a bad value", BASE, &["--set train.epochs=abc", "\"abc\""]), &["--set", "train.epochs=abc"]),
        with_args(case("--set without =", BASE, &["--set train.epochs", "KEY=VALUE"]), &["--set", "train.epochs"]),
        with_args(case("--set with a broken array", BASE, &["--set grid.seed=[1,", "not a TOML value"]), &["--set", "grid.seed=[1,"]),
        // Data files.
        case("missing data file", &file_config(""), &["d.csv", "cannot open"]),
        with_file(case("empty data file", &file_config(""), &["d.csv", "is empty"]), "d.csv", ""),
        with_file(case("header-only data file", &file_config(""), &["d.csv", "no data rows"]), "d.csv", "a,b,y\n"),
        with_file(
            case("non-numeric feature", &file_config("features = [\"a\", \"b\"]\n"), &["column \"b\"", "mixes numbers and text", "row 2", "\"x\""]),
            "d.csv",
            "a,b,y\n1,2,3\n2,x,4\n3,5,2\n4,3,1\n5,8,2\n",
        ),
        with_file(case("NaN value", &file_config(""), &["row 3", "(line 4 of the file)", "column \"a\"", "NaN"]), "d.csv", "a,b,y\n1,2,3\n2,1,4\nNaN,5,2\n4,3,1\n5,8,2\n"),
        with_file(case("infinite value", &file_config(""), &["row 1", "column \"y\"", "inf"]), "d.csv", "a,b,y\n1,2,inf\n2,1,4\n3,5,2\n4,3,1\n5,8,2\n"),
        with_file(case("zero-variance feature", &file_config(""), &["\"b\"", "zero variance"]), "d.csv", "a,b,y\n1,2,3\n2,2,4\n3,2,2\n4,2,1\n5,2,2\n"),
        with_file(case("too few rows", &file_config(""), &["2 rows", "2 features", "more rows than features"]), "d.csv", "a,b,y\n1,2,3\n2,1,4\n"),
        with_file(case("missing target column", &file_config("").replace("target = \"y\"", "target = \"z\""), &["\"z\"", "a, b, y"]), "d.csv", CSV_OK),
        with_file(case("missing feature column", &file_config("features = [\"a\", \"c\"]\n"), &["\"c\"", "a, b, y"]), "d.csv", CSV_OK),
        // Columns that read partly as numbers (issue: one "NA" in a numeric column was dropped in silence).
        with_file(
            case("NA in a numeric column", &file_config(""), &["d.csv", "column \"b\"", "mixes numbers and text", "row 2 (line 3 of the file)", "\"NA\"", "data.features", "without \"b\""]),
            "d.csv",
            "a,b,c,y\n1,2,1,3\n2,NA,2,4\n3,5,0,2\n4,3,4,1\n5,8,5,2\n6,1,6,3\n",
        ),
        with_file(
            case("NA marked missing", &file_config("missing = [\"NA\"]\n"), &["row 2 (line 3 of the file)", "column \"b\"", "is missing", "neither drops nor fills rows"]),
            "d.csv",
            "a,b,c,y\n1,2,1,3\n2,NA,2,4\n3,5,0,2\n4,3,4,1\n5,8,5,2\n6,1,6,3\n",
        ),
        with_file(case("empty cell", &file_config(""), &["row 3 (line 4 of the file)", "column \"a\"", "is missing"]), "d.csv", "a,b,y\n1,2,3\n2,1,4\n,5,2\n4,3,1\n5,8,2\n"),
        with_file(case("lower-case nan", &file_config(""), &["row 2", "column \"b\"", "NaN", "finite"]), "d.csv", "a,b,y\n1,2,3\n2,nan,4\n3,5,2\n4,3,1\n5,8,2\n"),
        with_file(case("minus infinity", &file_config(""), &["row 4", "column \"a\"", "-inf", "finite"]), "d.csv", "a,b,y\n1,2,3\n2,1,4\n3,5,2\n-inf,3,1\n5,8,2\n"),
        with_file(
            case("thousands separator", &file_config(""), &["column \"b\"", "\"1,234.5\"", "thousands separator"]),
            "d.csv",
            "a,b,y\n1,2,3\n2,\"1,234.5\",4\n3,5,2\n4,3,1\n5,8,2\n",
        ),
        with_file(case("target mixes numbers and text", &file_config(""), &["column \"y\"", "\"n/a\"", "choose another data.target"]), "d.csv", "a,b,y\n1,2,3\n2,1,n/a\n3,5,2\n4,3,1\n5,8,2\n"),
        with_file(
            case("semicolon file read with commas", &file_config(""), &["\"y\"", "a;b;y", "data.separator = \";\""]),
            "d.csv",
            "a;b;y\n1;2;3\n2;1;4\n3;5;2\n4;3;1\n5;8;2\n",
        ),
        with_file(case("separator of two characters", &file_config("separator = \";;\"\n"), &["data.separator", "\";;\"", "one character"]), "d.csv", CSV_OK),
        with_file(case("separator that is a digit", &file_config("separator = \"1\"\n"), &["data.separator", "\"1\""]), "d.csv", CSV_OK),
        with_file(case("empty missing marker", &file_config("missing = [\"\"]\n"), &["data.missing", "non-empty"]), "d.csv", CSV_OK),
        case("separator for a Parquet file", &file_config("separator = \";\"\n").replace("d.csv", "d.parquet"), &["data.separator", "CSV files only"]),
        with_file(case("data_seed with a file", &format!("{}[grid]\ndata_seed = [1, 2]\n", file_config("")), &["grid.data_seed", "data file"]), "d.csv", CSV_OK),
        with_file(
            case("singular covariance without whiten_eps", &file_config("features = [\"a\", \"b\", \"c\"]\n").replace("[train]\n", "[train]\nwhiten = \"zca\"\n"), &["singular", "whiten_eps"]),
            "d.csv",
            "a,b,c,y\n1,2,1,3\n2,1,2,4\n3,5,3,2\n4,3,4,1\n5,8,5,2\n6,1,6,3\n",
        ),
    ]
}

fn run_case(c: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, &c.config).unwrap();
    for (name, text) in &c.files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = dir.path().join("out");
    let output = sweep()
        .arg("run")
        .args(&c.args)
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(dump) = std::env::var_os("SWEEP_BAD_INPUT_DUMP") {
        // For behaviour checks across refactorings (scripts/behaviour_snapshot.sh).
        let text = format!(
            "exit {:?}\n{}",
            output.status.code(),
            stderr.replace(&*dir.path().to_string_lossy(), "<tmp>")
        );
        std::fs::write(Path::new(&dump).join(format!("{}.txt", c.name)), text).unwrap();
    }
    assert_eq!(
        output.status.code(),
        Some(2),
        "case '{}': exit {:?}, stderr: {stderr}",
        c.name,
        output.status.code()
    );
    for piece in &c.expect {
        assert!(
            stderr.contains(piece),
            "case '{}': message lacks {piece:?}: {stderr}",
            c.name
        );
    }
    assert!(
        !out.exists(),
        "case '{}': the output folder was created",
        c.name
    );
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(
        stray.len() == 1 + c.files.len(),
        "case '{}': files written: {stray:?}",
        c.name
    );
}

#[test]
fn every_bad_input_exits_2_names_the_fault_and_writes_nothing() {
    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    for c in &cases {
        run_case(c);
    }
}

#[test]
fn an_unwritable_output_folder_is_refused_before_any_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ok.toml");
    std::fs::write(&config, BASE).unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "not a folder").unwrap();
    let out = blocker.join("out");
    let output = sweep()
        .arg("run")
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write to") && stderr.contains("file/out"),
        "{stderr}"
    );
}

#[test]
fn an_exact_duplicate_column_gives_minimum_norm_ols_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("d.csv"),
        "a,b,c,y\n1,2,1,3\n2,1,2,4\n3,5,3,2\n4,3,4,1\n5,8,5,2\n6,1,6,3\n",
    )
    .unwrap();
    let config = dir.path().join("dup.toml");
    std::fs::write(&config, file_config("features = [\"a\", \"b\", \"c\"]\n")).unwrap();
    let out = dir.path().join("out");
    assert!(run_ok(&config, &out, &[]).contains("rank 3 of 4"));
    assert!(Path::new(&out.join("reference.parquet")).exists());
}
