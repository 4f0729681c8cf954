//! Named tables of numbers for the analysis functions: read from a CSV file (any table, e.g.
//! numbers from a paper) or built from effbench results (metric names as columns), plus the
//! `COL[:higher|lower][:weight[:offset]]` objective syntax shared by the CLI and suites.
//! Every input error is one line naming the file, line and column.

use super::csv;
use crate::metric::MetricId;
use crate::records::{RunResult, RunState};
use anyhow::{anyhow, bail, Result};
use std::path::Path;

/// Rows with a name and one number per selected column.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTable {
    /// Where the numbers come from, for messages (a file name or "results").
    pub origin: String,
    pub names: Vec<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl NamedTable {
    /// Values of one column.
    pub fn column(&self, k: usize) -> Vec<f64> {
        self.rows.iter().map(|r| r[k]).collect()
    }

    /// Ranking needs at least 2 rows and columns that vary.
    pub fn check_rankable(&self, what: &str) -> Result<()> {
        if self.rows.len() < 2 {
            bail!(
                "{}: {} data row(s); {what} needs at least 2",
                self.origin,
                self.rows.len()
            );
        }
        for (k, c) in self.columns.iter().enumerate() {
            let first = self.rows[0][k];
            if self.rows.iter().all(|r| r[k] == first) {
                bail!(
                    "{}: column '{c}' is {first} in every row (zero variance), so it cannot \
                     rank anything; drop it",
                    self.origin
                );
            }
        }
        Ok(())
    }
}

/// Reads the named columns of a CSV file with a header row. The row name is the first column
/// unless `name_col` names another. Cells of other columns are not looked at.
pub fn read_csv(path: &Path, name_col: Option<&str>, columns: &[String]) -> Result<NamedTable> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| anyhow!("cannot read CSV file '{file}': {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{file}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    let records = csv::parse(&text).map_err(|e| anyhow!("{file}: {e}"))?;
    let Some((header_line, header)) = records.first() else {
        bail!("{file}: empty file (a header row is needed)");
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() {
            bail!("{file}:{header_line}: header column {} has no name", i + 1);
        }
        if let Some(j) = header[..i].iter().position(|x| x == h) {
            bail!(
                "{file}:{header_line}: duplicate column '{h}' (columns {} and {})",
                j + 1,
                i + 1
            );
        }
    }
    let find = |c: &str| -> Result<usize> {
        header.iter().position(|h| h == c).ok_or_else(|| {
            anyhow!(
                "{file}: no column '{c}' in the header (columns: {})",
                header.join(", ")
            )
        })
    };
    let name_idx = match name_col {
        Some(c) => find(c)?,
        None => 0,
    };
    let idx: Vec<usize> = columns.iter().map(|c| find(c)).collect::<Result<_>>()?;
    if let Some(k) = columns
        .iter()
        .position(|c| columns.iter().filter(|x| *x == c).count() > 1)
    {
        bail!("column '{}' is selected twice", columns[k]);
    }
    let mut names: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for (line, rec) in &records[1..] {
        if rec.len() != header.len() {
            bail!(
                "{file}:{line}: {} field(s) but the header has {}",
                rec.len(),
                header.len()
            );
        }
        let name = rec[name_idx].trim().to_string();
        if name.is_empty() {
            bail!(
                "{file}:{line}: column '{}' (the row name) is empty",
                header[name_idx]
            );
        }
        if names.contains(&name) {
            bail!("{file}:{line}: row name '{name}' appears twice");
        }
        let mut row = Vec::with_capacity(idx.len());
        for (&k, c) in idx.iter().zip(columns) {
            let cell = rec[k].trim();
            let v: f64 = cell.parse().map_err(|_| {
                anyhow!("{file}:{line}: row '{name}', column '{c}': '{cell}' is not a number")
            })?;
            if !v.is_finite() {
                bail!("{file}:{line}: row '{name}', column '{c}': '{cell}' is not a finite number");
            }
            row.push(v);
        }
        names.push(name);
        rows.push(row);
    }
    Ok(NamedTable {
        origin: file,
        names,
        columns: columns.to_vec(),
        rows,
    })
}

/// Rows of a [`from_results`] table: the table, the run id of each row, and the runs left
/// out with the reason.
pub struct ResultsTable {
    pub table: NamedTable,
    pub ids: Vec<String>,
    pub skipped: Vec<String>,
}

/// A table of headline metric values of the `ok` runs that have every metric; the others are
/// listed with the reason. Names are run labels (made unique with the run id when needed).
pub fn from_results(results: &[RunResult], metrics: &[MetricId]) -> ResultsTable {
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for r in results {
        if r.status.state != RunState::Ok {
            skipped.push(format!("{}: run is {:?}", r.label(), r.status.state));
            continue;
        }
        let vals: Vec<Option<f64>> = metrics
            .iter()
            .map(|m| r.metric(*m).map(|x| x.value))
            .collect();
        if let Some(k) = vals.iter().position(Option::is_none) {
            skipped.push(format!("{}: no {}", r.label(), metrics[k]));
            continue;
        }
        let label = r.label();
        let dup = results.iter().filter(|o| o.label() == label).count() > 1;
        names.push(if dup {
            format!("{label} [{}]", r.id)
        } else {
            label
        });
        ids.push(r.id.clone());
        rows.push(vals.into_iter().flatten().collect());
    }
    let table = NamedTable {
        origin: "results".into(),
        names,
        columns: metrics.iter().map(|m| m.name().to_string()).collect(),
        rows,
    };
    ResultsTable {
        table,
        ids,
        skipped,
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
