//! The runner with a session that runs its own window (serving): meters wrap exactly the
//! part between `begin` and `end`, the report's metrics are kept even when the run failed.

use super::*;
use crate::backend::Capabilities;
use crate::backend::{Backend, IterationCtx, Sample, Session, Work};
use crate::metric::{Metric, MetricId};
use crate::records::RunSpec;
use crate::records::RunState;
use crate::records::Scenario;
use crate::records::SuiteInfo;
use crate::records::{ModelFormat, ModelInfo};
use crate::runner::run_spec_with;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Times {
    begin: Option<Instant>,
    end: Option<Instant>,
    meter_start: Option<Instant>,
    meter_stop: Option<(Instant, f64)>,
}

struct Recorder(Arc<Mutex<Times>>);

impl Meter for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn start(&mut self) {
        self.0.lock().unwrap().meter_start = Some(Instant::now());
    }
    fn stop(&mut self, window_s: f64) -> Reading {
        self.0.lock().unwrap().meter_stop = Some((Instant::now(), window_s));
        Reading::default()
    }
}

struct WindowSession {
    info: ModelInfo,
    times: Arc<Mutex<Times>>,
    failure: Option<String>,
}

impl Session for WindowSession {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }
    fn iteration(&mut self, _ctx: IterationCtx) -> Result<Sample> {
        anyhow::bail!("not used")
    }
    fn run_window(&mut self, w: &mut dyn Window) -> Option<Result<WindowReport>> {
        std::thread::sleep(Duration::from_millis(5)); // warm-up
        self.times.lock().unwrap().begin = Some(Instant::now());
        w.begin();
        std::thread::sleep(Duration::from_millis(20));
        let s = w.end();
        self.times.lock().unwrap().end = Some(Instant::now());
        std::thread::sleep(Duration::from_millis(5)); // post-processing
        assert!(s >= 0.02);
        Some(Ok(WindowReport {
            metrics: vec![Metric::scalar(MetricId::RequestsCompleted, 7.0, "test")],
            work: Work {
                input_tokens: 10,
                output_tokens: 70,
                requests: 7,
            },
            units: 9,
            failure: self.failure.clone(),
            ..Default::default()
        }))
    }
}

struct WindowBackend(Arc<Mutex<Times>>, Option<String>);

impl Backend for WindowBackend {
    fn describe(&self) -> Capabilities {
        Capabilities {
            name: "window",
            description: "",
            scenarios: vec![Scenario::Serving],
            dtypes: vec![],
            devices: vec!["cpu"],
            formats: vec![ModelFormat::Remote],
            axes: vec![],
        }
    }
    fn load(&self, _spec: &RunSpec) -> Result<Box<dyn Session>> {
        Ok(Box::new(WindowSession {
            info: ModelInfo::default(),
            times: self.0.clone(),
            failure: self.1.clone(),
        }))
    }
}

fn run_window(failure: Option<String>) -> (RunResult, Arc<Mutex<Times>>) {
    let times = Arc::new(Mutex::new(Times::default()));
    let spec = RunSpec {
        id: "0000000000000001".into(),
        ..RunSpec::new("t", Scenario::Serving, "window", Default::default(), 1)
    };
    let suite = SuiteInfo {
        name: "t".into(),
        description: String::new(),
        file: None,
        sha256: None,
        varying_axes: vec![],
        analysis: None,
    };
    let r = run_spec_with(
        &spec,
        &WindowBackend(times.clone(), failure),
        &suite,
        &crate::probe::environment(&[]),
        &crate::progress::NoProgress,
        vec![Box::new(Recorder(times.clone()))],
        None,
    );
    (r, times)
}

#[test]
fn meters_wrap_exactly_the_sessions_window() {
    let (r, times) = run_window(None);
    assert_eq!(r.status.state, RunState::Ok);
    let t = times.lock().unwrap();
    let (begin, end) = (t.begin.unwrap(), t.end.unwrap());
    let start = t.meter_start.unwrap();
    let (stop, window_s) = t.meter_stop.unwrap();
    assert!(start >= begin && stop <= end, "meters inside begin..end");
    assert!((window_s - r.measured_s).abs() < 1e-12);
    assert!(window_s >= 0.02);
    assert_eq!(r.iterations, 9, "units of the report");
    assert_eq!(r.metric(MetricId::RequestsCompleted).unwrap().value, 7.0);
    assert!(
        r.warnings
            .iter()
            .all(|w| w.kind != crate::warnings::WarningKind::FewerSamplesThanAsked),
        "no iteration warnings for windows"
    );
}

#[test]
fn a_failed_window_keeps_its_metrics() {
    let (r, _) = run_window(Some(
        "server unreachable: stopped after 3 of 10 requests".into(),
    ));
    assert_eq!(r.status.state, RunState::Failed);
    assert_eq!(
        r.status.reason.as_deref(),
        Some("server unreachable: stopped after 3 of 10 requests")
    );
    assert_eq!(r.metric(MetricId::RequestsCompleted).unwrap().value, 7.0);
}
