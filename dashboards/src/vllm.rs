//! A serving run as `vllm bench serve`'s result JSON (`--save-result`), so dashboards and
//! scripts built for vLLM read effbench's runs: `date`, `backend`, `model_id`, `num_prompts`,
//! `request_rate`, `burstiness`, `max_concurrency`, `duration`, `completed`, `failed`, token
//! totals and throughputs, `request_goodput`, `mean_/median_/std_/pNN_{ttft,tpot,itl,e2el}_ms`,
//! `max_output_tokens_per_s`, `max_concurrent_requests`, and with `detailed` the per-request
//! `input_lens`, `output_lens`, `ttfts`, `itls`, `start_times`, `errors` (seconds, as vLLM).
//!
//! With the run's per-request records (`<id>.requests.jsonl`) every statistic is computed
//! from every request the way vLLM computes it: ITL is the gap between streamed chunks
//! (effbench's own `itl` metric splits a k-token chunk into k gaps), standard deviations are
//! population ones, percentiles linear (numpy's default). Without records the run's own
//! statistics are used and `effbench_notes` says what differs. vLLM's `generated_texts` are
//! not kept by effbench and are left out.

use effbench_harness::serving::lines::RequestLine;
use effbench_harness::stats::percentile_sorted;
use effbench_harness::{MetricId, RunResult};
use serde_json::{json, Map, Value};

/// What to include.
#[derive(Debug, Clone)]
pub struct Options {
    /// `ttft,tpot,itl,e2el` subset (vLLM's `--percentile-metrics`; default `ttft,tpot,itl`).
    pub percentile_metrics: Vec<String>,
    /// Percentiles (vLLM's `--metric-percentiles`; default 99).
    pub percentiles: Vec<f64>,
    /// Per-request lists (vLLM's `--save-detailed`).
    pub detailed: bool,
    /// `label` (vLLM's `--label`).
    pub label: Option<String>,
    /// Extra top-level keys (vLLM's `--metadata KEY=VALUE`).
    pub metadata: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            percentile_metrics: vec!["ttft".into(), "tpot".into(), "itl".into()],
            percentiles: vec![99.0],
            detailed: false,
            label: None,
            metadata: Vec::new(),
        }
    }
}

/// Parses `ttft,tpot,itl,e2el` (vLLM's names).
pub fn parse_metrics(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for m in text.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        if !["ttft", "tpot", "itl", "e2el"].contains(&m) {
            return Err(format!(
                "--percentile-metrics: '{m}' is not one of ttft, tpot, itl, e2el"
            ));
        }
        out.push(m.to_string());
    }
    Ok(out)
}

/// Parses `25,50,99.9`.
pub fn parse_percentiles(text: &str) -> Result<Vec<f64>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<f64>()
                .ok()
                .filter(|x| (0.0..=100.0).contains(x))
                .ok_or_else(|| format!("--metric-percentiles: '{p}' is not a number in [0, 100]"))
        })
        .collect()
}

/// `99` -> "99", `99.9` -> "99.9" (vLLM's key spelling).
fn p_word(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}

/// Mean, median, population standard deviation and percentiles of `xs` in vLLM's keys.
fn put_stats(out: &mut Map<String, Value>, name: &str, xs: &mut [f64], percentiles: &[f64]) {
    xs.sort_by(f64::total_cmp);
    let (mean, median, std) = if xs.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, percentile_sorted(xs, 0.5), var.sqrt())
    };
    out.insert(format!("mean_{name}_ms"), json!(mean));
    out.insert(format!("median_{name}_ms"), json!(median));
    out.insert(format!("std_{name}_ms"), json!(std));
    for &p in percentiles {
        let v = if xs.is_empty() {
            0.0
        } else {
            percentile_sorted(xs, p / 100.0)
        };
        out.insert(format!("p{}_{name}_ms", p_word(p)), json!(v));
    }
}

fn metric_value(r: &RunResult, id: MetricId) -> Option<f64> {
    r.metric(id).map(|m| m.value)
}

/// `started_at` (RFC 3339) as vLLM's `%Y%m%d-%H%M%S`.
fn date(started_at: &str) -> String {
    let digits: String = started_at
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    if digits.len() == 14 {
        format!("{}-{}", &digits[..8], &digits[8..])
    } else {
        started_at.to_string()
    }
}

/// vLLM's request rate value: a number, or "inf".
fn request_rate(r: &RunResult) -> Value {
    match r.config.param("request_rate") {
        Some(v) => v.as_f64().map_or_else(|| json!("inf"), |x| json!(x)),
        None => json!("inf"),
    }
}

/// The vLLM result object of a serving run; `records` are its per-request lines, if kept.
pub fn result(r: &RunResult, records: Option<&[RequestLine]>, o: &Options) -> Value {
    let mut out = Map::new();
    let serving = r.config.serving.as_ref();
    let chat = serving.is_some_and(|s| s.endpoint == effbench_harness::records::Endpoint::Chat);
    let backend = if chat { "openai-chat" } else { "openai" };
    out.insert("date".into(), json!(date(&r.started_at)));
    out.insert("endpoint_type".into(), json!(backend));
    out.insert("backend".into(), json!(backend));
    out.insert("label".into(), json!(o.label));
    out.insert("model_id".into(), json!(r.config.model().reference));
    out.insert(
        "tokenizer_id".into(),
        json!(serving.and_then(|s| s.tokenizer.clone())),
    );
    out.insert(
        "num_prompts".into(),
        json!(serving.map_or(r.iterations, |s| s.num_prompts)),
    );
    for (k, v) in &o.metadata {
        out.insert(k.clone(), json!(v));
    }
    out.insert("request_rate".into(), request_rate(r));
    out.insert(
        "burstiness".into(),
        json!(r
            .config
            .param("burstiness")
            .and_then(|v| v.as_f64())
            .unwrap_or(1.0)),
    );
    let mc = r
        .config
        .param("max_concurrency")
        .and_then(|v| v.as_i64())
        .filter(|&c| c > 0);
    out.insert("max_concurrency".into(), json!(mc));
    let dur = r.measured_s;
    out.insert("duration".into(), json!(dur));
    let per_s = |x: f64| if dur > 0.0 { x / dur } else { 0.0 };
    let mut notes: Vec<String> = Vec::new();
    match records {
        Some(lines) => {
            let ok: Vec<&RequestLine> = lines.iter().filter(|l| l.ok).collect();
            let tin: u64 = ok.iter().map(|l| l.tokens_in).sum();
            let tout: u64 = ok.iter().map(|l| l.tokens_out).sum();
            out.insert("completed".into(), json!(ok.len()));
            out.insert("failed".into(), json!(lines.len() - ok.len()));
            out.insert("total_input_tokens".into(), json!(tin));
            out.insert("total_output_tokens".into(), json!(tout));
            out.insert("request_throughput".into(), json!(per_s(ok.len() as f64)));
            out.insert(
                "request_goodput".into(),
                json!(metric_value(r, MetricId::Goodput)),
            );
            out.insert("output_throughput".into(), json!(per_s(tout as f64)));
            out.insert(
                "total_token_throughput".into(),
                json!(per_s((tin + tout) as f64)),
            );
            let (peak_tok, peak_conc) = peaks(&ok);
            out.insert("max_output_tokens_per_s".into(), json!(peak_tok));
            out.insert("max_concurrent_requests".into(), json!(peak_conc));
            for name in &o.percentile_metrics {
                let mut xs: Vec<f64> = match name.as_str() {
                    "ttft" => ok.iter().filter_map(|l| l.ttft_ms).collect(),
                    "e2el" => ok.iter().filter_map(|l| l.e2el_ms).collect(),
                    "tpot" => ok
                        .iter()
                        .filter(|l| l.tokens_out > 1)
                        .filter_map(|l| Some((l.e2el_ms? - l.ttft_ms?) / (l.tokens_out - 1) as f64))
                        .collect(),
                    _ => ok.iter().flat_map(|l| l.itl_ms()).collect(),
                };
                put_stats(&mut out, name, &mut xs, &o.percentiles);
            }
            if o.detailed {
                let s = |ms: f64| ms / 1e3;
                out.insert(
                    "input_lens".into(),
                    json!(lines.iter().map(|l| l.tokens_in).collect::<Vec<_>>()),
                );
                out.insert(
                    "output_lens".into(),
                    json!(lines
                        .iter()
                        .map(|l| if l.ok { l.tokens_out } else { 0 })
                        .collect::<Vec<_>>()),
                );
                out.insert(
                    "ttfts".into(),
                    json!(lines
                        .iter()
                        .map(|l| l.ttft_ms.map_or(0.0, s))
                        .collect::<Vec<_>>()),
                );
                out.insert(
                    "itls".into(),
                    json!(lines
                        .iter()
                        .map(|l| l.itl_ms().into_iter().map(s).collect::<Vec<_>>())
                        .collect::<Vec<_>>()),
                );
                out.insert(
                    "latencies".into(),
                    json!(lines
                        .iter()
                        .map(|l| l.e2el_ms.map_or(0.0, s))
                        .collect::<Vec<_>>()),
                );
                out.insert(
                    "start_times".into(),
                    json!(lines.iter().map(|l| s(l.send_ms)).collect::<Vec<_>>()),
                );
                out.insert(
                    "errors".into(),
                    json!(lines
                        .iter()
                        .map(|l| l.error.clone().unwrap_or_default())
                        .collect::<Vec<_>>()),
                );
                notes.push("start_times are seconds since the start of the measured window; generated_texts are not kept by effbench".into());
            }
        }
        None => {
            let v = |id| metric_value(r, id);
            let completed = v(MetricId::RequestsCompleted).unwrap_or(0.0);
            out.insert("completed".into(), json!(completed as u64));
            out.insert(
                "failed".into(),
                json!(v(MetricId::RequestsFailed).unwrap_or(0.0) as u64),
            );
            let (tin, tout) = r.log.iter().find_map(|l| token_totals(l)).unwrap_or((0, 0));
            out.insert("total_input_tokens".into(), json!(tin));
            out.insert("total_output_tokens".into(), json!(tout));
            out.insert(
                "request_throughput".into(),
                json!(v(MetricId::RequestThroughput)),
            );
            out.insert("request_goodput".into(), json!(v(MetricId::Goodput)));
            out.insert(
                "output_throughput".into(),
                json!(v(MetricId::OutputThroughput)),
            );
            out.insert(
                "total_token_throughput".into(),
                json!(v(MetricId::TotalThroughput)),
            );
            out.insert(
                "max_concurrent_requests".into(),
                json!(v(MetricId::PeakConcurrency).map(|x| x as u64)),
            );
            for name in &o.percentile_metrics {
                let id = match name.as_str() {
                    "ttft" => MetricId::Ttft,
                    "tpot" => MetricId::Tpot,
                    "e2el" => MetricId::E2eLatency,
                    _ => MetricId::Itl,
                };
                let Some(m) = r.metric(id) else {
                    let mut empty = Vec::new();
                    put_stats(&mut out, name, &mut empty, &o.percentiles);
                    continue;
                };
                let mut xs = m.samples.clone();
                put_stats(&mut out, name, &mut xs, &o.percentiles);
                if let (Some(s), Some(total)) = (&m.stats, m.samples_total) {
                    // Capped samples: mean and median from every request.
                    out.insert(format!("mean_{name}_ms"), json!(s.mean));
                    out.insert(format!("median_{name}_ms"), json!(s.p50));
                    notes.push(format!(
                        "{name}: percentiles and std from a uniform sample of {} of {total} values",
                        m.samples.len()
                    ));
                }
            }
            notes.push("no per-request records: statistics from the run's metrics; itl splits a k-token chunk into k gaps (vLLM counts one gap per chunk), max_output_tokens_per_s is unknown".into());
            if o.detailed {
                notes.push("per-request lists need the run's per-request records".into());
            }
        }
    }
    out.insert(
        "effbench_run".into(),
        json!({"id": r.id, "status": r.status.state, "label": r.label()}),
    );
    if !notes.is_empty() {
        out.insert("effbench_notes".into(), json!(notes));
    }
    Value::Object(out)
}

/// `tokens: 10 prompt, 20 output of ...` (the load generator's log line).
fn token_totals(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("tokens: ")?;
    let mut it = rest.split_whitespace();
    let tin = it.next()?.parse().ok()?;
    let _ = it.next()?;
    let tout = it.next()?.trim_end_matches(',').parse().ok()?;
    Some((tin, tout))
}

/// vLLM's peaks: most output tokens in one whole second since the first send, and most
/// requests in flight at once (sweep over [send, send + latency)).
fn peaks(ok: &[&RequestLine]) -> (f64, u64) {
    let Some(t0) = ok.iter().map(|l| l.send_ms).reduce(f64::min) else {
        return (0.0, 0);
    };
    let mut buckets: Vec<u64> = Vec::new();
    let mut events: Vec<(f64, i32)> = Vec::new();
    for l in ok {
        let counts = if l.token_counts.is_empty() {
            vec![1; l.token_ms.len()]
        } else {
            l.token_counts.clone()
        };
        for (t, k) in l.token_ms.iter().zip(counts) {
            let b = ((l.send_ms + t - t0) / 1e3).floor().max(0.0) as usize;
            if buckets.len() <= b {
                buckets.resize(b + 1, 0);
            }
            buckets[b] += u64::from(k);
        }
        let end = l.send_ms + l.e2el_ms.unwrap_or(0.0);
        events.push((l.send_ms, 1));
        events.push((end, -1));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut cur, mut peak) = (0i64, 0i64);
    for (_, d) in events {
        cur += i64::from(d);
        peak = peak.max(cur);
    }
    (
        buckets.iter().copied().max().unwrap_or(0) as f64,
        peak.max(0) as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use effbench_harness::records::ServingConfig;
    use effbench_harness::stats::Stats;
    use effbench_harness::Metric;

    /// A synthetic result shaped like a load test's (labelled synthetic by the fixtures).
    fn serving_result() -> RunResult {
        let mut r = crate::fixtures::synthetic_results("vllm", 1, 1).remove(0);
        r.metrics.retain(|m| m.name != MetricId::Ttft);
        r.config.serving = Some(ServingConfig::new("http://127.0.0.1:1"));
        r.measured_s = 2.0;
        let samples = vec![10.0, 20.0, 30.0];
        r.metrics.push(Metric {
            name: MetricId::Ttft,
            unit: "ms".into(),
            better: MetricId::Ttft.better(),
            value: 20.0,
            source: crate::fixtures::SOURCE.into(),
            stats: Stats::from_samples(&samples, 1),
            samples,
            samples_total: None,
            sampling: None,
        });
        r
    }

    fn line(i: u64, send: f64, ttft: f64, tokens_ms: &[f64], ok: bool) -> RequestLine {
        RequestLine {
            i,
            send_ms: send,
            late_ms: 0.0,
            ok,
            status: Some(if ok { 200 } else { 500 }),
            error_kind: (!ok).then(|| "http_5xx".into()),
            error: (!ok).then(|| "HTTP 500: boom".into()),
            tokens_in: 10,
            tokens_out: if ok { tokens_ms.len() as u64 } else { 0 },
            max_tokens: 4,
            prompt_len: 10,
            ttft_ms: ok.then_some(ttft),
            e2el_ms: ok.then(|| *tokens_ms.last().unwrap()),
            token_ms: if ok { tokens_ms.to_vec() } else { Vec::new() },
            token_counts: Vec::new(),
            retried: false,
        }
    }

    #[test]
    fn hand_worked_statistics_match_vllms_definitions() {
        let r = serving_result();
        let lines = vec![
            line(0, 0.0, 100.0, &[100.0, 120.0, 140.0, 160.0], true),
            line(1, 500.0, 200.0, &[200.0, 260.0, 320.0, 380.0], true),
            line(2, 600.0, 0.0, &[], false),
        ];
        let o = Options {
            percentile_metrics: vec!["ttft".into(), "tpot".into(), "itl".into(), "e2el".into()],
            percentiles: vec![50.0, 99.9],
            detailed: true,
            ..Default::default()
        };
        let v = result(&r, Some(&lines), &o);
        assert_eq!(
            (v["completed"].as_u64(), v["failed"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(v["total_output_tokens"], 8);
        // TTFT 100 and 200: mean 150, population std 50
        assert_eq!(v["mean_ttft_ms"], 150.0);
        assert_eq!(v["std_ttft_ms"], 50.0);
        assert_eq!(v["p50_ttft_ms"], 150.0);
        assert!(v.get("p99.9_ttft_ms").is_some());
        // TPOT: (160 - 100) / 3 = 20 and (380 - 200) / 3 = 60
        assert_eq!(v["mean_tpot_ms"], 40.0);
        // ITL: 20 x3 and 60 x3, one gap per chunk
        assert_eq!(v["median_itl_ms"], 40.0);
        assert_eq!(v["mean_e2el_ms"], (160.0 + 380.0) / 2.0);
        // both in flight from 500 to 160? no: 0-160 and 500-880 never overlap
        assert_eq!(v["max_concurrent_requests"], 1);
        // second 0 holds 4 + 4 tokens (100..160 and 700..880)
        assert_eq!(v["max_output_tokens_per_s"], 8.0);
        assert_eq!(v["ttfts"], json!([0.1, 0.2, 0.0]));
        assert_eq!(v["errors"][2], "HTTP 500: boom");
        assert_eq!(v["itls"][0], json!([0.02, 0.02, 0.02]));
    }

    #[test]
    fn without_records_the_runs_metrics_are_used_and_noted() {
        let r = serving_result();
        let v = result(&r, None, &Options::default());
        assert_eq!(v["mean_ttft_ms"], 20.0);
        // population std of 10, 20, 30
        assert!((v["std_ttft_ms"].as_f64().unwrap() - (200.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert!(v.get("p99_ttft_ms").is_some());
        assert!(
            v["effbench_notes"][0]
                .as_str()
                .unwrap()
                .contains("no per-request records")
                || v["effbench_notes"]
                    .to_string()
                    .contains("no per-request records")
        );
        assert_eq!(date("2025-01-02T03:04:05.678Z"), "20250102-030405");
        assert_eq!(p_word(99.0), "99");
        assert_eq!(p_word(99.9), "99.9");
        assert!(parse_metrics("ttft, e2el").is_ok());
        assert!(parse_metrics("ttft,foo").unwrap_err().contains("'foo'"));
        assert_eq!(parse_percentiles("50,99.9").unwrap(), vec![50.0, 99.9]);
        assert!(parse_percentiles("101").is_err());
        assert_eq!(
            token_totals("tokens: 12 prompt, 34 output of 40 asked for"),
            Some((12, 34))
        );
    }
}
