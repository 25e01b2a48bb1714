//! The verdict of a real sweep recomputed from its runs, the cell summary, and the scenario checks.

use crate::common::{read, run_ok};
use crate::figures::SMALL;
use sweep::config::{TrainSettings, Whiten};
use sweep::results;

#[test]
fn scenario_checks() {
    use sweep::results::same_sign_and_magnitude;
    assert!(same_sign_and_magnitude(-21.1, -21.0));
    assert!(same_sign_and_magnitude(-2.5, -21.0));
    assert!(!same_sign_and_magnitude(-2.0, -21.0 * 1.1));
    assert!(!same_sign_and_magnitude(0.2, -3.0));
    assert!(same_sign_and_magnitude(0.05, 0.2));
    assert!(!same_sign_and_magnitude(0.01, 0.2));
}

/// The verdict of a small real sweep, recomputed independently from its `runs.parquet`: each
/// cell's converged fraction from the run statuses, then the label rule as the README states it.
#[test]
fn the_verdict_of_a_real_sweep_follows_from_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("verdict.toml");
    std::fs::write(
        &config,
        format!("{SMALL}converge_high = 0.75\nconverge_low = 0.25\n")
            .replace("seed = [0, 1]", "seed = [0, 1, 2, 3]"),
    )
    .unwrap();
    let out = dir.path().join("verdict");
    run_ok(&config, &out, &["--quiet"]);
    let runs = read(&out.join("runs.parquet"));
    let column = |name: &str| runs.column(name).unwrap().as_materialized_series().clone();
    let (whiten, clip, status) = (column("whiten"), column("clip"), column("status"));
    let fraction = |w: &str, c: bool| {
        let (mut converged, mut total) = (0, 0);
        for i in 0..runs.height() {
            let wi = whiten.str().unwrap().get(i).unwrap();
            let ci = clip.bool().unwrap().get(i).unwrap();
            if wi == w && ci == c {
                total += 1;
                converged += usize::from(status.str().unwrap().get(i).unwrap() == "converged");
            }
        }
        assert_eq!(total, 4);
        converged as f64 / total as f64
    };
    let rule = |on: f64, off: f64| {
        let p = results::fisher_exact((on * 4.0).round() as u64, 4, (off * 4.0).round() as u64, 4);
        if on >= 0.75 && off <= 0.25 && p < 0.5 {
            "necessary"
        } else if off >= 0.75 {
            "not_necessary"
        } else {
            "unclear"
        }
    };
    let all_on = fraction("zca", true);
    let expected = [
        ("whiten", rule(all_on, fraction("none", true))),
        ("clip", rule(all_on, fraction("zca", false))),
    ];
    let verdict = read(&out.join("verdict.parquet"));
    let factors = verdict
        .column("factor")
        .unwrap()
        .as_materialized_series()
        .clone();
    let labels = verdict
        .column("label")
        .unwrap()
        .as_materialized_series()
        .clone();
    assert_eq!(verdict.height(), 2);
    // How sure each label is, recomputed from the runs: counts, Fisher's p, the tolerance interval.
    let (final_mse, ols) = (column("final_train_mse"), column("ols_mse"));
    let threshold = |i: usize| {
        let st = status.str().unwrap().get(i).unwrap();
        (st != "diverged" && st != "failed").then(|| {
            final_mse.f64().unwrap().get(i).unwrap() / ols.f64().unwrap().get(i).unwrap() - 1.0
        })
    };
    let count_at = |w: &str, c: bool, t: f64| {
        (0..runs.height())
            .filter(|&i| {
                whiten.str().unwrap().get(i) == Some(w)
                    && clip.bool().unwrap().get(i) == Some(c)
                    && threshold(i).is_some_and(|x| x <= t)
            })
            .count() as u64
    };
    let value = |name: &str, row: usize| {
        verdict
            .column(name)
            .unwrap()
            .as_materialized_series()
            .clone()
            .f64()
            .unwrap()
            .get(row)
    };
    let int = |name: &str, row: usize| {
        verdict
            .column(name)
            .unwrap()
            .as_materialized_series()
            .clone()
            .i64()
            .unwrap()
            .get(row)
            .unwrap() as u64
    };
    for (row, (factor, off)) in [("whiten", ("none", true)), ("clip", ("zca", false))]
        .iter()
        .map(|(f, off)| {
            (
                (0..2)
                    .find(|&i| factors.str().unwrap().get(i) == Some(f))
                    .unwrap(),
                (f, off),
            )
        })
    {
        let label_at = |t: f64| {
            rule(
                count_at("zca", true, t) as f64 / 4.0,
                count_at(off.0, off.1, t) as f64 / 4.0,
            )
        };
        let (k_on, k_off) = (count_at("zca", true, 0.01), count_at(off.0, off.1, 0.01));
        assert_eq!(
            (int("all_on_converged", row), int("all_on_runs", row)),
            (k_on, 4),
            "{factor}"
        );
        assert_eq!(
            (int("one_off_converged", row), int("one_off_runs", row)),
            (k_off, 4),
            "{factor}"
        );
        let fisher = value("fisher_p", row).unwrap();
        assert!((fisher - results::fisher_exact(k_on, 4, k_off, 4)).abs() < 1e-15);
        let (lo, hi) = (
            value("all_on_ci_low", row).unwrap(),
            value("all_on_ci_high", row).unwrap(),
        );
        assert!(lo <= k_on as f64 / 4.0 && k_on as f64 / 4.0 <= hi);
        let label = labels.str().unwrap().get(row).unwrap();
        let (tol_low, tol_high) = (value("tol_low", row).unwrap(), value("tol_high", row));
        assert!(
            tol_low <= 0.01 && tol_high.is_none_or(|h| h > 0.01),
            "{factor}: [{tol_low}, {tol_high:?})"
        );
        assert_eq!(label_at(tol_low), label, "{factor} at tol_low");
        if tol_low > 0.0 {
            assert_ne!(
                label_at(tol_low * (1.0 - 1e-12)),
                label,
                "{factor} below tol_low"
            );
        }
        if let Some(h) = tol_high {
            assert_ne!(label_at(h), label, "{factor} at tol_high");
            assert_eq!(
                label_at(h * (1.0 - 1e-12)),
                label,
                "{factor} below tol_high"
            );
        }
    }
    for (factor, label) in expected {
        let row = (0..2)
            .find(|&i| factors.str().unwrap().get(i) == Some(factor))
            .unwrap_or_else(|| panic!("no verdict row for {factor}"));
        assert_eq!(
            labels.str().unwrap().get(row),
            Some(label),
            "{factor}: all-on {all_on}"
        );
    }
}

/// A run row made by hand (the figures the summary and the scenario checks read).
pub(crate) fn hand_run(
    whiten: Whiten,
    seed: u64,
    status: sweep::train::Status,
    r2: f64,
    best_r2: f64,
    epochs: Option<u32>,
    excess: f64,
) -> results::RunRow {
    results::RunRow {
        run_id: format!("{whiten}-{seed}"),
        run_index: seed as u32,
        scenario: None,
        settings: TrainSettings {
            whiten,
            seed,
            ..TrainSettings::default()
        },
        data_seed: Some(0),
        status,
        message: None,
        epochs_run: 500,
        epochs_to_converge: epochs,
        initial_train_mse: 1.0,
        final_train_mse: 1e-6 * (1.0 + excess),
        final_train_r2: r2,
        best_train_r2: best_r2,
        excess_mse: excess,
        weight_norm: 1.0,
        distance_to_ols: 0.1,
        ols_mse: 1e-6,
        ols_r2: 0.5,
        slow_share: None,
        slowest_signal_epochs: None,
        process: None,
        finals: Default::default(),
    }
}

/// `summarize` on a hand-made table: one cell of four seeds (two converged, one not, one
/// diverged, which R² and excess statistics leave out) and one cell of one seed.
#[test]
fn summarize_on_a_hand_made_table() {
    use sweep::train::Status::{Converged, Diverged, NotConverged};
    let rows = vec![
        hand_run(Whiten::None, 0, Converged, 0.5, 0.5, Some(10), 0.001),
        hand_run(Whiten::Zca, 0, NotConverged, 0.3, 0.3, None, 0.4),
        hand_run(Whiten::None, 1, NotConverged, 0.2, 0.25, None, 0.5),
        hand_run(Whiten::None, 2, Diverged, -1e9, 0.1, None, 1e9),
        hand_run(Whiten::None, 3, Converged, 0.4, 0.45, Some(20), 0.003),
    ];
    let cells = results::summarize(&rows);
    assert_eq!(cells.len(), 2, "cells in order of first appearance");
    let (a, b) = (&cells[0], &cells[1]);
    assert_eq!(a.settings.whiten, Whiten::None);
    assert_eq!(a.n_runs, 4);
    assert_eq!((a.converged_fraction, a.diverged_fraction), (0.5, 0.25));
    assert_eq!(a.r2_median, Some(0.4));
    assert!((a.r2_mean.unwrap() - 1.1 / 3.0).abs() < 1e-15);
    // Sample standard deviation of 0.5, 0.2, 0.4: sqrt(0.07 / 3).
    assert!((a.r2_std.unwrap() - (0.07f64 / 3.0).sqrt()).abs() < 1e-15);
    assert_eq!((a.r2_min, a.r2_max), (Some(0.2), Some(0.5)));
    assert_eq!(a.epochs_to_converge_median, Some(15.0));
    assert_eq!(a.excess_mse_median, Some(0.003));
    assert_eq!((b.n_runs, b.r2_median, b.r2_std), (1, Some(0.3), None));
    assert_eq!(b.epochs_to_converge_median, None);
}

/// The `at_most` and `never_converges` scenario checks on hand-made runs, each on both sides.
#[test]
fn at_most_and_never_converges_checks() {
    use sweep::config::{Check, Metric, Scenario};
    use sweep::train::Status::{Converged, NotConverged};
    let scenario = |check, metric, reported| Scenario {
        name: "s".into(),
        description: String::new(),
        set: toml::Table::new(),
        metric,
        check,
        reported,
    };
    let fast = [
        hand_run(Whiten::Zca, 0, Converged, 0.5, 0.5, Some(10), 0.001),
        hand_run(Whiten::Zca, 1, Converged, 0.5, 0.5, Some(20), 0.001),
    ];
    let fast: Vec<&results::RunRow> = fast.iter().collect();
    let at_most = |reported| {
        results::evaluate(
            &scenario(Check::AtMost, Metric::EpochsToConverge, reported),
            &fast,
        )
        .reproduced
    };
    assert!(
        at_most(30.0) && at_most(15.0) && !at_most(14.0),
        "median 15 epochs"
    );
    let slow = hand_run(Whiten::Zca, 2, NotConverged, 0.4, 0.4, None, 0.2);
    let mixed = vec![fast[0], &slow];
    assert!(
        !results::evaluate(
            &scenario(Check::AtMost, Metric::EpochsToConverge, 30.0),
            &mixed
        )
        .reproduced,
        "a seed that never converged"
    );
    // Never within 1% of the OLS loss: best R² below 1 - 1.01 x (1 - 0.5) = 0.495.
    let never = |best: f64| {
        let runs = [
            hand_run(Whiten::None, 0, NotConverged, 0.3, 0.3, None, 0.4),
            hand_run(Whiten::None, 1, NotConverged, 0.3, best, None, 0.4),
        ];
        let runs: Vec<&results::RunRow> = runs.iter().collect();
        results::evaluate(
            &scenario(Check::NeverConverges, Metric::FinalTrainR2, -21.0),
            &runs,
        )
        .reproduced
    };
    assert!(never(0.494) && !never(0.496));
}
