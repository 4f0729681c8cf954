//! Dynascore (Ma et al., "Dynaboard", NeurIPS 2021), exactly as docs/metrics.md#pareto-fronts-and-dynascore
//! defines it, and [`default_setup`], the one policy for its default metrics and weights.
//!
//! For each metric M (performance first): utility u_M = dir_M · M + offset_M, dir = -1 for
//! lower-is-better metrics (offset = a budget, e.g. instance memory), else +1 (offset 0 by
//! default). Sort models by performance ascending, difference consecutive models, keep pairs
//! with |Δperformance| > 1e-4 · max|performance|, and AMRS_M = mean(|Δu_M| / Δperformance)
//! over those pairs (AMRS of performance = 1). Dynascore = Σ_M w_M · u_M / |AMRS_M| with the
//! weights normalised to sum 1. A front end that re-ranks live (the leaderboard site) must use
//! exactly these lines.

use crate::metric::{Better, MetricId};

/// Dynaboard's default weight of the performance metric: perf : throughput : memory :
/// fairness : robustness = 4 : 1 : 1 : 1 : 1 (effbench measures no fairness or robustness).
pub const PERFORMANCE_WEIGHT: f64 = 4.0;
/// Default weight of every other metric that has a role in the default set-up.
pub const OTHER_WEIGHT: f64 = 1.0;

/// The default weight of a configured metric without one (`name[:sense]`).
pub fn default_weight(is_performance: bool) -> f64 {
    if is_performance {
        PERFORMANCE_WEIGHT
    } else {
        OTHER_WEIGHT
    }
}

/// Performance metrics in order of preference: the task's quality when the runs measure it
/// (language-model perplexity; retrieval quality, MS MARCO style), else generation speed.
const PERFORMANCE: [MetricId; 5] = [
    MetricId::Perplexity,
    MetricId::NdcgAt10,
    MetricId::RecallAt10,
    MetricId::OverlapAt10,
    MetricId::OutputThroughput,
];

/// The default Dynascore over `candidates`, every metric that all compared runs have with its
/// values (one per run, in any fixed run order). The one policy behind `analysis.json` and
/// the leaderboard site:
/// - **performance** (weight 4): the first of perplexity, ndcg_at_10, recall_at_10,
///   overlap_at_10, output_throughput that varies, else the first varying higher-is-better
///   candidate (none: `None`);
/// - weight 1 each, when they vary: **throughput** `output_throughput`, **latency** `ttft`
///   and (retrieval) `query_latency`, **cost** `cost_per_1k_queries`, **memory** `peak_rss`
///   (`model_bytes` when the runs have no varying `peak_rss`);
/// - every other candidate weight 0 (a reader can raise it), as is a metric that does not vary;
/// - offsets: 0 for higher-is-better metrics; for lower-is-better ones the largest value seen
///   (the "budget"), which keeps utilities non-negative and changes no ranking.
///
/// Returns `(candidate index, metric)` pairs, performance first, then the candidates in order.
pub fn default_setup(candidates: &[(MetricId, Vec<f64>)]) -> Option<Vec<(usize, DynaMetric)>> {
    let varies = |k: usize| {
        let v = &candidates[k].1;
        v.iter().any(|x| *x != v[0])
    };
    let find = |id: MetricId| {
        candidates
            .iter()
            .position(|(c, _)| *c == id)
            .filter(|&k| varies(k))
    };
    let perf = PERFORMANCE.iter().find_map(|&id| find(id)).or_else(|| {
        (0..candidates.len()).find(|&k| candidates[k].0.better() == Better::Higher && varies(k))
    })?;
    let memory = find(MetricId::PeakRss).or_else(|| find(MetricId::ModelBytes));
    let roles = [
        find(MetricId::OutputThroughput),
        find(MetricId::Ttft),
        find(MetricId::QueryLatency),
        find(MetricId::CostPer1kQueries),
        memory,
    ];
    let order = std::iter::once(perf).chain((0..candidates.len()).filter(|&k| k != perf));
    Some(
        order
            .map(|k| {
                let (id, values) = &candidates[k];
                let weight = if k == perf {
                    PERFORMANCE_WEIGHT
                } else if roles.contains(&Some(k)) {
                    OTHER_WEIGHT
                } else {
                    0.0
                };
                let offset = match id.better() {
                    Better::Lower => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    Better::Higher => 0.0,
                };
                let m = DynaMetric {
                    name: id.name().to_string(),
                    better: id.better(),
                    weight,
                    offset,
                };
                (k, m)
            })
            .collect(),
    )
}

/// One metric column of a Dynascore table.
#[derive(Debug, Clone, PartialEq)]
pub struct DynaMetric {
    pub name: String,
    pub better: Better,
    pub weight: f64,
    pub offset: f64,
}

/// Score of one model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DynaRow {
    /// Index of the model in the input.
    pub index: usize,
    pub dynascore: f64,
    /// 1 + number of models with a strictly higher score.
    pub rank: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DynaResult {
    /// Sorted best first (ties keep input order).
    pub rows: Vec<DynaRow>,
    /// AMRS per metric, in input order (performance first, = 1).
    pub amrs: Vec<f64>,
    /// Weights after normalisation.
    pub weights: Vec<f64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DynaError {
    #[error("Dynascore needs at least 2 models, got {0}")]
    TooFewRows(usize),
    #[error("row {row} has {got} values but there are {want} metrics")]
    Dimension { row: usize, got: usize, want: usize },
    #[error("row {row}, metric '{metric}': value is not a finite number")]
    NotFinite { row: usize, metric: String },
    #[error("the performance metric '{0}' is the same for every model, so no trade-off rate can be measured")]
    FlatPerformance(String),
    #[error("metric '{0}' does not change between models (AMRS = 0); drop it or give it weight 0")]
    ZeroVariance(String),
    #[error("weights must be finite, >= 0 and not all 0")]
    BadWeights,
}

/// Scores `rows` (one value per metric each; `metrics[0]` is the performance metric).
pub fn dynascore(metrics: &[DynaMetric], rows: &[Vec<f64>]) -> Result<DynaResult, DynaError> {
    if rows.len() < 2 {
        return Err(DynaError::TooFewRows(rows.len()));
    }
    for (row, r) in rows.iter().enumerate() {
        if r.len() != metrics.len() {
            return Err(DynaError::Dimension {
                row,
                got: r.len(),
                want: metrics.len(),
            });
        }
        if let Some(m) = r.iter().position(|v| !v.is_finite()) {
            return Err(DynaError::NotFinite {
                row,
                metric: metrics[m].name.clone(),
            });
        }
    }
    let wsum: f64 = metrics.iter().map(|m| m.weight).sum();
    if metrics
        .iter()
        .any(|m| !m.weight.is_finite() || m.weight < 0.0)
        || wsum <= 0.0
    {
        return Err(DynaError::BadWeights);
    }
    let weights: Vec<f64> = metrics.iter().map(|m| m.weight / wsum).collect();
    let utility = |m: &DynaMetric, v: f64| m.better.sign() * v + m.offset;
    let u: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().zip(metrics).map(|(v, m)| utility(m, *v)).collect())
        .collect();

    // AMRS from consecutive models sorted by performance (utility of metric 0).
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| u[a][0].total_cmp(&u[b][0]));
    let max_perf = u.iter().map(|r| r[0].abs()).fold(0.0, f64::max);
    let pairs: Vec<(usize, usize)> = order
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|&(a, b)| (u[b][0] - u[a][0]).abs() > 1e-4 * max_perf)
        .collect();
    if pairs.is_empty() {
        return Err(DynaError::FlatPerformance(metrics[0].name.clone()));
    }
    let mut amrs = vec![1.0; metrics.len()];
    for (k, slot) in amrs.iter_mut().enumerate().skip(1) {
        let rates: f64 = pairs
            .iter()
            .map(|&(a, b)| (u[b][k] - u[a][k]).abs() / (u[b][0] - u[a][0]))
            .sum();
        *slot = rates / pairs.len() as f64;
        if *slot == 0.0 && weights[k] > 0.0 {
            return Err(DynaError::ZeroVariance(metrics[k].name.clone()));
        }
    }
    let scores: Vec<f64> = u
        .iter()
        .map(|r| {
            (0..metrics.len())
                .filter(|&k| weights[k] > 0.0)
                .map(|k| weights[k] * r[k] / amrs[k].abs())
                .sum()
        })
        .collect();
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    // Sorted best first, so a model's rank is 1 + the position of the first model with its
    // score (equal scores share a rank); O(n) after the sort.
    let mut out: Vec<DynaRow> = Vec::with_capacity(idx.len());
    for (pos, &i) in idx.iter().enumerate() {
        let rank = match out.last() {
            Some(prev) if prev.dynascore == scores[i] => prev.rank,
            _ => pos + 1,
        };
        out.push(DynaRow {
            index: i,
            dynascore: scores[i],
            rank,
        });
    }
    Ok(DynaResult {
        rows: out,
        amrs,
        weights,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, better: Better, weight: f64, offset: f64) -> DynaMetric {
        DynaMetric {
            name: name.into(),
            better,
            weight,
            offset,
        }
    }

    #[test]
    fn hand_worked_table() {
        // Three models: accuracy (perf, higher), throughput (higher), memory GB (lower, budget 16).
        //   A: acc 70, thr 100, mem 4
        //   B: acc 80, thr  50, mem 8
        //   C: acc 90, thr  20, mem 12
        // Utilities: perf = acc; thr = thr; mem = -mem + 16 -> A 12, B 8, C 4.
        // Sorted by acc: A, B, C; Δacc = 10, 10 (both > 1e-4 * 90).
        // AMRS_thr = mean(|50-100|/10, |20-50|/10) = mean(5, 3) = 4
        // AMRS_mem = mean(|8-12|/10, |4-8|/10) = mean(0.4, 0.4) = 0.4
        // Weights 4:1:1 -> 4/6, 1/6, 1/6.
        // A = 4/6*70 + 1/6*100/4 + 1/6*12/0.4 = 46.6667 + 4.1667 + 5 = 55.8333
        // B = 4/6*80 + 1/6*50/4  + 1/6*8/0.4  = 53.3333 + 2.0833 + 3.3333 = 58.75
        // C = 4/6*90 + 1/6*20/4  + 1/6*4/0.4  = 60 + 0.8333 + 1.6667 = 62.5
        let metrics = [
            m("acc", Better::Higher, 4.0, 0.0),
            m("thr", Better::Higher, 1.0, 0.0),
            m("mem", Better::Lower, 1.0, 16.0),
        ];
        let rows = vec![
            vec![70.0, 100.0, 4.0],
            vec![80.0, 50.0, 8.0],
            vec![90.0, 20.0, 12.0],
        ];
        let r = dynascore(&metrics, &rows).unwrap();
        for (got, want) in r.amrs.iter().zip([1.0, 4.0, 0.4]) {
            assert!((got - want).abs() < 1e-12, "AMRS {got} vs {want}");
        }
        let want = [(2, 62.5), (1, 58.75), (0, 55.833333333333336)];
        for (row, (index, score)) in r.rows.iter().zip(want) {
            assert_eq!(row.index, index);
            assert!(
                (row.dynascore - score).abs() < 1e-9,
                "{} vs {score}",
                row.dynascore
            );
        }
        assert_eq!(r.rows.iter().map(|r| r.rank).collect::<Vec<_>>(), [1, 2, 3]);
        // Heavier throughput weight changes the order: 1:4:0 -> A = .2*70 + .8*25 = 34,
        // B = 16 + 10 = 26, C = 18 + 4 = 22.
        let metrics2 = [
            m("acc", Better::Higher, 1.0, 0.0),
            m("thr", Better::Higher, 4.0, 0.0),
            m("mem", Better::Lower, 0.0, 16.0),
        ];
        let r2 = dynascore(&metrics2, &rows).unwrap();
        assert_eq!(r2.rows[0].index, 0);
        assert!((r2.rows[0].dynascore - 34.0).abs() < 1e-9);
    }

    #[test]
    fn hand_worked_lower_is_better_performance_with_an_offset() {
        // Perplexity as the performance metric (lower is better), latency ms (lower, budget 50).
        //   P: ppl 10, lat 40    Q: ppl 12, lat 20    R: ppl 16, lat 10
        // Utilities: perf = -ppl -> P -10, Q -12, R -16; lat = -lat + 50 -> P 10, Q 30, R 40.
        // Sorted by perf utility: R (-16), Q (-12), P (-10); Δ = 4, 2 (> 1e-4 * 16).
        // AMRS_lat = mean(|30 - 40| / 4, |10 - 30| / 2) = mean(2.5, 10) = 6.25.
        // Weights 4:1 -> 0.8, 0.2.
        // P = 0.8 * -10 + 0.2 * 10 / 6.25 = -8 + 0.32 = -7.68
        // Q = 0.8 * -12 + 0.2 * 30 / 6.25 = -9.6 + 0.96 = -8.64
        // R = 0.8 * -16 + 0.2 * 40 / 6.25 = -12.8 + 1.28 = -11.52
        let metrics = [
            m("ppl", Better::Lower, 4.0, 0.0),
            m("lat", Better::Lower, 1.0, 50.0),
        ];
        let rows = vec![vec![10.0, 40.0], vec![12.0, 20.0], vec![16.0, 10.0]];
        let r = dynascore(&metrics, &rows).unwrap();
        assert!((r.amrs[1] - 6.25).abs() < 1e-12, "{}", r.amrs[1]);
        let want = [(0, -7.68), (1, -8.64), (2, -11.52)];
        for (row, (index, score)) in r.rows.iter().zip(want) {
            assert_eq!(row.index, index);
            assert!(
                (row.dynascore - score).abs() < 1e-12,
                "{} vs {score}",
                row.dynascore
            );
        }
        // The offset shifts every score by w * offset / AMRS = 0.2 * 50 / 6.25 = 1.6 and
        // leaves the ranking alone.
        let no_offset = [metrics[0].clone(), m("lat", Better::Lower, 1.0, 0.0)];
        let r0 = dynascore(&no_offset, &rows).unwrap();
        for (a, b) in r.rows.iter().zip(&r0.rows) {
            assert_eq!(a.index, b.index);
            assert!((a.dynascore - b.dynascore - 1.6).abs() < 1e-12);
        }
        // Units do not matter: latency in µs (and the budget with it) gives the same scores.
        let us = [metrics[0].clone(), m("lat", Better::Lower, 1.0, 50_000.0)];
        let rows_us: Vec<Vec<f64>> = rows.iter().map(|r| vec![r[0], r[1] * 1000.0]).collect();
        let r_us = dynascore(&us, &rows_us).unwrap();
        for (a, b) in r.rows.iter().zip(&r_us.rows) {
            assert!((a.dynascore - b.dynascore).abs() < 1e-9);
        }
    }

    #[test]
    fn small_performance_steps_are_ignored_and_ties_share_rank() {
        let metrics = [
            m("acc", Better::Higher, 1.0, 0.0),
            m("thr", Better::Higher, 1.0, 0.0),
        ];
        // the first two differ by 1e-6 in accuracy (< 1e-4 * 2), so only one pair counts
        let rows = vec![vec![1.0, 10.0], vec![1.000001, 10.0], vec![2.0, 8.0]];
        let r = dynascore(&metrics, &rows).unwrap();
        // AMRS_thr from the kept pair (1.000001 -> 2): |8 - 10| / 0.999999
        assert!((r.amrs[1] - 2.0 / 0.999999).abs() < 1e-12);
        // two identical models share a rank: 1 + the number of strictly better ones
        let tied = dynascore(
            &metrics,
            &[
                vec![1.0, 2.0],
                vec![1.0, 2.0],
                vec![3.0, 1.0],
                vec![4.0, 4.0],
            ],
        )
        .unwrap();
        let rank_of = |i: usize| tied.rows.iter().find(|r| r.index == i).unwrap().rank;
        assert_eq!(rank_of(0), rank_of(1));
        let better = tied
            .rows
            .iter()
            .filter(|r| r.dynascore > tied.rows.iter().find(|r| r.index == 0).unwrap().dynascore)
            .count();
        assert_eq!(rank_of(0), 1 + better);
    }

    #[test]
    fn errors() {
        let metrics = [
            m("acc", Better::Higher, 1.0, 0.0),
            m("thr", Better::Higher, 1.0, 0.0),
        ];
        assert_eq!(
            dynascore(&metrics, &[vec![1.0, 2.0]]).unwrap_err(),
            DynaError::TooFewRows(1)
        );
        assert_eq!(
            dynascore(&metrics, &[vec![1.0, 2.0], vec![1.0, 3.0]]).unwrap_err(),
            DynaError::FlatPerformance("acc".into())
        );
        assert_eq!(
            dynascore(&metrics, &[vec![1.0, 2.0], vec![2.0, 2.0]]).unwrap_err(),
            DynaError::ZeroVariance("thr".into())
        );
        assert!(matches!(
            dynascore(&metrics, &[vec![1.0, f64::NAN], vec![2.0, 2.0]]).unwrap_err(),
            DynaError::NotFinite { row: 0, .. }
        ));
        let zero = [
            m("acc", Better::Higher, 0.0, 0.0),
            m("thr", Better::Higher, 0.0, 0.0),
        ];
        assert_eq!(
            dynascore(&zero, &[vec![1.0, 2.0], vec![2.0, 3.0]]).unwrap_err(),
            DynaError::BadWeights
        );
    }

    #[test]
    fn default_setup_is_dynaboards_4_1_1() {
        use MetricId::*;
        let c = |id, v: &[f64]| (id, v.to_vec());
        // quality measured: perplexity is performance; throughput, ttft, peak_rss weight 1;
        // tpot 0; model_bytes 0 (peak_rss is the memory); e2e does not vary
        let cands = [
            c(Ttft, &[5.0, 6.0]),
            c(Tpot, &[1.0, 2.0]),
            c(E2eLatency, &[3.0, 3.0]),
            c(OutputThroughput, &[100.0, 90.0]),
            c(PeakRss, &[10.0, 20.0]),
            c(ModelBytes, &[4.0, 2.0]),
            c(Perplexity, &[9.0, 8.0]),
        ];
        let s = default_setup(&cands).unwrap();
        let got: Vec<(&str, f64, f64)> = s
            .iter()
            .map(|(_, m)| (m.name.as_str(), m.weight, m.offset))
            .collect();
        assert_eq!(
            got,
            [
                ("perplexity", 4.0, 9.0),
                ("ttft", 1.0, 6.0),
                ("tpot", 0.0, 2.0),
                ("e2e_latency", 0.0, 3.0),
                ("output_throughput", 1.0, 0.0),
                ("peak_rss", 1.0, 20.0),
                ("model_bytes", 0.0, 4.0),
            ]
        );
        assert_eq!(s[0].0, 6);
        // no quality: throughput is performance; model_bytes is the memory without peak_rss
        let s = default_setup(&[
            c(OutputThroughput, &[100.0, 90.0]),
            c(ModelBytes, &[4.0, 2.0]),
        ])
        .unwrap();
        assert_eq!(s[0].1.name, "output_throughput");
        assert_eq!((s[0].1.weight, s[1].1.weight), (4.0, 1.0));
        // a flat preferred metric gives way to one that varies; nothing higher-is-better: none
        let s = default_setup(&[c(Perplexity, &[3.0, 3.0]), c(Mfu, &[1.0, 2.0])]).unwrap();
        assert_eq!((s[0].1.name.as_str(), s[1].1.weight), ("mfu", 0.0));
        assert!(default_setup(&[c(Ttft, &[1.0, 2.0])]).is_none());
    }
}
