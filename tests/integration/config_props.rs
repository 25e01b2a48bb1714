//! Property tests of the config loader: random and mutated TOML never panics and every
//! rejection is a clear config error; grid expansion counts, unique ids, key-order independence.

use std::path::Path;

use proptest::prelude::*;
use sweep::config;
use sweep::error::Error;

fn load(text: &str) -> sweep::error::Result<config::Sweep> {
    config::from_text(
        text,
        Path::new("p.toml"),
        Path::new("."),
        Path::new("."),
        &[],
    )
}

const VALID: &str = r#"name = "p"
seed = 1
[data]
n_rows = 50
n_features = 3
signal_lags = 1
[train]
epochs = 2
learning_rate = 1e-3
whiten = "zca"
[grid]
clip = [false, true]
seed = [0, 1, 2]
[[grid.exclude]]
clip = true
seed = 2
[ablation]
factors = { clip = true }
"#;

fn check(result: sweep::error::Result<config::Sweep>) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(
            matches!(e, Error::Config(_) | Error::Data(_)),
            "unexpected error kind: {e:?}"
        );
        let text = e.to_string();
        prop_assert!(text.len() > 10, "message too short: {text}");
        prop_assert_eq!(e.exit_code(), 2);
    }
    Ok(())
}

/// Lines a config might hold, right or wrong.
fn line() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "epochs",
        "batch_size",
        "learning_rate",
        "whiten",
        "clip",
        "seed",
        "name",
        "n_rows",
        "phi",
        "momentum",
        "init",
        "optimizer",
        "exclude",
        "factors",
        "max_runs",
        "whiten_eps",
        "bogus",
    ]);
    let values = prop::sample::select(vec![
        "0",
        "1",
        "-3",
        "2.5",
        "1e-3",
        "nan",
        "inf",
        "\"zca\"",
        "\"x\"",
        "true",
        "[]",
        "[1, 1]",
        "[0, 1]",
        "[\"none\", \"zca\"]",
        "{ clip = true }",
        "[1,",
        "\"",
        "1970-01-01",
    ]);
    let headers = prop::sample::select(vec![
        "[train]",
        "[data]",
        "[grid]",
        "[[grid.exclude]]",
        "[ablation]",
        "[[scenario]]",
        "[x]",
    ]);
    prop_oneof![
        (keys, values).prop_map(|(k, v)| format!("{k} = {v}")),
        headers.prop_map(str::to_string),
        "[ -~]{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn random_toml_never_panics(lines in prop::collection::vec(line(), 0..12)) {
        check(load(&lines.join("\n")))?;
    }

    #[test]
    fn mutated_valid_configs_never_panic(pos in 0usize..400, len in 0usize..8, insert in "[ -~\n]{0,6}") {
        let mut text = VALID.to_string();
        let start = pos.min(text.len());
        let end = (start + len).min(text.len());
        if text.is_char_boundary(start) && text.is_char_boundary(end) {
            text.replace_range(start..end, &insert);
        }
        check(load(&text))?;
    }

    #[test]
    fn grid_expansion_counts_and_ids(
        seeds in prop::collection::btree_set(0u64..50, 1..5),
        batches in prop::collection::btree_set(1u32..40, 1..4),
        clip in prop::bool::ANY,
        reverse in prop::bool::ANY,
    ) {
        let seeds: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
        let batches: Vec<String> = batches.iter().map(|s| s.to_string()).collect();
        let mut axes = vec![
            format!("seed = [{}]", seeds.join(", ")),
            format!("batch_size = [{}]", batches.join(", ")),
        ];
        if clip {
            axes.push("clip = [false, true]".to_string());
        }
        if reverse {
            axes.reverse();
        }
        let text = format!("[train]\nepochs = 1\n[grid]\n{}\n", axes.join("\n"));
        let sweep = load(&text).unwrap();
        let expected = seeds.len() * batches.len() * if clip { 2 } else { 1 };
        prop_assert_eq!(sweep.runs.len(), expected);
        let mut ids: Vec<&str> = sweep.runs.iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), expected);
        // The same grid written in the other key order gives the same runs in the same order.
        axes.reverse();
        let other = load(&format!("[train]\nepochs = 1\n[grid]\n{}\n", axes.join("\n"))).unwrap();
        let a: Vec<&str> = sweep.runs.iter().map(|r| r.id.as_str()).collect();
        let b: Vec<&str> = other.runs.iter().map(|r| r.id.as_str()).collect();
        prop_assert_eq!(a, b);
        // Excluding one batch size removes exactly its runs.
        let excluded = load(&format!("{text}[[grid.exclude]]\nbatch_size = {}\n", batches[0]));
        if batches.len() > 1 {
            prop_assert_eq!(excluded.unwrap().runs.len(), expected - expected / batches.len());
        } else {
            prop_assert!(excluded.is_err());
        }
    }
}
