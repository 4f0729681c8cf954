//! # effbench-dashboards
//!
//! Turns results into things people read. [`columns`] decides what a row shows (one model
//! of columns for every format); [`terminal`] renders aligned text tables; [`format`] turns
//! numbers with units into short readable strings; [`comparison`] renders compare/gate
//! reports (table, PR-comment markdown); [`github_action_benchmark`] is the export for
//! github-action-benchmark.

pub mod columns;
pub mod comparison;
pub mod format;
pub mod github_action_benchmark;
pub mod terminal;
