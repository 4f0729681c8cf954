//! # effbench-dashboards
//!
//! Turns results into things people read.
//!
//! - [`load`] gathers results from many files and directories (machines, dates, suites).
//! - [`columns`] decides what a row shows (one model of columns for every format);
//!   [`report`] builds rows (per run or per group), sorting and speed-ups against a baseline.
//! - [`export`] renders a report: one [`export::Exporter`] per format (table, markdown, CSV,
//!   JSON); [`terminal`] draws aligned text tables; [`format`] turns numbers with units into
//!   short readable strings.
//! - [`site`] writes the static website (leaderboards, plots, Dynascore, run pages).
//! - [`comparison`] renders compare/gate reports (table, PR-comment markdown);
//!   [`github_action_benchmark`] is the export for github-action-benchmark.
//! - [`vllm`] writes a serving run as `vllm bench serve`'s result JSON.
//! - [`metric_reference`] writes docs/metric-reference.md (`effbench list metrics`).
//! - [`tracks`] ranks results in budget tracks (suite `[[tracks]]`, `report --tracks`).
//! - [`fixtures`] makes synthetic results for tests and benchmarks (labelled as such).

pub mod columns;
pub mod comparison;
pub mod export;
pub mod fixtures;
pub mod format;
pub mod github_action_benchmark;
pub mod load;
pub mod metric_reference;
pub mod report;
pub mod site;
pub mod terminal;
pub mod tracks;
pub mod vllm;
