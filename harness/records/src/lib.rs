//! # effbench-records
//!
//! effbench's data model: every record that is stored or passed between stages, in one
//! place. The suite and its sections, the resolved run ([`RunSpec`]), the model facts, the
//! result ([`RunResult`]) and the manifest; the metric table ([`metric`]), measurement
//! warnings with all their text ([`warnings`]), the environment fingerprint as plain data
//! ([`env`]), the matrix axes ([`axes`]) and the summary statistics every metric carries
//! ([`stats`]).
//!
//! It depends on serde and a few data crates, nothing of effbench's, and none of its functions
//! does I/O or probes the machine: reading files, probing hardware, expanding a suite and
//! measuring are `effbench-harness`'s, which re-exports this crate as `records` (and each
//! module here under its old path, e.g. `effbench_harness::metric`). Behaviour that needs a
//! stage lives with the stage, as functions or traits there.
//!
//! Schemas: `harness/schema/*.json` are generated from these types.

pub mod axes;
pub mod env;
pub mod escape;
pub mod limits;
pub mod metric;
pub mod names;
pub mod retrieval;
pub mod roofline;
pub mod secrets;
pub mod stats;
pub mod trace;
pub mod warnings;

pub mod analysis;
pub mod meters;
pub mod model;
pub mod result;
pub mod serving;
pub mod spec;
pub mod suite;
pub mod tracks;

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
