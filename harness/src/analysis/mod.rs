//! Analysis over many runs (or any table of numbers): Pareto fronts with hypervolume and
//! Dynascore (design.md §4). Pure functions over plain numbers, so the same code serves
//! effbench results, CSV tables from papers, the CLI and the static site.

pub mod dynascore;
pub mod pareto;
