//! The one table of metrics effbench knows: name, unit, direction and definition.
//!
//! Every metric in a result, a report column or a gate threshold is a [`MetricId`]; nothing
//! else spells a metric name as a string. Definitions: docs/metrics.md; every metric of this table is listed in
//! docs/metric-reference.md, generated from it (`effbench list metrics --format markdown`).

use crate::stats::Stats;
use serde::{Deserialize, Serialize};

/// Which direction is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Lower,
    Higher,
}

impl Better {
    /// +1 when higher is better, -1 when lower is better.
    pub fn sign(self) -> f64 {
        match self {
            Better::Higher => 1.0,
            Better::Lower => -1.0,
        }
    }

    pub fn parse(s: &str) -> Option<Better> {
        match s.to_ascii_lowercase().as_str() {
            "lower" | "min" | "lower-is-better" => Some(Better::Lower),
            "higher" | "max" | "higher-is-better" => Some(Better::Higher),
            _ => None,
        }
    }
}

macro_rules! metric_table {
    ($( $variant:ident => ($name:literal, $unit:literal, $better:ident, $desc:literal) ),* $(,)?) => {
        /// A metric effbench measures or derives. Serialized as its `name()`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum MetricId { $($variant),* }

        impl MetricId {
            /// Every metric, in table order (the order reports use by default).
            pub const ALL: &'static [MetricId] = &[$(MetricId::$variant),*];

            /// Stable name used in results, reports, CLI flags and gate files.
            pub fn name(self) -> &'static str {
                match self { $(MetricId::$variant => $name),* }
            }
            /// Unit of `value`, `stats` and `samples`.
            pub fn unit(self) -> &'static str {
                match self { $(MetricId::$variant => $unit),* }
            }
            pub fn better(self) -> Better {
                match self { $(MetricId::$variant => Better::$better),* }
            }
            /// One-line definition (the full text is in docs/metrics.md).
            pub fn description(self) -> &'static str {
                match self { $(MetricId::$variant => $desc),* }
            }
        }
    };
}

metric_table! {
    // --- latency (inference) ---
    Ttft => ("ttft", "ms", Lower,
        "time to first token: request start to the first output token (= prefill latency in-process)"),
    Tpot => ("tpot", "ms", Lower,
        "time per output token: (end-to-end - TTFT) / (output tokens - 1), per sequence"),
    Itl => ("itl", "ms", Lower,
        "inter-token latency: gap between consecutive token emissions; a chunk of k tokens counts as k gaps of gap/k"),
    E2eLatency => ("e2e_latency", "ms", Lower,
        "end-to-end latency: request start to the last output token"),
    // --- throughput ---
    OutputThroughput => ("output_throughput", "tok/s", Higher,
        "output tokens per second over the measured window (all sequences of a batch count)"),
    TotalThroughput => ("total_throughput", "tok/s", Higher,
        "(prompt + output) tokens per second over the measured window"),
    PrefillThroughput => ("prefill_throughput", "tok/s", Higher,
        "prompt tokens per second during prefill: batch x prompt length / TTFT"),
    RequestThroughput => ("request_throughput", "req/s", Higher,
        "completed requests (batches in-process) per second over the measured window"),
    // --- serving (load tests against a server; client-side clock) ---
    Goodput => ("goodput", "req/s", Higher,
        "requests per second that succeeded and met every configured SLO (TTFT, TPOT, E2EL) over the measured window"),
    SloAttainment => ("slo_attainment", "%", Higher,
        "share of the measured requests (failed ones included) that succeeded and met every SLO"),
    SloMaxRequestRate => ("slo_max_request_rate", "req/s", Higher,
        "server search: the highest request rate whose p99 TTFT/TPOT/E2EL met the SLOs with no failed request"),
    ArrivalLateness => ("arrival_lateness", "ms", Lower,
        "how late the load generator sent each request: send time - max(scheduled time, time a concurrency slot was free for it, in arrival order)"),
    SendRate => ("send_rate", "req/s", Higher,
        "requests actually sent per second: (sent - 1) / (last send - first send); compare with request_rate"),
    PeakConcurrency => ("peak_concurrency", "requests", Higher,
        "most requests in flight at once during the measured window"),
    RequestsCompleted => ("requests_completed", "requests", Higher,
        "measured requests that succeeded"),
    RequestsFailed => ("requests_failed", "requests", Lower,
        "measured requests that failed, all kinds"),
    FailuresConnection => ("failures_connection", "requests", Lower,
        "failed requests: could not connect, or the connection broke mid-response"),
    FailuresTimeout => ("failures_timeout", "requests", Lower,
        "failed requests: the per-request timeout expired"),
    FailuresHttp4xx => ("failures_http_4xx", "requests", Lower,
        "failed requests: HTTP 4xx status"),
    FailuresHttp5xx => ("failures_http_5xx", "requests", Lower,
        "failed requests: HTTP 5xx (or other non-2xx) status"),
    FailuresProtocol => ("failures_protocol", "requests", Lower,
        "failed requests: malformed SSE/JSON, or a stream that ended without [DONE] or a finish reason"),
    FailuresServer => ("failures_server", "requests", Lower,
        "failed requests: an error object inside a 200 response (e.g. mid-stream)"),
    FailuresCancelled => ("failures_cancelled", "requests", Lower,
        "requests cancelled by effbench (Ctrl-C, or the server became unreachable)"),
    RequestsRetried => ("requests_retried", "requests", Lower,
        "measured requests sent a second time, on a fresh connection, because the server closed a kept-alive connection before answering (counted whether the retry succeeded or not)"),
    // --- model and process ---
    LoadTime => ("load_time", "ms", Lower,
        "time to load the model and build the session, before warm-up"),
    PeakRss => ("peak_rss", "bytes", Lower,
        "process peak resident set size (VmHWM) over the measured window, reset before it"),
    // --- per-iteration process counters (low noise on a shared host; harness/src/counters.rs) ---
    CpuTime => ("cpu_time", "ms", Lower,
        "process CPU time (user + system, all threads) per measured iteration; waiting for a CPU is not counted"),
    Instructions => ("instructions", "count", Lower,
        "retired instructions per measured iteration, user space, all threads (perf_event_open; absent where the kernel exposes no hardware counters)"),
    Cycles => ("cycles", "count", Lower,
        "CPU cycles per measured iteration, user space, all threads (perf_event_open; absent where the kernel exposes no hardware counters)"),
    // --- external worker processes (backend `process`) ---
    PeakDeviceMemoryAllocated => ("peak_device_memory_allocated", "bytes", Lower,
        "peak bytes held by the framework's device allocator over the measured window (e.g. torch.cuda.max_memory_allocated)"),
    PeakDeviceMemoryReserved => ("peak_device_memory_reserved", "bytes", Lower,
        "peak bytes reserved by the framework's caching allocator over the measured window (e.g. torch.cuda.max_memory_reserved)"),
    WorkerPeakRss => ("worker_peak_rss", "bytes", Lower,
        "peak resident set size (VmHWM) of the worker process over the measured window, read by effbench from procfs"),
    IpcOverhead => ("ipc_overhead", "ms", Lower,
        "effbench's round trip of a worker request minus the worker's own time for it (pipes, JSON, scheduling)"),
    // --- energy and power (meters; `source` says measured or estimate-*) ---
    Energy => ("energy", "J", Lower,
        "energy over the measured window: sum of the measured components (GPU via NVML, CPU package and DRAM via RAPL); the estimate-tdp figure only when nothing is measured"),
    EnergyNet => ("energy_net", "J", Lower,
        "energy - idle_power x measured time (idle baseline measured before the suite)"),
    EnergyGpu => ("energy_gpu", "J", Lower,
        "GPU energy: NVML total-energy counter difference, else trapezoid of sampled power"),
    EnergyCpu => ("energy_cpu", "J", Lower,
        "CPU package energy: RAPL energy_uj with wrap-around, else a labelled TDP x CPU-time estimate"),
    EnergyDram => ("energy_dram", "J", Lower,
        "DRAM energy: RAPL dram domain"),
    IdlePower => ("idle_power", "W", Lower,
        "power of the same components while idle, from the idle baseline before the suite"),
    PowerAvg => ("power_avg", "W", Lower,
        "average power over the measured window: energy / measured time"),
    GpuPowerPeak => ("gpu_power_peak", "W", Lower,
        "highest sampled GPU power (sum over metered GPUs)"),
    CpuPowerPeak => ("cpu_power_peak", "W", Lower,
        "highest CPU package power over one RAPL sampling step"),
    EnergyPerOutputToken => ("energy_per_output_token", "J/token", Lower,
        "energy / output tokens of the measured window"),
    EnergyPerRequest => ("energy_per_request", "J/req", Lower,
        "energy / requests (batches in-process) of the measured window"),
    EnergyPerTrainingToken => ("energy_per_training_token", "J/token", Lower,
        "training: energy / tokens processed by the measured steps"),
    Carbon => ("carbon", "gCO2e", Lower,
        "energy in kWh x PUE x grid carbon intensity (gCO2e/kWh; settings recorded in config.meters)"),
    CostRun => ("cost_run", "$", Lower,
        "price per hour of the hardware x measured time"),
    CostPer1mOutputTokens => ("cost_per_1m_output_tokens", "$/1M tokens", Lower,
        "cost_run / output tokens x 1 000 000"),
    CostPerParam => ("cost_per_param", "$/param", Lower,
        "training: cost_run / model parameters (dollars per parameter)"),
    // --- GPU state (NVML, sampled) ---
    GpuMemoryPeak => ("gpu_memory_peak", "bytes", Lower,
        "highest sampled device memory in use (sum over metered GPUs; all processes)"),
    GpuProcessMemoryPeak => ("gpu_process_memory_peak", "bytes", Lower,
        "highest sampled GPU memory of this process and its children (NVML process list)"),
    GpuUtilization => ("gpu_utilization", "%", Higher,
        "share of time a kernel ran on the GPU, NVML samples"),
    GpuSmClock => ("gpu_sm_clock", "MHz", Higher,
        "SM clock, NVML samples"),
    GpuTemperature => ("gpu_temperature", "degC", Lower,
        "GPU die temperature, NVML samples"),
    // --- training (rates over the measured steps; totals over the whole training) ---
    TrainThroughput => ("train_throughput", "tok/s", Higher,
        "training tokens (batch x seq_len per step) per second of measured step time"),
    TrainSampleThroughput => ("train_sample_throughput", "samples/s", Higher,
        "training sequences per second of measured step time"),
    StepTime => ("step_time", "ms", Lower,
        "one optimizer step: forward, backward, gradient clipping (candle-train) and AdamW update; no evaluation"),
    TrainTime => ("train_time", "s", Lower,
        "wall time of all training steps (warm-up and resumed steps included, evaluation and checkpoints excluded)"),
    TrainLoss => ("train_loss", "nats/token", Lower,
        "next-token cross-entropy of the training batches before their update: candle-train the mean over the last 10 % of steps, a worker each measured step"),
    HeldoutLoss => ("heldout_loss", "nats/token", Lower,
        "mean cross-entropy per token on the held-out split after the last step"),
    HeldoutPerplexity => ("heldout_perplexity", "ppl", Lower,
        "exp(heldout_loss)"),
    EntropyFloor => ("entropy_floor", "nats/token", Lower,
        "entropy rate of the synthetic source: the lowest loss any model can reach (a property of the data)"),
    PerplexityFloor => ("perplexity_floor", "ppl", Lower,
        "exp(entropy_floor): the lowest perplexity any model can reach on the source"),
    TimeToTargetLoss => ("time_to_target_loss", "s", Lower,
        "train_time until the first evaluation with held-out loss <= target_loss (absent: not reached)"),
    StepsToTargetLoss => ("steps_to_target_loss", "steps", Lower,
        "steps until the first evaluation with held-out loss <= target_loss (absent: not reached)"),
    TrainFlops => ("train_flops", "FLOP", Lower,
        "analytic training FLOPs of all steps: (6 N + 12 L H Q T) per token, docs/training.md#flops-and-mfu"),
    AchievedFlops => ("achieved_flops", "FLOP/s", Higher,
        "analytic FLOPs of the measured steps / their step time"),
    Mfu => ("mfu", "%", Higher,
        "model FLOPs utilisation: achieved_flops / the device peak measured by the matmul probe (env.peak_flops)"),
    // --- roofline of inference runs (roofline.rs) ---
    DecodeBandwidth => ("decode_bandwidth", "GB/s", Higher,
        "bytes one decode step must read (weights once + every sequence's KV cache, averaged over the generated positions) / TPOT"),
    Mbu => ("mbu", "%", Higher,
        "model bandwidth utilisation: decode_bandwidth / the memory bandwidth measured by the streaming-read probe (env.peak_bandwidth)"),
    PrefillAchievedFlops => ("prefill_achieved_flops", "FLOP/s", Higher,
        "analytic forward FLOPs of the prompts (blocks and attention per position, output head once per sequence) / TTFT"),
    PrefillMfu => ("prefill_mfu", "%", Higher,
        "prefill_achieved_flops / the device peak measured by the matmul probe (env.peak_flops)"),
    // --- model size and compression (design.md §3) ---
    ModelBytes => ("model_bytes", "bytes", Lower,
        "bytes of the weight file(s) as stored on disk"),
    ParamsTotal => ("params_total", "count", Lower,
        "parameters of the model (a tied output head counted once)"),
    ParamsNonEmbedding => ("params_non_embedding", "count", Lower,
        "parameters outside the token embedding and the output head"),
    BitsPerParam => ("bits_per_param", "bits", Lower,
        "8 x weight file bytes / total parameters"),
    CompressionRatio => ("compression_ratio", "x", Higher,
        "weight file bytes of the suite's reference variant / weight file bytes of this variant"),
    SizeReduction => ("size_reduction", "%", Higher,
        "100 x (1 - this variant's weight file bytes / the reference variant's)"),
    WeightsRemaining => ("weights_remaining", "%", Lower,
        "100 x non-zero weights / total parameters, counted after pruning and before quantization"),
    // --- quality and fidelity (loyalty) vs the suite's reference variant ---
    Perplexity => ("perplexity", "ppl", Lower,
        "exp(mean negative log-likelihood per predicted token) on the evaluation text"),
    EvalNll => ("eval_nll", "nats/token", Lower,
        "mean negative log-likelihood per predicted token on the evaluation text"),
    Top1Agreement => ("top1_agreement", "%", Higher,
        "100 x share of evaluation positions where the variant's most likely next token is the reference's"),
    KlDivergence => ("kl_divergence", "nats", Lower,
        "mean over evaluation positions of KL(reference || variant) of the next-token distributions"),
    // --- encoders (scenario embedding) and retrieval (scenario retrieval) ---
    EmbeddingThroughput => ("embedding_throughput", "emb/s", Higher,
        "embeddings (pooled sequences) per second over the measured window"),
    BatchLatency => ("batch_latency", "ms", Lower,
        "embedding: one batch from token ids to pooled (and normalized) f32 embeddings"),
    FlopsPerEmbedding => ("flops_per_embedding", "FLOP", Lower,
        "analytic forward FLOPs of one embedded sequence: 2 N T + 4 L H T^2 (docs/encoders.md)"),
    EnergyPer1kEmbeddings => ("energy_per_1k_embeddings", "J/1k emb", Lower,
        "energy / embeddings of the measured window x 1000"),
    QueryThroughput => ("query_throughput", "queries/s", Higher,
        "retrieval: queries answered (encoded and searched, one at a time) per second over the measured window"),
    QueryLatency => ("query_latency", "ms", Lower,
        "retrieval: one query from text to its top-k documents: tokenize, encode, search the index"),
    SearchLatency => ("search_latency", "ms", Lower,
        "retrieval: the index search part of a query (score every document, keep the top k)"),
    CorpusEncodeTime => ("corpus_encode_time", "s", Lower,
        "retrieval: wall time to tokenize and encode the whole corpus, before the measured window"),
    IndexBuildTime => ("index_build_time", "ms", Lower,
        "retrieval: wall time to build the index from the corpus embeddings (quantization included)"),
    IndexBytes => ("index_bytes", "bytes", Lower,
        "retrieval: bytes of the index as held in memory (vectors and quantization parameters)"),
    EnergyPer1kQueries => ("energy_per_1k_queries", "J/1k queries", Lower,
        "energy / queries of the measured window x 1000"),
    CostPer1kQueries => ("cost_per_1k_queries", "$/1k queries", Lower,
        "cost_run / queries of the measured window x 1000"),
    RecallAt10 => ("recall_at_10", "%", Higher,
        "retrieval quality vs relevance labels (qrels): mean over judged queries of relevant documents in the top 10 / relevant documents"),
    NdcgAt10 => ("ndcg_at_10", "score", Higher,
        "retrieval quality vs relevance labels (qrels): mean nDCG@10 over judged queries, linear gain, log2 discount (trec_eval's ndcg_cut_10)"),
    OverlapAt10 => ("overlap_at_10", "%", Higher,
        "retrieval fidelity: mean share of a query's top 10 that exact f32 search with the unpruned f32 model also returns"),
    // --- speed-up vs the suite's baseline variant (headline values) ---
    SpeedupTtft => ("speedup_ttft", "x", Higher,
        "baseline run's ttft / this run's ttft (means)"),
    SpeedupTpot => ("speedup_tpot", "x", Higher,
        "baseline run's tpot / this run's tpot (means)"),
    SpeedupItl => ("speedup_itl", "x", Higher,
        "baseline run's itl / this run's itl (means)"),
    SpeedupE2eLatency => ("speedup_e2e_latency", "x", Higher,
        "baseline run's e2e_latency / this run's e2e_latency (means)"),
    SpeedupOutputThroughput => ("speedup_output_throughput", "x", Higher,
        "this run's output_throughput / the baseline run's"),
    SpeedupTotalThroughput => ("speedup_total_throughput", "x", Higher,
        "this run's total_throughput / the baseline run's"),
    SpeedupPrefillThroughput => ("speedup_prefill_throughput", "x", Higher,
        "this run's prefill_throughput / the baseline run's"),
    SpeedupRequestThroughput => ("speedup_request_throughput", "x", Higher,
        "this run's request_throughput / the baseline run's"),
}

impl MetricId {
    /// The speed-up metric derived from a latency or throughput metric (design.md §3:
    /// baseline ÷ variant for lower-is-better, variant ÷ baseline for higher-is-better).
    pub fn speedup(self) -> Option<MetricId> {
        use MetricId::*;
        Some(match self {
            Ttft => SpeedupTtft,
            Tpot => SpeedupTpot,
            Itl => SpeedupItl,
            E2eLatency => SpeedupE2eLatency,
            OutputThroughput => SpeedupOutputThroughput,
            TotalThroughput => SpeedupTotalThroughput,
            PrefillThroughput => SpeedupPrefillThroughput,
            RequestThroughput => SpeedupRequestThroughput,
            _ => return None,
        })
    }
}

impl MetricId {
    pub fn from_name(name: &str) -> Option<MetricId> {
        MetricId::ALL.iter().copied().find(|m| m.name() == name)
    }

    /// All names, for error messages ("known: ...").
    pub fn known_names() -> String {
        MetricId::ALL
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Parses a name, or explains which names exist.
    pub fn parse(name: &str) -> Result<MetricId, String> {
        MetricId::from_name(name).ok_or_else(|| {
            format!(
                "unknown metric '{name}'; known: {}",
                MetricId::known_names()
            )
        })
    }
}

impl std::fmt::Display for MetricId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for MetricId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for MetricId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MetricId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for MetricId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MetricId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = MetricId::ALL.iter().map(|m| m.name()).collect();
        schemars::json_schema!({ "type": "string", "enum": names })
    }
}

/// One metric of one run, as stored in a [`crate::RunResult`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub name: MetricId,
    pub unit: String,
    pub better: Better,
    /// Headline value: the mean of `samples` for sampled metrics, else the aggregate
    /// (e.g. throughput = total work / total measured time).
    pub value: f64,
    /// Where the number comes from, e.g. `wall-clock`, `procfs`, `rapl`, `estimate-tdp`.
    pub source: String,
    /// Summary statistics of `samples` (absent for single-value metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// Raw samples in `unit` (latencies in ms as f64, which keeps ns resolution).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
    /// Number of samples observed when `samples` was capped to save space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_total: Option<u64>,
    /// For values read by a background meter: its period and how many reads it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
}

/// How a meter sampled the value of a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub period_ms: f64,
    pub samples: u64,
}

/// Prefix of every source that is an estimate rather than a measurement.
pub const ESTIMATE_PREFIX: &str = "estimate-";

/// Whether a `source` names an estimate (`estimate-tdp`, or a figure derived from one):
/// reports keep estimates out of "measured" columns unless the user opts in.
pub fn is_estimate(source: &str) -> bool {
    source.contains(ESTIMATE_PREFIX)
}

impl Metric {
    /// A single-valued metric (no samples).
    pub fn scalar(id: MetricId, value: f64, source: impl Into<String>) -> Metric {
        Metric {
            name: id,
            unit: id.unit().to_string(),
            better: id.better(),
            value,
            source: source.into(),
            stats: None,
            samples: Vec::new(),
            samples_total: None,
            sampling: None,
        }
    }

    /// Records the background sampling behind the value.
    pub fn with_sampling(mut self, period_ms: f64, samples: u64) -> Metric {
        self.sampling = Some(Sampling { period_ms, samples });
        self
    }

    /// Whether the value is an estimate (see [`is_estimate`]).
    pub fn is_estimate(&self) -> bool {
        is_estimate(&self.source)
    }

    /// A sampled metric: `value` is the sample mean, `stats` summarises the samples.
    pub fn sampled(
        id: MetricId,
        samples: Vec<f64>,
        source: impl Into<String>,
        seed: u64,
    ) -> Metric {
        let stats = Stats::from_samples(&samples, seed ^ name_hash(id.name()));
        Metric {
            name: id,
            unit: id.unit().to_string(),
            better: id.better(),
            value: stats.as_ref().map_or(f64::NAN, |s| s.mean),
            source: source.into(),
            stats,
            samples,
            samples_total: None,
            sampling: None,
        }
    }

    /// Like [`Metric::sampled`] but with an aggregate headline value.
    pub fn aggregate(
        id: MetricId,
        value: f64,
        samples: Vec<f64>,
        source: impl Into<String>,
        seed: u64,
    ) -> Metric {
        let mut m = Metric::sampled(id, samples, source, seed);
        m.value = value;
        m
    }
}

/// FNV-1a, used to derive per-metric bootstrap seeds that do not change between builds.
pub fn name_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for m in MetricId::ALL {
            assert!(seen.insert(m.name()), "duplicate metric name {}", m.name());
            assert_eq!(MetricId::from_name(m.name()), Some(*m));
            let json = serde_json::to_string(m).unwrap();
            assert_eq!(serde_json::from_str::<MetricId>(&json).unwrap(), *m);
        }
    }

    #[test]
    fn speedups_are_higher_is_better_ratios_of_speed_metrics() {
        for m in MetricId::ALL {
            if let Some(s) = m.speedup() {
                assert_eq!(s.better(), Better::Higher);
                assert_eq!(s.unit(), "x");
                assert_eq!(s.name(), format!("speedup_{}", m.name()));
                assert!(m.unit() == "ms" || m.unit().ends_with("/s"), "{m}");
            }
        }
        assert_eq!(MetricId::Perplexity.speedup(), None);
    }

    #[test]
    fn unknown_metric_lists_known_ones() {
        let err = MetricId::parse("speed").unwrap_err();
        assert!(
            err.contains("unknown metric 'speed'") && err.contains("ttft"),
            "{err}"
        );
    }
}
