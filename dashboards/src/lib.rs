//! # effbench-dashboards
//!
//! Turns results into things people read. [`columns`] decides what a row shows (one model
//! of columns for every format); [`terminal`] renders aligned text tables; [`format`] turns
//! numbers with units into short readable strings.

pub mod columns;
pub mod format;
pub mod terminal;
