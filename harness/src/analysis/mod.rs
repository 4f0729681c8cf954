//! Analysis over many runs (or any table of numbers): Pareto fronts with hypervolume,
//! Dynascore, the compare/gate verdict and change-point detection (design.md §4). Pure
//! functions over plain numbers, so the same code serves effbench results, CSV tables from
//! papers, the CLI and the static site.

pub mod changepoint;
pub mod dynascore;
pub mod pareto;
pub mod verdict;
