//! Factorial effects and ablation paths: hand-made 2^3 tables with known answers (additive, one
//! pure two-way interaction, the AND pattern, an incomplete design); on a real sweep the effects
//! equal twice the coefficients of the saturated +-1 coded least-squares model; the bootstrap
//! intervals and paths are the same bytes at any thread count and on a rerun.

use sweep::config::{Ablation, Factor, TrainSettings, Whiten};
use sweep::results::{self, RunRow};
use sweep::train::Status;
use toml::Value;

use crate::common::{read, run_ok, write};

fn ablation3() -> Ablation {
    let factor = |key: &str, on: Value, off: Value| Factor {
        key: key.into(),
        on,
        off,
    };
    Ablation {
        factors: vec![
            factor(
                "whiten",
                Value::String("zca".into()),
                Value::String("none".into()),
            ),
            factor(
                "normalize_target",
                Value::Boolean(true),
                Value::Boolean(false),
            ),
            factor("clip", Value::Boolean(true), Value::Boolean(false)),
        ],
        converge_high: 0.8,
        converge_low: 0.2,
        alpha: 0.05,
        seeds: None,
    }
}

/// Four seeds of each of the 8 cells (bit 0 whiten, 1 normalize_target, 2 clip) whose
/// `log10_excess_mse` has cell mean `mean(x)` for the +-1 coded factors `x`; the seeds scatter
/// around it by a cell-specific amount that averages to zero in the cell.
fn runs(mean: impl Fn([f64; 3]) -> f64, skip_cell: Option<usize>) -> Vec<RunRow> {
    let mut rows = Vec::new();
    for m in 0..8usize {
        if Some(m) == skip_cell {
            continue;
        }
        let x = [0, 1, 2].map(|j| if m >> j & 1 == 1 { 1.0 } else { -1.0 });
        let e = 0.01 * (1 + m % 3) as f64;
        for (seed, scatter) in [e, -e, 2.0 * e, -2.0 * e].into_iter().enumerate() {
            let settings = TrainSettings {
                whiten: if x[0] > 0.0 {
                    Whiten::Zca
                } else {
                    Whiten::None
                },
                normalize_target: x[1] > 0.0,
                clip: x[2] > 0.0,
                seed: seed as u64,
                ..TrainSettings::default()
            };
            let excess = 10f64.powf(mean(x) + scatter);
            let mut row = RunRow {
                run_id: format!("{m}-{seed}"),
                run_index: rows.len() as u32,
                scenario: None,
                settings,
                data_seed: Some(0),
                status: Status::NotConverged,
                message: None,
                epochs_run: 500,
                epochs_to_converge: None,
                initial_train_mse: 1.0,
                final_train_mse: 1e-6 * (1.0 + excess),
                final_train_r2: 0.5,
                best_train_r2: 0.5,
                excess_mse: excess,
                weight_norm: 1.0,
                distance_to_ols: 0.1,
                ols_mse: 1e-6,
                ols_r2: 0.5,
                slow_share: None,
                slowest_signal_epochs: None,
                process: None,
                finals: Default::default(),
            };
            row.run_id = format!("{m}-{seed}");
            rows.push(row);
        }
    }
    rows
}

/// Effects by term: (term, effect, variance share).
type TermEffects = Vec<(String, Option<f64>, Option<f64>)>;

/// The `log10_excess_mse` effects by term, and the reading.
fn log_effects(rows: &[RunRow]) -> (TermEffects, String) {
    let effects = results::effects(&ablation3(), rows, 7, 400);
    let reading = results::reading(&effects, |_| String::new());
    let picked = effects
        .into_iter()
        .filter(|r| r.response == "log10_excess_mse")
        .map(|r| (r.term, r.effect, r.variance_share))
        .collect();
    (picked, reading)
}

fn effect_of(effects: &TermEffects, term: &str) -> (f64, f64) {
    let (_, e, s) = effects.iter().find(|(t, _, _)| t == term).unwrap();
    (e.unwrap(), s.unwrap())
}

#[test]
fn effects_of_hand_made_factorials_have_their_known_values() {
    // Additive: main effects twice the coefficients, no interaction.
    let (effects, reading) =
        log_effects(&runs(|x| 1.0 - 2.0 * x[0] - 1.0 * x[1] - 0.5 * x[2], None));
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(effect_of(&effects, "whiten").0, -4.0));
    assert!(close(effect_of(&effects, "normalize_target").0, -2.0));
    assert!(close(effect_of(&effects, "clip").0, -1.0));
    for term in [
        "clip:normalize_target",
        "clip:whiten",
        "normalize_target:whiten",
        "clip:normalize_target:whiten",
    ] {
        assert!(effect_of(&effects, term).0.abs() < 1e-12, "{term}");
    }
    // Shares: 16, 4, 1 over 21.
    assert!(close(effect_of(&effects, "whiten").1, 16.0 / 21.0));
    assert!(
        reading.contains("whiten -4.00") && reading.contains("clip:whiten additive"),
        "{reading}"
    );

    // One pure two-way interaction, negative: synergistic; no main effect.
    let (effects, reading) = log_effects(&runs(|x| 1.0 - 0.5 * x[0] * x[2], None));
    assert!(close(effect_of(&effects, "clip:whiten").0, -1.0));
    assert!(close(effect_of(&effects, "clip:whiten").1, 1.0));
    assert!(effect_of(&effects, "whiten").0.abs() < 1e-12);
    assert!(
        reading.contains("clip:whiten synergistic")
            && reading.contains("normalize_target:whiten additive"),
        "{reading}"
    );

    // The AND pattern: only all-on works. Every effect is -3/4, each a seventh of the variance,
    // and every pair is synergistic: "fails if any one is removed".
    let (effects, reading) = log_effects(&runs(
        |x| {
            if x.iter().all(|v| *v > 0.0) {
                -3.0
            } else {
                0.0
            }
        },
        None,
    ));
    for (term, e, share) in &effects {
        assert!(close(e.unwrap(), -0.75), "{term}");
        assert!(close(share.unwrap(), 1.0 / 7.0), "{term}");
    }
    for pair in [
        "clip:normalize_target",
        "clip:whiten",
        "normalize_target:whiten",
    ] {
        assert!(
            reading.contains(&format!("{pair} synergistic")),
            "{reading}"
        );
    }

    // No run converges anywhere (0 of 4 in every cell): the Jeffreys-smoothed fractions still give
    // intervals of non-zero width, around a zero effect.
    let all = results::effects(&ablation3(), &runs(|x| x[0], None), 7, 400);
    for r in all.iter().filter(|r| r.response == "converged") {
        let (low, high) = (r.ci_low.unwrap(), r.ci_high.unwrap());
        assert!(low < 0.0 && 0.0 < high, "{}: [{low}, {high}]", r.term);
        assert!(r.effect.unwrap().abs() < 1e-15);
    }

    // A cell without runs: incomplete, effects null, said so.
    let rows = runs(|x| x[0], Some(0));
    let all = results::effects(&ablation3(), &rows, 7, 100);
    assert!(all
        .iter()
        .all(|r| !r.complete && r.effect.is_none() && r.ci_low.is_none()));
    assert!(results::reading(&all, |_| String::new()).contains("incomplete design"));
    assert!(results::paths(&ablation3(), &rows).is_empty());
}

#[test]
fn ablation_paths_follow_the_largest_step_with_ties_in_declared_order() {
    // log10 excess: whiten lowers it by 2, normalize_target by 1, clip only with both (by 1).
    let rows = runs(
        |x| {
            let on = |j: usize| f64::from(u8::from(x[j] > 0.0));
            -2.0 * on(0) - on(1) - on(0) * on(1) * on(2)
        },
        None,
    );
    let paths = results::paths(&ablation3(), &rows);
    let path = |direction: &str| -> Vec<(Option<String>, f64)> {
        paths
            .iter()
            .filter(|p| p.direction == direction)
            .map(|p| (p.factor.clone(), (p.value * 1e9).round() / 1e9))
            .collect()
    };
    let f = |s: &str| Some(s.to_string());
    assert_eq!(
        path("forward"),
        vec![
            (None, 0.0),
            (f("whiten"), -2.0),
            (f("normalize_target"), -3.0),
            (f("clip"), -4.0)
        ]
    );
    // Backward from all on (-4), the largest rise first: whiten off (to -1), then
    // normalize_target (to 0), then clip (0).
    assert_eq!(
        path("backward"),
        vec![
            (None, -4.0),
            (f("whiten"), -1.0),
            (f("normalize_target"), 0.0),
            (f("clip"), 0.0)
        ]
    );
    // Every run alike (excess exactly 1): ties all the way, taken in the declared order.
    let mut alike = runs(|_| 0.0, None);
    for r in &mut alike {
        r.excess_mse = 1.0;
    }
    let flat = results::paths(&ablation3(), &alike);
    let order: Vec<Option<String>> = flat
        .iter()
        .filter(|p| p.direction == "forward")
        .map(|p| p.factor.clone())
        .collect();
    assert_eq!(
        order,
        vec![None, f("whiten"), f("normalize_target"), f("clip")]
    );
}

/// A small real ablation of three fixes, balanced: 4 seeds in each of the 8 cells.
const SMALL: &str = r#"
name = "effects"
[data]
n_rows = 300
n_features = 6
signal_lags = 2
[train]
epochs = 10
batch_size = 16
learning_rate = 1e-2
[grid]
whiten = ["none", "zca"]
normalize_target = [false, true]
clip = [false, true]
seed = [0, 1, 2, 3]
[ablation]
factors = { whiten = "zca", normalize_target = true, clip = true }
"#;

#[test]
fn effects_equal_the_saturated_least_squares_model_and_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "effects.toml", SMALL);
    let (one, two, again) = (
        dir.path().join("one"),
        dir.path().join("two"),
        dir.path().join("again"),
    );
    run_ok(&config, &one, &["--quiet", "--jobs", "1"]);
    run_ok(&config, &two, &["--quiet", "--jobs", "2"]);
    run_ok(&config, &again, &["--quiet", "--jobs", "2"]);
    for table in ["effects.parquet", "paths.parquet"] {
        let bytes = std::fs::read(one.join(table)).unwrap();
        assert!(
            bytes == std::fs::read(two.join(table)).unwrap(),
            "{table}: --jobs 1 and 2"
        );
        assert!(
            bytes == std::fs::read(again.join(table)).unwrap(),
            "{table}: a rerun"
        );
    }
    // The saturated model on the runs: intercept and the 7 products of the +-1 coded factors.
    let runs = read(&one.join("runs.parquet"));
    let text = |name: &str| -> Vec<String> {
        let c = runs
            .column(name)
            .unwrap()
            .cast(&polars::prelude::DataType::String)
            .unwrap();
        c.str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or("").to_string())
            .collect()
    };
    let (whiten, normalize, clip, status) = (
        text("whiten"),
        text("normalize_target"),
        text("clip"),
        text("status"),
    );
    let excess: Vec<f64> = runs
        .column("excess_mse")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let n = runs.height();
    let mut x = Vec::with_capacity(n * 7);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let code = [
            whiten[i] == "zca",
            normalize[i] == "true",
            clip[i] == "true",
        ]
        .map(|on| if on { 1.0 } else { -1.0 });
        for t in 1..8usize {
            x.push(
                (0..3)
                    .filter(|j| t >> j & 1 == 1)
                    .map(|j| code[j])
                    .product::<f64>(),
            );
        }
        y.push(if status[i] == "diverged" {
            12.0
        } else {
            excess[i].max(1e-12).log10()
        });
    }
    let fit = sweep::reference::fit_rows(&x, &y, n, 7, true).unwrap();
    let scale = y.iter().fold(0f64, |m, v| m.max(v.abs()));
    let effects = read(&one.join("effects.parquet"));
    let (terms, responses) = {
        let t = effects.column("term").unwrap().str().unwrap().clone();
        let r = effects.column("response").unwrap().str().unwrap().clone();
        (t, r)
    };
    let values = effects.column("effect").unwrap().f64().unwrap().clone();
    let names = ["whiten", "normalize_target", "clip"];
    for t in 1..8usize {
        let mut term: Vec<&str> = (0..3)
            .filter(|j| t >> j & 1 == 1)
            .map(|j| names[j])
            .collect();
        term.sort_unstable();
        let term = term.join(":");
        let row = (0..effects.height())
            .find(|&i| {
                terms.get(i) == Some(term.as_str()) && responses.get(i) == Some("log10_excess_mse")
            })
            .unwrap();
        let effect = values.get(row).unwrap();
        let ols = 2.0 * fit.coefficients[t - 1];
        assert!(
            (effect - ols).abs() <= 1e-12 * scale,
            "{term}: {effect} vs 2 x {}",
            fit.coefficients[t - 1]
        );
    }
}
