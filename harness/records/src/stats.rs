//! Summary statistics over raw samples: small pure functions, tested with hand-worked numbers.
//!
//! Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7, the
//! default of numpy, R and Excel's PERCENTILE.INC): for sorted x[0..n) and q in [0,1],
//! h = (n-1)q, p = x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]).
//! The standard deviation is the sample one (n-1 denominator). Confidence intervals are
//! percentile-bootstrap 95 % intervals with a fixed seed, so the same samples always give the
//! same interval.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Bootstrap resamples used for confidence intervals (design.md: at least 10 000).
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;
/// Above this many (samples x resamples) the bootstrap uses fewer resamples (never < 1000),
/// keeping a 100k-sample metric to about a second; the count used is recorded.
const BOOTSTRAP_WORK_LIMIT: usize = 200_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub count: usize,
    pub mean: f64,
    /// Sample standard deviation (n-1); 0 for a single sample.
    pub stdev: f64,
    /// Coefficient of variation, 100 * stdev / |mean| (0 when mean is 0).
    pub cv_pct: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// Percentile-bootstrap 95 % confidence interval of the mean, [low, high].
    pub ci95_mean: [f64; 2],
    /// Percentile-bootstrap 95 % confidence interval of the median, [low, high].
    pub ci95_median: [f64; 2],
    /// Resamples used for the two intervals.
    pub bootstrap_resamples: usize,
}

impl Stats {
    /// Statistics of `samples`; `None` when empty or when a sample is not finite.
    pub fn from_samples(samples: &[f64], seed: u64) -> Option<Stats> {
        if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let m = mean(samples);
        let sd = stdev(samples);
        let resamples = bootstrap_resamples_for(samples.len());
        let (ci95_mean, ci95_median) = bootstrap_ci95(samples, resamples, seed);
        Some(Stats {
            count: samples.len(),
            mean: m,
            stdev: sd,
            cv_pct: if m == 0.0 { 0.0 } else { 100.0 * sd / m.abs() },
            min: sorted[0],
            p50: percentile_sorted(&sorted, 0.50),
            p90: percentile_sorted(&sorted, 0.90),
            p95: percentile_sorted(&sorted, 0.95),
            p99: percentile_sorted(&sorted, 0.99),
            max: sorted[sorted.len() - 1],
            ci95_mean,
            ci95_median,
            bootstrap_resamples: resamples,
        })
    }

    /// Half-width of the 95 % CI of the mean relative to the mean (for adaptive stopping).
    pub fn rel_ci_half_width(&self) -> f64 {
        if self.mean == 0.0 {
            return f64::INFINITY;
        }
        (self.ci95_mean[1] - self.ci95_mean[0]) / 2.0 / self.mean.abs()
    }
}

pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n-1 denominator); 0 for fewer than two samples.
pub fn stdev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (xs.len() - 1) as f64).sqrt()
}

/// Type-7 percentile of already sorted data, q in [0, 1].
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no data");
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Type-7 percentile of unsorted data.
pub fn percentile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, q)
}

/// Median by selection (O(n)), reordering `xs`.
pub fn median_in_place(xs: &mut [f64]) -> f64 {
    let n = xs.len();
    let (_, upper, _) = xs.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let lower = xs[..n / 2]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

fn bootstrap_resamples_for(n: usize) -> usize {
    if n.saturating_mul(BOOTSTRAP_RESAMPLES) <= BOOTSTRAP_WORK_LIMIT {
        BOOTSTRAP_RESAMPLES
    } else {
        (BOOTSTRAP_WORK_LIMIT / n).max(1000)
    }
}

/// Percentile-bootstrap 95 % CIs of the mean and the median from one set of resamples.
pub fn bootstrap_ci95(xs: &[f64], resamples: usize, seed: u64) -> ([f64; 2], [f64; 2]) {
    let n = xs.len();
    if n < 2 {
        return ([xs[0], xs[0]], [xs[0], xs[0]]);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means = Vec::with_capacity(resamples);
    let mut medians = Vec::with_capacity(resamples);
    let mut buf = vec![0.0; n];
    for _ in 0..resamples {
        let mut sum = 0.0;
        for slot in buf.iter_mut() {
            let x = xs[rng.random_range(0..n)];
            *slot = x;
            sum += x;
        }
        means.push(sum / n as f64);
        medians.push(median_in_place(&mut buf));
    }
    means.sort_by(f64::total_cmp);
    medians.sort_by(f64::total_cmp);
    let ci = |v: &[f64]| [percentile_sorted(v, 0.025), percentile_sorted(v, 0.975)];
    (ci(&means), ci(&medians))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * (1.0 + b.abs())
    }

    #[test]
    fn hand_worked_summary() {
        // x = 2, 4, 4, 4, 5, 5, 7, 9: mean 40/8 = 5; squared deviations 9+1+1+1+0+0+4+16 = 32;
        // sample variance 32/7, stdev sqrt(32/7) = 2.138089935...
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let s = Stats::from_samples(&xs, 1).unwrap();
        assert_eq!(s.count, 8);
        assert!(close(s.mean, 5.0));
        assert!(close(s.stdev, (32.0f64 / 7.0).sqrt()));
        assert!(close(s.cv_pct, 100.0 * (32.0f64 / 7.0).sqrt() / 5.0));
        assert_eq!((s.min, s.max), (2.0, 9.0));
        // p50: h = 7 * 0.5 = 3.5 -> x[3] + 0.5 (x[4] - x[3]) = 4 + 0.5 = 4.5
        assert!(close(s.p50, 4.5));
        // p90: h = 6.3 -> 7 + 0.3 * (9 - 7) = 7.6
        assert!(close(s.p90, 7.6));
        // p95: h = 6.65 -> 7 + 0.65 * 2 = 8.3 ; p99: h = 6.93 -> 7 + 0.93 * 2 = 8.86
        assert!(close(s.p95, 8.3));
        assert!(close(s.p99, 8.86));
    }

    #[test]
    fn percentile_edges() {
        let xs = [10.0, 20.0, 30.0, 40.0];
        assert!(close(percentile(&xs, 0.0), 10.0));
        assert!(close(percentile(&xs, 1.0), 40.0));
        // h = 3 * 0.25 = 0.75 -> 10 + 0.75 * 10 = 17.5
        assert!(close(percentile(&xs, 0.25), 17.5));
        assert!(close(percentile(&[3.0], 0.99), 3.0));
    }

    #[test]
    fn median_by_selection() {
        assert_eq!(median_in_place(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_in_place(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn single_sample_and_constant_samples() {
        let s = Stats::from_samples(&[7.0], 0).unwrap();
        assert_eq!((s.stdev, s.cv_pct, s.ci95_mean), (0.0, 0.0, [7.0, 7.0]));
        let s = Stats::from_samples(&[3.0; 50], 0).unwrap();
        assert_eq!((s.ci95_mean, s.ci95_median), ([3.0, 3.0], [3.0, 3.0]));
    }

    #[test]
    fn empty_or_non_finite_gives_none() {
        assert!(Stats::from_samples(&[], 0).is_none());
        assert!(Stats::from_samples(&[1.0, f64::NAN], 0).is_none());
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let xs: Vec<f64> = (0..200)
            .map(|i| (i % 17) as f64 + 0.5 * (i % 5) as f64)
            .collect();
        let a = Stats::from_samples(&xs, 42).unwrap();
        let b = Stats::from_samples(&xs, 42).unwrap();
        assert_eq!(a, b, "same seed, same intervals");
        assert!(a.ci95_mean[0] < a.mean && a.mean < a.ci95_mean[1]);
        // The CI of the mean is about mean +- 1.96 sd / sqrt(n).
        let half = 1.96 * a.stdev / (xs.len() as f64).sqrt();
        let got = (a.ci95_mean[1] - a.ci95_mean[0]) / 2.0;
        assert!(
            (got - half).abs() < 0.15 * half,
            "bootstrap half-width {got} vs normal {half}"
        );
        assert_eq!(a.bootstrap_resamples, BOOTSTRAP_RESAMPLES);
    }
}
