//! Meter settings on this machine: the suite's `[meters]` table and the CLI flags
//! ([`MetersConfig`], a record in `effbench-records`) resolved into the [`MeterSettings`] every
//! result stores under `config.meters`, with where each value came from (`default: ...`,
//! `suite`, `--flag`). The resolution itself is pure (`records::meters::resolve`); this module
//! supplies what it needs from the machine.

use crate::records::{MeterSettings, MetersConfig};

pub use crate::records::meters::flag_name;

/// Resolves the suite's `[meters]` table and CLI overrides (`cli` wins) for this machine, whose
/// CPU model is `cpu_model` (its hardware thread count is read here). Errors name the field or
/// flag.
pub fn resolve(
    suite: &MetersConfig,
    cli: &MetersConfig,
    cpu_model: &str,
) -> Result<MeterSettings, String> {
    crate::records::meters::resolve(suite, cli, cpu_model, super::estimate::machine_threads())
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
