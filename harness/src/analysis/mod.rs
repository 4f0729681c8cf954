//! Analysis over many runs (or any table of numbers): Pareto fronts with hypervolume,
//! Dynascore, the compare/gate verdict and change-point detection (design.md §4), the
//! `[analysis]` suite section, speed-ups and the suite-level `analysis.json`. Pure functions
//! over plain numbers, so the same code serves effbench results, CSV tables from papers, the
//! CLI and the static site.

pub mod changepoint;
pub mod csv;
pub mod dynascore;
pub mod invocations;
pub mod pareto;
pub mod suite;
pub mod table;
pub mod tracks;
pub mod verdict;
