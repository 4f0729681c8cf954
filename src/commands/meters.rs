//! `effbench meters`: which meters work on this machine and why the others do not; with
//! `--probe-cmd`, meters a window around a command (e.g. a GPU load) and prints what each
//! meter read. Also the meter flags shared with `effbench run`.

use anyhow::{bail, Context, Result};
use effbench_dashboards::terminal::Table;
use effbench_harness::backend::Work;
use effbench_harness::meters::derived::{self, Inputs};
use effbench_harness::meters::settings;
use effbench_harness::meters::{self, estimate, survey, Reading};
use effbench_harness::records::{GpuSelection, MeterSettings, MetersConfig};
use effbench_harness::Scenario;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Meter settings as flags; each overrides the suite's `[meters]` value of the same name.
#[derive(clap::Args, Clone, Default)]
#[command(next_help_heading = "Meters (override the suite's [meters])")]
pub struct MeterArgs {
    /// Background sampling period of power, memory and utilisation [default: 100]
    #[arg(long, value_name = "MS")]
    pub meter_period_ms: Option<f64>,
    /// Measure idle power for this many seconds before the suite; runs then report net energy
    #[arg(long, value_name = "S")]
    pub idle_baseline_s: Option<f64>,
    /// GPUs to meter: auto (the run's cuda device), all, none, or indices such as 0,1
    #[arg(long, value_name = "SEL", value_parser = GpuSelection::parse)]
    pub gpus: Option<GpuSelection>,
    /// Root of the powercap tree read for RAPL [default: /sys/class/powercap]
    #[arg(long, value_name = "DIR")]
    pub powercap_root: Option<String>,
    /// TDP of one CPU package for the labelled estimate-tdp fallback [default: table by CPU model]
    #[arg(long, value_name = "W")]
    pub cpu_tdp_w: Option<f64>,
    /// Hardware threads sharing that TDP
    #[arg(long, value_name = "N")]
    pub cpu_threads_per_package: Option<u32>,
    /// Grid carbon intensity in gCO2e/kWh [default: 475, world average]
    #[arg(long, value_name = "G")]
    pub grid_intensity: Option<f64>,
    /// Where the grid intensity comes from (recorded with it)
    #[arg(long, value_name = "TEXT")]
    pub grid_intensity_source: Option<String>,
    /// Power usage effectiveness of the facility, >= 1 [default: 1.0]
    #[arg(long, value_name = "X")]
    pub pue: Option<f64>,
    /// Price of the hardware in $ per hour; enables the cost metrics
    #[arg(long, value_name = "USD")]
    pub price_per_hour: Option<f64>,
    /// Where the price comes from (recorded with it)
    #[arg(long, value_name = "TEXT")]
    pub price_source: Option<String>,
}

impl MeterArgs {
    pub fn config(&self) -> MetersConfig {
        MetersConfig {
            period_ms: self.meter_period_ms,
            idle_baseline_s: self.idle_baseline_s,
            gpus: self.gpus.clone(),
            powercap_root: self.powercap_root.clone(),
            cpu_tdp_w: self.cpu_tdp_w,
            cpu_threads_per_package: self.cpu_threads_per_package,
            tdp_table: vec![],
            grid_intensity: self.grid_intensity,
            grid_intensity_source: self.grid_intensity_source.clone(),
            pue: self.pue,
            price_per_hour: self.price_per_hour,
            price_source: self.price_source.clone(),
        }
    }

    /// Resolves the flags over a suite's `[meters]` for this machine.
    pub fn resolve(&self, suite: &MetersConfig) -> Result<MeterSettings> {
        settings::resolve(suite, &self.config(), &estimate::cpu_model()).map_err(anyhow::Error::msg)
    }
}

/// Show which meters work here and why others do not; optionally meter a command.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench meters\n  effbench meters --probe-s 5                      (idle power)\n  \
effbench meters --probe-cmd 'python3 load.py'   (energy of a GPU load: counter vs power samples)\n  \
effbench meters --suite suites/quickstart.toml  (with a suite's [meters] settings)"
)]
pub struct Args {
    #[command(flatten)]
    pub meters: MeterArgs,
    /// Use this suite's [meters] settings (flags still override them).
    #[arg(long, value_name = "SUITE", value_parser = super::suites::find)]
    pub suite: Option<PathBuf>,
    /// Meter the window around this shell command (`sh -c`); GPUs default to all.
    #[arg(long, value_name = "CMD", conflicts_with = "probe_s")]
    pub probe_cmd: Option<String>,
    /// Meter an idle window of this many seconds.
    #[arg(long, value_name = "S")]
    pub probe_s: Option<f64>,
    /// Print the probe's readings as JSON on stdout (the tables go to stderr).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let suite_cfg = match &args.suite {
        Some(p) => effbench_harness::matrix::load_suite(p)?.meters,
        None => MetersConfig::default(),
    };
    let probe = args.probe_cmd.is_some() || args.probe_s.is_some();
    if args.json && !probe {
        bail!("--json prints a probe's readings: add --probe-cmd CMD or --probe-s SECONDS");
    }
    let mut s = args.meters.resolve(&suite_cfg)?;
    if probe && args.meters.gpus.is_none() && suite_cfg.gpus.is_none() {
        // a probe has no run device: meter every GPU unless told otherwise
        s.gpus = GpuSelection::All;
        s.sources
            .insert("gpus".into(), "probe default: every GPU".into());
    }
    let out: fn(&str) = if args.json {
        |l: &str| eprintln!("{l}")
    } else {
        |l: &str| println!("{l}")
    };
    print_survey(&s, out);
    if args.probe_cmd.is_none() && args.probe_s.is_none() {
        return Ok(ExitCode::SUCCESS);
    }
    let probe_wait = match args.probe_s {
        Some(sec) => {
            if !sec.is_finite() || sec <= 0.0 {
                bail!("--probe-s {sec} must be a number of seconds > 0");
            }
            effbench_harness::limits::seconds("--probe-s", sec).map_err(anyhow::Error::msg)?
        }
        None => std::time::Duration::ZERO,
    };
    let mut ms = meters::energy_meters(&s, "", 0);
    out("");
    for m in ms.iter_mut() {
        m.start();
    }
    let t0 = Instant::now();
    let status = match &args.probe_cmd {
        Some(cmd) => {
            out(&format!("probe: running `{cmd}`"));
            let mut c = std::process::Command::new("sh");
            c.arg("-c")
                .arg(cmd)
                // with --json our stdout holds only the JSON: the command's output goes to stderr
                .stdout(if args.json {
                    std::process::Stdio::from(std::io::stderr())
                } else {
                    std::process::Stdio::inherit()
                });
            // It dies with effbench and gets Ctrl-C/SIGTERM/SIGHUP passed on.
            effbench_harness::guard::prepare(&mut c, libc::SIGTERM);
            let mut child = c
                .spawn()
                .with_context(|| format!("cannot start `sh -c {cmd}`"))?;
            let forwarding = effbench_harness::interrupt::forward_to(child.id());
            let st = child.wait();
            drop(forwarding);
            Some(st.with_context(|| format!("waiting for `sh -c {cmd}`"))?)
        }
        None => {
            out(&format!(
                "probe: idle for {} s",
                args.probe_s.unwrap_or(0.0)
            ));
            // In slices, so Ctrl-C/SIGTERM ends the probe (its readings are still printed).
            let t = Instant::now();
            while t.elapsed() < probe_wait && !effbench_harness::interrupt::requested() {
                std::thread::sleep(
                    (probe_wait - t.elapsed().min(probe_wait))
                        .min(std::time::Duration::from_millis(50)),
                );
            }
            None
        }
    };
    let window = t0.elapsed().as_secs_f64();
    let mut reading = Reading::default();
    for m in ms.iter_mut() {
        reading.extend(m.stop(window));
    }
    let d = derived::derive(&Inputs {
        metrics: &reading.metrics,
        window_s: window,
        work: Work::default(),
        scenario: Scenario::Inference,
        params: None,
        settings: &s,
        idle: None,
    });
    reading.extend(d);
    print_reading(&reading, window, out);
    if args.json {
        let json = serde_json::json!({
            "window_s": window,
            "metrics": reading.metrics,
            "warnings": reading.warnings,
            "notes": reading.notes,
            "settings": s,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    match status {
        Some(st) if !st.success() => {
            eprintln!("probe command failed ({st}); readings above cover its window");
            Ok(ExitCode::from(super::EXIT_RUN_FAILED))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn print_survey(s: &MeterSettings, out: fn(&str)) {
    let cpu = estimate::cpu_model();
    out(&format!(
        "meters on this machine ({}, {} threads):",
        if cpu.is_empty() { "unknown CPU" } else { &cpu },
        estimate::machine_threads()
    ));
    let rows = survey::survey(s);
    for a in &rows {
        out(&format!(
            "  {:<16} {:<12} {}",
            a.meter,
            a.state.label(),
            a.detail
        ));
    }
    let works = |m: &str| {
        rows.iter()
            .any(|a| a.meter.contains(m) && a.state == survey::State::Works)
    };
    let measured: Vec<&str> = [("nvml", "GPU (NVML)"), ("rapl", "CPU/DRAM (RAPL)")]
        .into_iter()
        .filter(|(k, _)| works(k))
        .map(|(_, n)| n)
        .collect();
    out("");
    if measured.is_empty() {
        out(
            "energy here: no energy counter is readable, so runs report the labelled estimate-tdp \
             CPU figure; it is never shown as measured energy",
        );
    } else {
        out(&format!(
            "energy here: measured by {}",
            measured.join(" and ")
        ));
    }
    let src = |k: &str| s.sources.get(k).map_or("", |x| x.as_str()).to_string();
    out(&format!(
        "carbon: energy x PUE {} ({}) x {} gCO2e/kWh ({})",
        s.pue,
        src("pue"),
        s.grid_intensity,
        src("grid_intensity")
    ));
    out(&match s.price_per_hour {
        Some(p) => format!("cost: ${p}/hour ({})", src("price_per_hour")),
        None => "cost: no price set (--price-per-hour or [meters] price_per_hour)".into(),
    });
    out(&format!(
        "sampling every {} ms ({}); GPUs metered: {} ({})",
        s.period_ms,
        src("period_ms"),
        s.gpus,
        src("gpus")
    ));
}

fn print_reading(r: &Reading, window: f64, out: fn(&str)) {
    out(&format!("probe window: {window:.3} s"));
    let mut t = Table {
        headers: ["metric", "value", "unit", "source"]
            .iter()
            .map(|h| h.to_string())
            .collect(),
        rows: Vec::new(),
    };
    for m in &r.metrics {
        let shown = match &m.stats {
            Some(st) => format!(
                "{} (max {})",
                effbench_dashboards::format::value(m.value, &m.unit),
                effbench_dashboards::format::value(st.max, &m.unit)
            ),
            None => effbench_dashboards::format::value(m.value, &m.unit),
        };
        t.rows.push(vec![
            (m.name.name().to_string(), false),
            (shown, true),
            (m.unit.clone(), false),
            (m.source.clone(), false),
        ]);
    }
    for line in t.render().lines() {
        out(&format!("  {line}"));
    }
    for n in &r.notes {
        out(&format!("note: {n}"));
    }
    for w in &r.warnings {
        out(&format!("warning: {w}"));
    }
}
