//! The server's own view beside the client's: while the measured window runs, the server's
//! Prometheus `/metrics` (vLLM, SGLang, TGI, llama.cpp's `--metrics`, `effbench serve`) is
//! scraped every `[serving] metrics_interval_s` and its gauges (queue length, running
//! requests, KV-cache usage ...) and counters (as per-second rates between scrapes) are kept
//! as result series named `server:<metric>{labels}`. Histograms and summaries are skipped.
//! Bounded: at most [`MAX_SERIES`] series; past [`MAX_POINTS`] points every other one is
//! dropped and the period doubles. A server without `/metrics` is noted, never an error.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use effbench_harness::records::Series;

/// Most series kept (the first ones the server lists).
pub const MAX_SERIES: usize = 64;
/// Most points per series before thinning.
pub const MAX_POINTS: usize = 512;

/// A metric family's type, from its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down (kept as it is).
    Gauge,
    /// A running total (kept as a per-second rate).
    Counter,
    /// Histogram, summary or untyped with histogram-like suffixes: skipped.
    Other,
}

/// One sample line: `name{labels}` and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `name{labels}` as exposed.
    pub key: String,
    /// Its family's type.
    pub kind: Kind,
    /// Its value.
    pub value: f64,
}

/// Parses Prometheus text exposition format (version 0.0.4): samples of gauge, counter and
/// untyped families (untyped counts as a gauge). Malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut types: BTreeMap<&str, Kind> = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(name), Some(t)) = (it.next(), it.next()) {
                let kind = match t {
                    "gauge" | "untyped" => Kind::Gauge,
                    "counter" => Kind::Counter,
                    _ => Kind::Other,
                };
                types.insert(name, kind);
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, rest)) = split_key(line) else {
            continue;
        };
        let name = key.split('{').next().unwrap_or(key);
        let kind = types.get(name).copied().unwrap_or_else(|| {
            // Untyped: histogram parts without a TYPE line are still not gauges.
            if ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                Kind::Other
            } else {
                Kind::Gauge
            }
        });
        if kind == Kind::Other {
            continue;
        }
        let Some(v) = rest.split_whitespace().next() else {
            continue;
        };
        let value = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            _ => match v.parse::<f64>() {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        if value.is_finite() {
            out.push(Sample {
                key: key.to_string(),
                kind,
                value,
            });
        }
    }
    out
}

/// `name{a="x y"} 1 2` -> (`name{a="x y"}`, ` 1 2`), honouring quotes and escapes in labels.
fn split_key(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] != b'{' && !b[i].is_ascii_whitespace() {
        i += 1;
    }
    if i < b.len() && b[i] == b'{' {
        let mut quoted = false;
        i += 1;
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'}' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        i += 1;
    }
    (i > 0).then(|| line.split_at(i))
}

#[derive(Default)]
struct State {
    /// key -> (kind, points); counters hold raw values until [`finish`].
    series: BTreeMap<String, (Kind, Vec<[f64; 2]>)>,
    scrapes: u64,
    dropped: usize,
    /// Why scraping stopped early (no /metrics, not text ...).
    stopped: Option<String>,
    period: Duration,
}

/// A scrape loop running on the load generator's runtime.
pub struct Scraper {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    url: String,
}

impl Scraper {
    /// Starts scraping `url` now (t = 0 is `t0`, the start of the window).
    pub fn start(
        rt: &tokio::runtime::Runtime,
        client: reqwest::Client,
        url: String,
        auth: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
        period: Duration,
        t0: Instant,
    ) -> Scraper {
        let state = Arc::new(Mutex::new(State {
            period,
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp, u) = (state.clone(), stop.clone(), url.clone());
        let task = rt.spawn(async move {
            let mut next = Instant::now();
            while !stp.load(Ordering::SeqCst) {
                let mut req = client.get(&u).timeout(Duration::from_secs(5));
                for (k, v) in &auth {
                    req = req.header(k, v);
                }
                let t = t0.elapsed().as_secs_f64();
                let text = match req.send().await {
                    Ok(r) if r.status().is_success() => r.text().await.map_err(|e| e.to_string()),
                    Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
                    Err(e) => Err(e.to_string()),
                };
                let period = {
                    let mut s = st.lock().expect("scrape state");
                    match text {
                        Ok(text) => add(&mut s, t, &parse(&text)),
                        Err(e) => {
                            if s.scrapes == 0 {
                                s.stopped = Some(e);
                                return;
                            }
                        }
                    }
                    s.period
                };
                next += period;
                let now = Instant::now();
                if next > now {
                    tokio::time::sleep(next - now).await;
                } else {
                    next = now;
                }
            }
        });
        Scraper {
            state,
            stop,
            task,
            url,
        }
    }

    /// Stops scraping; returns the series and a note for the log.
    pub fn finish(self, rt: &tokio::runtime::Runtime) -> (Vec<Series>, String) {
        self.stop.store(true, Ordering::SeqCst);
        let _ =
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(6), self.task).await });
        let s = std::mem::take(&mut *self.state.lock().expect("scrape state"));
        finish(s, &self.url)
    }
}

fn add(s: &mut State, t: f64, samples: &[Sample]) {
    s.scrapes += 1;
    for x in samples {
        if !s.series.contains_key(&x.key) && s.series.len() >= MAX_SERIES {
            s.dropped += 1;
            continue;
        }
        let e = s
            .series
            .entry(x.key.clone())
            .or_insert_with(|| (x.kind, Vec::new()));
        e.1.push([t, x.value]);
    }
    if s.series.values().any(|(_, p)| p.len() > MAX_POINTS) {
        for (_, p) in s.series.values_mut() {
            let mut i = 0;
            p.retain(|_| {
                i += 1;
                i % 2 == 1
            });
        }
        s.period *= 2;
    }
}

fn finish(s: State, url: &str) -> (Vec<Series>, String) {
    if let Some(why) = s.stopped {
        return (
            Vec::new(),
            format!("server metrics: {url} not scraped ({why}); only the client's view is kept"),
        );
    }
    let source = format!(
        "the server's Prometheus metrics ({url}), scraped about every {} ms",
        s.period.as_millis()
    );
    let mut out = Vec::new();
    let (mut gauges, mut counters) = (0, 0);
    for (key, (kind, points)) in s.series {
        let (points, y_unit) = match kind {
            Kind::Counter => {
                counters += 1;
                let rates: Vec<[f64; 2]> = points
                    .windows(2)
                    .filter(|w| w[1][0] > w[0][0])
                    .map(|w| {
                        [
                            w[1][0],
                            ((w[1][1] - w[0][1]) / (w[1][0] - w[0][0])).max(0.0),
                        ]
                    })
                    .collect();
                (rates, "/s")
            }
            _ => {
                gauges += 1;
                (points, "value")
            }
        };
        if points.is_empty() {
            continue;
        }
        out.push(Series {
            name: format!("server:{key}"),
            x_unit: "s".into(),
            y_unit: y_unit.into(),
            source: source.clone(),
            period_ms: Some(s.period.as_secs_f64() * 1e3),
            points,
        });
    }
    let mut note = format!(
        "server metrics: {} scrape(s) of {url}: {gauges} gauge(s) kept as series, {counters} counter(s) as per-second rates (series server:*)",
        s.scrapes
    );
    if s.dropped > 0 {
        note.push_str(&format!(
            "; series past the first {MAX_SERIES} were not kept"
        ));
    }
    (out, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 2
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 120
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="a b}c",engine="0"} 3.5 1700000000000
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="0.1"} 4
vllm:e2e_request_latency_seconds_sum 1.5
untyped_thing 7
stray_bucket{le="1"} 2
broken{a="x" 1
nan_gauge NaN
"#;

    #[test]
    fn parses_gauges_counters_and_quoted_labels() {
        let s = parse(TEXT);
        let keys: Vec<(&str, Kind, f64)> = s
            .iter()
            .map(|x| (x.key.as_str(), x.kind, x.value))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("llamacpp:requests_processing", Kind::Gauge, 2.0),
                ("llamacpp:tokens_predicted_total", Kind::Counter, 120.0),
                (
                    "vllm:num_requests_waiting{model_name=\"a b}c\",engine=\"0\"}",
                    Kind::Gauge,
                    3.5
                ),
                ("untyped_thing", Kind::Gauge, 7.0),
            ]
        );
    }

    #[test]
    fn counters_become_rates_and_points_stay_bounded() {
        let mut s = State {
            period: Duration::from_millis(100),
            ..Default::default()
        };
        for i in 0..(MAX_POINTS + 10) {
            let t = i as f64 * 0.1;
            add(
                &mut s,
                t,
                &[
                    Sample {
                        key: "c_total".into(),
                        kind: Kind::Counter,
                        value: 50.0 * t,
                    },
                    Sample {
                        key: "g".into(),
                        kind: Kind::Gauge,
                        value: 1.0,
                    },
                ],
            );
        }
        assert!(s.series["g"].1.len() <= MAX_POINTS);
        assert_eq!(s.period, Duration::from_millis(200));
        let (series, note) = finish(s, "http://x/metrics");
        let c = series.iter().find(|x| x.name == "server:c_total").unwrap();
        assert_eq!(c.y_unit, "/s");
        assert!(
            c.points.iter().all(|p| (p[1] - 50.0).abs() < 1e-6),
            "{:?}",
            c.points
        );
        assert!(
            note.contains("1 gauge(s)") && note.contains("1 counter(s)"),
            "{note}"
        );
    }
}
