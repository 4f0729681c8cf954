//! `effbench pareto`: the Pareto front of any table (CSV or effbench results), with the
//! hypervolume against a stated reference point.

use super::table_input::{self, Format, Input};
use anyhow::{bail, Result};
use effbench_dashboards::format::sig3;
use effbench_dashboards::terminal::Table;
use effbench_harness::analysis::pareto;
use effbench_harness::Better;
use std::process::ExitCode;

/// Rows no other row beats on every metric (Pareto front), optionally with hypervolume.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
effbench pareto --csv models.csv --metric accuracy:higher --metric latency_ms:lower\n  \
effbench pareto --csv models.csv --name model --metric acc:higher --metric mem:lower --ref 0.5,16 --format table\n  \
effbench pareto --results results/compression --metric perplexity --metric tpot\n\n\
JSON output: the names of the rows on the front, in input order; with --ref an object\n\
{\"front\": [...], \"hypervolume\": H, \"reference_point\": [...]}.")]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
    /// COL:higher or COL:lower (repeat, at least 2; for --results the sense may be omitted).
    #[arg(long = "metric", value_name = "COL:SENSE", required = true)]
    pub metrics: Vec<String>,
    /// Reference point for the hypervolume (2 or 3 metrics): one value per metric, worse
    /// than every row, e.g. 0.5,30.
    #[arg(long = "ref", value_name = "V,V[,V]", allow_hyphen_values = true)]
    pub reference: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.metrics.len() < 2 {
        bail!("--metric: a Pareto front needs at least 2 metrics");
    }
    let specs: Vec<(String, usize)> = args.metrics.iter().map(|m| (m.clone(), 0)).collect();
    let objectives = table_input::objectives(&args.input, &specs)?;
    let columns: Vec<String> = objectives.iter().map(|o| o.column.clone()).collect();
    let senses: Vec<Better> = objectives
        .iter()
        .map(|o| o.better.unwrap_or(Better::Higher))
        .collect();
    let reference = args
        .reference
        .as_deref()
        .map(|r| parse_ref(r, senses.len()))
        .transpose()?;
    let (table, notes) = table_input::read(&args.input, &columns)?;
    for n in &notes {
        eprintln!("note: left out {n}");
    }
    table.check_rankable("a Pareto front")?;
    let on = pareto::front(&table.rows, &senses)
        .map_err(|e| anyhow::anyhow!("{}: {e}", table.origin))?;
    let hv = match &reference {
        Some(r) => Some(
            pareto::hypervolume(&table.rows, &senses, r)
                .map_err(|e| anyhow::anyhow!("--ref: {e}"))?,
        ),
        None => None,
    };
    let names: Vec<&String> = on.iter().map(|&i| &table.names[i]).collect();
    match args.format {
        Format::Json => {
            let v = match (&reference, hv) {
                (Some(r), Some(h)) => serde_json::json!({
                    "front": names, "hypervolume": h, "reference_point": r
                }),
                _ => serde_json::json!(names),
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            let mut headers = vec!["name".to_string()];
            headers.extend(objectives.iter().zip(&senses).map(|(o, s)| {
                format!(
                    "{} ({})",
                    o.column,
                    if *s == Better::Higher {
                        "higher"
                    } else {
                        "lower"
                    }
                )
            }));
            headers.push("on front".into());
            let rows = table
                .names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let mut row = vec![(n.clone(), false)];
                    row.extend(table.rows[i].iter().map(|v| (sig3(*v), true)));
                    row.push((if on.contains(&i) { "yes" } else { "" }.into(), false));
                    row
                })
                .collect();
            print!("{}", Table { headers, rows }.render());
            println!("{} of {} rows on the front", on.len(), table.rows.len());
            if let (Some(r), Some(h)) = (&reference, hv) {
                let r: Vec<String> = r.iter().map(|v| v.to_string()).collect();
                println!("hypervolume {h} (reference point {})", r.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `0.5,30` → values, one per metric, 2 or 3 of them.
fn parse_ref(s: &str, n: usize) -> Result<Vec<f64>> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| match x.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(anyhow::anyhow!(
                "--ref '{s}': '{}' is not a finite number",
                x.trim()
            )),
        })
        .collect::<Result<_>>()?;
    if v.len() != n {
        bail!(
            "--ref '{s}' has {} value(s) but there are {n} metrics",
            v.len()
        );
    }
    if !(2..=3).contains(&n) {
        bail!("--ref: hypervolume is computed for 2 or 3 metrics, not {n}");
    }
    Ok(v)
}
