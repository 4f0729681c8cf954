//! `effbench dynascore`: Dynaboard's utility-weighted score (docs/metrics.md#pareto-fronts-and-dynascore) of any table
//! (CSV or effbench results), with the AMRS of every metric.

use super::table_input::{self, Format, Input};
use anyhow::Result;
use effbench_dashboards::format::sig3;
use effbench_dashboards::terminal::Table;
use effbench_harness::analysis::dynascore::{dynascore, DynaError, DynaMetric};
use effbench_harness::Better;
use std::process::ExitCode;

/// Rank rows by Dynascore: every metric converted into units of the performance metric.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
effbench dynascore --csv board.csv --perf accuracy --metric throughput:higher --metric memory_gb:lower:1:16\n  \
effbench dynascore --csv board.csv --perf accuracy:4 --metric latency:lower:2 --format table\n  \
effbench dynascore --results results/compression --perf perplexity --metric output_throughput --metric model_bytes\n\n\
Weights default to 4 for the performance metric and 1 for the others (Dynaboard's 4:1:1:1:1),\n\
offsets to 0. JSON output: {\"scores\": [{\"name\", \"dynascore\", \"rank\"} ... best first],\n\
\"amrs\": {metric: AMRS}, \"weights\": {metric: normalised weight}}.")]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
    /// The performance metric COL[:higher|lower][:weight] (CSV default: higher, weight 4).
    #[arg(long, value_name = "COL[:WEIGHT]")]
    pub perf: String,
    /// COL:higher|lower[:weight[:offset]] (repeat; weight 1 and offset 0 by default).
    #[arg(long = "metric", value_name = "COL:SENSE[:W[:OFFSET]]")]
    pub metrics: Vec<String>,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut specs = vec![(args.perf.clone(), 1)];
    specs.extend(args.metrics.iter().map(|m| (m.clone(), 2)));
    let objectives = table_input::objectives(&args.input, &specs)?;
    let metrics: Vec<DynaMetric> = objectives
        .iter()
        .enumerate()
        .map(|(k, o)| DynaMetric {
            name: o.column.clone(),
            better: o.better.unwrap_or(Better::Higher),
            weight: o.weight.unwrap_or(if k == 0 { 4.0 } else { 1.0 }),
            offset: o.offset.unwrap_or(0.0),
        })
        .collect();
    let columns: Vec<String> = metrics.iter().map(|m| m.name.clone()).collect();
    let (table, notes) = table_input::read(&args.input, &columns)?;
    for n in &notes {
        eprintln!("note: left out {n}");
    }
    table.check_rankable("Dynascore")?;
    let r = dynascore(&metrics, &table.rows).map_err(|e| match e {
        DynaError::ZeroVariance(c) => anyhow::anyhow!(
            "{}: column '{c}' never changes between rows adjacent in performance (AMRS = 0); \
             drop it or give it weight 0",
            table.origin
        ),
        e => anyhow::anyhow!("{}: {e}", table.origin),
    })?;
    match args.format {
        Format::Json => {
            let scores: Vec<serde_json::Value> = r
                .rows
                .iter()
                .map(|row| {
                    serde_json::json!({"name": table.names[row.index], "dynascore": row.dynascore,
                        "rank": row.rank})
                })
                .collect();
            let map = |vals: &[f64]| -> serde_json::Map<String, serde_json::Value> {
                columns
                    .iter()
                    .cloned()
                    .zip(vals.iter().map(|v| (*v).into()))
                    .collect()
            };
            let v = serde_json::json!({"scores": scores, "amrs": map(&r.amrs), "weights": map(&r.weights)});
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            let mut headers = vec!["rank".to_string(), "name".into(), "dynascore".into()];
            headers.extend(columns.iter().cloned());
            let rows = r
                .rows
                .iter()
                .map(|row| {
                    let mut cells = vec![
                        (row.rank.to_string(), true),
                        (table.names[row.index].clone(), false),
                        (sig3(row.dynascore), true),
                    ];
                    cells.extend(table.rows[row.index].iter().map(|v| (sig3(*v), true)));
                    cells
                })
                .collect();
            print!("{}", Table { headers, rows }.render());
            let mut t = Table {
                headers: ["metric", "sense", "weight", "offset", "AMRS"]
                    .map(String::from)
                    .to_vec(),
                rows: Vec::new(),
            };
            for ((m, w), a) in metrics.iter().zip(&r.weights).zip(&r.amrs) {
                t.rows.push(vec![
                    (m.name.clone(), false),
                    (format!("{:?}", m.better).to_lowercase(), false),
                    (sig3(*w), true),
                    (sig3(m.offset), true),
                    (sig3(*a), true),
                ]);
            }
            print!("\n{}", t.render());
        }
    }
    Ok(ExitCode::SUCCESS)
}
