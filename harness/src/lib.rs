//! # effbench-harness
//!
//! The core of effbench: everything except the backends and the rendering.
//!
//! - [`records`] is the crate `effbench-records` (`harness/records`): every record stored or
//!   passed between stages — the suite and its sections (parsed from `suites/*.toml`),
//!   [`RunSpec`], [`ModelInfo`], [`RunResult`], the manifest, the metric table, warnings, axes
//!   and the environment as plain data — with no I/O and nothing of ours below it. Its
//!   modules are re-exported here under their old paths ([`metric`], [`axes`], ...).
//!   `tests/layering.rs` checks that, and that no two modules here import each other
//!   through a chain.
//! - [`axes`] defines the matrix axes; [`matrix`] expands a suite into [`RunSpec`]s with
//!   stable ids and validates them against a backend's [`backend::Capabilities`].
//! - [`backend`] is the plugin seam: [`backend::Backend`] loads a [`backend::Session`] that
//!   runs iterations and reports token timestamps ([`backend::GenerationTrace`]).
//! - [`runner`] is the measurement loop (warm-up, min/max iterations and durations, adaptive
//!   stop); [`invocation`] runs a whole suite and writes results and the manifest atomically.
//! - [`metric`] is the one table of metrics (name, unit, direction); [`stats`] the summary
//!   statistics; [`trace`] the latency formulas; [`warnings`] measurement-quality warnings;
//!   [`meters`] what is measured around the window (memory, CPU share, GPU/CPU/DRAM energy,
//!   power) and what is derived from it (energy per token, carbon, cost).
//! - [`serving`]: load tests against servers (arrival schedules, request records, goodput,
//!   streamed histograms, server search).
//! - [`result`] writes results and manifests atomically; [`env`] is the environment
//!   fingerprint (plain data) and [`probe`] fills it; [`loader`] is the one set of rules for
//!   finding and reading stored results.
//! - [`interrupt`]: Ctrl-C, SIGTERM and SIGHUP (stop, save, exit 128 + signal); [`guard`]:
//!   child processes that never outlive effbench; [`limits`]: the caps and range checks on
//!   every number from outside.
//! - [`roofline`] places inference runs under the measured bandwidth and FLOP/s roofs (MBU).
//! - [`protocol`] is protocol v1 of external backends (JSON lines); [`worker`] runs one
//!   worker process (timeouts, bounded lines, stderr tail, always reaped).
//! - [`cluster`] fans a suite out over a cluster: shards, merge, Slurm and Kubernetes jobs.
//! - CI gates: [`hypothesis`] (Welch t, Mann-Whitney U), [`comparison`] (two result sets
//!   matched by spec id, verdicts from [`analysis::verdict`]), [`gate`] (gate.toml and the
//!   pass/fail decision), [`ab`] (interleaved ABBA runs of two builds), [`history`] (the
//!   append-only history and its trends with [`analysis::changepoint`]); [`fixtures`] builds
//!   synthetic results for tests and benchmarks.

pub mod ab;
pub mod analysis;
pub mod backend;
pub mod calibration;
pub mod cluster;

pub mod comparison;
pub mod counters;
pub mod fixtures;
pub mod gate;
pub mod guard;
pub mod history;
pub mod hypothesis;
pub mod interrupt;
pub mod invocation;
pub mod loader;
pub mod matrix;
pub mod meters;
pub mod plausible;
pub mod probe;
pub mod progress;
pub mod protocol;
pub mod result;
pub mod runner;
pub mod schema;
pub mod serving;
pub mod sweep;
mod window;
pub mod worker;

// The data model is its own crate (harness/records); its modules keep their paths here.
pub use effbench_records as records;
pub use effbench_records::{
    axes, env, escape, limits, metric, names, retrieval, roofline, secrets, stats, trace, warnings,
};

pub use backend::{Backend, Capabilities, Registry, Session};
pub use metric::{Better, Metric, MetricId};
pub use records::{Device, ModelInfo, ModelSpec, RunResult, RunSpec, Scenario, Suite};
