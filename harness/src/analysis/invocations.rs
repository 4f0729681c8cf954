//! The compare/gate decision with the invocation as the unit of replication (docs/gates.md).
//!
//! Iterations and tokens of one process share its CPU frequency, caches and neighbours, and
//! these drift by several percent from one process to the next on a shared machine; treating
//! them as independent draws makes CIs shrink with the sample count while the real noise does
//! not (pseudo-replication). So each invocation (an ABBA slot of `run --ab`, a separate run, a
//! history entry) is first summarised by one value, the metric's headline value (the mean of
//! its samples, or the aggregate such as tokens / window), and the test runs on those values.
//!
//! Model (a linear mixed model with the invocation as the error term, blocks as fixed
//! effects): ln(value) = level of its block + δ·[new side] + ε, ε ~ N(0, σ²). A block is one
//! ABBA quadruple of `run --ab` (its level absorbs the machine's slow drift; A B B A cancels a
//! linear trend inside it); unblocked invocations (runs, history) share one block, which makes
//! this the pooled two-sample t-test, or the prediction test of one new run against its
//! history. Ordinary least squares gives, with d_b the difference of the side means in block b
//! and w_b = n_base,b · n_new,b / (n_base,b + n_new,b):
//!   δ̂ = Σ w_b d_b / Σ w_b,  SS = within-cell SS + Σ w_b (d_b − δ̂)²,
//!   df = Σ_cells (n − 1) + (blocks with both sides − 1),  Var δ̂ = σ² / Σ w_b.
//! A calibrated spread (`gate --calibrate`: σ with its df) is pooled with the observed SS.
//! The CI of δ uses Student's t; change = e^δ − 1. Values that are not all positive use the
//! linear scale (δ in the metric's unit, relative to the base mean).
//!
//! The verdict is one-sided in each direction: "regressed" asks only whether the new side is
//! worse, so it is the one-sided test at α (the lower (1 − α) confidence bound of the
//! worsening clears the band's worse edge), and "improved" the same on the better side. Both
//! bounds together are the (1 − 2α) interval the report prints, and "unchanged" (that
//! interval inside the band) is then the two one-sided tests of equivalence (TOST) at α. The
//! false-alarm rate of a gated metric on unchanged code is α, not α / 2 as with a two-sided
//! (1 − α) interval, which spent half of α on improvements a gate never fails on.

use super::verdict::{band, judge, Rule, SampleComparison, Side, Unit, Verdict};
use crate::hypothesis::{student_t_quantile, student_t_two_sided};
use crate::metric::Better;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Power at which the minimum detectable effect is stated.
pub const MDE_POWER: f64 = 0.8;

/// How one invocation's samples become its single value.
///
/// `fast-decile` (default): the decile at the metric's better end of its samples (the 90th
/// percentile of a throughput, the 10th of a latency or CPU time) when the invocation has at
/// least [`FAST_MIN_SAMPLES`] samples. On a shared VM the noise inside an invocation is
/// one-sided (preemption, a slow regime of the host, never a faster machine), so the fast end
/// moves far less between invocations than the mean: 2.7 % against 6.2 % (median SD of ln
/// value x 100 over 14 sides of 6 invocations, default model, 2 s windows, idle 2-vCPU AMD
/// EPYC, 2026-12-06), while a change of the code's own speed moves it just as much (the same
/// reasoning as the minimum in Chen & Revels, "Robust benchmarking in noisy environments",
/// 2016, with a decile instead of the extreme so that one lucky iteration does not decide).
/// A change that only slows the slow tail is not what it sees: use `headline` for that.
///
/// `headline`: the metric's headline value (the mean of its samples, or the aggregate such as
/// tokens / window).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Summary {
    Headline,
    #[default]
    FastDecile,
}

/// Samples an invocation needs before its fast decile stands for it.
pub const FAST_MIN_SAMPLES: usize = 10;

impl Summary {
    /// Name in gate files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Summary::Headline => "headline",
            Summary::FastDecile => "fast-decile",
        }
    }
}

/// The decile at the better end of `samples` (linear interpolation between order
/// statistics); `None` with fewer than [`FAST_MIN_SAMPLES`] samples or any that is not finite.
pub fn fast_decile(samples: &[f64], better: Better) -> Option<f64> {
    if samples.len() < FAST_MIN_SAMPLES || samples.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut xs = samples.to_vec();
    xs.sort_by(f64::total_cmp);
    let q = match better {
        Better::Higher => 0.9,
        Better::Lower => 0.1,
    };
    let pos = q * (xs.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(xs.len() - 1);
    Some(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64))
}

/// The invocations of both sides (each with its fast decile, if it has one) as `wanted`
/// summarises them: the fast decile only when every invocation has one, else the headline
/// values on both sides. Returns the summary used.
pub fn summarize(
    base: Vec<(Invocation, Option<f64>)>,
    new: Vec<(Invocation, Option<f64>)>,
    wanted: Summary,
) -> (Vec<Invocation>, Vec<Invocation>, Summary) {
    let all_fast = base.iter().chain(&new).all(|(_, f)| f.is_some());
    let summary = if wanted == Summary::FastDecile && all_fast {
        Summary::FastDecile
    } else {
        Summary::Headline
    };
    let pick = |side: Vec<(Invocation, Option<f64>)>| -> Vec<Invocation> {
        side.into_iter()
            .map(|(mut i, f)| {
                if summary == Summary::FastDecile {
                    i.value = f.unwrap_or(i.value);
                }
                i
            })
            .collect()
    };
    (pick(base), pick(new), summary)
}

/// One invocation: its headline value and its ABBA block (`None`: not blocked).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Invocation {
    pub value: f64,
    pub block: Option<usize>,
    /// Raw samples behind the value (0 for single-valued metrics), for the report.
    pub samples: usize,
}

impl Invocation {
    pub fn new(value: f64, block: Option<usize>) -> Invocation {
        Invocation {
            value,
            block,
            samples: 0,
        }
    }
}

/// A between-invocation standard deviation with its degrees of freedom. `sd_pct` is the SD of
/// ln(value) × 100 (close to the CV in % for small spreads).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Spread {
    pub sd_pct: f64,
    pub df: f64,
}

/// The least-squares fit of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Estimated new − base (in ln units, or the metric's unit on the linear scale).
    pub delta: f64,
    /// Residual sum of squares and its degrees of freedom.
    pub ss: f64,
    pub df: f64,
    /// Σ w_b: Var δ̂ = σ² / weight.
    pub weight: f64,
    /// Whether the fit is on ln(value).
    pub log: bool,
    /// Blocks that hold both sides.
    pub paired_blocks: usize,
}

impl Fit {
    /// The residual spread (None without degrees of freedom or on the linear scale).
    pub fn spread(&self) -> Option<Spread> {
        (self.log && self.df > 0.0).then(|| Spread {
            sd_pct: 100.0 * (self.ss / self.df).sqrt(),
            df: self.df,
        })
    }
}

fn mean(xs: &[f64]) -> f64 {
    crate::stats::mean(xs)
}

fn ss(xs: &[f64]) -> f64 {
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum()
}

/// Fits the model; `None` when no block holds both sides (nothing to compare).
pub fn fit(base: &[Invocation], new: &[Invocation]) -> Option<Fit> {
    let log = base.iter().chain(new).all(|i| i.value > 0.0);
    let tf = |v: f64| if log { v.ln() } else { v };
    let mut cells: BTreeMap<Option<usize>, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for i in base {
        cells.entry(i.block).or_default().0.push(tf(i.value));
    }
    for i in new {
        cells.entry(i.block).or_default().1.push(tf(i.value));
    }
    let mut within = 0.0;
    let mut df = 0.0;
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    for (b, n) in cells.values() {
        for side in [b, n] {
            if !side.is_empty() {
                within += ss(side);
                df += (side.len() - 1) as f64;
            }
        }
        if !b.is_empty() && !n.is_empty() {
            let w = (b.len() * n.len()) as f64 / (b.len() + n.len()) as f64;
            pairs.push((w, mean(n) - mean(b)));
        }
    }
    if pairs.is_empty() {
        return None;
    }
    let weight: f64 = pairs.iter().map(|(w, _)| w).sum();
    let delta = pairs.iter().map(|(w, d)| w * d).sum::<f64>() / weight;
    let between: f64 = pairs.iter().map(|(w, d)| w * (d - delta).powi(2)).sum();
    Some(Fit {
        delta,
        ss: within + between,
        df: df + (pairs.len() - 1) as f64,
        weight,
        log,
        paired_blocks: pairs.len(),
    })
}

fn side(values: &[Invocation]) -> Side {
    let xs: Vec<f64> = values.iter().map(|i| i.value).collect();
    let m = mean(&xs);
    let sd = crate::stats::stdev(&xs);
    let ci95 = if xs.len() >= 2 {
        let h = student_t_quantile(0.975, (xs.len() - 1) as f64) * sd / (xs.len() as f64).sqrt();
        [m - h, m + h]
    } else {
        [m, m]
    };
    Side {
        n: xs.len(),
        mean: m,
        stdev: sd,
        ci95,
        samples: values.iter().map(|i| i.samples).sum(),
    }
}

/// Whether the invocations (with an optional calibrated spread) give any degrees of freedom
/// for the noise between invocations.
pub fn replicated(base: &[Invocation], new: &[Invocation], prior: Option<Spread>) -> bool {
    let prior_df = prior.map_or(0.0, |p| p.df);
    fit(base, new).is_some_and(|f| f.df + if f.log { prior_df } else { 0.0 } > 0.0)
}

/// Compares `base` with `new` invocation by invocation under `rule` (its `test` does not apply:
/// the t-test on the invocation values decides). `prior` is a calibrated spread pooled with
/// the observed one. Errors (one line) on an empty side, non-finite values, a bad α, or no
/// degrees of freedom at all (check [`replicated`] first).
pub fn compare_invocations(
    base: &[Invocation],
    new: &[Invocation],
    better: Better,
    rule: &Rule,
    prior: Option<Spread>,
) -> Result<SampleComparison, String> {
    if base.is_empty() || new.is_empty() {
        return Err("no invocations on one side".into());
    }
    if base.iter().chain(new).any(|i| !i.value.is_finite()) {
        return Err("values must be finite numbers".into());
    }
    if !(rule.alpha > 0.0 && rule.alpha < 0.5) {
        return Err(format!(
            "alpha = {} must lie in (0, 0.5): each direction is tested at alpha",
            rule.alpha
        ));
    }
    let f = fit(base, new).ok_or("no block holds both sides")?;
    let prior = prior.filter(|p| f.log && p.df > 0.0 && p.sd_pct.is_finite());
    let (prior_ss, prior_df) =
        prior.map_or((0.0, 0.0), |p| (p.df * (p.sd_pct / 100.0).powi(2), p.df));
    let df = f.df + prior_df;
    if df <= 0.0 {
        return Err("one invocation per side: no estimate of the noise between invocations".into());
    }
    let (bs, ns) = (side(base), side(new));
    let se = ((f.ss + prior_ss) / df / f.weight).sqrt();
    let t = if se > 0.0 {
        f.delta / se
    } else if f.delta == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(f.delta)
    };
    // One-sided p in the direction of the observed change, and the one-sided (1 − α) bounds.
    let p = student_t_two_sided(t, df) / 2.0;
    let q = student_t_quantile(1.0 - rule.alpha, df);
    let (lo, hi) = (f.delta - q * se, f.delta + q * se);
    let to_pct = |d: f64| {
        if f.log {
            100.0 * d.exp_m1()
        } else {
            100.0 * d / bs.mean.abs()
        }
    };
    let change_pct = to_pct(f.delta);
    let change_ci_pct = [to_pct(lo), to_pct(hi)];
    let band_pct = band(rule, better, bs.mean);
    let significant = p < rule.alpha;
    let (verdict, reason) = if !f.log && bs.mean == 0.0 {
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
            Some(p),
            significant,
            1.0 - 2.0 * rule.alpha,
        )
    };
    let worse_edge = match better {
        Better::Lower => band_pct[1],
        Better::Higher => -band_pct[0],
    };
    let mde_pct = mde(se, df, rule.alpha, worse_edge, better, f.log, bs.mean);
    let mut method = format!(
        "{} vs {} invocations, t-test on {}",
        bs.n,
        ns.n,
        if f.log { "ln(value)" } else { "the values" }
    );
    if base.iter().chain(new).any(|i| i.block.is_some()) {
        method.push_str(&format!(
            " with {} ABBA block(s) as fixed effects",
            f.paired_blocks
        ));
    }
    if let Some(p) = prior {
        method.push_str(&format!(
            ", spread pooled with the calibrated {:.2} % ({} df)",
            p.sd_pct, p.df
        ));
    }
    method.push_str(&format!(
        "; {df:.0} df, noise {:.2} %",
        100.0 * ((f.ss + prior_ss) / df).sqrt()
    ));
    if !f.log {
        method = method.replace(" %", " (in the unit)");
    }
    Ok(SampleComparison {
        abs_change: ns.mean - bs.mean,
        base: bs,
        new: ns,
        change_pct,
        change_ci_pct,
        confidence: 1.0 - 2.0 * rule.alpha,
        bootstrap_resamples: 0,
        p_welch: None,
        p_mann_whitney: None,
        p_value: Some(p),
        significant,
        band_pct,
        verdict,
        reason,
        unit: Unit::Invocation,
        method,
        df: Some(df),
        mde_pct,
    })
}

/// The smallest worsening (positive %, of the base) called `regressed` with probability
/// [`MDE_POWER`] by the one-sided test at `alpha`: the lower (1 − α) bound must clear the
/// band's worse edge `worse_edge_pct`, so the true change must exceed the edge by
/// (t_{1−α} + t_{power}) standard errors.
pub fn mde(
    se: f64,
    df: f64,
    alpha: f64,
    worse_edge_pct: f64,
    better: Better,
    log: bool,
    base_mean: f64,
) -> Option<f64> {
    if !(se.is_finite() && df > 0.0) {
        return None;
    }
    let k = (student_t_quantile(1.0 - alpha, df) + student_t_quantile(MDE_POWER, df)) * se;
    let edge = worse_edge_pct.abs() / 100.0;
    let v = if log {
        match better {
            Better::Lower => ((1.0 + edge).ln() + k).exp_m1(),
            Better::Higher => -(((1.0 - edge).max(1e-12)).ln() - k).exp_m1(),
        }
    } else if base_mean != 0.0 {
        edge + k / base_mean.abs()
    } else {
        return None;
    };
    Some(100.0 * v)
}

#[cfg(test)]
#[path = "invocations_tests.rs"]
mod tests;
