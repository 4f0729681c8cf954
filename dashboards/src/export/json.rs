//! JSON for machines: the columns (key, header, unit, better), one object per row keyed by
//! column key with full-precision numbers, speed-ups under `speedup`, machines and notes.

use super::Exporter;
use crate::columns::Cell;
use crate::report::Report;
use serde_json::{json, Map, Value};

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn serialize(&self, report: &Report) -> anyhow::Result<Vec<u8>> {
        let columns: Vec<Value> = report
            .columns
            .iter()
            .map(|c| {
                json!({
                    "key": c.key(),
                    "header": c.header(),
                    "unit": c.unit(),
                    "better": c.better(),
                })
            })
            .collect();
        let rows: Vec<Value> = report
            .rows
            .iter()
            .map(|row| {
                let mut o = Map::new();
                let mut sp = Map::new();
                for (k, c) in report.columns.iter().enumerate() {
                    let v = match &row.cells[k] {
                        Cell::Number(v, _) if v.is_finite() => json!(v),
                        Cell::Text(t) => json!(t),
                        _ => Value::Null,
                    };
                    o.insert(c.key(), v);
                    if let Some(s) = row.speedup[k] {
                        sp.insert(c.key(), json!(s));
                    }
                }
                if report.baseline.is_some() {
                    o.insert("speedup".into(), Value::Object(sp));
                    o.insert("is_baseline".into(), json!(row.is_baseline));
                }
                o.insert("run_ids".into(), json!(row.ids));
                // keys of cells holding estimates (e.g. estimate-tdp energy), when any
                let est: Vec<String> = (report.columns.iter().zip(&row.estimated))
                    .filter(|(_, e)| **e)
                    .map(|(c, _)| c.key())
                    .collect();
                if !est.is_empty() {
                    o.insert("estimated".into(), json!(est));
                }
                Value::Object(o)
            })
            .collect();
        let doc = json!({
            "columns": columns,
            "rows": rows,
            "group_by": report.group_by,
            "baseline": report.baseline,
            "suites": report.suites,
            "machines": report.machines,
            "notes": report.notes,
        });
        let mut out = serde_json::to_vec_pretty(&doc)?;
        out.push(b'\n');
        Ok(out)
    }
}
