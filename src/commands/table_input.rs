//! Where `pareto` and `dynascore` read their numbers: a CSV file (any table) or effbench
//! results (metric names as columns, run labels as row names).

use anyhow::{bail, Result};
use effbench_harness::analysis::table::{self, NamedTable};
use effbench_harness::records::analysis::ObjectiveSpec;
use effbench_harness::MetricId;
use std::path::PathBuf;

/// The input options shared by the analysis commands.
#[derive(clap::Args)]
pub struct Input {
    /// CSV file with a header row.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "results",
        required_unless_present = "results"
    )]
    pub csv: Option<PathBuf>,
    /// Column holding the row names [default: the first column].
    #[arg(long, value_name = "COL", requires = "csv")]
    pub name: Option<String>,
    /// effbench results instead of a CSV: a result file, an invocation or a suite directory.
    #[arg(long, value_name = "PATH")]
    pub results: Option<PathBuf>,
}

/// Output format of the analysis commands.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

/// Parses the objectives; a CSV column needs its sense spelled out, a metric has its own.
pub fn objectives(input: &Input, specs: &[(String, usize)]) -> Result<Vec<ObjectiveSpec>> {
    specs
        .iter()
        .map(|(s, max_numbers)| {
            let o = if input.results.is_some() {
                ObjectiveSpec::parse_metric(s, *max_numbers == 1).map(|(_, o)| o)
            } else {
                ObjectiveSpec::parse(s, *max_numbers)
            }
            .map_err(anyhow::Error::msg)?;
            if o.better.is_none() && *max_numbers != 1 {
                bail!(
                    "'{s}': give the sense of a CSV column, e.g. {}:lower or {}:higher",
                    o.column,
                    o.column
                );
            }
            Ok(o)
        })
        .collect()
}

/// The table of the named columns, with notes on rows left out (results only).
pub fn read(input: &Input, columns: &[String]) -> Result<(NamedTable, Vec<String>)> {
    if let Some(path) = &input.csv {
        return Ok((
            table::read_csv(path, input.name.as_deref(), columns)?,
            Vec::new(),
        ));
    }
    let path = input
        .results
        .as_ref()
        .expect("clap requires --csv or --results");
    let results = effbench_harness::loader::load_results(path)?;
    let ids: Vec<MetricId> = columns
        .iter()
        .map(|c| MetricId::parse(c).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let rt = table::from_results(&results, &ids);
    let mut t = rt.table;
    t.origin = path.display().to_string();
    Ok((t, rt.skipped))
}
