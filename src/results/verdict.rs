//! The ablation verdict: for every context (a combination of the varying settings that are
//! neither fixes nor seeds) and every declared fix, compare the all-on cell with the cell that
//! has only that fix off, and label the fix `necessary`, `not_necessary` or `unclear` from the
//! converged fractions across seeds. The labels come from summary rows only, so they can be
//! tested on hand-made tables; how sure each label is comes from the runs: the converged counts,
//! the exact Fisher and (seed-paired) McNemar p-values, Clopper-Pearson 95% intervals, the
//! margins in excess MSE, and the interval of `converge_tol` over which the label stays the same.
//!
//! When the grid varies the data realization (`data_seed`), every context gets one row per
//! realization (its seeds only) and one pooled row whose counts sum over the realizations, with
//! whether the realizations' labels agree.

use super::judging::Judging;
use super::rows::{cell_settings, median, summarize_pooled, RunRow, SummaryRow};
use super::stats::{clopper_pearson, fisher_exact, mcnemar_exact};
use crate::config::{Ablation, TrainSettings};
use crate::enums::named_enum;

named_enum! {
    /// The label of one fix in one context.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Label {
        /// All-on converges in at least `converge_high` of seeds, the one-off cell in at most
        /// `converge_low`, and Fisher's exact p of the two is below `alpha`.
        Necessary => "necessary",
        /// The one-off cell converges in at least `converge_high` of seeds.
        NotNecessary => "not_necessary",
        Unclear => "unclear",
    }
}

/// The figures of one cell that the verdict compares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellFigures {
    pub converged_fraction: f64,
    pub r2_median: Option<f64>,
    pub epochs_to_converge_median: Option<f64>,
}

impl From<&SummaryRow> for CellFigures {
    fn from(r: &SummaryRow) -> Self {
        CellFigures {
            converged_fraction: r.converged_fraction,
            r2_median: r.r2_median,
            epochs_to_converge_median: r.epochs_to_converge_median,
        }
    }
}

/// What the runs of one cell say at its tolerance.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CellCounts {
    /// Runs converged at the knob (see [`Judging`]), and the runs that are evidence: all of
    /// them, but a command sweep's failed, timed-out and killed runs.
    pub converged: u64,
    pub runs: u64,
    /// A command sweep's failed, timed-out and killed runs, which count in no fraction.
    pub incomplete: u64,
    /// Clopper-Pearson 95% interval of the converged fraction.
    pub ci: (f64, f64),
    /// The margins ([`Judging::margin`]: `excess_mse` against the reference) over the runs
    /// that did not stop early.
    pub margin_median: Option<f64>,
    pub margin_min: Option<f64>,
    pub margin_max: Option<f64>,
}

/// How sure a verdict row is.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Certainty {
    pub all_on: CellCounts,
    pub one_off: Option<CellCounts>,
    /// Two-sided Fisher exact test of the two converged counts (seeds as independent draws).
    pub fisher_p: Option<f64>,
    /// Exact McNemar test of the outcomes paired by seed (and data set).
    pub mcnemar_p: Option<f64>,
    /// The label is the same for every knob value in `[tol_low, tol_high)` (see [`Judging`]:
    /// `converge_tol`, or the bound X, or -X for `at_least`); `tol_high` is `None` when
    /// unbounded, `tol_low` may be minus infinity with a bound.
    pub tol_low: f64,
    pub tol_high: Option<f64>,
    /// The interval does not reach a factor 3 on either side of the chosen tolerance.
    pub fragile: bool,
}

/// One row of `verdict.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct VerdictRow {
    /// The all-on cell's settings; the context is its values on the context keys.
    pub context: TrainSettings,
    /// The runs' data realization (`None` on pooled rows and for file data).
    pub data_seed: Option<u64>,
    /// The counts sum over every data realization of the context.
    pub pooled: bool,
    /// On pooled rows: whether every realization's own row has the same label.
    pub realizations_agree: Option<bool>,
    pub factor: String,
    pub label: Label,
    pub all_on: CellFigures,
    /// `None` when the grid has no one-off cell for this context (excluded).
    pub one_off: Option<CellFigures>,
    /// All-on converges in at least `converge_high` of seeds.
    pub all_on_sufficient: bool,
    pub certainty: Certainty,
    /// In a command sweep, the runs of both cells that failed, timed out or were killed (the
    /// row is `unclear` while there are any); `None` in built-in sweeps.
    pub incomplete_runs: Option<u64>,
}

/// Labels one fix from the two converged fractions and Fisher's p of their counts.
pub fn label(all_on: f64, one_off: Option<f64>, fisher_p: Option<f64>, a: &Ablation) -> Label {
    let (high, low) = (a.converge_high, a.converge_low);
    match one_off {
        Some(off)
            if all_on >= high && off <= low && fisher_p.is_some_and(|p| p < a.test_alpha()) =>
        {
            Label::Necessary
        }
        Some(off) if off >= high => Label::NotNecessary,
        _ => Label::Unclear,
    }
}

/// The verdict rows: contexts in order of first appearance, factors in declared order, and for
/// each the rows of the data realizations in order, then (with two or more) the pooled row.
pub fn verdict(
    ablation: &Ablation,
    summary: &[SummaryRow],
    runs: &[RunRow],
    judging: &Judging,
) -> Vec<VerdictRow> {
    let mut rows = verdict_rows(ablation, summary, runs, false, judging);
    let mut realizations: Vec<Option<u64>> = summary
        .iter()
        .filter(|c| c.scenario.is_none())
        .map(|c| c.data_seed)
        .collect();
    realizations.sort_unstable();
    realizations.dedup();
    if realizations.len() > 1 {
        let mut pooled = verdict_rows(ablation, &summarize_pooled(runs), runs, true, judging);
        for row in &mut pooled {
            let mut labels = rows
                .iter()
                .filter(|r| r.context == row.context && r.factor == row.factor)
                .map(|r| r.label);
            let first = labels.next();
            row.realizations_agree = Some(labels.all(|l| Some(l) == first));
        }
        rows.extend(pooled);
    }
    let context_rank = |row: &VerdictRow| rows.iter().position(|r| r.context == row.context);
    let factor_rank = |row: &VerdictRow| ablation.factors.iter().position(|f| f.key == row.factor);
    let mut keyed: Vec<_> = rows
        .iter()
        .map(|r| (context_rank(r), factor_rank(r), r.pooled))
        .zip(rows.iter().cloned())
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, row)| row).collect()
}

/// The verdict rows of the cells of `summary` (per realization, or pooled).
fn verdict_rows(
    ablation: &Ablation,
    summary: &[SummaryRow],
    runs: &[RunRow],
    pooled: bool,
    judging: &Judging,
) -> Vec<VerdictRow> {
    let cell_runs = |c: &SummaryRow| runs_of_cell(runs, &c.settings, c.data_seed, pooled);
    let command_sweep = runs.iter().any(|r| r.process.is_some());
    let is_all_on = |s: &TrainSettings| {
        ablation
            .factors
            .iter()
            .all(|f| s.value_of(&f.key).as_ref() == Some(&f.on))
    };
    let mut rows = Vec::new();
    for on_cell in summary
        .iter()
        .filter(|c| c.scenario.is_none() && is_all_on(&c.settings))
    {
        for factor in &ablation.factors {
            let off_settings = on_cell.settings.with_value(&factor.key, &factor.off);
            let off_cell = summary.iter().find(|c| {
                c.scenario.is_none()
                    && c.settings == off_settings
                    && c.data_seed == on_cell.data_seed
            });
            let off = off_cell.map(CellFigures::from);
            let certainty = certainty(
                ablation,
                &cell_runs(on_cell),
                off_cell.map(cell_runs).as_deref(),
                judging.knob(on_cell.settings.converge_tol),
                judging,
            );
            // A cell with runs that did not come to an end cannot decide the label.
            let incomplete =
                certainty.all_on.incomplete + certainty.one_off.map_or(0, |o| o.incomplete);
            rows.push(VerdictRow {
                context: on_cell.settings.clone(),
                data_seed: on_cell.data_seed,
                pooled,
                realizations_agree: None,
                factor: factor.key.clone(),
                label: if incomplete > 0 {
                    Label::Unclear
                } else {
                    label(
                        on_cell.converged_fraction,
                        off.map(|o| o.converged_fraction),
                        certainty.fisher_p,
                        ablation,
                    )
                },
                all_on: CellFigures::from(on_cell),
                one_off: off,
                all_on_sufficient: on_cell.converged_fraction >= ablation.converge_high,
                certainty,
                incomplete_runs: command_sweep.then_some(incomplete),
            });
        }
    }
    rows
}

/// Runs converged at knob `t`.
fn converged_at(runs: &[&RunRow], t: f64, judging: &Judging) -> u64 {
    runs.iter()
        .filter(|r| judging.threshold(r).is_some_and(|x| x <= t))
        .count() as u64
}

/// The runs that are evidence: all but a command sweep's incomplete ones.
fn evidence<'r>(runs: &[&'r RunRow]) -> Vec<&'r RunRow> {
    runs.iter().copied().filter(|r| !r.incomplete()).collect()
}

fn counts(all: &[&RunRow], knob: f64, judging: &Judging) -> CellCounts {
    let runs = evidence(all);
    let n = runs.len() as u64;
    let k = converged_at(&runs, knob, judging);
    let margins: Vec<f64> = runs.iter().filter_map(|r| judging.margin(r)).collect();
    CellCounts {
        converged: k,
        runs: n,
        incomplete: (all.len() - runs.len()) as u64,
        ci: if n > 0 {
            clopper_pearson(k, n, 0.05)
        } else {
            (0.0, 1.0)
        },
        margin_median: median(&margins),
        margin_min: margins.iter().copied().reduce(f64::min),
        margin_max: margins.iter().copied().reduce(f64::max),
    }
}

/// The runs of the grid cell with these settings on data realization `data_seed`, or on every
/// realization when `pooled` (scenario runs are not in the grid's cells).
fn runs_of_cell<'r>(
    runs: &'r [RunRow],
    settings: &TrainSettings,
    data_seed: Option<u64>,
    pooled: bool,
) -> Vec<&'r RunRow> {
    runs.iter()
        .filter(|r| {
            r.scenario.is_none()
                && (pooled || r.data_seed == data_seed)
                && cell_settings(&r.settings) == *settings
        })
        .collect()
}

/// The label the rule gives at tolerance `t` to the all-on runs `on` and one-off runs `off`
/// (both already the cells' evidence, see [`evidence`]).
fn label_at_tolerance(
    ablation: &Ablation,
    on: &[&RunRow],
    off: Option<&[&RunRow]>,
    t: f64,
    judging: &Judging,
) -> Label {
    let fraction =
        |runs: &[&RunRow]| converged_at(runs, t, judging) as f64 / runs.len().max(1) as f64;
    let p = off
        .filter(|off| !on.is_empty() && !off.is_empty())
        .map(|off| {
            let (n_on, n_off) = (on.len() as u64, off.len() as u64);
            let converged = |runs: &[&RunRow]| converged_at(runs, t, judging);
            fisher_exact(converged(on), n_on, converged(off), n_off)
        });
    label(fraction(on), off.map(fraction), p, ablation)
}

/// The label of every verdict row (in the order of [`verdict`]) at each tolerance of `tols`.
pub fn labels_along_tolerance(
    ablation: &Ablation,
    rows: &[VerdictRow],
    runs: &[RunRow],
    tols: &[f64],
    judging: &Judging,
) -> Vec<Vec<Label>> {
    let cell_runs = |row: &VerdictRow, settings: &TrainSettings| {
        runs_of_cell(runs, settings, row.data_seed, row.pooled)
    };
    rows.iter()
        .map(|row| {
            let factor = ablation.factors.iter().find(|f| f.key == row.factor);
            let on = evidence(&cell_runs(row, &row.context));
            let off =
                factor.map(|f| evidence(&cell_runs(row, &row.context.with_value(&f.key, &f.off))));
            let off = off.as_deref().filter(|o| !o.is_empty());
            tols.iter()
                .map(|t| label_at_tolerance(ablation, &on, off, *t, judging))
                .collect()
        })
        .collect()
}

/// Counts, exact tests, intervals, margins and the tolerance interval of one verdict row.
fn certainty(
    ablation: &Ablation,
    on: &[&RunRow],
    off: Option<&[&RunRow]>,
    tol: f64,
    judging: &Judging,
) -> Certainty {
    let all_on = counts(on, tol, judging);
    let one_off = off.map(|off| counts(off, tol, judging));
    let (on, off) = (&evidence(on)[..], off.map(evidence));
    let off = off.as_deref();
    let fisher_p = one_off
        .filter(|o| all_on.runs > 0 && o.runs > 0)
        .map(|o| fisher_exact(all_on.converged, all_on.runs, o.converged, o.runs));
    let mcnemar_p = off.map(|off| {
        let key = |r: &RunRow| (r.settings.seed, r.data_seed);
        let (mut b, mut c) = (0, 0);
        for r in on {
            if let Some(partner) = off.iter().find(|o| key(o) == key(r)) {
                let (x, y) = (
                    converged_at(&[r], tol, judging) == 1,
                    converged_at(&[partner], tol, judging) == 1,
                );
                b += u64::from(x && !y);
                c += u64::from(y && !x);
            }
        }
        mcnemar_exact(b, c)
    });
    // The label is a step function of the tolerance, changing only where a run's threshold is.
    let label_at = |t: f64| label_at_tolerance(ablation, on, off, t, judging);
    let floor = judging.knob_floor();
    let mut steps: Vec<f64> = on
        .iter()
        .chain(off.unwrap_or_default())
        .filter_map(|r| judging.threshold(r))
        .filter(|t| *t > floor)
        .collect();
    steps.sort_by(f64::total_cmp);
    steps.dedup();
    // Interval i is [steps[i-1], steps[i]) (from the floor for i = 0, unbounded for the last).
    let start = |i: usize| if i == 0 { floor } else { steps[i - 1] };
    let here = steps.iter().filter(|s| **s <= tol).count();
    let same = |i: usize| label_at(start(i)) == label_at(start(here));
    let mut low = here;
    while low > 0 && same(low - 1) {
        low -= 1;
    }
    let mut high = here;
    while high < steps.len() && same(high + 1) {
        high += 1;
    }
    let (tol_low, tol_high) = (start(low), steps.get(high).copied());
    Certainty {
        all_on,
        one_off,
        fisher_p,
        mcnemar_p,
        tol_low,
        tol_high,
        fragile: tol_low > tol / 3.0 || tol_high.is_some_and(|h| h < 3.0 * tol),
    }
}
