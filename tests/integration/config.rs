//! Config loading: grid expansion, excludes, run ids, overrides, error locations.

use std::path::Path;

use sweep::config::{self, Whiten};

fn load(text: &str, overrides: &[&str]) -> sweep::error::Result<config::Sweep> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    config::from_text(
        text,
        Path::new("test.toml"),
        Path::new("."),
        Path::new("."),
        &overrides,
    )
}

const GRID: &str = r#"
name = "g"
[train]
epochs = 3
[grid]
whiten = ["none", "zca", "pca"]
clip = [false, true]
seed = [0, 1]
[[grid.exclude]]
whiten = "pca"
clip = true
"#;

#[test]
fn grid_expands_to_the_product_minus_excludes() {
    let sweep = load(GRID, &[]).unwrap();
    // 3 x 2 x 2 = 12, minus pca+clip for 2 seeds.
    assert_eq!(sweep.runs.len(), 10);
    assert!(!sweep
        .runs
        .iter()
        .any(|r| r.settings.whiten == Whiten::Pca && r.settings.clip));
    assert_eq!(
        sweep
            .runs
            .iter()
            .filter(|r| r.settings.whiten == Whiten::Pca)
            .count(),
        2
    );
    for (i, run) in sweep.runs.iter().enumerate() {
        assert_eq!(run.index, i);
        assert_eq!(run.settings.epochs, 3);
    }
    let mut ids: Vec<&str> = sweep.runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "run ids must be unique");
}

#[test]
fn run_ids_do_not_depend_on_key_order() {
    let reordered = r#"
[[grid.exclude]]
clip = true
whiten = "pca"

[grid]
seed = [0, 1]
clip = [false, true]
whiten = ["none", "zca", "pca"]

[train]
epochs = 3

name = "g"
"#;
    // TOML needs top-level keys before tables; move `name` up but keep everything else reordered.
    let reordered = format!(
        "name = \"g\"\n{}",
        reordered.replace("\nname = \"g\"\n", "\n")
    );
    let a = load(GRID, &[]).unwrap();
    let b = load(&reordered, &[]).unwrap();
    let ids_a: Vec<&str> = a.runs.iter().map(|r| r.id.as_str()).collect();
    let ids_b: Vec<&str> = b.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids_a, ids_b);
    assert_eq!(a.config_hash, b.config_hash);
    // A different setting gives different ids.
    let c = load(GRID, &["train.epochs=4"]).unwrap();
    assert_ne!(ids_a[0], c.runs[0].id);
}

/// A key added after tables were published (`dtype`) leaves run ids and the config hash alone at
/// its default, so existing results stay valid; a non-default value changes both.
#[test]
fn a_later_key_at_its_default_keeps_run_ids_and_the_config_hash() {
    let plain = load(GRID, &[]).unwrap();
    let explicit = load(GRID, &["train.dtype=\"f64\""]).unwrap();
    let f32 = load(GRID, &["train.dtype=\"f32\""]).unwrap();
    let ids = |s: &config::Sweep| s.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&plain), ids(&explicit));
    assert_eq!(plain.config_hash, explicit.config_hash);
    assert!(
        !plain.resolved_toml.contains("dtype"),
        "{}",
        plain.resolved_toml
    );
    assert!(ids(&plain).iter().zip(ids(&f32)).all(|(a, b)| a != &b));
    assert_ne!(plain.config_hash, f32.config_hash);
    assert!(f32.resolved_toml.contains("dtype = \"f32\""));
    let err = load(GRID, &["train.dtype=\"f16\""])
        .unwrap_err()
        .to_string();
    assert!(err.contains("dtype") && err.contains("f16"), "{err}");
    // The same for `weight_decay_on`.
    let training = load(GRID, &["train.weight_decay_on=\"training\""]).unwrap();
    let features = load(GRID, &["train.weight_decay_on=\"features\""]).unwrap();
    assert_eq!(ids(&plain), ids(&training));
    assert_eq!(plain.config_hash, training.config_hash);
    assert!(ids(&plain).iter().zip(ids(&features)).all(|(a, b)| a != &b));
    assert!(features
        .resolved_toml
        .contains("weight_decay_on = \"features\""));
    let err = load(GRID, &["train.weight_decay_on=\"both\""])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("weight_decay_on") && err.contains("both") && err.contains("features"),
        "{err}"
    );
}

#[test]
fn overrides_replace_file_values_with_the_same_validation() {
    let sweep = load(
        GRID,
        &[
            "train.learning_rate=0.05",
            "grid.seed=[7]",
            "train.whiten_eps=1e-6",
        ],
    )
    .unwrap();
    assert_eq!(sweep.runs.len(), 5);
    assert!(sweep
        .runs
        .iter()
        .all(|r| r.settings.learning_rate == 0.05 && r.settings.seed == 7));
    // Integers are accepted for float keys and canonicalized.
    let sweep = load("[train]\nlearning_rate = 1\n", &[]).unwrap();
    assert_eq!(sweep.runs[0].settings.learning_rate, 1.0);
    // A bare word is a string.
    let sweep = load("", &["train.optimizer=adam"]).unwrap();
    assert_eq!(sweep.runs[0].settings.optimizer, config::Optimizer::Adam);
    let err = load("", &["grid.batch_size=[0, 4]"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--set grid.batch_size=[0, 4]") && err.contains(">= 1"),
        "{err}"
    );
}

#[test]
fn errors_locate_the_key_in_the_file() {
    let text = "name = \"x\"\n\n[train]\nepochs = 3\ninit_zero_fraction = 1.0\n";
    let err = load(text, &[]).unwrap_err().to_string();
    assert!(
        err.starts_with("test.toml:5:1: train.init_zero_fraction"),
        "{err}"
    );
    assert!(err.contains("[0, 1)"), "{err}");
    assert_eq!(config::locate_key(text, "train.epochs"), Some((4, 1)));
    assert_eq!(config::locate_key(GRID, "grid.exclude.0"), Some((9, 1)));
}

#[test]
fn every_out_of_range_value_is_rejected() {
    for (key, value) in [
        ("learning_rate", "0.0"),
        ("learning_rate", "nan"),
        ("learning_rate", "inf"),
        ("batch_size", "0"),
        ("epochs", "0"),
        ("clip_norm", "0.0"),
        ("init_zero_fraction", "-0.1"),
        ("weight_decay", "-1e-4"),
        ("momentum", "1.0"),
        ("whiten", "\"pcaa\""),
        ("init", "\"he\""),
        ("optimizer", "\"sgdm\""),
        ("whiten_eps", "-1.0"),
    ] {
        let text = format!("[train]\n{key} = {value}\n");
        let err = load(&text, &[]).unwrap_err().to_string();
        assert!(
            err.contains(&format!("train.{key}")),
            "{key} = {value}: {err}"
        );
    }
}

#[test]
fn grid_cap_is_enforced_and_overridable() {
    let text = "max_runs = 5\n[grid]\nseed = [0, 1, 2, 3, 4, 5]\n";
    let err = load(text, &[]).unwrap_err().to_string();
    assert!(
        err.contains("6 runs") && err.contains("max_runs = 5"),
        "{err}"
    );
    assert_eq!(load(text, &["max_runs=6"]).unwrap().runs.len(), 6);
}

#[test]
fn data_keys_are_checked_against_the_source() {
    let err = load(
        "[data]\npath = \"x.csv\"\ntarget = \"y\"\nn_rows = 10\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("data.n_rows") && err.contains("generator"),
        "{err}"
    );
    let err = load("[data]\npath = \"x.txt\"\ntarget = \"y\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains(".csv or .parquet"), "{err}");
    let err = load("[data]\nphi = 1.0\n", &[]).unwrap_err().to_string();
    assert!(err.contains("data.phi"), "{err}");
    let err = load(
        "[data]\npath = \"x.csv\"\ntarget = \"y\"\n[grid]\ndata_seed = [1, 2]\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("grid.data_seed"), "{err}");
}
