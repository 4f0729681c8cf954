//! Figures derived from the meters' readings, the work done and the settings:
//! total and net energy, average power, energy per output token / request / training token,
//! carbon (kWh × PUE × grid intensity) and cost ($/hour × time → per run, per 1M output
//! tokens, per parameter for training).
//!
//! `energy` adds the *measured* components (GPU, CPU package, DRAM). An `estimate-tdp`
//! component is used only when nothing is measured, and then everything derived from it
//! carries `estimate-tdp` in its source, so reports can keep it out of measured columns.

use super::{Reading, COMPONENTS};
use crate::backend::Work;
use crate::metric::{is_estimate, Metric, MetricId};
use crate::records::Scenario;
use crate::warnings::{Warning, WarningKind};
use std::collections::BTreeMap;

use crate::records::MeterSettings;

/// Idle power per energy component, measured before the suite.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdleBaseline {
    pub seconds: f64,
    /// Component → (watts, source of the component's energy).
    pub power_w: BTreeMap<MetricId, (f64, String)>,
}

/// What the derivation needs to know about a run.
pub struct Inputs<'a> {
    /// Metrics so far (the meters' energy components among them).
    pub metrics: &'a [Metric],
    pub window_s: f64,
    pub work: Work,
    pub scenario: Scenario,
    /// Model parameters, for $ per parameter.
    pub params: Option<u64>,
    pub settings: &'a MeterSettings,
    pub idle: Option<&'a IdleBaseline>,
}

/// Joules per kWh.
pub const J_PER_KWH: f64 = 3.6e6;

/// gCO2e for `joules` at a PUE and a grid intensity (gCO2e/kWh).
pub fn carbon_g(joules: f64, pue: f64, grid_g_per_kwh: f64) -> f64 {
    joules / J_PER_KWH * pue * grid_g_per_kwh
}

/// $ for `seconds` of hardware at `price_per_hour`.
pub fn cost(seconds: f64, price_per_hour: f64) -> f64 {
    price_per_hour * seconds / 3600.0
}

/// Sources of several metrics, each once, joined with " + ".
fn joined_sources(ms: &[&Metric]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for m in ms {
        if !out.contains(&m.source.as_str()) {
            out.push(&m.source);
        }
    }
    out.join(" + ")
}

/// Derives the figures of one run.
pub fn derive(i: &Inputs) -> Reading {
    let mut r = Reading::default();
    let s = i.settings;
    let comps: Vec<&Metric> = i
        .metrics
        .iter()
        .filter(|m| COMPONENTS.contains(&m.name))
        .collect();
    let (measured, estimated): (Vec<&Metric>, Vec<&Metric>) =
        comps.iter().partition(|m| !m.is_estimate());
    let chosen = if measured.is_empty() {
        &estimated
    } else {
        &measured
    };
    let energy = (!chosen.is_empty()).then(|| {
        let j: f64 = chosen.iter().map(|m| m.value).sum();
        (j, joined_sources(chosen))
    });
    if !measured.is_empty() && !estimated.is_empty() {
        r.notes.push(format!(
            "energy: measured components only ({}); the {} estimate of {} is reported but not added",
            joined_sources(&measured),
            joined_sources(&estimated),
            estimated.iter().map(|m| m.name.name()).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some((j, src)) = &energy {
        let (j, src) = (*j, src.clone());
        r.metrics.push(Metric::scalar(MetricId::Energy, j, &src));
        if i.window_s > 0.0 {
            r.metrics
                .push(Metric::scalar(MetricId::PowerAvg, j / i.window_s, &src));
        }
        if is_estimate(&src) {
            r.warnings.push(Warning {
                kind: WarningKind::Estimated,
                message: format!(
                    "Energy is an estimate ({src}: TDP share x CPU time), not a measurement: \
                     no RAPL or NVML energy is readable here."
                ),
                hint: "Run `effbench meters` to see why; on bare metal make RAPL readable \
                       (root, or chmod a+r .../energy_uj) or use an NVIDIA GPU."
                    .into(),
            });
        }
        if let Some(idle) = i.idle {
            net_energy(&mut r, idle, chosen, j, &src, i.window_s);
        }
        let w = &i.work;
        // Embedding and retrieval sessions count embedded sequences / answered queries as
        // requests; their figures are per 1,000 of them.
        let per_item = matches!(i.scenario, Scenario::Embedding | Scenario::Retrieval);
        let per = [
            (MetricId::EnergyPerOutputToken, w.output_tokens, true),
            (MetricId::EnergyPerRequest, w.requests, !per_item),
            (
                MetricId::EnergyPerTrainingToken,
                w.input_tokens,
                i.scenario == Scenario::Training,
            ),
        ];
        for (id, count, applies) in per {
            if applies && count > 0 {
                r.metrics.push(Metric::scalar(id, j / count as f64, &src));
            }
        }
        let per_1k = match i.scenario {
            Scenario::Embedding => Some(MetricId::EnergyPer1kEmbeddings),
            Scenario::Retrieval => Some(MetricId::EnergyPer1kQueries),
            _ => None,
        };
        if let (Some(id), true) = (per_1k, w.requests > 0) {
            r.metrics
                .push(Metric::scalar(id, j / w.requests as f64 * 1e3, &src));
        }
        r.metrics.push(Metric::scalar(
            MetricId::Carbon,
            carbon_g(j, s.pue, s.grid_intensity),
            format!("{src}; x PUE {} x {} gCO2e/kWh", s.pue, s.grid_intensity),
        ));
    } else {
        r.notes.push(
            "energy: no meter produced an energy figure, so no energy-per-work or carbon figures"
                .into(),
        );
    }
    if let Some(price) = s.price_per_hour {
        let c = cost(i.window_s, price);
        let src = format!("wall-clock x ${price}/h");
        r.metrics.push(Metric::scalar(MetricId::CostRun, c, &src));
        if i.work.output_tokens > 0 {
            r.metrics.push(Metric::scalar(
                MetricId::CostPer1mOutputTokens,
                c / i.work.output_tokens as f64 * 1e6,
                &src,
            ));
        }
        if i.scenario == Scenario::Retrieval && i.work.requests > 0 {
            r.metrics.push(Metric::scalar(
                MetricId::CostPer1kQueries,
                c / i.work.requests as f64 * 1e3,
                &src,
            ));
        }
        if i.scenario == Scenario::Training {
            if let Some(p) = i.params.filter(|p| *p > 0) {
                r.metrics
                    .push(Metric::scalar(MetricId::CostPerParam, c / p as f64, &src));
            }
        }
    }
    r
}

/// `energy_net` and `idle_power` when the baseline covers every component in `energy`.
fn net_energy(
    r: &mut Reading,
    idle: &IdleBaseline,
    chosen: &[&Metric],
    energy: f64,
    src: &str,
    window_s: f64,
) {
    let mut watts = 0.0;
    for m in chosen {
        match idle.power_w.get(&m.name) {
            Some((w, _)) => watts += w,
            None => {
                r.notes.push(format!(
                    "energy_net: the idle baseline has no {} figure; not reported",
                    m.name
                ));
                return;
            }
        }
    }
    let isrc = format!(
        "idle baseline {:.1} s before the suite: {src}",
        idle.seconds
    );
    r.metrics
        .push(Metric::scalar(MetricId::IdlePower, watts, &isrc));
    r.metrics.push(Metric::scalar(
        MetricId::EnergyNet,
        energy - watts * window_s,
        format!("{src} - idle baseline"),
    ));
}

#[cfg(test)]
#[path = "derived_tests.rs"]
mod tests;
