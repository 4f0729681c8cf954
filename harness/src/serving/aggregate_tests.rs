use super::*;
use crate::backend::{Emission, GenerationTrace};
use crate::serving::record::Failure;

const MS: u64 = 1_000_000;

/// A streamed, successful request: first token at `ttft` ms, then one token every `gap` ms.
fn streamed(ttft: u64, gap: u64, tokens: u32) -> RequestRecord {
    let emissions: Vec<Emission> = (0..tokens as u64)
        .map(|i| Emission {
            t_ns: (ttft + i * gap) * MS,
            tokens: 1,
        })
        .collect();
    RequestRecord {
        lateness_ns: 100_000,
        http_status: Some(200),
        input_tokens: 10,
        output_tokens: tokens as u64,
        requested_output_tokens: tokens as u64,
        streamed: true,
        e2e_ns: emissions.last().map_or(0, |e| e.t_ns),
        trace: GenerationTrace {
            batch: 1,
            prompt_tokens: 10,
            emissions,
        },
        ..Default::default()
    }
}

fn failed(kind: ErrorKind, status: Option<u16>) -> RequestRecord {
    RequestRecord {
        lateness_ns: 300_000,
        http_status: status,
        failure: Some(Failure {
            kind,
            message: format!("{} happened", kind.name()),
        }),
        requested_output_tokens: 4,
        ..Default::default()
    }
}

fn value(s: &Summary, id: MetricId) -> f64 {
    s.metrics
        .iter()
        .find(|m| m.name == id)
        .unwrap_or_else(|| panic!("no {id}"))
        .value
}

#[test]
fn goodput_on_hand_built_records() {
    let slo = Slo {
        ttft_ms: Some(150.0),
        tpot_ms: Some(20.0),
        e2el_ms: None,
    };
    let mut agg = Aggregate::new(slo, 1000, 7);
    // good: TTFT 100 ms, TPOT (130 - 100) / 3 = 10 ms
    agg.add(&streamed(100, 10, 4));
    // misses TTFT (300 ms)
    agg.add(&streamed(300, 10, 4));
    // misses TPOT (30 ms)
    agg.add(&streamed(50, 30, 4));
    // one token: no TPOT, TTFT 140 ms -> good
    agg.add(&streamed(140, 0, 1));
    // failures never count, whatever their latency
    agg.add(&failed(ErrorKind::Http5xx, Some(503)));
    agg.add(&failed(ErrorKind::Http4xx, Some(429)));
    agg.add(&failed(ErrorKind::Connection, None));
    let s = agg.finish(2.0, 1.5, 3);
    // 2 good requests in a 2 s window
    assert_eq!(value(&s, MetricId::Goodput), 1.0);
    // 2 good of 7 sent
    assert!((value(&s, MetricId::SloAttainment) - 100.0 * 2.0 / 7.0).abs() < 1e-9);
    // 4 completed in 2 s; 13 output tokens, 40 prompt tokens
    assert_eq!(value(&s, MetricId::RequestThroughput), 2.0);
    assert_eq!(value(&s, MetricId::OutputThroughput), 6.5);
    assert_eq!(value(&s, MetricId::TotalThroughput), 26.5);
    // 7 sends over 1.5 s: 6 gaps -> 4 req/s
    assert_eq!(value(&s, MetricId::SendRate), 4.0);
    assert_eq!(value(&s, MetricId::RequestsCompleted), 4.0);
    assert_eq!(value(&s, MetricId::RequestsFailed), 3.0);
    assert_eq!(value(&s, MetricId::FailuresHttp5xx), 1.0);
    assert_eq!(value(&s, MetricId::FailuresHttp4xx), 1.0);
    assert_eq!(value(&s, MetricId::FailuresConnection), 1.0);
    assert!(!s
        .metrics
        .iter()
        .any(|m| m.name == MetricId::FailuresTimeout));
    assert_eq!(value(&s, MetricId::PeakConcurrency), 3.0);
    // TTFT samples of the completed requests: 100, 300, 50, 140
    let ttft = s.metrics.iter().find(|m| m.name == MetricId::Ttft).unwrap();
    assert_eq!(ttft.samples, vec![100.0, 300.0, 50.0, 140.0]);
    // TPOT: 10, 10, 30 (the single-token request has none)
    let tpot = s.metrics.iter().find(|m| m.name == MetricId::Tpot).unwrap();
    assert_eq!(tpot.samples, vec![10.0, 10.0, 30.0]);
    // lateness of every sent request: 4 x 0.1 ms and 3 x 0.3 ms
    let late = s
        .metrics
        .iter()
        .find(|m| m.name == MetricId::ArrivalLateness)
        .unwrap();
    assert_eq!(late.samples.len(), 7);
    assert!((late.value - (0.4 + 0.9) / 7.0).abs() < 1e-12);
    assert_eq!(s.work.requests, 4);
    assert_eq!(s.work.output_tokens, 13);
    assert!(s
        .notes
        .iter()
        .any(|n| n.contains("HTTP 429 x1, HTTP 503 x1")));
    assert!(s
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::RequestFailures));
}

#[test]
fn no_slo_means_no_goodput() {
    let mut agg = Aggregate::new(Slo::default(), 10, 1);
    agg.add(&streamed(10, 1, 2));
    let s = agg.finish(1.0, 0.0, 1);
    assert!(!s.metrics.iter().any(|m| m.name == MetricId::Goodput));
    assert!(!s.metrics.iter().any(|m| m.name == MetricId::SendRate));
}

#[test]
fn samples_beyond_the_cap_keep_memory_flat_and_say_so() {
    let cap = 100;
    let mut d = Dist::new(cap, 3);
    for i in 0..10_000 {
        d.add(i as f64 / 10.0); // 0.0 .. 999.9 ms
    }
    assert_eq!(d.reservoir.len(), cap);
    let m = d.metric(MetricId::E2eLatency, 3).unwrap();
    let s = m.stats.as_ref().unwrap();
    assert_eq!(s.count, 10_000);
    assert_eq!(m.samples_total, Some(10_000));
    assert_eq!(m.samples.len(), cap);
    assert!(m.source.contains("samples capped"));
    // exact mean and min/max; histogram percentiles within 0.1 %
    assert!((s.mean - 499.95).abs() < 1e-9);
    assert_eq!((s.min, s.max), (0.0, 999.9));
    assert!((s.p50 - 500.0).abs() / 500.0 < 2e-3, "{}", s.p50);
    assert!((s.p99 - 990.0).abs() / 990.0 < 2e-3, "{}", s.p99);
    // the sample stdev of 0..999.9 in steps of 0.1
    let exact = crate::stats::stdev(&(0..10_000).map(|i| i as f64 / 10.0).collect::<Vec<_>>());
    assert!((s.stdev - exact).abs() < 1e-6);
}

#[test]
fn within_the_cap_statistics_are_exact() {
    let mut d = Dist::new(100, 3);
    for x in [1.0, 2.0, 3.0, 4.0] {
        d.add(x);
    }
    let m = d.metric(MetricId::Ttft, 3).unwrap();
    assert_eq!(m.samples, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(m.stats.unwrap().p50, 2.5);
    assert_eq!(m.samples_total, None);
}

#[test]
fn short_outputs_and_spread_counts_are_reported() {
    let mut agg = Aggregate::new(Slo::default(), 10, 1);
    let mut r = streamed(10, 1, 2);
    r.requested_output_tokens = 8;
    r.token_counts = TokenCounts::Spread;
    agg.add(&r);
    let s = agg.finish(1.0, 0.0, 1);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::ShortOutputs));
    assert!(s.notes.iter().any(|n| n.contains("spread evenly")));
}
