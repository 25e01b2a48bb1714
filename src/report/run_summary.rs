//! The text `sweep run` prints when it finishes: the OLS reference of each data set, the cell
//! table, the verdict and the scenarios, and the run counts with the wall time.

use std::path::Path;

use super::table::text;
use crate::config::{display_value, Sweep, TrainSettings};
use crate::results::{
    cell_settings, final_value, median, printed_verdict, scenarios_frame, Judging, RunRow,
    SummaryRow,
};
use crate::sweep::{context_keys, SweepResult};
use crate::train::Status;

/// The label of a cell: the values of the axes that vary, other than the seeds.
pub fn cell_label(sweep: &Sweep, settings: &TrainSettings) -> String {
    let parts: Vec<String> = sweep
        .grid
        .axes
        .iter()
        .filter(|a| a.key != "seed" && a.key != "data_seed")
        .map(|a| {
            format!(
                "{}={}",
                a.key,
                settings
                    .value_of(&a.key)
                    .map(|v| display_value(&v))
                    .unwrap_or_default()
            )
        })
        .collect();
    if parts.is_empty() {
        "(single cell)".into()
    } else {
        parts.join(" ")
    }
}

/// A verdict context's label: its values on the context keys (empty when there are none).
pub fn context_label(sweep: &Sweep, settings: &TrainSettings) -> String {
    context_keys(sweep)
        .iter()
        .filter_map(|k| {
            settings
                .value_of(k)
                .map(|v| format!("{k}={}", display_value(&v)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The short summary printed at the end of `sweep run`.
pub fn summary_text(sweep: &Sweep, result: &SweepResult, out: &Path) -> String {
    let tables = &result.tables;
    let mut s = reference_lines(result);
    s += &cell_table(sweep, &tables.summary, &tables.rows);
    if let Some(ablation) = &sweep.ablation {
        if let Ok(df) = printed_verdict(
            &tables.verdict,
            &context_keys(sweep),
            &crate::results::Judging::of(sweep),
        ) {
            let level = match ablation.seeds {
                Some(seeds) => format!(
                    "{:.4} (alpha {} over {} planned batches of seeds)",
                    ablation.test_alpha(),
                    ablation.alpha,
                    seeds.batches()
                ),
                None => ablation.alpha.to_string(),
            };
            s += &format!(
                "\nverdict (necessary: all-on converges in >= {} of seeds, one-off in <= {}, and Fisher p < {level}; \
                 fragile: the label changes within a factor 3 of converge_tol):\n{}",
                ablation.converge_high,
                ablation.converge_low,
                text(&df)
            );
        }
        if !tables.effects.is_empty() {
            s += &format!(
                "\neffects on log10 excess MSE (effect [95% bootstrap interval]; negative: the fix lowers the excess; \
                 effects.parquet has every response and term):\n{}",
                crate::results::reading(&tables.effects, |c| context_label(sweep, c))
            );
        }
    }
    if !tables.scenarios.is_empty() {
        if let Ok(df) = scenarios_frame(&tables.scenarios) {
            s += &format!(
                "\nscenarios:\n{}",
                text(&df.drop("description").unwrap_or(df.clone()))
            );
        }
    }
    let count = |st: Status| tables.rows.iter().filter(|r| r.status == st).count();
    let written = tables.written(sweep);
    s += &format!(
        "\n{} runs{}: {} converged, {} not converged, {} diverged, {} failed{}; wall time {:.1} s\nwrote {}/{{{}}}.parquet\n",
        tables.rows.len(),
        if result.resumed > 0 { format!(" ({} resumed from an earlier run)", result.resumed) } else { String::new() },
        count(Status::Converged),
        count(Status::NotConverged),
        count(Status::Diverged),
        count(Status::Failed),
        ended_by_process(count(Status::Timeout), count(Status::Killed)),
        result.wall.as_secs_f64(),
        out.display(),
        written.join(",")
    );
    s
}

/// `, N timed out, M killed` where a command sweep had such runs.
pub fn ended_by_process(timeout: usize, killed: usize) -> String {
    let mut s = String::new();
    if timeout > 0 {
        s += &format!(", {timeout} timed out");
    }
    if killed > 0 {
        s += &format!(", {killed} killed");
    }
    s
}

/// One line per data set: its OLS reference.
fn reference_lines(result: &SweepResult) -> String {
    let mut s = String::new();
    for (seed, (data, r)) in &result.prepared.datasets {
        let tag = seed.map_or(String::new(), |s| format!(" (data_seed {s})"));
        s += &format!(
            "OLS reference{tag}: {} rows x {} features, MSE {:.4e}, R² {:.4}, rank {} of {} (intercept included), condition number {:.3e}, |w| {:.4}\n",
            data.n,
            data.d,
            r.fit.mse,
            r.fit.r2,
            r.fit.rank,
            data.d + 1,
            r.fit.condition_number,
            r.weight_norm
        );
    }
    s
}

/// The cell table: label, runs, converged and diverged fractions, median R².
fn cell_table(sweep: &Sweep, summary: &[SummaryRow], rows: &[RunRow]) -> String {
    let only_seeds = sweep
        .grid
        .axes
        .iter()
        .all(|a| a.key == "seed" || a.key == "data_seed");
    let realizations = sweep.grid.axes.iter().any(|a| a.key == "data_seed");
    let labels: Vec<String> = summary
        .iter()
        .map(|c| {
            let label = match (&c.scenario, only_seeds) {
                (Some(name), true) => name.clone(),
                (Some(name), false) => format!("{name}: {}", cell_label(sweep, &c.settings)),
                (None, _) => cell_label(sweep, &c.settings),
            };
            match c.data_seed.filter(|_| realizations) {
                Some(seed) if label == "(single cell)" => format!("data_seed={seed}"),
                Some(seed) => format!("{label} data_seed={seed}"),
                None => label,
            }
        })
        .collect();
    let width = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    // A sweep judged by a bound shows its metric's median (over the runs that came to an end)
    // instead of R²; a command sweep also its incomplete runs.
    let metric = match Judging::of(sweep) {
        Judging::Bound { metric, .. } => Some(metric),
        Judging::Reference => None,
    };
    let figure = |cell: &SummaryRow| -> Option<f64> {
        match &metric {
            Some(metric) => judged_median(cell, rows, metric),
            None => cell.r2_median,
        }
    };
    let heading = metric
        .as_ref()
        .map_or("median R²".to_string(), |m| format!("median {m}"));
    let command = summary.iter().any(|c| c.incomplete_runs.is_some());
    let mut s = format!(
        "\n{:<width$}  {:>5}  {:>9}  {:>8}  {:>10}{}\n",
        "cell",
        "runs",
        "converged",
        "diverged",
        heading,
        if command { "  incomplete" } else { "" }
    );
    for (label, cell) in labels.iter().zip(summary) {
        let value = figure(cell).map_or("-".to_string(), |v| format!("{v:.4}"));
        let incomplete = cell
            .incomplete_runs
            .map_or(String::new(), |n| format!("  {n:>10}"));
        s += &format!(
            "{label:<width$}  {:>5}  {:>9.2}  {:>8.2}  {:>10}{incomplete}\n",
            cell.n_runs, cell.converged_fraction, cell.diverged_fraction, value
        );
    }
    s
}

/// The median final value of `metric` over a cell's runs that came to an end.
pub fn judged_median(cell: &SummaryRow, rows: &[RunRow], metric: &str) -> Option<f64> {
    let values: Vec<f64> = rows
        .iter()
        .filter(|r| {
            r.scenario == cell.scenario
                && r.data_seed == cell.data_seed
                && cell_settings(&r.settings) == cell.settings
                && !r.status.ended_early()
        })
        .filter_map(|r| final_value(r, metric))
        .collect();
    median(&values)
}
