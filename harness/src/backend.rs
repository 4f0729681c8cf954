//! The backend seam: what a backend declares, how it loads a model, and what a session
//! reports per iteration. Adding a backend is one new module in `backends/` plus one line
//! in its registry.

use crate::axes::AxisValue;
use crate::env::{PeakBandwidth, PeakFlops};
use crate::metric::{Metric, MetricId};
use crate::records::RunSpec;
use crate::records::Scenario;
use crate::records::Series;
use crate::records::{ModelFormat, ModelInfo};
use anyhow::Result;

/// What a backend can do, declared so impossible runs are rejected before anything runs.
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub name: &'static str,
    pub description: &'static str,
    pub scenarios: Vec<Scenario>,
    /// dtypes for the `dtype` axis.
    pub dtypes: Vec<&'static str>,
    /// Device kinds (`cpu`, `cuda`) usable in this build.
    pub devices: Vec<&'static str>,
    pub formats: Vec<ModelFormat>,
    /// Matrix axes the backend uses, each with the value used when a suite omits it.
    pub axes: Vec<(&'static str, AxisValue)>,
}

pub use crate::trace::{Emission, GenerationTrace};

/// Source label for timings taken by the harness around in-process work.
pub const WALL_CLOCK: &str = "wall-clock (monotonic)";

/// Counts of work done in one iteration, for throughput over the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Work {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub requests: u64,
}

/// What one iteration reports.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub generation: Option<GenerationTrace>,
    /// Other per-iteration observations (e.g. a training loss).
    pub values: Vec<(MetricId, f64)>,
    pub work: Work,
    /// The session has no more work (e.g. a fixed number of training steps is done).
    pub done: bool,
    /// Seconds of this iteration spent on bookkeeping that is not the work being measured
    /// (a held-out evaluation, a checkpoint write); the runner subtracts it from the
    /// iteration time.
    pub overhead_s: f64,
}

/// Where the harness is in the loop, for sessions that care.
#[derive(Debug, Clone, Copy)]
pub struct IterationCtx {
    /// 0-based index within the phase.
    pub index: u64,
    pub warmup: bool,
}

/// What a session adds after the measured window.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub metrics: Vec<Metric>,
    pub series: Vec<Series>,
    /// Lines for the result's log (e.g. what a reference model was).
    pub notes: Vec<String>,
}

/// The runner's side of a measured window that a session runs itself (a serving load test:
/// arrival schedule, concurrency, warm-up requests are the session's business).
pub trait Window {
    /// Starts the meters: call after warm-up, right before the first measured request.
    fn begin(&mut self);
    /// Stops the meters: call right after the last measured request ended. Returns the
    /// window's wall time in seconds (0 when `begin` was never called).
    fn end(&mut self) -> f64;
    /// Progress within the window (`done` of `total` units, e.g. requests sent).
    fn progress(&self, _done: u64, _total: u64) {}
    /// A new phase (`warm-up`, `measuring`, `draining` ...).
    fn phase(&self, _name: &str) {}
}

/// What a session that ran its own window reports. Metrics keep the usual shape; the runner
/// adds the meters' readings and the derived metrics (energy per token, cost ...).
#[derive(Debug, Clone, Default)]
pub struct WindowReport {
    pub metrics: Vec<Metric>,
    pub series: Vec<Series>,
    pub warnings: Vec<crate::warnings::Warning>,
    pub notes: Vec<String>,
    /// Work done in the window (successful requests, their tokens).
    pub work: Work,
    /// Measured units (requests sent), stored as the result's `iterations`.
    pub units: u64,
    /// The run failed (reason, one line); what was measured is kept.
    pub failure: Option<String>,
    /// The run was interrupted (Ctrl-C); what was measured is kept.
    pub interrupted: bool,
}

/// A loaded model ready to run iterations.
pub trait Session {
    fn model_info(&self) -> &ModelInfo;
    /// One unit of work: an inference request (a batch), a training step, ...
    /// Long iterations should poll [`crate::interrupt::requested`] and return early.
    fn iteration(&mut self, ctx: IterationCtx) -> Result<Sample>;
    /// Called once after the measured window (quality, fidelity, loss curves ...).
    fn finish(&mut self) -> Result<Extras> {
        Ok(Extras::default())
    }
    /// The clock behind the session's timestamps and per-iteration values, stored as the
    /// `source` of the metrics derived from them (a worker process reports its own clock).
    fn timestamp_source(&self) -> String {
        WALL_CLOCK.to_string()
    }
    /// Sessions whose measurement is one whole window rather than an iteration loop (serving
    /// load tests) run it here and return `Some`: they warm up, call `window.begin()` right
    /// before the measured part and `window.end()` right after it. `None` (the default)
    /// means the runner's iteration loop measures this session.
    fn run_window(&mut self, _window: &mut dyn Window) -> Option<Result<WindowReport>> {
        None
    }
    /// Called instead of [`Session::finish`] when the run stopped early (Ctrl-C, a failed
    /// iteration): save what a later run can resume from (a training checkpoint) and report
    /// what was gathered so far; notes say where things were saved.
    fn stopped(&mut self) -> Result<Extras> {
        Ok(Extras::default())
    }
    /// Peak FLOP/s of the device and dtype this session computes in, measured by a probe
    /// (the denominator of MFU); the runner records it in the result's environment.
    fn peak_flops(&self) -> Option<PeakFlops> {
        None
    }
    /// Memory bandwidth of the device this session runs on, measured by a probe (the
    /// denominator of MBU); the runner records it in the result's environment.
    fn peak_bandwidth(&self) -> Option<PeakBandwidth> {
        None
    }
}

/// A backend plugin.
pub trait Backend: Send + Sync {
    fn describe(&self) -> Capabilities;
    /// Backend-specific checks beyond the declared capabilities (e.g. dtype vs format),
    /// run by `validate` before anything runs. `Err` is the reason, one line.
    fn validate(&self, _spec: &RunSpec) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Remarks about a valid spec that do not stop it (e.g. a target loss below what the
    /// data allows), printed before anything runs and kept in the result's log.
    fn warnings(&self, _spec: &RunSpec) -> Vec<String> {
        Vec::new()
    }
    /// Loads the run's model (`spec.model()`) on its device (`spec.device()`).
    fn load(&self, spec: &RunSpec) -> Result<Box<dyn Session>>;
    /// The axes (with defaults) this backend uses for `scenario`; a backend that runs
    /// several scenarios narrows `describe().axes` here, so runs carry only axes that apply.
    fn scenario_axes(&self, _scenario: Scenario) -> Vec<(&'static str, AxisValue)> {
        self.describe().axes
    }
    /// Estimated seconds of the whole run of `spec` (load, warm-up and measurement), for
    /// balancing shards (`run --shard`, `plan`, `slurm`, `k8s`). It must depend on the spec
    /// alone, never on files or timings, so every node computes the same plan. `None` (the
    /// default): the harness's generic estimate, `cluster::shard::estimate_cost`.
    fn estimated_run_s(&self, _spec: &RunSpec) -> Option<f64> {
        None
    }
    /// Lines for the result's log that explain an error from this backend's `load` or
    /// session beyond its one-line cause (an external worker's stderr tail, a server's reply).
    /// Default: none.
    fn error_details(&self, _error: &anyhow::Error) -> Vec<String> {
        Vec::new()
    }
}

/// Backends by name.
#[derive(Default)]
pub struct Registry {
    backends: Vec<Box<dyn Backend>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }
    pub fn register(&mut self, backend: Box<dyn Backend>) {
        self.backends.push(backend);
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.backends.iter().map(|b| b.describe().name).collect()
    }
    pub fn iter(&self) -> impl Iterator<Item = &dyn Backend> {
        self.backends.iter().map(|b| b.as_ref())
    }
    /// The backend called `name`, or an error listing the available ones.
    pub fn get(&self, name: &str) -> std::result::Result<&dyn Backend, String> {
        self.iter()
            .find(|b| b.describe().name == name)
            .ok_or_else(|| {
                format!(
                    "unknown backend '{name}'; available: {}",
                    self.names().join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Device, ModelSpec};

    #[test]
    fn devices_parse() {
        assert_eq!(Device::parse("cpu").unwrap(), Device::Cpu);
        assert_eq!(Device::parse("cuda").unwrap(), Device::Cuda(0));
        assert_eq!(Device::parse("cuda:3").unwrap(), Device::Cuda(3));
        assert!(Device::parse("tpu")
            .unwrap_err()
            .to_string()
            .contains("'tpu'"));
        assert_eq!(Device::Cuda(1).to_string(), "cuda:1");
    }

    #[test]
    fn model_format_from_reference() {
        let m = |r: &str| ModelSpec {
            reference: r.into(),
        };
        assert_eq!(m("default").format(), ModelFormat::Hf);
        assert_eq!(m("x/model.GGUF").format(), ModelFormat::Gguf);
        assert_eq!(m("x/dir").format(), ModelFormat::Hf);
        assert!(m("default").path().is_none());
        assert!(m("seeded").path().is_none() && m("seeded").is_builtin());
        assert_eq!(m("seeded").format(), ModelFormat::Hf);
        assert!(!m("./seeded").is_builtin());
        let p = m("preset:llama-3.2-1b?layers=2");
        assert_eq!(p.format(), ModelFormat::Preset);
        assert_eq!(p.preset(), Some("llama-3.2-1b?layers=2"));
        assert!(p.path().is_none() && !p.is_builtin());
    }
}
