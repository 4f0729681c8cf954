//! Splitting a suite's runs into N shards: the cost estimate and the deterministic,
//! cost-balanced assignment that every shard recomputes on its own.
//!
//! **Cost estimate** (seconds, from the suite alone — never from files on disk or earlier
//! timings, so every node of a cluster computes the same plan). One iteration of an
//! inference run is modelled as
//! `t_iter = k_dtype · (PREFILL_S_PER_TOKEN · batch · prompt_len
//!                      + gen_len · (DECODE_S_PER_STEP + DECODE_S_PER_SEQ_TOKEN · batch))`
//! (prefill is parallel over the prompt; decoding is one step per output token whose cost
//! grows with the batch), with `k_dtype` = 1 for f32 and `HALF_DTYPE_FACTOR` for f16/bf16 (CPU
//! converts). The constants were measured on the embedded default model on a 2-core x86-64
//! CPU; only their ratios matter for balance. The run's time then follows its `[measure]`
//! settings like the runner does: `LOAD_S + warmup_iters · t_iter + warmup_s + measured`,
//! where `measured = max(min_iters · t_iter, min_duration_s)` capped by
//! `min(max_iters · t_iter, max_duration_s)`. Missing axes count as 1 (prompt/gen 0).
//! Models are not told apart (a path says nothing certain about its size without reading it).
//! A serving run (a load test) is modelled by its requests instead: `num_prompts` (plus the
//! warm-up requests) sent at the `request_rate` axis take `requests / rate` seconds, plus one
//! request's `t_iter` (at batch 1) for the last to finish; at an infinite rate they run in
//! waves of `max_concurrency` (all at once when unset), each taking one request's `t_iter`; a
//! `[serving.search]` runs up to `max_steps` such windows.
//! A backend that knows better supplies its own estimate (`Backend::estimated_run_s`).
//!
//! **Assignment**: longest-processing-time first — runs sorted by estimated cost (largest
//! first, ties by id), each given to the shard with the least estimated load so far (ties:
//! lowest shard index). Within a shard runs keep the suite's order. Graham's bound: the
//! largest shard is at most 4/3 − 1/(3N) of the optimum.

use crate::axes::AxisValue;
use crate::backend::Registry;
use crate::records::{PlannedRun, RunSpec, Scenario};
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

/// Name and version of the estimate, recorded in shard manifests and plans.
///
/// v2: serving runs by their requests, and backends' own estimates where given (v1 costed a
/// load test as one inference iteration).
pub const COST_MODEL: &str = "lpt-v2";
pub const PREFILL_S_PER_TOKEN: f64 = 0.25e-3;
pub const DECODE_S_PER_STEP: f64 = 2.0e-3;
pub const DECODE_S_PER_SEQ_TOKEN: f64 = 0.5e-3;
pub const HALF_DTYPE_FACTOR: f64 = 1.3;
pub const LOAD_S: f64 = 0.5;

/// `--shard I/N`: shard I (from 0) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSel {
    pub index: usize,
    pub count: usize,
}

impl ShardSel {
    /// Parses `I/N`; errors say what is expected.
    pub fn parse(text: &str) -> Result<ShardSel> {
        let t = text.trim();
        let (i, n) = t
            .split_once('/')
            .ok_or_else(|| anyhow!("--shard '{t}' is not of the form I/N (e.g. 0/4)"))?;
        let num = |s: &str, what: &str| -> Result<usize> {
            s.trim()
                .parse::<usize>()
                .map_err(|_| anyhow!("--shard '{t}': {what} '{}' is not a whole number", s.trim()))
        };
        let (index, count) = (num(i, "index")?, num(n, "shard count")?);
        if count == 0 {
            bail!("--shard '{t}': the shard count must be at least 1");
        }
        check_count("--shard", count)?;
        if index >= count {
            bail!(
                "--shard '{t}': index must be below the shard count (0..={}); shards are \
                 numbered from 0, like SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX",
                count - 1
            );
        }
        Ok(ShardSel { index, count })
    }
}

impl std::fmt::Display for ShardSel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A shard count from a flag: at most [`crate::limits::MAX_SHARDS`].
pub fn check_count(flag: &str, count: usize) -> Result<()> {
    crate::limits::check_int(
        &format!("{flag} shard count"),
        count as i128,
        1,
        crate::limits::MAX_SHARDS as i128,
    )
    .map_err(anyhow::Error::msg)
}

fn axis_f64(spec: &RunSpec, axis: &str, missing: f64) -> f64 {
    spec.param(axis)
        .and_then(AxisValue::as_f64)
        .filter(|x| x.is_finite() && *x >= 0.0)
        .unwrap_or(missing)
}

/// Estimated seconds of one iteration (see the module doc).
pub fn iteration_cost(spec: &RunSpec) -> f64 {
    iteration_cost_at(spec, axis_f64(spec, "batch", 1.0).max(1.0))
}

/// [`iteration_cost`] at the given batch size.
fn iteration_cost_at(spec: &RunSpec, batch: f64) -> f64 {
    let prompt = axis_f64(spec, "prompt_len", 0.0);
    let gen = axis_f64(spec, "gen_len", 0.0);
    let k = match spec.param("dtype").and_then(AxisValue::as_str) {
        Some("f16") | Some("bf16") => HALF_DTYPE_FACTOR,
        _ => 1.0,
    };
    let t = k
        * (PREFILL_S_PER_TOKEN * batch * prompt
            + gen * (DECODE_S_PER_STEP + DECODE_S_PER_SEQ_TOKEN * batch));
    t.max(1e-4)
}

/// Estimated seconds of a whole run, measurement settings included (see the module doc).
pub fn estimate_cost(spec: &RunSpec) -> f64 {
    if let Some(s) = serving_cost(spec) {
        return s;
    }
    let t = iteration_cost(spec);
    let m = &spec.measure;
    let wanted = (m.min_iters as f64 * t).max(m.min_duration_s);
    let cap = (m.max_iters as f64 * t).min(m.max_duration_s.max(t));
    LOAD_S + m.warmup_iters as f64 * t + m.warmup_s + wanted.min(cap)
}

/// Estimated seconds of a serving run (see the module doc); `None` for other scenarios.
pub fn serving_cost(spec: &RunSpec) -> Option<f64> {
    let serving = spec
        .serving
        .as_ref()
        .filter(|_| spec.scenario == Scenario::Serving)?;
    let request = iteration_cost_at(spec, 1.0);
    let requests = (serving.num_prompts + serving.warmup_requests) as f64;
    let rate = axis_f64(spec, "request_rate", f64::INFINITY);
    let window = if rate.is_finite() && rate > 0.0 {
        requests / rate + request
    } else {
        let concurrency = axis_f64(spec, "max_concurrency", 0.0);
        let waves = if concurrency >= 1.0 {
            (requests / concurrency).ceil()
        } else {
            1.0
        };
        waves * request
    };
    let steps = serving.search.as_ref().map_or(1, |s| s.max_steps.max(1));
    Some(LOAD_S + steps as f64 * window)
}

/// Estimated seconds of every spec (aligned with `specs`): the backend's own estimate where
/// it gives one, else [`estimate_cost`]. The input of [`assign`], [`select`] and [`plan`].
pub fn costs(specs: &[RunSpec], registry: &Registry) -> Vec<f64> {
    specs
        .iter()
        .map(|s| {
            registry
                .get(&s.backend)
                .ok()
                .and_then(|b| b.estimated_run_s(s))
                .filter(|c| c.is_finite() && *c >= 0.0)
                .unwrap_or_else(|| estimate_cost(s))
        })
        .collect()
}

/// The generic estimate of every spec ([`estimate_cost`]), without a registry.
pub fn generic_costs(specs: &[RunSpec]) -> Vec<f64> {
    specs.iter().map(estimate_cost).collect()
}

/// Shard index of every spec (aligned with `specs` and their `costs`), by LPT.
pub fn assign(specs: &[RunSpec], costs: &[f64], count: usize) -> Vec<usize> {
    assert_eq!(specs.len(), costs.len(), "one cost per spec");
    let count = count.max(1);
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by(|&a, &b| {
        costs[b]
            .total_cmp(&costs[a])
            .then_with(|| specs[a].id.cmp(&specs[b].id))
    });
    // The least-loaded shard (ties: the lowest index) from a heap: O(runs log shards).
    #[derive(PartialEq)]
    struct Load(f64, usize);
    impl Eq for Load {}
    impl PartialOrd for Load {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Load {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            // reversed: BinaryHeap pops the greatest
            o.0.total_cmp(&self.0).then_with(|| o.1.cmp(&self.1))
        }
    }
    let mut heap: std::collections::BinaryHeap<Load> = (0..count.min(specs.len().max(1)))
        .map(|s| Load(0.0, s))
        .collect();
    let mut shard_of = vec![0usize; specs.len()];
    for i in order {
        let Some(Load(l, best)) = heap.pop() else {
            break;
        };
        shard_of[i] = best;
        heap.push(Load(l + costs[i], best));
    }
    shard_of
}

/// The specs of one shard, in suite order.
pub fn select(specs: &[RunSpec], costs: &[f64], sel: ShardSel) -> Vec<RunSpec> {
    assign(specs, costs, sel.count)
        .into_iter()
        .zip(specs)
        .filter(|(s, _)| *s == sel.index)
        .map(|(_, spec)| spec.clone())
        .collect()
}

/// Every run of a suite with its shard.
pub fn plan(specs: &[RunSpec], costs: &[f64], count: usize, varying: &[String]) -> Vec<PlannedRun> {
    assign(specs, costs, count)
        .into_iter()
        .zip(specs.iter().zip(costs))
        .map(|(shard, (s, cost))| PlannedRun {
            id: s.id.clone(),
            label: s.label(varying),
            shard,
            estimated_s: round3(*cost),
        })
        .collect()
}

/// Estimated seconds per shard.
pub fn shard_loads(plan: &[PlannedRun], count: usize) -> Vec<f64> {
    let mut loads = vec![0.0; count.max(1)];
    for r in plan {
        if r.shard < loads.len() {
            loads[r.shard] += r.estimated_s;
        }
    }
    loads.into_iter().map(round3).collect()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
