//! `effbench run SUITE`: expand, validate, run every combination, write results.

use super::EXIT_RUN_FAILED;
use anyhow::Result;
use effbench_harness::cluster::{shard, ShardSel};
use effbench_harness::invocation::{self, Options, ShardContext};
use effbench_harness::records::RunState;
use effbench_harness::records::ShardInfo;
use effbench_harness::RunResult;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run a suite and write one result per run plus a manifest.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  effbench run suites/quickstart.toml\n  \
effbench run suites/quickstart.toml --filter dtype=f32 --filter batch=1\n  \
effbench run suites/quickstart.toml --dry-run\n  \
effbench run suites/quickstart.toml --shard 0/4 --out results/q/shard-0\n  \
effbench run suites/compression.toml --eval-text notes.txt\n  \
effbench run suites/quickstart.toml --out results/mine --json > summary.json\n  \
effbench run suites/quickstart.toml --grid-intensity 350 --pue 1.2 --price-per-hour 3.5\n  \
effbench run --ab ./effbench-main ./effbench-pr suites/quickstart.toml   (interleaved A/B, ABBA)\n  \
effbench run suites/quickstart.toml --inject-delay 5ms   (test knob: a deliberate slowdown)\n  \
effbench run --ab ./effbench ./effbench suites/quickstart.toml --ab-inject-slowdown 10   (B 10 % slower)\n  \
effbench run suites/train-tiny.toml --resume")]
pub struct Args {
    /// Suite file (TOML), or the name of a shipped one (`quickstart`).
    #[arg(value_parser = super::suites::find)]
    pub suite: PathBuf,
    /// Output directory [default: results/<suite>/<UTC timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only runs whose axis has this value (axis=value; repeat to narrow, same axis twice = either).
    #[arg(long, value_name = "AXIS=VALUE")]
    pub filter: Vec<String>,
    /// Print the expanded runs and exit without running.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the results as a JSON array on stdout (progress and tables go to stderr); with
    /// --dry-run, the planned runs (id, label, resolved config).
    #[arg(long, conflicts_with = "ab")]
    pub json: bool,
    #[command(flatten)]
    pub meters: super::meters::MeterArgs,
    /// Run only shard I of N (from 0): a deterministic, cost-balanced subset of the runs
    /// (`effbench plan SUITE --shards N` shows the assignment; `effbench merge` joins shards).
    #[arg(long, value_name = "I/N", allow_hyphen_values = true)]
    pub shard: Option<String>,
    /// Interleaved A/B: run every spec with two effbench builds in ABBA order in this one
    /// invocation; results in <out>/a and <out>/b, `effbench compare <out>` compares them.
    #[arg(long, num_args = 2, value_names = ["BIN_A", "BIN_B"], conflicts_with = "shard")]
    pub ab: Vec<PathBuf>,
    /// ABBA blocks per spec with --ab (2 slots per side each). The invocation is the unit of
    /// replication: 3 blocks leave 8 degrees of freedom for the noise between invocations.
    #[arg(long, default_value_t = effbench_harness::ab::DEFAULT_BLOCKS, requires = "ab")]
    pub ab_blocks: usize,
    /// Adaptive --ab: after the --ab-blocks first blocks of a run, add ABBA blocks while the
    /// gate could not detect a regression of this many % of the target metric (its minimum
    /// detectable regression at 80 % power is larger), up to --ab-max-blocks. Only the spread
    /// between invocations decides, never the A/B difference (docs/gates.md).
    #[arg(long, value_name = "PCT", value_parser = parse_target_mde, requires = "ab")]
    pub ab_target_mde: Option<f64>,
    /// Cap of ABBA blocks per run with --ab-target-mde.
    #[arg(long, value_name = "N", default_value_t = effbench_harness::ab::DEFAULT_MAX_BLOCKS,
          requires = "ab_target_mde")]
    pub ab_max_blocks: usize,
    /// The metric --ab-target-mde judges (repeat: the first the run has); default: the run's
    /// throughput (output, training, embedding, query or request throughput).
    #[arg(long, value_name = "METRIC", value_parser = effbench_harness::MetricId::parse,
          requires = "ab_target_mde")]
    pub ab_target_metric: Vec<effbench_harness::MetricId>,
    /// Gate settings (TOML, as `gate --config`) for the comparison --ab prints and for the
    /// minimum detectable regression of --ab-target-mde: use the file the gate will use.
    #[arg(long, value_name = "FILE", requires = "ab")]
    pub ab_gate_config: Option<PathBuf>,
    /// Test knob for --ab: slow only BIN_B's iterations by this % (passes --inject-slowdown
    /// to B's slots), to measure how often the gate catches a known regression.
    #[arg(long, value_name = "PCT", value_parser = parse_slowdown, requires = "ab")]
    pub ab_inject_slowdown: Option<f64>,
    /// Test knob: sleep this long inside every measured iteration (e.g. 5ms, 500us, 0.1s), to
    /// check that compare/gate catch a slowdown. Recorded in each result's [measure] and
    /// warned about; it slows throughputs, not backend-timed latencies.
    #[arg(long, value_name = "DURATION", value_parser = parse_delay)]
    pub inject_delay: Option<f64>,
    /// Test knob: busy-wait after every measured iteration for this % of its own time (e.g.
    /// 10 or 10%), inside the timed iteration, so it takes that much longer. Recorded in each
    /// result's [measure] and warned about; such results never enter the history.
    #[arg(long, value_name = "PCT", value_parser = parse_slowdown)]
    pub inject_slowdown: Option<f64>,
    /// Do not rebuild the leaderboard site (results/site) after the run.
    #[arg(long)]
    pub no_site: bool,
    /// Measure perplexity and fidelity on this UTF-8 text file (overrides [analysis]
    /// eval_text; turns the analysis on for suites without it).
    #[arg(long, value_name = "FILE")]
    pub eval_text: Option<PathBuf>,
    /// Training runs continue from their last checkpoint (saved every checkpoint_every steps,
    /// at the end and on Ctrl-C) with the same loss trajectory; runs without one start over.
    #[arg(long)]
    pub resume: bool,
    /// Internal: only make sure the trained default model exists (the child process that
    /// `run` starts to train it), then exit.
    #[arg(long, hide = true)]
    pub train_default_only: bool,
}

/// `5ms`, `500us`, `0.1s` -> milliseconds.
pub fn parse_delay(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, ms_per_unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e3)
    } else {
        return Err(format!("'{s}' needs a unit: 5ms, 500us or 0.1s"));
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * ms_per_unit <= 60_000.0 => Ok(v * ms_per_unit),
        _ => Err(format!("'{s}' is not a duration between 0 and 60s")),
    }
}

/// `8`, `8%` -> 8.0: a minimum detectable regression to aim for, above 0 and at most 100 %.
pub fn parse_target_mde(s: &str) -> Result<f64, String> {
    match effbench_harness::gate::parse_pct(s) {
        Ok(v) if v > 0.0 && v <= 100.0 => Ok(v),
        Ok(_) => Err(format!("'{s}' must lie above 0 and at most 100 %")),
        Err(e) => Err(e.to_string()),
    }
}

/// `10`, `10%` -> 10.0 (at most 1000 %).
pub fn parse_slowdown(s: &str) -> Result<f64, String> {
    match effbench_harness::gate::parse_pct(s) {
        Ok(v) if v <= 1000.0 => Ok(v),
        Ok(_) => Err(format!("'{s}' is more than 1000 %")),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let shard = args.shard.as_deref().map(ShardSel::parse).transpose()?;
    let registry = effbench_backends::registry();
    let (suite, mut specs) = super::plan_with(
        &args.suite,
        &registry,
        &args.filter,
        args.eval_text.as_deref(),
    )?;
    let meter_settings = args.meters.resolve(&suite.meters)?;
    for s in &mut specs {
        s.meters = meter_settings.clone();
        s.resume = args.resume;
    }
    // one line per run; warnings come once per suite, after the table
    let mut report = |r: &RunResult, progress: &effbench_harness::progress::TerminalProgress| {
        super::release_memory();
        progress.println(&one_line(r));
    };
    if args.train_default_only {
        effbench_backends::loader::pin_training_threads();
        super::tune_allocator_for_training();
        let code = super::trained_default::ensure(
            &registry,
            args.resume,
            &args.meters,
            super::features(),
            &mut |r: &RunResult, progress: &effbench_harness::progress::TerminalProgress| {
                report(r, progress);
                let w = effbench_dashboards::terminal::warnings_summary(std::slice::from_ref(r));
                if !w.is_empty() {
                    progress.println(w.trim_end());
                }
            },
        )?;
        return Ok(code.unwrap_or(ExitCode::SUCCESS));
    }
    if suite.scenario == effbench_harness::Scenario::Training {
        effbench_backends::loader::pin_training_threads();
        super::tune_allocator_for_training();
    }
    if let Some(ms) = args.inject_delay {
        for s in &mut specs {
            s.measure.inject_delay_ms = ms;
        }
    }
    if let Some(pct) = args.inject_slowdown {
        for s in &mut specs {
            s.measure.inject_slowdown_pct = pct;
        }
    }
    if !args.ab.is_empty() {
        return super::ab::run(&args, &suite, &specs);
    }
    let axes = effbench_harness::matrix::varying_axes(&specs);
    let (specs, shard_ctx) = match shard {
        None => (specs, None),
        Some(sel) => {
            let costs = shard::costs(&specs, &registry);
            let ctx = ShardContext {
                info: ShardInfo {
                    index: sel.index,
                    count: sel.count,
                    cost_model: shard::COST_MODEL.into(),
                    plan: shard::plan(&specs, &costs, sel.count, &axes),
                },
                suite_varying_axes: axes.clone(),
            };
            let mine = shard::select(&specs, &costs, sel);
            eprintln!(
                "effbench: shard {sel}: {} of the suite's {} runs",
                mine.len(),
                specs.len()
            );
            (mine, Some(ctx))
        }
    };
    if args.dry_run {
        if args.json {
            let runs: Vec<serde_json::Value> = specs
                .iter()
                .map(|s| serde_json::json!({"id": s.id, "label": s.label(&axes), "config": s}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&runs)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{}: {} run(s), nothing executed (--dry-run)",
            args.suite.display(),
            specs.len()
        );
        for s in &specs {
            println!("  {}  {}", s.id, s.label(&axes));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if super::trained_default::needed(&specs) {
        if let Some(code) = super::trained_default::ensure_in_child_process()? {
            return Ok(code);
        }
    }
    eprintln!(
        "effbench: suite '{}' ({} runs, backend {})",
        suite.name,
        specs.len(),
        super::backends_of(&specs)
    );
    let opts = Options {
        out: args.out.clone(),
        command: std::env::args().collect(),
        features: super::features(),
        shard: shard_ctx,
    };
    let outcome = invocation::run_suite(&suite, &specs, &registry, &opts, &mut report)?;
    let table = effbench_dashboards::terminal::summary_table(
        &outcome.results,
        &outcome.out_dir.display().to_string(),
        true,
    );
    if args.json {
        eprint!("\n{table}");
        println!("{}", serde_json::to_string_pretty(&outcome.results)?);
    } else {
        print!("\n{table}");
    }
    eprint!(
        "{}",
        effbench_dashboards::terminal::warnings_summary(&outcome.results)
    );
    if suite.analysis.is_some() && args.shard.is_some() {
        eprintln!("analysis: after `effbench merge` of all shards (a shard has part of the suite)");
    }
    if !suite.tracks.is_empty() {
        match effbench_dashboards::tracks::rankings(&outcome.results, &[]) {
            Ok(t) => eprint!("{}", effbench_dashboards::tracks::text(&t)),
            Err(e) => eprintln!("tracks: {e}"),
        }
    }
    if let Some(a) = &outcome.analysis {
        for n in &a.notes {
            eprintln!("analysis: {n}");
        }
        eprintln!(
            "analysis: {}",
            outcome
                .out_dir
                .join(effbench_harness::analysis::suite::ANALYSIS_FILE)
                .display()
        );
    }
    eprintln!("results: {}", outcome.out_dir.display());
    // shards of a cluster job run concurrently: the merge step (or `effbench site`) builds it
    if !args.no_site && !outcome.interrupted && args.shard.is_none() {
        super::site::after_run(&outcome.out_dir);
    }
    if outcome.interrupted {
        eprintln!(
            "interrupted: {} of {} runs saved in {}",
            outcome.results.len(),
            specs.len(),
            outcome.out_dir.display()
        );
        return Ok(ExitCode::from(effbench_harness::interrupt::exit_code()));
    }
    if outcome.failed() > 0 {
        eprintln!("{} run(s) failed", outcome.failed());
        return Ok(ExitCode::from(EXIT_RUN_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// `  ok  dtype=f32 batch=1  ttft p50 12.3 ms, 456 tok/s` style progress line.
pub fn one_line(r: &RunResult) -> String {
    use effbench_dashboards::format::value;
    use effbench_harness::MetricId;
    let state = match r.status.state {
        RunState::Ok => "ok",
        RunState::Failed => "FAILED",
        RunState::Interrupted => "interrupted",
    };
    let mut parts = Vec::new();
    if let Some(s) = r.metric(MetricId::Ttft).and_then(|m| m.stats.as_ref()) {
        parts.push(format!("ttft p50 {} ms", value(s.p50, "ms")));
    }
    if let Some(m) = r.metric(MetricId::OutputThroughput) {
        parts.push(format!("{} tok/s", value(m.value, "tok/s")));
    }
    if let Some(m) = r.metric(MetricId::Perplexity) {
        parts.push(format!("perplexity {}", value(m.value, "ppl")));
    }
    if let Some(m) = r.metric(MetricId::Top1Agreement) {
        parts.push(format!("agreement {} %", value(m.value, "%")));
    }
    if let Some(m) = r.metric(MetricId::TrainThroughput) {
        parts.push(format!("train {} tok/s", value(m.value, "tok/s")));
    }
    if let Some(m) = r.metric(MetricId::EmbeddingThroughput) {
        parts.push(format!("{} emb/s", value(m.value, "emb/s")));
    }
    if let Some(s) = r
        .metric(MetricId::QueryLatency)
        .and_then(|m| m.stats.as_ref())
    {
        parts.push(format!("query p50 {} ms", value(s.p50, "ms")));
    }
    for id in [MetricId::NdcgAt10, MetricId::OverlapAt10] {
        if let Some(m) = r.metric(id) {
            parts.push(format!("{id} {}", value(m.value, id.unit())));
        }
    }
    if let Some(m) = r.metric(MetricId::Mfu) {
        parts.push(format!("MFU {} %", value(m.value, "%")));
    }
    if let (Some(p), Some(f)) = (
        r.metric(MetricId::HeldoutPerplexity),
        r.metric(MetricId::PerplexityFloor),
    ) {
        parts.push(format!(
            "held-out ppl {} (floor {})",
            value(p.value, "ppl"),
            value(f.value, "ppl")
        ));
    }
    if r.metric(MetricId::HeldoutLoss).is_some() {
        parts.push(match r.metric(MetricId::TimeToTargetLoss) {
            Some(m) => format!("target loss in {} s", value(m.value, "s")),
            None => "target loss not reached".into(),
        });
    }
    if let Some(reason) = &r.status.reason {
        parts.push(reason.clone());
    }
    format!("{state:>11}  {}  {}", r.label(), parts.join(", "))
}
