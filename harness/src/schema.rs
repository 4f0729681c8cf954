//! JSON Schemas of the stored files, generated from the Rust types so they cannot drift.
//! The committed copies live in `harness/schema/`; a test fails when they differ from the
//! generated ones (regenerate with `EFFBENCH_UPDATE_SCHEMA=1 cargo test -p effbench-harness schema`).

use crate::result::{Manifest, RunResult};

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

/// Makes one schema.
pub type Generator = fn() -> serde_json::Value;

/// Committed schema file names and their generators.
pub const FILES: &[(&str, Generator)] = &[
    ("run-result.v1.schema.json", run_result),
    ("manifest.v1.schema.json", manifest),
];
