//! Which fixes matter and how they interact, exactly: an ablation grid is a full 2^k factorial
//! design with replicated seeds, so every factorial effect follows from the cell means by contrast
//! sums. For each context (per data realization, and pooled when there are several), each
//! response and each non-empty set of factors (a main effect, a two-way interaction, ...), the
//! effect is the mean response of the cells where the term's +-1 contrast is +1 minus the mean
//! where it is -1 ("on" is +1; twice the coefficient of the saturated +-1 coded model); its
//! variance share is effect^2 over the sum of all effects^2 (the functional-ANOVA decomposition,
//! exact on a full factorial). A 95% percentile interval comes from a seeded bootstrap that
//! resamples seeds jointly across the cells of a context (they share each seed's init and
//! minibatch order). A context whose 2^k sub-design misses a cell is marked incomplete, its effects
//! null.
//!
//! Responses: `log10_excess_mse` (excess floored at 1e-12; a diverged or failed run counts as
//! 1e12, i.e. 12), `final_train_r2` (floored at -1000; diverged or failed runs at -1000),
//! `converged` (Jeffreys-smoothed cell fractions `(k + 1/2) / (n + 1)`; in the bootstrap each
//! resampled cell's fraction is drawn from its Jeffreys posterior `Beta(k + 1/2, n - k + 1/2)`, so a
//! cell converging in 0 of 5 or 5 of 5 seeds does not give a zero-width interval) and
//! `epochs_to_converge` (censored at `epochs` for runs that never converge). A command sweep judged
//! by a bound on its metric has `shortfall` instead of the first two: how far the final metric
//! falls short of X, in its units (negative when met; lower is better); a run that stopped early
//! has none, so a design with one has no `shortfall` effects.

use polars::prelude::*;
use rand::RngExt;

use super::judging::Judging;
use super::rows::{cell_settings, RunRow};
use super::schema::{col, frame, int, settings_columns};
use crate::config::{Ablation, TrainSettings};
use crate::error::Result;
use crate::train::Status;

/// The responses, in table order.
pub const RESPONSES: [&str; 4] = [
    "log10_excess_mse",
    "final_train_r2",
    "converged",
    "epochs_to_converge",
];
/// The responses of a sweep judged by a bound on a metric, in table order.
pub const BOUND_RESPONSES: [&str; 3] = ["shortfall", "converged", "epochs_to_converge"];

/// The responses of a design's judging.
pub fn responses(judging: &Judging) -> &'static [&'static str] {
    match judging {
        Judging::Reference => &RESPONSES,
        Judging::Bound { .. } => &BOUND_RESPONSES,
    }
}

/// Excess MSE below this counts as this (runs started at OLS end a hair below its loss).
pub const EXCESS_FLOOR: f64 = 1e-12;
/// `log10_excess_mse` of a diverged or failed run.
pub const DIVERGED_LOG_EXCESS: f64 = 12.0;
/// `final_train_r2` floor, and the value of a diverged or failed run.
pub const R2_FLOOR: f64 = -1000.0;
/// Bootstrap resamples per context.
pub const BOOTSTRAP_SAMPLES: usize = 2000;

/// One row of `effects.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectRow {
    /// The all-on cell's settings (seed 0): the context is its values on the context keys.
    pub context: TrainSettings,
    pub pooled: bool,
    pub data_seed: Option<u64>,
    /// Every cell of the 2^k sub-design has runs.
    pub complete: bool,
    pub response: &'static str,
    /// The factors of the term, alphabetical, joined by `:`.
    pub term: String,
    pub effect: Option<f64>,
    pub variance_share: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

/// A context of the factorial: its all-on settings, realization, and the runs of each of its
/// 2^k cells (cell `m` has factor `j` on when bit `j` of `m` is set; factors in declared order).
pub struct Design<'r> {
    pub context: TrainSettings,
    pub pooled: bool,
    pub data_seed: Option<u64>,
    pub cells: Vec<Vec<&'r RunRow>>,
    /// How the runs are judged: it decides the responses.
    pub judging: Judging,
}

impl Design<'_> {
    pub fn complete(&self) -> bool {
        self.cells.iter().all(|c| !c.is_empty())
    }
}

/// The designs of the grid of a sweep judged against the reference.
pub fn designs<'r>(ablation: &Ablation, runs: &'r [RunRow]) -> Vec<Design<'r>> {
    judged_designs(ablation, runs, &Judging::Reference)
}

/// The designs of the grid: per context and realization, then (with several realizations) pooled.
pub fn judged_designs<'r>(
    ablation: &Ablation,
    runs: &'r [RunRow],
    judging: &Judging,
) -> Vec<Design<'r>> {
    let k = ablation.factors.len();
    let on_of = |s: &TrainSettings| {
        ablation
            .factors
            .iter()
            .fold(cell_settings(s), |acc, f| acc.with_value(&f.key, &f.on))
    };
    let grid: Vec<&RunRow> = runs.iter().filter(|r| r.scenario.is_none()).collect();
    let mut keys: Vec<(TrainSettings, Option<u64>)> = Vec::new();
    for r in &grid {
        let key = (on_of(&r.settings), r.data_seed);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut realizations: Vec<Option<u64>> = keys.iter().map(|k| k.1).collect();
    realizations.sort_unstable();
    realizations.dedup();
    let mut out: Vec<Design> = Vec::new();
    let mut contexts: Vec<TrainSettings> = Vec::new();
    for (context, data_seed) in &keys {
        if !contexts.contains(context) {
            contexts.push(context.clone());
        }
        out.push(design(
            ablation,
            &grid,
            context,
            Some(*data_seed),
            k,
            judging,
        ));
    }
    if realizations.len() > 1 {
        for context in &contexts {
            out.push(design(ablation, &grid, context, None, k, judging));
        }
    }
    out
}

/// The design of one context, on one realization (`Some`) or pooled (`None`).
fn design<'r>(
    ablation: &Ablation,
    grid: &[&'r RunRow],
    context: &TrainSettings,
    realization: Option<Option<u64>>,
    k: usize,
    judging: &Judging,
) -> Design<'r> {
    let cells = (0..1usize << k)
        .map(|m| {
            let settings = ablation
                .factors
                .iter()
                .enumerate()
                .fold(context.clone(), |acc, (j, f)| {
                    acc.with_value(&f.key, if m >> j & 1 == 1 { &f.on } else { &f.off })
                });
            // A command sweep's incomplete runs are no evidence (see `RunRow::incomplete`).
            grid.iter()
                .filter(|r| {
                    realization.is_none_or(|d| r.data_seed == d)
                        && cell_settings(&r.settings) == settings
                        && !r.incomplete()
                })
                .copied()
                .collect()
        })
        .collect();
    Design {
        context: context.clone(),
        pooled: realization.is_none(),
        data_seed: realization.flatten(),
        cells,
        judging: judging.clone(),
    }
}

/// One run's value of a response (`converged` as 0 or 1; the cell mean smooths it).
pub fn response(name: &str, run: &RunRow, judging: &Judging) -> f64 {
    let failed = run.status.ended_early();
    match name {
        "shortfall" => judging.margin(run).map_or(f64::NAN, |m| -m),
        "log10_excess_mse" if failed => DIVERGED_LOG_EXCESS,
        "log10_excess_mse" => run.excess_mse.max(EXCESS_FLOOR).log10(),
        "final_train_r2" if failed || !run.final_train_r2.is_finite() => R2_FLOOR,
        "final_train_r2" => run.final_train_r2.max(R2_FLOOR),
        "converged" => f64::from(u8::from(run.status == Status::Converged)),
        "epochs_to_converge" => f64::from(run.epochs_to_converge.unwrap_or(run.settings.epochs)),
        other => unreachable!("unknown response {other}"),
    }
}

/// The cell mean of a response over `runs` (Jeffreys-smoothed for `converged`).
pub(super) fn cell_mean(name: &str, runs: &[&RunRow], judging: &Judging) -> f64 {
    let n = runs.len() as f64;
    let sum: f64 = runs.iter().map(|r| response(name, r, judging)).sum();
    if name == "converged" {
        (sum + 0.5) / (n + 1.0)
    } else {
        sum / n
    }
}

/// Every factorial effect of 2^k cell means, by term bitmask 1..2^k: the mean where the term's
/// contrast is +1 minus the mean where it is -1.
pub fn factorial_effects(means: &[f64]) -> Vec<f64> {
    let cells = means.len();
    (1..cells)
        .map(|t| {
            let signed: f64 = means
                .iter()
                .enumerate()
                .map(|(m, v)| {
                    if (m & t).count_ones() % 2 == t.count_ones() % 2 {
                        *v
                    } else {
                        -v
                    }
                })
                .sum();
            signed / (cells / 2) as f64
        })
        .collect()
}

/// The factors of term bitmask `t`, alphabetical, joined by `:`.
pub fn term_name(ablation: &Ablation, t: usize) -> String {
    let mut names: Vec<&str> = ablation
        .factors
        .iter()
        .enumerate()
        .filter(|(j, _)| t >> j & 1 == 1)
        .map(|(_, f)| f.key.as_str())
        .collect();
    names.sort_unstable();
    names.join(":")
}

/// The 2.5% and 97.5% percentiles (linear between order statistics) of `values`.
fn percentile_interval(values: &mut [f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let pos = q * (values.len() - 1) as f64;
        let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
        let hi = (lo + 1).min(values.len() - 1);
        values[lo] + frac * (values[hi] - values[lo])
    };
    Some((at(0.025), at(0.975)))
}

/// `effects.parquet`'s rows: every design, response and term.
pub fn effects(
    ablation: &Ablation,
    runs: &[RunRow],
    sweep_seed: u64,
    samples: usize,
) -> Vec<EffectRow> {
    effects_of(ablation, &designs(ablation, runs), sweep_seed, samples)
}

/// [`effects`] of designs already grouped (by [`designs`], whose order numbers the bootstrap
/// streams).
pub fn effects_of(
    ablation: &Ablation,
    designs: &[Design],
    sweep_seed: u64,
    samples: usize,
) -> Vec<EffectRow> {
    let k = ablation.factors.len();
    let mut rows = Vec::new();
    for (index, d) in designs.iter().enumerate() {
        let complete = d.complete();
        let intervals = if complete {
            bootstrap(d, sweep_seed, index as u64, samples)
        } else {
            Vec::new()
        };
        for (r, name) in responses(&d.judging).iter().enumerate() {
            let effects = complete
                .then(|| {
                    let means: Vec<f64> = d
                        .cells
                        .iter()
                        .map(|c| cell_mean(name, c, &d.judging))
                        .collect();
                    factorial_effects(&means)
                })
                // A design with a run that has no value of the response (`shortfall` of a run that
                // stopped early) has no effects on it.
                .filter(|e| e.iter().all(|v| !v.is_nan()));
            let total: Option<f64> = effects.as_ref().map(|e| e.iter().map(|v| v * v).sum());
            for t in 1..1usize << k {
                let effect = effects.as_ref().map(|e| e[t - 1]);
                let interval = intervals.get(r).and_then(|per_term| per_term[t - 1]);
                rows.push(EffectRow {
                    context: d.context.clone(),
                    pooled: d.pooled,
                    data_seed: d.data_seed,
                    complete,
                    response: name,
                    term: term_name(ablation, t),
                    effect,
                    variance_share: effect
                        .zip(total)
                        .and_then(|(e, s)| (s > 0.0).then(|| e * e / s)),
                    ci_low: interval.map(|i| i.0),
                    ci_high: interval.map(|i| i.1),
                });
            }
        }
    }
    rows
}

/// Percentile intervals per response and term: seeds resampled with replacement, jointly across
/// the cells (a cell takes its runs of every drawn seed); ChaCha stream of the sweep seed, the
/// design's index and the purpose "bootstrap".
fn bootstrap(
    d: &Design,
    sweep_seed: u64,
    index: u64,
    samples: usize,
) -> Vec<Vec<Option<(f64, f64)>>> {
    let mut seeds: Vec<u64> = d.cells.iter().flatten().map(|r| r.settings.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let terms = d.cells.len() - 1;
    let mut rng = crate::rng::stream(sweep_seed, index, "bootstrap");
    let mut draws: Vec<Vec<Vec<f64>>> =
        vec![vec![Vec::with_capacity(samples); terms]; responses(&d.judging).len()];
    let mut picked: Vec<u64> = Vec::with_capacity(seeds.len());
    for _ in 0..samples {
        picked.clear();
        for _ in 0..seeds.len() {
            picked.push(seeds[rng.random_range(0..seeds.len())]);
        }
        let resampled: Vec<Vec<&RunRow>> = d
            .cells
            .iter()
            .map(|cell| {
                picked
                    .iter()
                    .flat_map(|s| cell.iter().filter(move |r| r.settings.seed == *s))
                    .copied()
                    .collect()
            })
            .collect();
        // A cell with no run of any drawn seed leaves this resample out.
        if resampled.iter().any(Vec::is_empty) {
            continue;
        }
        for (r, name) in responses(&d.judging).iter().enumerate() {
            let means: Vec<f64> = if *name == "converged" {
                // A cell converging in 0 or all of its seeds does so in every resample: its
                // fraction is drawn from its Jeffreys posterior Beta(k + 1/2, n - k + 1/2) instead.
                resampled
                    .iter()
                    .map(|c| {
                        let n = c.len() as f64;
                        let k: f64 = c.iter().map(|run| response(name, run, &d.judging)).sum();
                        let beta =
                            rand_distr::Beta::new(k + 0.5, n - k + 0.5).expect("positive shapes");
                        rand_distr::Distribution::sample(&beta, &mut rng)
                    })
                    .collect()
            } else {
                resampled
                    .iter()
                    .map(|c| cell_mean(name, c, &d.judging))
                    .collect()
            };
            for (t, e) in factorial_effects(&means).into_iter().enumerate() {
                draws[r][t].push(e);
            }
        }
    }
    draws
        .into_iter()
        .map(|per_term| {
            per_term
                .into_iter()
                .map(|mut v| percentile_interval(&mut v))
                .collect()
        })
        .collect()
}

/// `effects.parquet` as a frame: the context columns (`context_keys`), then the effects.
pub fn effects_frame(rows: &[EffectRow], context_keys: &[&str]) -> Result<DataFrame> {
    let contexts: Vec<&TrainSettings> = rows.iter().map(|r| &r.context).collect();
    let mut columns = settings_columns(&contexts, |k| context_keys.contains(&k));
    columns.extend([
        col("pooled", rows, |r| r.pooled),
        col("data_seed", rows, |r| r.data_seed.map(int)),
        col("complete", rows, |r| r.complete),
        col("response", rows, |r| r.response),
        col("term", rows, |r| r.term.clone()),
        col("effect", rows, |r| r.effect),
        col("variance_share", rows, |r| r.variance_share),
        col("ci_low", rows, |r| r.ci_low),
        col("ci_high", rows, |r| r.ci_high),
    ]);
    frame(columns)
}

/// The plain-words reading of the effects on `log10_excess_mse` (`shortfall` in a sweep judged by
/// a bound; lower is better either way, "on" = +1), per
/// context (the pooled designs when there are several realizations): the factors whose effect's
/// interval excludes zero, and for each pair whether it is synergistic (negative two-way effect
/// whose interval excludes zero: better together than the sum of its parts), redundant (positive:
/// either suffices) or additive. A zero-width interval never counts as excluding zero.
pub fn reading(rows: &[EffectRow], context_label: impl Fn(&TrainSettings) -> String) -> String {
    let any_pooled = rows.iter().any(|r| r.pooled);
    let shown: Vec<&EffectRow> = rows
        .iter()
        .filter(|r| {
            r.pooled == any_pooled && matches!(r.response, "log10_excess_mse" | "shortfall")
        })
        .collect();
    let mut contexts: Vec<(&TrainSettings, Option<u64>)> = Vec::new();
    for r in &shown {
        if !contexts.contains(&(&r.context, r.data_seed)) {
            contexts.push((&r.context, r.data_seed));
        }
    }
    let excludes_zero = |r: &EffectRow| matches!((r.ci_low, r.ci_high), (Some(l), Some(h)) if l < h && (l > 0.0 || h < 0.0));
    let mut text = String::new();
    for (context, data_seed) in contexts {
        let mut label = context_label(context);
        if let Some(s) = data_seed {
            label = format!("{label} data_seed={s}").trim().to_string();
        }
        if label.is_empty() {
            label = "all runs".into();
        }
        let of: Vec<&&EffectRow> = shown
            .iter()
            .filter(|r| r.context == *context && r.data_seed == data_seed)
            .collect();
        if of.first().is_some_and(|r| !r.complete) {
            text +=
                &format!("{label}: incomplete design (a cell of the 2^k factorial has no runs)\n");
            continue;
        }
        let fmt = |r: &EffectRow| {
            format!(
                "{} {:+.2} [{:+.2}, {:+.2}]",
                r.term,
                r.effect.unwrap_or(f64::NAN),
                r.ci_low.unwrap_or(f64::NAN),
                r.ci_high.unwrap_or(f64::NAN)
            )
        };
        let mains: Vec<String> = of
            .iter()
            .filter(|r| !r.term.contains(':') && excludes_zero(r))
            .map(|r| fmt(r))
            .collect();
        let pairs: Vec<String> = of
            .iter()
            .filter(|r| r.term.matches(':').count() == 1)
            .map(|r| {
                let kind = match (excludes_zero(r), r.ci_high.is_some_and(|h| h < 0.0)) {
                    (true, true) => "synergistic",
                    (true, false) => "redundant",
                    (false, _) => "additive",
                };
                format!("{} {kind}", r.term)
            })
            .collect();
        text += &format!(
            "{label}: effects excluding zero: {}; pairs: {}\n",
            if mains.is_empty() {
                "none".to_string()
            } else {
                mains.join(", ")
            },
            if pairs.is_empty() {
                "-".to_string()
            } else {
                pairs.join(", ")
            }
        );
    }
    text
}
