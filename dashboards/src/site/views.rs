//! What the templates and the page's JavaScript receive: plain serializable views of a suite
//! (its leaderboard rows and Dynascore set-up) and the JSON embedded in pages, escaped so no
//! string inside it can end the `<script>` element it sits in.

use super::model::{Entry, SuiteModel};
use crate::columns::{Column, Stat};
use crate::format;
use effbench_harness::Better;
use serde::Serialize;

#[derive(Serialize)]
pub struct ColView {
    pub key: String,
    /// Metric name (or `params`, `model_size`).
    pub name: String,
    /// Statistic shown when not the headline value (`p99`).
    pub stat: Option<&'static str>,
    pub unit: &'static str,
    pub better: Option<Better>,
    pub desc: String,
}

pub fn col_views(cols: &[Column]) -> Vec<ColView> {
    cols.iter()
        .map(|c| {
            let (name, stat, desc) = match c {
                Column::Metric(id, s) => (
                    id.name().to_string(),
                    (*s != Stat::Value).then(|| s.name()),
                    id.description().to_string(),
                ),
                Column::ModelParams => ("params".into(), None, "parameters in total".into()),
                Column::ModelBytes => (
                    "model size".into(),
                    None,
                    "bytes of the weight files on disk".into(),
                ),
                c => (c.key(), None, String::new()),
            };
            ColView {
                key: c.key(),
                name,
                stat,
                unit: c.unit().unwrap_or(""),
                better: c.better(),
                desc,
            }
        })
        .collect()
}

/// One leaderboard row as the JavaScript sees it (short keys keep big suites small).
#[derive(Serialize)]
pub struct RowData<'a> {
    /// Run page key.
    pub k: &'a str,
    /// Values of the suite's varying axes.
    pub a: Vec<String>,
    /// Model name.
    pub m: String,
    /// Machine index.
    pub h: usize,
    /// Date.
    pub d: String,
    /// Status and its reason.
    pub s: String,
    pub why: Option<&'a str>,
    /// On the Pareto front.
    pub f: bool,
    /// One value per numeric column.
    pub v: &'a [Option<f64>],
    pub rank: Option<usize>,
    pub score: Option<f64>,
}

#[derive(Serialize)]
pub struct DynaMetricData<'a> {
    pub col: usize,
    pub name: &'a str,
    pub better: Better,
    pub weight: f64,
    pub offset: f64,
    pub varies: bool,
}

#[derive(Serialize)]
pub struct DynaData<'a> {
    pub metrics: Vec<DynaMetricData<'a>>,
    /// Rows (indices into `rows`) that take part.
    pub rows: Vec<usize>,
    pub amrs: &'a [f64],
}

/// Everything the suite page's script works on.
#[derive(Serialize)]
pub struct PageData<'a> {
    pub suite: &'a str,
    pub cols: Vec<ColView>,
    pub axes: &'a [String],
    pub machines: &'a [String],
    pub rows: Vec<RowData<'a>>,
    pub dyna: Option<DynaData<'a>>,
    pub page_size: usize,
}

pub fn model_name(e: &Entry) -> String {
    e.r.model
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default()
}

pub fn status(e: &Entry) -> String {
    format!("{:?}", e.r.status.state).to_lowercase()
}

pub fn axis_values(e: &Entry, axes: &[String]) -> Vec<String> {
    axes.iter()
        .map(|a| {
            e.r.config
                .param(a)
                .map(|v| v.to_string())
                .unwrap_or_default()
        })
        .collect()
}

pub fn page_data<'a>(m: &'a SuiteModel, page_size: usize) -> PageData<'a> {
    PageData {
        suite: &m.name,
        cols: col_views(&m.columns),
        axes: &m.axes,
        machines: &m.machines,
        rows: m
            .entries
            .iter()
            .map(|e| RowData {
                k: &e.key,
                a: axis_values(e, &m.axes),
                m: model_name(e),
                h: e.machine,
                d: crate::columns::date(&e.r.started_at),
                s: status(e),
                why: e.r.status.reason.as_deref(),
                f: e.front,
                v: &e.values,
                rank: e.rank,
                score: e.score,
            })
            .collect(),
        dyna: m.dyna.as_ref().map(|d| DynaData {
            metrics: d
                .metrics
                .iter()
                .map(|x| DynaMetricData {
                    col: x.col,
                    name: &x.name,
                    better: x.better,
                    weight: x.weight,
                    offset: x.offset,
                    varies: x.varies,
                })
                .collect(),
            rows: d.rows.clone(),
            amrs: &d.amrs,
        }),
        page_size,
    }
}

/// JSON for a `<script type="application/json">` element or a `.js` file: `<`, `>`, `&` and
/// the JavaScript line separators are written as `\u` escapes, so `</script>` or `<!--` inside
/// a string can never end or change the element.
pub fn script_json<T: Serialize>(v: &T) -> serde_json::Result<String> {
    let s = serde_json::to_string(v)?;
    let mut out = String::with_capacity(s.len() + 64);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A server-rendered leaderboard row (the first page, readable without JavaScript).
#[derive(Serialize)]
pub struct RowView {
    pub key: String,
    pub rank: String,
    pub score: String,
    pub score_raw: String,
    pub front: bool,
    pub axes: Vec<String>,
    pub model: String,
    pub machine: String,
    pub date: String,
    pub status: String,
    pub reason: String,
    pub cells: Vec<String>,
}

pub fn row_views(m: &SuiteModel, n: usize) -> Vec<RowView> {
    m.entries
        .iter()
        .take(n)
        .map(|e| RowView {
            key: e.key.clone(),
            rank: e.rank.map_or("-".into(), |r| r.to_string()),
            score: e.score.map_or("-".into(), format::sig3),
            score_raw: e.score.map_or(String::new(), |s| format!("{s:?}")),
            front: e.front,
            axes: axis_values(e, &m.axes),
            model: model_name(e),
            machine: m.machines.get(e.machine).cloned().unwrap_or_default(),
            date: crate::columns::date(&e.r.started_at),
            status: status(e),
            reason: e.r.status.reason.clone().unwrap_or_default(),
            cells: e
                .values
                .iter()
                .zip(&m.columns)
                .map(|(v, c)| v.map_or("-".into(), |v| format::value(v, c.unit().unwrap_or(""))))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_element() {
        let s = script_json(
            &serde_json::json!({"m": "</script><script>alert(1)</script><!-- & \u{2028}"}),
        )
        .unwrap();
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(
            back["m"],
            "</script><script>alert(1)</script><!-- & \u{2028}"
        );
    }
}
