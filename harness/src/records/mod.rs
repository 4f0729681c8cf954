//! Every record that is stored or passed between stages, in one place: the suite and its
//! sections, the resolved run ([`RunSpec`]), the model facts, the result ([`RunResult`]) and
//! the manifest. Metrics ([`crate::metric`]), warnings ([`crate::warnings`]) and the
//! environment ([`crate::env`]) are records too and keep their own modules.
//!
//! This module imports nothing of the harness but leaf modules (axes, limits, names, metric,
//! warnings, env, retrieval, trace, roofline), so every stage can use these types without
//! importing another stage; `harness/tests/import_cycles.rs` checks that. Behaviour that needs a
//! stage (checks against the axis table are here; resolving meter settings on this machine,
//! ranking by tracks, running a load test are not) lives with the stage, as `impl` blocks or
//! functions there.

mod analysis;
mod meters;
mod model;
mod result;
mod serving;
mod spec;
mod suite;
mod tracks;

pub use analysis::{
    AnalysisConfig, DynascoreConfig, EvalSpec, ParetoConfig, RunAnalysis, DEFAULT_EVAL_TOKENS,
    DEFAULT_EVAL_WINDOW,
};
pub use meters::{
    GpuSelection, MeterSettings, MetersConfig, TdpChoice, TdpRow, DEFAULT_GRID_INTENSITY,
    DEFAULT_GRID_INTENSITY_SOURCE, DEFAULT_PERIOD_MS, DEFAULT_POWERCAP_ROOT, DEFAULT_PUE,
    DEFAULT_PUE_SOURCE,
};
pub use model::{Device, ModelFormat, ModelInfo, ModelSpec, BUILTIN_MODELS, PRESET_PREFIX};
pub use result::{
    Manifest, ManifestEntry, MergedSource, PlannedRun, RunResult, RunState, Series, ShardInfo,
    SkippedRun, StatsMethod, Status, SuiteInfo, SCHEMA_VERSION,
};
pub use serving::{
    Arrival, DatasetFormat, Endpoint, PrefixConfig, SearchConfig, ServingConfig, Slo,
    DEFAULT_MAX_FAILED_PCT, DEFAULT_MAX_REQUEST_RECORDS, DEFAULT_METRICS_INTERVAL_S,
};
pub use spec::{canonical_json, spec_id, RunSpec};
pub use suite::{
    line_col, MatrixConfig, MeasureConfig, OneOrMany, Scenario, Suite, SweepConfig, MAX_ITERS,
    MAX_WARMUP_ITERS,
};
pub use tracks::TrackConfig;
