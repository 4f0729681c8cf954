//! `effbench run --ab BIN_A BIN_B SUITE`: the interleaved A/B part of `run`.

use super::run::Args;
use super::EXIT_RUN_FAILED;
use anyhow::Result;
use effbench_harness::ab::{self, Options, Side};
use effbench_harness::analysis::verdict::band;
use effbench_harness::gate::GateConfig;
use effbench_harness::invocation::{default_out_dir, suite_info};
use effbench_harness::metric::Better;
use effbench_harness::{MetricId, RunSpec, Suite};
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: &Args, suite: &Suite, specs: &[RunSpec]) -> Result<ExitCode> {
    let info = suite_info(suite, specs);
    let order: String = ab::order(args.ab_blocks)
        .iter()
        .map(|s| if *s == Side::A { 'A' } else { 'B' })
        .collect();
    let gate_cfg = match &args.ab_gate_config {
        Some(p) => GateConfig::load(p)?,
        None => GateConfig::default(),
    };
    let adaptive = args.ab_target_mde.map(|target| ab::Adaptive {
        target_mde_pct: target,
        max_blocks: args.ab_max_blocks,
        metrics: if args.ab_target_metric.is_empty() {
            DEFAULT_TARGETS.to_vec()
        } else {
            args.ab_target_metric.clone()
        },
        gate_config: args
            .ab_gate_config
            .as_ref()
            .map_or("default".into(), |p| p.display().to_string()),
    });
    ab::check_blocks(args.ab_blocks, adaptive.as_ref())?;
    if let Some(a) = &adaptive {
        warn_unreachable(a, &gate_cfg);
    }
    if args.dry_run {
        let upto = args.ab_target_mde.map_or(String::new(), |t| {
            format!(
                "; up to {} block(s) = {} slots while the minimum detectable regression is \
                 above {t} %",
                args.ab_max_blocks,
                specs.len() * 4 * args.ab_max_blocks
            )
        });
        println!(
            "{}: {} run(s) x {order} ({} ABBA block(s)) = {} slots{upto}, nothing executed \
             (--dry-run)",
            args.suite.display(),
            specs.len(),
            args.ab_blocks,
            specs.len() * order.len()
        );
        for s in specs {
            println!("  {}  {}  {order}", s.id, s.label(&info.varying_axes));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(Path::new("results"), &format!("{}/ab", suite.name)));
    let mut child_args = meter_args(&args.meters);
    // Each slot is one spec: rebuilding the whole site after every slot only costs time.
    child_args.push("--no-site".to_string());
    if let Some(ms) = args.inject_delay {
        child_args.extend(["--inject-delay".to_string(), format!("{ms}ms")]);
    }
    if let Some(pct) = args.inject_slowdown {
        child_args.extend(["--inject-slowdown".to_string(), pct.to_string()]);
    }
    let b_args = match args.ab_inject_slowdown {
        Some(pct) => vec!["--inject-slowdown".to_string(), pct.to_string()],
        None => Vec::new(),
    };
    let opts = Options {
        bin_a: args.ab[0].clone(),
        bin_b: args.ab[1].clone(),
        suite_file: args.suite.clone(),
        out: out.clone(),
        blocks: args.ab_blocks,
        adaptive: adaptive.clone(),
        child_args,
        b_args,
        command: std::env::args().collect(),
    };
    // Fail on a bad binary or count before printing anything else.
    ab::check_options(&opts)?;
    ab::probe(&opts.bin_a, "BIN_A")?;
    ab::probe(&opts.bin_b, "BIN_B")?;
    let blocks = match &opts.adaptive {
        Some(a) => format!(
            "{} to {} ABBA blocks (more while the minimum detectable regression of {} is above \
             {} %, --ab-target-mde)",
            args.ab_blocks,
            a.max_blocks,
            names(&a.metrics),
            a.target_mde_pct
        ),
        None => format!(
            "{} ABBA block(s) = {} slots",
            args.ab_blocks,
            specs.len() * order.len()
        ),
    };
    eprintln!(
        "effbench: A/B of suite '{}' ({} runs x {blocks}; {} degrees of freedom for the noise \
         between invocations per run after {} block(s), --ab-blocks); A = {}, B = {}{}",
        suite.name,
        specs.len(),
        ab::noise_df(args.ab_blocks),
        args.ab_blocks,
        opts.bin_a.display(),
        opts.bin_b.display(),
        args.ab_inject_slowdown
            .map_or(String::new(), |p| format!(" slowed by {p} % (test knob)"))
    );
    let mut precision = |spec: &RunSpec, done: usize| -> Result<ab::Precision> {
        let Some(a) = opts.adaptive.as_ref() else {
            // ab::run asks only when adaptive.
            return Ok(ab::Precision {
                metric: None,
                mde_pct: None,
                why_none: "not adaptive".into(),
            });
        };
        let p = precision(&out, &gate_cfg, spec, &a.metrics);
        let label = spec.label(&info.varying_axes);
        let run = if label.is_empty() { &spec.id } else { &label };
        let what = match (p.metric, p.mde_pct) {
            (Some(m), Some(v)) => format!("minimum detectable regression of {m} {v:.1} %"),
            _ => format!("no minimum detectable regression ({})", p.why_none),
        };
        let t = a.target_mde_pct;
        let next = match p.mde_pct {
            _ if ab::wants_more(a, done, &p) => format!("> {t} %: one more block"),
            Some(v) => format!(
                "{} {t} %: {}",
                if v <= t { "<=" } else { ">" },
                ab::stop_reason(a, done, &p)
            ),
            None => "stopping here".into(),
        };
        eprintln!("{run}: after {done} block(s), {what} {next}");
        Ok(p)
    };
    let rec = ab::run(
        &info,
        specs,
        &opts,
        &mut |slot, done, total| {
            let side = if slot.side == Side::A { "A" } else { "B" };
            let state = match (slot.state, slot.exit_code) {
                (Some(s), _) => format!("{s:?}").to_lowercase(),
                (None, Some(c)) => format!("exit {c}, no result"),
                (None, None) => "killed".into(),
            };
            let mut line = format!("[{done}/{total}] {side}  {}  {state}", slot.label);
            if slot
                .run_id
                .as_deref()
                .is_some_and(|id| id != slot.planned_id)
            {
                line.push_str(&format!(
                "  (run id {} differs from the planned {}: the builds resolve this run differently)",
                slot.run_id.as_deref().unwrap_or(""),
                slot.planned_id
            ));
            }
            eprintln!("{line}");
        },
        &mut precision,
    )?;
    eprintln!("A/B results: {}", out.display());
    for s in &rec.stops {
        let run = if s.label.is_empty() { &s.id } else { &s.label };
        eprintln!(
            "{run}: {} ABBA block(s) ({}, {} invocations a side; {})",
            s.blocks,
            s.mde_pct
                .map_or("no minimum detectable regression".into(), |v| format!(
                    "minimum detectable regression of {} {v:.1} %",
                    s.metric.map_or("?", |m| m.name())
                )),
            2 * s.blocks,
            s.reason
        );
    }
    if rec.slots.iter().any(|s| s.state.is_some()) {
        match super::compare::build(
            &[(out.join("a"), "A"), (out.join("b"), "B")],
            &gate_cfg,
            Some(&out),
            None,
        ) {
            Ok(c) => print!("\n{}", effbench_dashboards::comparison::table(&c)),
            Err(e) => eprintln!(
                "no comparison: {}",
                effbench_harness::runner::error_line(&e)
            ),
        }
        eprintln!(
            "compare again: effbench compare {0}   gate: effbench gate --ab {0}",
            out.display()
        );
    }
    if effbench_harness::interrupt::requested()
        || rec
            .slots
            .iter()
            .any(|s| effbench_harness::interrupt::is_interrupt_exit(s.exit_code))
    {
        return Ok(ExitCode::from(effbench_harness::interrupt::exit_code()));
    }
    if rec.slots.iter().any(|s| s.exit_code != Some(0)) {
        return Ok(ExitCode::from(EXIT_RUN_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's throughput, whatever its scenario: what `--ab-target-mde` judges by default.
const DEFAULT_TARGETS: &[MetricId] = &[
    MetricId::OutputThroughput,
    MetricId::TrainThroughput,
    MetricId::EmbeddingThroughput,
    MetricId::QueryThroughput,
    MetricId::RequestThroughput,
];

fn names(ms: &[MetricId]) -> String {
    if ms == DEFAULT_TARGETS {
        return "the run's throughput".into();
    }
    let v: Vec<&str> = ms.iter().map(|m| m.name()).collect();
    if v.len() > 1 {
        format!("the first of {}", v.join(", "))
    } else {
        v.join("")
    }
}

/// Warns when the gate settings make the target unreachable: the minimum detectable regression
/// includes the band's worse edge (noise band or relative threshold), and a gate file's
/// `metrics` list may leave the targets out.
fn warn_unreachable(a: &ab::Adaptive, cfg: &GateConfig) {
    let compared: Vec<MetricId> = a
        .metrics
        .iter()
        .copied()
        .filter(|m| cfg.metrics.is_empty() || cfg.metrics.contains(m))
        .collect();
    if compared.is_empty() {
        eprintln!(
            "warning: the gate settings compare none of {} (their `metrics` list): every run \
             stops after --ab-blocks; name a compared metric with --ab-target-metric",
            names(&a.metrics)
        );
        return;
    }
    // The worse edge of each metric's band (an absolute threshold needs the base mean: not
    // known in advance).
    let edge = compared
        .iter()
        .map(|m| {
            let [lo, hi] = band(&cfg.rule(*m, ""), m.better(), 0.0);
            match m.better() {
                Better::Lower => hi,
                Better::Higher => -lo,
            }
        })
        .fold(f64::INFINITY, f64::min);
    if a.target_mde_pct <= edge {
        eprintln!(
            "warning: --ab-target-mde {} % is within the gate's band ({edge} %, noise band or \
             max_regression_pct): no regression that small can fail the gate, so every run \
             takes --ab-max-blocks {}",
            a.target_mde_pct, a.max_blocks
        );
    }
}

/// The minimum detectable regression of the first of `targets` that `spec` has, as the gate
/// would report it on the A/B directory `out` as it stands, from this spec's slots alone (so
/// another run's results can neither fail nor change it).
fn precision(out: &Path, cfg: &GateConfig, spec: &RunSpec, targets: &[MetricId]) -> ab::Precision {
    let none = |why: String| ab::Precision {
        metric: None,
        mde_pct: None,
        why_none: why,
    };
    let c = match spec_comparison(out, cfg, spec) {
        Ok(c) => c,
        Err(e) => {
            return none(format!(
                "no comparison: {}",
                effbench_harness::runner::error_line(&e)
            ))
        }
    };
    // The children may resolve the spec to another id than this effbench planned.
    let Some(run) = c.runs.first() else {
        let why = c
            .not_ok
            .first()
            .and_then(|r| r.reason.clone())
            .unwrap_or_else(|| "the run has no ok result on both sides".into());
        return none(why);
    };
    let Some(m) = targets
        .iter()
        .find_map(|t| run.metrics.iter().find(|m| m.metric == *t))
    else {
        return none(format!("the run has none of {}", names(targets)));
    };
    ab::Precision {
        metric: Some(m.metric),
        mde_pct: m.result.mde_pct,
        why_none: if m.result.mde_pct.is_none() {
            format!("{} has no invocation-level test", m.metric)
        } else {
            String::new()
        },
    }
}

/// The comparison of `spec`'s slots so far: the results of both sides whose slot was planned
/// for it (by the run id its child reported), with their ABBA blocks.
fn spec_comparison(
    out: &Path,
    cfg: &GateConfig,
    spec: &RunSpec,
) -> Result<effbench_harness::comparison::Comparison> {
    let rec = ab::read_record(out)?;
    let ids: Vec<&str> = rec
        .slots
        .iter()
        .filter(|s| s.planned_id == spec.id)
        .filter_map(|s| s.run_id.as_deref())
        .collect();
    super::compare::build_runs(
        &[(out.join("a"), "A"), (out.join("b"), "B")],
        cfg,
        Some(out),
        None,
        Some(&ids),
    )
}

/// The meter flags given to this invocation, as flags for the children (each child resolves
/// them over the suite's `[meters]` itself).
fn meter_args(m: &super::meters::MeterArgs) -> Vec<String> {
    let mut out = Vec::new();
    let mut put = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push(format!("--{flag}"));
            out.push(v);
        }
    };
    put("meter-period-ms", m.meter_period_ms.map(|v| v.to_string()));
    put("idle-baseline-s", m.idle_baseline_s.map(|v| v.to_string()));
    put("gpus", m.gpus.as_ref().map(|v| v.to_string()));
    put("powercap-root", m.powercap_root.clone());
    put("cpu-tdp-w", m.cpu_tdp_w.map(|v| v.to_string()));
    put(
        "cpu-threads-per-package",
        m.cpu_threads_per_package.map(|v| v.to_string()),
    );
    put("grid-intensity", m.grid_intensity.map(|v| v.to_string()));
    put("grid-intensity-source", m.grid_intensity_source.clone());
    put("pue", m.pue.map(|v| v.to_string()));
    put("price-per-hour", m.price_per_hour.map(|v| v.to_string()));
    put("price-source", m.price_source.clone());
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: super::Args,
    }

    #[test]
    fn meter_flags_reach_the_children_unchanged() {
        let given = [
            "x",
            "s.toml",
            "--meter-period-ms",
            "50",
            "--idle-baseline-s",
            "2",
            "--gpus",
            "0,1",
            "--powercap-root",
            "/tmp/p",
            "--cpu-tdp-w",
            "65",
            "--cpu-threads-per-package",
            "8",
            "--grid-intensity",
            "350",
            "--grid-intensity-source",
            "grid op",
            "--pue",
            "1.2",
            "--price-per-hour",
            "3.5",
            "--price-source",
            "list price",
        ];
        let parent = Cli::parse_from(given).run;
        let mut child = vec!["x".to_string(), "s.toml".to_string()];
        child.extend(super::meter_args(&parent.meters));
        let child = Cli::parse_from(child).run;
        assert_eq!(child.meters.config(), parent.meters.config());
        assert_eq!(
            super::meter_args(&Cli::parse_from(["x", "s.toml"]).run.meters),
            Vec::<String>::new()
        );
    }
}
