//! Change points in a benchmark history (one value per commit, in time order): where the
//! level of a series shifts, for the trend plots of the site and `effbench history trends`.
//!
//! Binary segmentation: in a segment, the split that best separates two means (maximising
//! k(n-k)/n · (mean_left - mean_right)²) is accepted when Welch's t-test between the two parts
//! is significant after a Bonferroni correction over the candidate splits
//! (p · candidates < `alpha`) AND the shift is at least `min_change_pct` % of the left mean;
//! then both parts are searched again. Each part keeps at least `min_segment` points, so a
//! shift is reported once `min_segment` points after it exist. Reported means and changes are
//! those of the final adjacent segments.

use crate::hypothesis::welch_t_test;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ChangePointConfig {
    pub alpha: f64,
    pub min_segment: usize,
    pub min_change_pct: f64,
}

impl Default for ChangePointConfig {
    fn default() -> Self {
        ChangePointConfig {
            alpha: 0.01,
            min_segment: 3,
            min_change_pct: 2.0,
        }
    }
}

/// A shift in level: points `index..` differ from the points before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChangePoint {
    /// First point of the new level.
    pub index: usize,
    /// Mean of the segment before and of the segment from `index` on.
    pub before_mean: f64,
    pub after_mean: f64,
    /// (after - before) / |before| in %.
    pub change_pct: f64,
    /// Welch p-value of the split when it was found, Bonferroni-corrected.
    pub p_value: f64,
}

/// A run of points at one level: `start..end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    pub mean: f64,
}

fn mean(xs: &[f64]) -> f64 {
    crate::stats::mean(xs)
}

/// Change points of `values` (finite numbers in time order), sorted by index.
pub fn detect(values: &[f64], cfg: &ChangePointConfig) -> Vec<ChangePoint> {
    let min_seg = cfg.min_segment.max(2);
    let mut found: Vec<(usize, f64)> = Vec::new();
    if values.iter().all(|v| v.is_finite()) {
        split(values, 0, values.len(), min_seg, cfg, &mut found);
    }
    found.sort_by_key(|(i, _)| *i);
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(found.iter().map(|(i, _)| *i))
        .chain(std::iter::once(values.len()))
        .collect();
    found
        .iter()
        .enumerate()
        .map(|(k, (index, p))| {
            let before = mean(&values[bounds[k]..*index]);
            let after = mean(&values[*index..bounds[k + 2]]);
            ChangePoint {
                index: *index,
                before_mean: before,
                after_mean: after,
                change_pct: 100.0 * (after - before) / before.abs(),
                p_value: *p,
            }
        })
        .collect()
}

fn split(
    v: &[f64],
    lo: usize,
    hi: usize,
    min_seg: usize,
    cfg: &ChangePointConfig,
    out: &mut Vec<(usize, f64)>,
) {
    let n = hi - lo;
    if n < 2 * min_seg {
        return;
    }
    let total: f64 = v[lo..hi].iter().sum();
    let mut left = v[lo..lo + min_seg - 1].iter().sum::<f64>();
    let (mut best, mut best_k) = (-1.0, lo + min_seg);
    for k in lo + min_seg..=hi - min_seg {
        left += v[k - 1];
        let (nl, nr) = ((k - lo) as f64, (hi - k) as f64);
        let d = left / nl - (total - left) / nr;
        let score = nl * nr / n as f64 * d * d;
        if score > best {
            best = score;
            best_k = k;
        }
    }
    let (l, r) = (&v[lo..best_k], &v[best_k..hi]);
    let Some(t) = welch_t_test(l, r) else {
        return;
    };
    let candidates = (n - 2 * min_seg + 1) as f64;
    let p = (t.p_value * candidates).min(1.0);
    let (ml, mr) = (mean(l), mean(r));
    let change = if ml != 0.0 {
        100.0 * (mr - ml) / ml.abs()
    } else {
        f64::INFINITY
    };
    if p < cfg.alpha && change.abs() >= cfg.min_change_pct {
        out.push((best_k, p));
        split(v, lo, best_k, min_seg, cfg, out);
        split(v, best_k, hi, min_seg, cfg, out);
    }
}

/// The segments between change points.
pub fn segments(values: &[f64], cps: &[ChangePoint]) -> Vec<Segment> {
    let mut bounds: Vec<usize> = vec![0];
    bounds.extend(cps.iter().map(|c| c.index));
    bounds.push(values.len());
    bounds
        .windows(2)
        .filter(|w| w[1] > w[0])
        .map(|w| Segment {
            start: w[0],
            end: w[1],
            mean: mean(&values[w[0]..w[1]]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(level: f64, n: usize, seed: usize) -> Vec<f64> {
        // Deterministic ±1 % wobble.
        (0..n)
            .map(|i| level * (1.0 + 0.01 * (((i + seed) * 37 % 11) as f64 / 5.0 - 1.0)))
            .collect()
    }

    #[test]
    fn a_flat_series_has_no_change_point() {
        assert!(detect(&noisy(100.0, 40, 0), &ChangePointConfig::default()).is_empty());
        assert!(detect(&[5.0; 10], &ChangePointConfig::default()).is_empty());
        assert!(detect(&[1.0, 2.0], &ChangePointConfig::default()).is_empty());
    }

    #[test]
    fn finds_a_step_and_a_step_back() {
        let mut v = noisy(100.0, 12, 0);
        v.extend(noisy(110.0, 10, 3));
        v.extend(noisy(100.0, 8, 5));
        let cps = detect(&v, &ChangePointConfig::default());
        assert_eq!(
            cps.iter().map(|c| c.index).collect::<Vec<_>>(),
            vec![12, 22]
        );
        assert!((cps[0].change_pct - 10.0).abs() < 1.0, "{cps:?}");
        assert!((cps[1].change_pct + 9.1).abs() < 1.0, "{cps:?}");
        let segs = segments(&v, &cps);
        assert_eq!(segs.len(), 3);
        assert_eq!((segs[1].start, segs[1].end), (12, 22));
    }

    #[test]
    fn small_shifts_and_short_tails_are_not_reported() {
        // 1 % shift: significant on this quiet series but below min_change_pct.
        let mut v = vec![100.0; 10];
        v.extend(vec![101.0; 10]);
        assert!(detect(&v, &ChangePointConfig::default()).is_empty());
        // A jump in the last two points: fewer than min_segment (3) after it.
        let mut v = noisy(100.0, 10, 0);
        v.extend([150.0, 150.0]);
        assert!(detect(&v, &ChangePointConfig::default()).is_empty());
        v.push(150.0);
        assert_eq!(detect(&v, &ChangePointConfig::default())[0].index, 10);
    }
}
