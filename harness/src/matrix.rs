//! Matrix expansion: a suite's axes become concrete [`RunSpec`]s with stable ids, and every
//! spec is validated against its backend before anything runs.

use crate::axes::{self, AxisValue};
use crate::backend::{Backend, Capabilities, Registry};
use crate::meters::settings as meter_settings;
use crate::records::{spec_id, RunSpec};
use crate::records::{Scenario, Suite};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;

/// Reads and parses a suite file. Errors are one line: `file:line:col: cause`.
pub fn load_suite(path: &std::path::Path) -> Result<Suite> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read suite file '{}'", path.display()))?;
    let mut suite = Suite::parse(&text, &path.display().to_string())?;
    suite.path = Some(path.to_path_buf());
    Ok(suite)
}

/// Axes whose values differ between the given runs (in the order of the axes table).
pub fn varying_axes<'a>(specs: impl IntoIterator<Item = &'a RunSpec>) -> Vec<String> {
    let mut seen: BTreeMap<&str, std::collections::BTreeSet<String>> = BTreeMap::new();
    for s in specs {
        for (k, v) in &s.params {
            seen.entry(k).or_default().insert(v.to_string());
        }
    }
    let mut out: Vec<String> = seen
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| k.to_string())
        .collect();
    out.sort_by_key(|a| axis_order(a));
    out
}

fn axis_order(name: &str) -> usize {
    axes::AXES
        .iter()
        .position(|a| a.name == name)
        .unwrap_or(usize::MAX)
}

type Combo = BTreeMap<String, AxisValue>;

/// A backend of the suite with what it declared.
struct Planned<'a> {
    backend: &'a dyn Backend,
    caps: Capabilities,
    /// Axes (with defaults) it uses for the suite's scenario.
    axes: Vec<(&'static str, AxisValue)>,
}

impl Planned<'_> {
    fn uses(&self, axis: &str) -> bool {
        axis == "backend" || self.axes.iter().any(|(a, _)| *a == axis)
    }
}

/// The backends a suite names: the values of a `backend` axis in [matrix], else `backend`.
fn suite_backends(suite: &Suite) -> Result<Vec<String>> {
    let origin = suite.origin();
    match suite.matrix.axes.get("backend") {
        Some(v) => v
            .values()
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    anyhow!("{origin}: [matrix] axis 'backend' = {x}: expected a backend name")
                })
            })
            .collect(),
        None if suite.backend.trim().is_empty() => bail!(
            "{origin}: no backend: set `backend = \"...\"` or a `backend` axis in [matrix] \
             (`effbench list backends` shows them)"
        ),
        None => Ok(vec![suite.backend.clone()]),
    }
}

fn plan_backend<'a>(suite: &Suite, registry: &'a Registry, name: &str) -> Result<Planned<'a>> {
    let origin = suite.origin();
    let backend = registry
        .get(name)
        .map_err(|e| anyhow!("{origin}: backend = \"{name}\": {e}"))?;
    let caps = backend.describe();
    if !caps.scenarios.contains(&suite.scenario) {
        bail!(
            "{origin}: backend '{}' does not run scenario '{}' (it runs: {})",
            caps.name,
            suite.scenario,
            caps.scenarios
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let axes = backend.scenario_axes(suite.scenario);
    Ok(Planned {
        backend,
        caps,
        axes,
    })
}

/// Expands the suite's matrix into run specs and validates each against its backend.
/// Every problem is reported before any run starts.
pub fn expand(suite: &Suite, registry: &Registry) -> Result<Vec<RunSpec>> {
    expand_filtered(suite, registry, &[])
}

/// Like [`expand`], keeping only the runs that match `--filter`s ([`filter`]) before they are
/// validated, so a suite can be cut down to what this machine and build can run.
pub fn expand_filtered(
    suite: &Suite,
    registry: &Registry,
    filters: &[String],
) -> Result<Vec<RunSpec>> {
    let origin = suite.origin();
    let mut planned: BTreeMap<String, Planned> = BTreeMap::new();
    for name in suite_backends(suite)? {
        let p = plan_backend(suite, registry, &name)?;
        planned.insert(name, p);
    }
    let axes_given = given_axes(suite);
    let all: Vec<&Planned> = planned.values().collect();
    check_matrix(suite, &origin, &all, &axes_given)?;
    let combos = combinations(suite, &origin, &axes_given)?;
    check_analysis_axes(suite, &origin, &all)?;
    let (specs, unused) = build_specs(suite, registry, &mut planned, combos)?;
    if specs.is_empty() {
        bail!("{origin}: the matrix expands to no runs (every combination was excluded)");
    }
    let varying = varying_axes(&specs);
    let specs = if filters.is_empty() {
        specs
    } else {
        filter(specs, filters)?
    };
    validate_specs(&origin, &specs, &planned, &unused, &varying)?;
    Ok(specs)
}

/// The suite's axes in canonical order, with `model` from the suite's top level when the
/// matrix does not vary it.
fn given_axes(suite: &Suite) -> Vec<(String, Vec<AxisValue>)> {
    let mut axes_given: Vec<(String, Vec<AxisValue>)> = suite
        .matrix
        .axes
        .iter()
        .map(|(k, v)| (k.clone(), v.values()))
        .collect();
    if let Some(model) = &suite.model {
        if !suite.matrix.axes.contains_key("model") {
            axes_given.push(("model".into(), vec![AxisValue::Str(model.clone())]));
        }
    }
    axes_given.sort_by_key(|(k, _)| axis_order(k));
    axes_given
}

/// Every axis value and every include/exclude rule is one some backend accepts; an exclude
/// rule names only axes of the matrix; the rule counts are within limits.
fn check_matrix(
    suite: &Suite,
    origin: &str,
    all: &[&Planned],
    axes_given: &[(String, Vec<AxisValue>)],
) -> Result<()> {
    for (name, values) in axes_given {
        check_axis(origin, all, name, values)?;
    }
    for (what, rules) in [
        ("exclude", &suite.matrix.exclude),
        ("include", &suite.matrix.include),
    ] {
        for rule in rules.iter() {
            for (name, v) in rule {
                if what == "include" && name == "backend" {
                    // A backend added by an include rule is checked when its run is built.
                    continue;
                }
                check_axis(origin, all, name, std::slice::from_ref(v))
                    .map_err(|e| anyhow!("{e} (in matrix.{what})"))?;
                if what == "exclude" && !axes_given.iter().any(|(k, _)| k == name) {
                    bail!(
                        "{origin}: matrix.exclude names '{name}', which is not an axis of \
                         [matrix], so the rule can never match"
                    );
                }
            }
        }
    }
    use crate::limits::MAX_RULES;
    for (what, rules) in [
        ("exclude", &suite.matrix.exclude),
        ("include", &suite.matrix.include),
    ] {
        if rules.len() > MAX_RULES {
            bail!(
                "{origin}: matrix.{what} has {} rules; at most {MAX_RULES} are allowed",
                rules.len()
            );
        }
    }
    Ok(())
}

/// The combinations of the axes after the exclude and include rules, counted before anything
/// is built: a matrix too large to run is refused at once.
fn combinations(
    suite: &Suite,
    origin: &str,
    axes_given: &[(String, Vec<AxisValue>)],
) -> Result<Vec<Combo>> {
    let counts: Vec<u64> = axes_given.iter().map(|(_, v)| v.len() as u64).collect();
    crate::limits::product("[matrix] combinations", &counts, crate::limits::MAX_RUNS).map_err(
        |e| {
            anyhow!(
                "{origin}: {e} (axes: {}); split the study into several suites or narrow the \
                 axes (docs/reliability.md)",
                axes_given
                    .iter()
                    .map(|(k, v)| format!("{k} {}", v.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    )?;
    let combos = product(axes_given);
    let combos = apply_exclude(combos, &suite.matrix.exclude);
    let original: Vec<&str> = axes_given.iter().map(|(k, _)| k.as_str()).collect();
    Ok(apply_include(combos, &suite.matrix.include, &original))
}

/// `[analysis]` reference/baseline selectors name only axes every backend uses.
fn check_analysis_axes(suite: &Suite, origin: &str, all: &[&Planned]) -> Result<()> {
    if let Some(a) = &suite.analysis {
        for (what, sel) in [("reference", &a.reference), ("baseline", &a.baseline)] {
            for k in sel.iter().flat_map(|s| s.keys()) {
                if let Some(p) = all.iter().find(|p| !p.uses(k)) {
                    bail!("{origin}: [analysis] {what}: {}", uses_message(p, k));
                }
            }
        }
    }
    Ok(())
}

/// One spec per distinct combination (backend defaults filled in), and for each spec whose
/// backend ignores one of its axes, why (reported only if the spec survives the filters).
fn build_specs<'a>(
    suite: &Suite,
    registry: &'a Registry,
    planned: &mut BTreeMap<String, Planned<'a>>,
    combos: Vec<Combo>,
) -> Result<(Vec<RunSpec>, BTreeMap<String, String>)> {
    let origin = suite.origin();
    let options = toml_table_to_json(&suite.options)?;
    let meters = meter_settings::resolve(
        &suite.meters,
        &Default::default(),
        &crate::meters::estimate::cpu_model(),
    )
    .map_err(|e| anyhow!("{origin}: {e}"))?;
    let mut specs: Vec<RunSpec> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut unused: BTreeMap<String, String> = BTreeMap::new();
    for mut combo in combos {
        let name = match combo.get("backend") {
            Some(v) => v.to_string(),
            None => suite.backend.clone(),
        };
        if !planned.contains_key(&name) {
            let p = plan_backend(suite, registry, &name)?;
            planned.insert(name.clone(), p);
        }
        let p = &planned[&name];
        for (axis, default) in &p.axes {
            combo
                .entry(axis.to_string())
                .or_insert_with(|| default.clone());
        }
        let mut spec = RunSpec {
            id: String::new(),
            suite: suite.name.clone(),
            scenario: suite.scenario,
            backend: name.clone(),
            params: combo,
            seed: suite.seed,
            measure: suite.measure.clone(),
            meters: meters.clone(),
            options: options.clone(),
            serving: suite.serving.clone(),
            analysis: None,
            retrieval: suite.retrieval.clone(),
            tracks: suite.tracks.clone(),
            resume: false,
            out_dir: None,
        };
        let backend_axes: Vec<&str> = p.axes.iter().map(|(a, _)| *a).collect();
        spec.analysis = suite
            .analysis
            .as_ref()
            .map(|a| a.for_run(&spec.params, &backend_axes));
        spec.id = spec_id(&spec);
        if let Some(axis) = spec.params.keys().find(|a| !p.uses(a)) {
            unused.insert(spec.id.clone(), uses_message(p, axis));
        }
        if seen.insert(spec.id.clone()) {
            specs.push(spec);
        }
    }
    Ok((specs, unused))
}

/// Every selected spec passes the generic checks and its backend's own; all problems are
/// reported at once.
fn validate_specs(
    origin: &str,
    specs: &[RunSpec],
    planned: &BTreeMap<String, Planned>,
    unused: &BTreeMap<String, String>,
    varying: &[String],
) -> Result<()> {
    let mut problems = Vec::new();
    for spec in specs {
        let p = &planned[&spec.backend];
        let check = match unused.get(&spec.id) {
            Some(msg) => Err(msg.clone()),
            None => generic_checks(spec, &p.caps).and_then(|_| p.backend.validate(spec)),
        };
        if let Err(e) = check {
            let label = spec.label(varying);
            let label = if label.is_empty() {
                spec.id.clone()
            } else {
                label
            };
            problems.push(format!("run {label}: {e}"));
        }
    }
    if !problems.is_empty() {
        bail!(
            "{origin}: {} impossible combination(s): {}",
            problems.len(),
            problems.join("; ")
        );
    }
    Ok(())
}

fn uses_message(p: &Planned, axis: &str) -> String {
    let used: Vec<&str> = p.axes.iter().map(|(a, _)| *a).collect();
    format!(
        "backend '{}' does not use axis '{axis}' (it uses: {})",
        p.caps.name,
        used.join(", ")
    )
}

fn check_axis(origin: &str, backends: &[&Planned], name: &str, values: &[AxisValue]) -> Result<()> {
    let def = axes::axis(name).ok_or_else(|| {
        anyhow!(
            "{origin}: [matrix] unknown axis '{name}'; known axes: {}",
            axes::known_axes()
        )
    })?;
    if !backends.iter().any(|p| p.uses(name)) {
        match backends {
            [p] => bail!("{origin}: [matrix] {}", uses_message(p, name)),
            _ => bail!(
                "{origin}: [matrix] none of the backends ({}) uses axis '{name}'",
                backends
                    .iter()
                    .map(|p| p.caps.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    if values.is_empty() {
        bail!("{origin}: [matrix] axis '{name}' has an empty list of values");
    }
    for v in values {
        def.check(v)
            .map_err(|e| anyhow!("{origin}: [matrix] {e}"))?;
    }
    Ok(())
}

/// Tokens one iteration holds: batch x (prompt_len + gen_len), or batch x seq_len for
/// training (serving runs send one request at a time).
fn tokens_per_iteration(spec: &RunSpec) -> (u64, String) {
    let get = |a: &str| {
        spec.param(a)
            .and_then(AxisValue::as_i64)
            .unwrap_or(0)
            .max(0) as u64
    };
    let batch = get("batch").max(1);
    if spec.scenario == Scenario::Training {
        let n = batch.saturating_mul(get("seq_len").saturating_add(1));
        return (
            n,
            format!("batch {batch} x (seq_len {} + 1)", get("seq_len")),
        );
    }
    let (p, g) = (get("prompt_len"), get("gen_len"));
    let per = if spec.scenario == Scenario::Serving {
        1
    } else {
        batch
    };
    (
        per.saturating_mul(p.saturating_add(g)),
        format!("batch {per} x (prompt_len {p} + gen_len {g})"),
    )
}

fn generic_checks(spec: &RunSpec, caps: &Capabilities) -> std::result::Result<(), String> {
    let (tokens, how) = tokens_per_iteration(spec);
    let max = crate::limits::MAX_TOKENS_PER_ITERATION;
    if tokens > max {
        return Err(format!(
            "{how} = {tokens} tokens per iteration, more than the maximum {max} \
             (docs/reliability.md); use a smaller batch or shorter sequences"
        ));
    }
    let device = spec.device().map_err(|e| e.to_string())?;
    if !caps.devices.contains(&device.kind()) {
        return Err(format!(
            "device '{device}' is not available in backend '{}' of this build (devices: {}){}",
            caps.name,
            caps.devices.join(", "),
            if device.kind() == "cuda" {
                "; build with --features cuda"
            } else {
                ""
            }
        ));
    }
    if let Some(dtype) = spec.param("dtype").and_then(AxisValue::as_str) {
        if !caps.dtypes.contains(&dtype) {
            return Err(format!(
                "backend '{}' does not support dtype '{dtype}'",
                caps.name
            ));
        }
    }
    let format = spec.model().format();
    if !caps.formats.contains(&format) {
        return Err(format!(
            "backend '{}' cannot load {format:?} models",
            caps.name
        ));
    }
    Ok(())
}

fn product(axes: &[(String, Vec<AxisValue>)]) -> Vec<Combo> {
    let mut combos = vec![Combo::new()];
    for (name, values) in axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert(name.clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    combos
}

fn rule_matches(combo: &Combo, rule: &Combo) -> bool {
    rule.iter()
        .all(|(k, v)| combo.get(k).is_some_and(|c| c.matches(v)))
}

fn apply_exclude(combos: Vec<Combo>, exclude: &[Combo]) -> Vec<Combo> {
    combos
        .into_iter()
        .filter(|c| !exclude.iter().any(|r| rule_matches(c, r)))
        .collect()
}

/// GitHub Actions semantics: an include entry extends every combination whose original axis
/// values it matches (without overwriting them); if it extends none, it is a new combination.
fn apply_include(mut combos: Vec<Combo>, include: &[Combo], original: &[&str]) -> Vec<Combo> {
    let base_len = combos.len();
    for rule in include {
        let (on_axes, extra): (Combo, Combo) = rule
            .clone()
            .into_iter()
            .partition(|(k, _)| original.contains(&k.as_str()));
        let mut extended = false;
        for c in combos[..base_len].iter_mut() {
            if rule_matches(c, &on_axes) {
                c.extend(extra.clone());
                extended = true;
            }
        }
        if !extended {
            combos.push(rule.clone());
        }
    }
    combos
}

/// `--filter axis=value` (repeatable): runs must match every axis named; several values
/// for one axis are alternatives.
pub fn filter(specs: Vec<RunSpec>, filters: &[String]) -> Result<Vec<RunSpec>> {
    let mut by_axis: BTreeMap<String, Vec<AxisValue>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("--filter '{f}' is not of the form axis=value"))?;
        if axes::axis(k.trim()).is_none() {
            bail!(
                "--filter '{f}': unknown axis '{k}'; known axes: {}",
                axes::known_axes()
            );
        }
        by_axis
            .entry(k.trim().to_string())
            .or_default()
            .push(AxisValue::parse_cli(v.trim()));
    }
    let kept: Vec<RunSpec> = specs
        .into_iter()
        .filter(|s| {
            by_axis.iter().all(|(k, vs)| {
                s.params
                    .get(k)
                    .is_some_and(|p| vs.iter().any(|v| p.matches(v)))
            })
        })
        .collect();
    if kept.is_empty() && !filters.is_empty() {
        bail!("no run matches --filter {}", filters.join(" --filter "));
    }
    Ok(kept)
}

fn toml_table_to_json(t: &toml::Table) -> Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(t)? {
        serde_json::Value::Object(m) => Ok(m),
        _ => Ok(Default::default()),
    }
}

#[cfg(test)]
#[path = "matrix_tests.rs"]
mod tests;
