//! `effbench run --ab BIN_A BIN_B SUITE`: the interleaved A/B part of `run`.

use super::run::Args;
use super::EXIT_RUN_FAILED;
use anyhow::Result;
use effbench_harness::ab::{self, Options, Side};
use effbench_harness::gate::GateConfig;
use effbench_harness::invocation::{default_out_dir, suite_info};
use effbench_harness::{RunSpec, Suite};
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: &Args, suite: &Suite, specs: &[RunSpec]) -> Result<ExitCode> {
    let info = suite_info(suite, specs);
    let order: String = ab::order(args.ab_blocks)
        .iter()
        .map(|s| if *s == Side::A { 'A' } else { 'B' })
        .collect();
    if args.dry_run {
        println!(
            "{}: {} run(s) x {order} ({} ABBA block(s)) = {} slots, nothing executed (--dry-run)",
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
        child_args,
        b_args,
        command: std::env::args().collect(),
    };
    // Fail on a bad binary before printing anything else.
    ab::probe(&opts.bin_a, "BIN_A")?;
    ab::probe(&opts.bin_b, "BIN_B")?;
    eprintln!(
        "effbench: A/B of suite '{}' ({} runs x {} ABBA block(s) = {} slots; {} degrees of \
         freedom for the noise between invocations per run, --ab-blocks); A = {}, B = {}{}",
        suite.name,
        specs.len(),
        args.ab_blocks,
        specs.len() * order.len(),
        ab::noise_df(args.ab_blocks),
        opts.bin_a.display(),
        opts.bin_b.display(),
        args.ab_inject_slowdown
            .map_or(String::new(), |p| format!(" slowed by {p} % (test knob)"))
    );
    let rec = ab::run(&info, specs, &opts, &mut |slot, done, total| {
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
    })?;
    eprintln!("A/B results: {}", out.display());
    if rec.slots.iter().any(|s| s.state.is_some()) {
        match super::compare::build(
            &[(out.join("a"), "A"), (out.join("b"), "B")],
            &GateConfig::default(),
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
