//! Exact small-sample statistics of the verdict: Fisher's exact test of two converged fractions,
//! the exact McNemar test of seed-paired outcomes, and Clopper-Pearson intervals. Counts are
//! seeds (tens, at most thousands), so exact sums over binomial and hypergeometric terms in log
//! space are fast and need no special functions.

/// `ln(n!)`, summed (n is a count of seeds).
fn ln_factorial(n: u64) -> f64 {
    (2..=n).map(|i| (i as f64).ln()).sum()
}

fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// Two-sided Fisher exact test of `k1` of `n1` against `k2` of `n2`, with the convention of
/// scipy and R: the sum of the probabilities of every table with the same margins whose
/// probability is at most the observed one's, times `1 + 1e-7`.
pub fn fisher_exact(k1: u64, n1: u64, k2: u64, n2: u64) -> f64 {
    assert!(k1 <= n1 && k2 <= n2, "counts within their totals");
    let (total, column) = (n1 + n2, k1 + k2);
    let ln_p = |x: u64| ln_choose(n1, x) + ln_choose(n2, column - x) - ln_choose(total, column);
    let low = column.saturating_sub(n2);
    let high = column.min(n1);
    let observed = ln_p(k1);
    let bound = observed + (1e-7f64).ln_1p();
    let p: f64 = (low..=high)
        .map(ln_p)
        .filter(|lp| *lp <= bound)
        .map(f64::exp)
        .sum();
    p.min(1.0)
}

/// Exact McNemar test: two-sided binomial test of `b` against `c` discordant pairs at p = 1/2
/// (1 when there is no discordant pair).
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let tail: f64 = (0..=b.min(c))
        .map(|i| (ln_choose(n, i) - n as f64 * std::f64::consts::LN_2).exp())
        .sum();
    (2.0 * tail).min(1.0)
}

/// `P(X >= k)` for `X ~ Binomial(n, x)`: the regularized incomplete beta `I_x(k, n - k + 1)`.
fn binomial_upper_tail(k: u64, n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    if x >= 1.0 {
        return 1.0;
    }
    (k..=n)
        .map(|j| (ln_choose(n, j) + j as f64 * x.ln() + (n - j) as f64 * (-x).ln_1p()).exp())
        .sum::<f64>()
        .min(1.0)
}

/// The `x` in [0, 1] where the increasing `f` reaches `target`, by bisection to the last bits.
fn solve_increasing(f: impl Fn(f64) -> f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The Clopper-Pearson interval of `k` successes in `n` at level `1 - alpha` (two-sided):
/// the beta quantiles `B(alpha/2; k, n-k+1)` and `B(1-alpha/2; k+1, n-k)`, 0 and 1 at the edges.
pub fn clopper_pearson(k: u64, n: u64, alpha: f64) -> (f64, f64) {
    assert!(k <= n && n > 0, "a count within a positive total");
    // I_x(a, b) with integer a, b is P(Binomial(a + b - 1, x) >= a).
    let low = if k == 0 {
        0.0
    } else {
        solve_increasing(|x| binomial_upper_tail(k, n, x), alpha / 2.0)
    };
    let high = if k == n {
        1.0
    } else {
        solve_increasing(|x| binomial_upper_tail(k + 1, n, x), 1.0 - alpha / 2.0)
    };
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, tol: f64) {
        assert!(
            (got - want).abs() <= tol * want.abs().max(1e-300),
            "{got} vs {want}"
        );
    }

    /// Reference values from scipy 1.16 (`scipy.stats.fisher_exact([[k1, n1-k1], [k2, n2-k2]])`,
    /// `binomtest(b, b+c, 0.5)`, `beta.ppf`), printed with full precision.
    #[test]
    fn fisher_mcnemar_and_clopper_pearson_match_scipy() {
        for (k1, n1, k2, n2, p) in [
            (5, 5, 0, 5, 0.007936507936507938),
            (4, 5, 1, 5, 0.2063492063492064),
            (5, 5, 1, 5, 0.047619047619047616),
            (3, 3, 0, 3, 0.10000000000000002),
            (20, 20, 3, 20, 2.5695242602917804e-08),
            (0, 5, 0, 5, 1.0),
            (7, 10, 2, 8, 0.153434800493624),
        ] {
            close(fisher_exact(k1, n1, k2, n2), p, 1e-12);
        }
        for (b, c, p) in [
            (5, 0, 0.0625),
            (4, 1, 0.375),
            (3, 0, 0.25),
            (10, 2, 0.03857421875),
            (0, 0, 1.0),
            (6, 6, 1.0),
        ] {
            close(mcnemar_exact(b, c), p, 1e-13);
        }
        for (k, n, low, high) in [
            (0, 5, 0.0, 0.5218237501049814),
            (5, 5, 0.4781762498950185, 1.0),
            (4, 5, 0.2835820638819105, 0.9949492366205319),
            (1, 5, 0.0050507633794680575, 0.7164179361180895),
            (3, 10, 0.06673951117773447, 0.6524528500599973),
            (0, 1, 0.0, 0.975),
            (17, 40, 0.27042903126886286, 0.5910994195730367),
        ] {
            let (lo, hi) = clopper_pearson(k, n, 0.05);
            close(lo, low, 1e-10);
            close(hi, high, 1e-10);
        }
        // The smallest two-sided Fisher p with n seeds per cell is 2 / C(2n, n).
        for n in [3u64, 4, 5] {
            close(
                fisher_exact(n, n, 0, n),
                2.0 / ln_choose(2 * n, n).exp(),
                1e-10,
            );
        }
    }
}
