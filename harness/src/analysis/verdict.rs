//! The compare/gate decision for one metric of one run: base samples against new samples
//! (design.md §4). Pure function over two slices, so it is tested on synthetic samples.
//!
//! - change = (mean_new - mean_base) / |mean_base|, in % of the base mean;
//! - its confidence interval at level 1 - α is a percentile bootstrap (both sides resampled
//!   independently, seeded); the 95 % CIs of each side's mean come from the same resamples;
//! - p-values: Welch's t-test and Mann-Whitney U on the raw samples ([`TestChoice`] says which
//!   one decides significance; `both` needs both below α);
//! - the band: a symmetric noise band (default ±2 %), widened on the worse side by a relative
//!   (`max_regression_pct`) or absolute (`max_regression_abs`, in the metric's unit)
//!   threshold — the largest of them applies;
//! - verdict: `regressed`/`improved` when significant AND the whole CI lies beyond the band
//!   on the worse/better side (direction from the metric's `better`); `unchanged` when the whole
//!   CI lies inside the band, or when not significant and the estimate is inside the band;
//!   else `inconclusive` (also with fewer than 2 samples a side or a base mean of 0).

use crate::hypothesis::{mann_whitney_u, welch_t_test};
use crate::metric::Better;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Resamples for the change CI (fewer for very large sample sets, never below the minimum).
pub const RESAMPLES: usize = 10_000;
const MIN_RESAMPLES: usize = 2_000;
const WORK_LIMIT: usize = 40_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Improved,
    Regressed,
    Unchanged,
    Inconclusive,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which test decides significance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum TestChoice {
    Welch,
    MannWhitney,
    /// Both p-values below α (the conservative default).
    #[default]
    Both,
}

impl TestChoice {
    pub fn parse(s: &str) -> Result<TestChoice, String> {
        match s {
            "welch" => Ok(TestChoice::Welch),
            "mann-whitney" => Ok(TestChoice::MannWhitney),
            "both" => Ok(TestChoice::Both),
            _ => Err(format!(
                "unknown test '{s}'; use welch, mann-whitney or both"
            )),
        }
    }
    pub fn describe(self) -> &'static str {
        match self {
            TestChoice::Welch => "Welch t-test",
            TestChoice::MannWhitney => "Mann-Whitney U",
            TestChoice::Both => "Welch t-test and Mann-Whitney U",
        }
    }
}

/// The decision rule for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub alpha: f64,
    pub test: TestChoice,
    /// Symmetric noise band, % of the base mean.
    pub noise_band_pct: f64,
    /// Worse-side tolerance in % of the base mean.
    pub max_regression_pct: Option<f64>,
    /// Worse-side tolerance in the metric's unit.
    pub max_regression_abs: Option<f64>,
    pub seed: u64,
}

impl Default for Rule {
    fn default() -> Rule {
        Rule {
            alpha: 0.01,
            test: TestChoice::Both,
            noise_band_pct: 2.0,
            max_regression_pct: None,
            max_regression_abs: None,
            seed: 0,
        }
    }
}

/// One side's samples, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Side {
    /// Units the test used: samples (iteration level) or invocations (see `unit`).
    pub n: usize,
    pub mean: f64,
    pub stdev: f64,
    /// Percentile-bootstrap 95 % CI of the mean (iteration level), or the t interval of the
    /// mean of the invocation values (invocation level; a single invocation: the value).
    pub ci95: [f64; 2],
    /// Raw samples behind the invocation values (invocation level; 0 when not known).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub samples: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What a comparison treats as one independent observation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Raw samples (iterations, tokens) of one process each: only honest when they are
    /// independent draws (synthetic data, or one invocation per side with a wide band).
    #[default]
    Iteration,
    /// Invocations (ABBA slots, runs, history entries), each summarised by its headline value.
    Invocation,
}

/// Everything the decision used, for reports and JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SampleComparison {
    pub base: Side,
    pub new: Side,
    /// mean_new - mean_base, in the metric's unit.
    pub abs_change: f64,
    /// (mean_new - mean_base) / |mean_base| in %.
    pub change_pct: f64,
    /// CI of `change_pct` at `confidence`: bootstrap for an iteration-level comparison; for an
    /// invocation-level one the t interval whose edges are the two one-sided (1 − α) bounds,
    /// so `confidence` is 1 − 2α there.
    pub change_ci_pct: [f64; 2],
    pub confidence: f64,
    pub bootstrap_resamples: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_welch: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_mann_whitney: Option<f64>,
    /// The p-value that decides: two-sided, the larger of the two for `both`, at the
    /// iteration level; one-sided, in the direction of the change, at the invocation level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    pub significant: bool,
    /// No-change region [low, high] in % of the base mean (asymmetric with a threshold).
    pub band_pct: [f64; 2],
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// The unit of replication the test used (JSON `replication`: a comparison row's `unit`
    /// is the metric's unit).
    #[serde(default, rename = "replication")]
    pub unit: Unit,
    /// How the change was tested (design, model, degrees of freedom).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Degrees of freedom of the noise estimate (invocation level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub df: Option<f64>,
    /// Minimum detectable regression: the smallest worsening, in % of the base (a positive
    /// number), that this comparison calls `regressed` with 80 % probability at its α and band.
    /// Absent where the noise between invocations is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mde_pct: Option<f64>,
}

fn summary(xs: &[f64], means: &mut [f64]) -> Side {
    means.sort_by(f64::total_cmp);
    let ci95 = if means.is_empty() {
        let m = crate::stats::mean(xs);
        [m, m]
    } else {
        [
            crate::stats::percentile_sorted(means, 0.025),
            crate::stats::percentile_sorted(means, 0.975),
        ]
    };
    Side {
        n: xs.len(),
        mean: crate::stats::mean(xs),
        stdev: crate::stats::stdev(xs),
        ci95,
        samples: 0,
    }
}

/// Resamples used for sample sizes `nx`, `ny`.
pub fn resamples_for(nx: usize, ny: usize) -> usize {
    (WORK_LIMIT / (nx + ny).max(1)).clamp(MIN_RESAMPLES, RESAMPLES)
}

/// Compares `base` with `new` for a metric with direction `better` under `rule`.
/// Errors (one line) on an empty side, non-finite samples or a bad rule.
pub fn compare_samples(
    base: &[f64],
    new: &[f64],
    better: Better,
    rule: &Rule,
) -> Result<SampleComparison, String> {
    if base.is_empty() || new.is_empty() {
        return Err("no samples on one side".into());
    }
    if base.iter().chain(new).any(|v| !v.is_finite()) {
        return Err("samples must be finite numbers".into());
    }
    if !(rule.alpha > 0.0 && rule.alpha < 1.0) {
        return Err(format!("alpha = {} must lie in (0, 1)", rule.alpha));
    }
    let confidence = 1.0 - rule.alpha;
    let (nx, ny) = (base.len(), new.len());
    let mx = crate::stats::mean(base);
    let my = crate::stats::mean(new);
    let can_test = nx >= 2 && ny >= 2;
    let resamples = if can_test { resamples_for(nx, ny) } else { 0 };
    let (mut bx, mut by, mut rel) = (
        Vec::with_capacity(resamples),
        Vec::with_capacity(resamples),
        Vec::with_capacity(resamples),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(rule.seed);
    for _ in 0..resamples {
        let sx: f64 = (0..nx).map(|_| base[rng.random_range(0..nx)]).sum::<f64>() / nx as f64;
        let sy: f64 = (0..ny).map(|_| new[rng.random_range(0..ny)]).sum::<f64>() / ny as f64;
        bx.push(sx);
        by.push(sy);
        if sx != 0.0 {
            rel.push(100.0 * (sy - sx) / sx.abs());
        }
    }
    let base_side = summary(base, &mut bx);
    let new_side = summary(new, &mut by);
    let change_pct = if mx != 0.0 {
        100.0 * (my - mx) / mx.abs()
    } else {
        f64::NAN
    };
    rel.sort_by(f64::total_cmp);
    let change_ci_pct = if rel.is_empty() {
        [change_pct, change_pct]
    } else {
        let tail = rule.alpha / 2.0;
        [
            crate::stats::percentile_sorted(&rel, tail),
            crate::stats::percentile_sorted(&rel, 1.0 - tail),
        ]
    };
    let p_welch = welch_t_test(base, new).map(|t| t.p_value);
    let p_mann_whitney = if can_test {
        mann_whitney_u(base, new).map(|t| t.p_value)
    } else {
        None
    };
    let p_value = match rule.test {
        TestChoice::Welch => p_welch,
        TestChoice::MannWhitney => p_mann_whitney,
        TestChoice::Both => p_welch.zip(p_mann_whitney).map(|(a, b)| a.max(b)),
    };
    let significant = p_value.is_some_and(|p| p < rule.alpha);
    let band_pct = band(rule, better, mx);
    let (verdict, reason) = if nx < 2 || ny < 2 {
        (
            Verdict::Inconclusive,
            format!("too few samples for a test (n = {nx} vs {ny}; at least 2 a side)"),
        )
    } else if mx == 0.0 {
        (
            Verdict::Inconclusive,
            "the base mean is 0, so a relative change is undefined".into(),
        )
    } else {
        judge(
            change_pct,
            change_ci_pct,
            band_pct,
            better,
            p_value,
            significant,
            confidence,
        )
    };
    Ok(SampleComparison {
        base: base_side,
        new: new_side,
        abs_change: my - mx,
        change_pct,
        change_ci_pct,
        confidence,
        bootstrap_resamples: resamples,
        p_welch,
        p_mann_whitney,
        p_value,
        significant,
        band_pct,
        verdict,
        reason,
        unit: Unit::Iteration,
        method: String::new(),
        df: None,
        mde_pct: None,
    })
}

/// One invocation per side: its iterations share one process's machine state, so their test
/// cannot see the noise between invocations. The iteration-level comparison decides only
/// beyond the band widened to ±`wide_band_pct` (the documented default for unreplicated
/// comparisons, `unreplicated_band_pct`), and says so; no minimum detectable effect is claimed.
pub fn compare_unreplicated(
    base: &[f64],
    new: &[f64],
    better: Better,
    rule: &Rule,
    wide_band_pct: f64,
) -> Result<SampleComparison, String> {
    let wide = Rule {
        noise_band_pct: rule.noise_band_pct.max(wide_band_pct),
        ..rule.clone()
    };
    let mut c = compare_samples(base, new, better, &wide)?;
    c.method = format!(
        "one invocation per side: the noise between invocations is unknown, so the \
         iteration-level {} decides only beyond a band of ±{} %",
        rule.test.describe(),
        wide.noise_band_pct
    );
    Ok(c)
}

/// The no-change region [low, high] in % of the base mean `base_mean`: the noise band, widened
/// on the worse side by the relative or absolute threshold (the largest applies).
pub fn band(rule: &Rule, better: Better, base_mean: f64) -> [f64; 2] {
    let noise = rule.noise_band_pct.abs();
    let mut worse = noise;
    if let Some(r) = rule.max_regression_pct {
        worse = worse.max(r.abs());
    }
    if let (Some(a), true) = (rule.max_regression_abs, base_mean != 0.0) {
        worse = worse.max(100.0 * a.abs() / base_mean.abs());
    }
    match better {
        Better::Lower => [-noise, worse],
        Better::Higher => [-worse, noise],
    }
}

/// The verdict from a change (%), its CI at `confidence`, the band and the test: regressed or
/// improved when significant AND the whole CI lies beyond the band; unchanged when the CI (or,
/// not significant, the estimate) lies inside it; else inconclusive. With the reason.
pub fn judge(
    change: f64,
    ci: [f64; 2],
    band: [f64; 2],
    better: Better,
    p: Option<f64>,
    significant: bool,
    confidence: f64,
) -> (Verdict, String) {
    use Verdict::*;
    let p = p.unwrap_or(1.0);
    let pct = |v: f64| format!("{v:+.2} %");
    let ci_text = format!(
        "{:.0} % CI [{}, {}]",
        confidence * 100.0,
        pct(ci[0]),
        pct(ci[1])
    );
    let band_text = format!("[{}, {}]", pct(band[0]), pct(band[1]));
    let above = ci[0] > band[1];
    let below = ci[1] < band[0];
    let (worse, improved) = match better {
        Better::Lower => (above, below),
        Better::Higher => (below, above),
    };
    if significant && worse {
        return (
            Regressed,
            format!(
                "p = {p:.2e} and the {ci_text} lies beyond the band {band_text} on the worse side"
            ),
        );
    }
    if significant && improved {
        return (
            Improved,
            format!(
                "p = {p:.2e} and the {ci_text} lies beyond the band {band_text} on the better side"
            ),
        );
    }
    if ci[0] >= band[0] && ci[1] <= band[1] {
        return (
            Unchanged,
            format!("the {ci_text} lies inside the band {band_text}"),
        );
    }
    if !significant && change >= band[0] && change <= band[1] {
        return (
            Unchanged,
            format!(
                "not significant (p = {p:.2e}) and the change {} is inside the band {band_text}",
                pct(change)
            ),
        );
    }
    if significant {
        (
            Inconclusive,
            format!(
                "significant (p = {p:.2e}) but the {ci_text} reaches into the band {band_text}"
            ),
        )
    } else {
        (
            Inconclusive,
            format!(
                "the change {} is outside the band {band_text} but not significant (p = {p:.2e}); measure longer",
                pct(change)
            ),
        )
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
