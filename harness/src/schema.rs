//! JSON Schemas of the stored files, generated from the Rust types so they cannot drift.
//! The committed copies live in `harness/schema/`; a test fails when they differ from the
//! generated ones (regenerate with `EFFBENCH_UPDATE_SCHEMA=1 cargo test -p effbench-harness schema`).

use crate::records::{Manifest, RunResult};

fn generate<T: schemars::JsonSchema>(id: &str) -> serde_json::Value {
    let mut s = serde_json::to_value(schemars::schema_for!(T)).expect("schema is JSON");
    s["$id"] = format!("https://effbench.dev/schema/{id}").into();
    s
}

/// Schema of a `RunResult` file (schema_version 1).
pub fn run_result() -> serde_json::Value {
    let mut s = serde_json::to_value(schemars::schema_for!(RunResult)).expect("schema is JSON");
    s["$id"] = "https://effbench.dev/schema/run-result.v1.schema.json".into();
    s
}

/// Schema of a `manifest.json` file.
pub fn manifest() -> serde_json::Value {
    let mut s = serde_json::to_value(schemars::schema_for!(Manifest)).expect("schema is JSON");
    s["$id"] = "https://effbench.dev/schema/manifest.v1.schema.json".into();
    s
}

/// Output of `compare --format json` and `gate --format json`.
pub fn comparison() -> serde_json::Value {
    generate::<crate::comparison::Comparison>("comparison.v1.schema.json")
}

/// One line of the history file (`results/history.jsonl`).
pub fn history_entry() -> serde_json::Value {
    generate::<crate::history::Entry>("history-entry.v1.schema.json")
}

/// Output of `history trends --format json` (what the site plots).
pub fn trends() -> serde_json::Value {
    generate::<crate::history::Trends>("trends.v1.schema.json")
}

/// `ab.json` of an interleaved A/B run.
pub fn ab() -> serde_json::Value {
    generate::<crate::ab::AbRecord>("ab.v1.schema.json")
}

/// Schema of an `analysis.json` file (suite-level analysis of one invocation).
pub fn analysis() -> serde_json::Value {
    generate::<crate::analysis::suite::SuiteAnalysis>("analysis.v1.schema.json")
}

/// Makes one schema.
pub type Generator = fn() -> serde_json::Value;

/// Committed schema file names and their generators.
pub const FILES: &[(&str, Generator)] = &[
    ("run-result.v1.schema.json", run_result),
    ("manifest.v1.schema.json", manifest),
    ("comparison.v1.schema.json", comparison),
    ("history-entry.v1.schema.json", history_entry),
    ("trends.v1.schema.json", trends),
    ("ab.v1.schema.json", ab),
    ("analysis.v1.schema.json", analysis),
];
