//! The suite's `[analysis]` section ([`AnalysisConfig`]) and what it gives each run
//! ([`RunAnalysis`]): its checks, which runs are the reference and baseline, and the
//! objective specs (`METRIC[:STAT]`) of Pareto fronts and Dynascore. The analysis itself is
//! `effbench_harness::analysis`.

use crate::axes;
use crate::axes::AxisValue;
use crate::metric::{Better, MetricId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default evaluation length in tokens.
pub const DEFAULT_EVAL_TOKENS: usize = 4096;

/// Default evaluation window (tokens per independent sequence), capped by the model context.
pub const DEFAULT_EVAL_WINDOW: usize = 128;

/// `[analysis]` of a suite file (also recorded in every result's `suite.analysis`, so the
/// analysis can be redone from the results alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Axis values selecting the reference variant (fidelity, compression ratio).
    /// Default: `{ quant = "none", sparsity = 0 }` (those of the axes the backend has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<BTreeMap<String, AxisValue>>,
    /// Axis values selecting the baseline of speed-ups. Default: the reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BTreeMap<String, AxisValue>>,
    /// Measure perplexity and fidelity after each run's measured window.
    pub quality: bool,
    /// UTF-8 text file for perplexity and fidelity (relative to the current directory).
    /// Default: the synthetic language's held-out split (default model only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_text: Option<String>,
    /// Tokens of evaluation text used (the first ones).
    pub eval_tokens: usize,
    /// Tokens per evaluation window (independent sequences); capped by the model context.
    pub eval_window: usize,
    /// Pareto fronts to report; empty = quality vs latency, throughput and size when present.
    pub pareto: Vec<ParetoConfig>,
    /// Dynascore settings; absent = the default set-up
    /// (`effbench_harness::analysis::dynascore::default_setup`: Dynaboard's 4:1:1 over the metrics measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynascore: Option<DynascoreConfig>,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            reference: None,
            baseline: None,
            quality: true,
            eval_text: None,
            eval_tokens: DEFAULT_EVAL_TOKENS,
            eval_window: DEFAULT_EVAL_WINDOW,
            pareto: Vec::new(),
            dynascore: None,
        }
    }
}

/// One `[[analysis.pareto]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParetoConfig {
    /// Metric names, each optionally `name:higher|lower` (default: the metric's own sense).
    pub metrics: Vec<String>,
    /// Hypervolume reference point, one value per metric (2 or 3 metrics). Default: the
    /// worst value of each metric pushed out by 10 % of its range.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference_point: Option<Vec<f64>>,
}

/// `[analysis.dynascore]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynascoreConfig {
    /// Performance metric `name[:sense][:weight]` (default weight 4).
    pub perf: String,
    /// Other metrics `name[:sense][:weight[:offset]]` (default weight 1, offset 0).
    #[serde(default)]
    pub metrics: Vec<String>,
}

/// What a run needs to know of the suite's analysis (stored in its [`crate::RunSpec`], not
/// part of its id: measuring quality does not change what the speed metrics measure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunAnalysis {
    /// Axis values of this run's reference model: the run's own, with the suite's reference
    /// selector applied.
    pub reference: BTreeMap<String, AxisValue>,
    /// This run is the reference variant itself.
    pub is_reference: bool,
    /// Perplexity and fidelity settings; absent = not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalSpec>,
}

/// Which text perplexity and fidelity are computed on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// A UTF-8 file; absent = the synthetic held-out split (default model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub tokens: usize,
    pub window: usize,
}

impl AnalysisConfig {
    /// Checks values and metric names; errors say which `[analysis]` field is wrong.
    pub fn check(&self) -> Result<(), String> {
        for (what, sel) in [("reference", &self.reference), ("baseline", &self.baseline)] {
            if let Some(sel) = sel {
                if sel.is_empty() {
                    return Err(format!("[analysis] {what} must name at least one axis"));
                }
                for (k, v) in sel {
                    let def = axes::axis(k).ok_or_else(|| {
                        format!(
                            "[analysis] {what}: unknown axis '{k}'; known axes: {}",
                            axes::known_axes()
                        )
                    })?;
                    def.check(v)
                        .map_err(|e| format!("[analysis] {what}: {e}"))?;
                }
            }
        }
        if self.eval_tokens < 2 {
            return Err("[analysis] eval_tokens must be at least 2".into());
        }
        if self.eval_window < 2 {
            return Err("[analysis] eval_window must be at least 2".into());
        }
        use crate::limits::check_int;
        check_int(
            "[analysis] eval_tokens",
            self.eval_tokens as i128,
            2,
            1 << 24,
        )?;
        check_int(
            "[analysis] eval_window",
            self.eval_window as i128,
            2,
            1 << 20,
        )?;
        check_int(
            "[analysis] pareto fronts",
            self.pareto.len() as i128,
            0,
            100,
        )?;
        for (i, p) in self.pareto.iter().enumerate() {
            let field = format!("[analysis] pareto[{i}]");
            if p.metrics.len() < 2 {
                return Err(format!("{field}: a front needs at least 2 metrics"));
            }
            for m in &p.metrics {
                ObjectiveSpec::parse_metric(m, false).map_err(|e| format!("{field}: {e}"))?;
            }
            if let Some(r) = &p.reference_point {
                if r.len() != p.metrics.len() || !(2..=3).contains(&r.len()) {
                    return Err(format!(
                        "{field}: ref has {} values; hypervolume needs one per metric, for 2 or 3 metrics",
                        r.len()
                    ));
                }
                if r.iter().any(|v| !v.is_finite()) {
                    return Err(format!("{field}: ref values must be finite numbers"));
                }
            }
        }
        if let Some(d) = &self.dynascore {
            ObjectiveSpec::parse_metric(&d.perf, true)
                .map_err(|e| format!("[analysis] dynascore.perf: {e}"))?;
            for m in &d.metrics {
                ObjectiveSpec::parse_metric(m, false)
                    .map_err(|e| format!("[analysis] dynascore.metrics: {e}"))?;
            }
        }
        Ok(())
    }

    /// The reference selector restricted to axes the backend uses (defaults filled in).
    pub fn reference_selector(&self, backend_axes: &[&str]) -> BTreeMap<String, AxisValue> {
        match &self.reference {
            Some(s) => s.clone(),
            None => [
                ("quant", AxisValue::from("none")),
                ("sparsity", AxisValue::Float(0.0)),
            ]
            .into_iter()
            .filter(|(k, _)| backend_axes.contains(k))
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }

    /// The baseline selector (the reference one unless given).
    pub fn baseline_selector(&self, backend_axes: &[&str]) -> BTreeMap<String, AxisValue> {
        self.baseline
            .clone()
            .unwrap_or_else(|| self.reference_selector(backend_axes))
    }

    /// What a run with `params` needs: its reference model's axis values and the eval text.
    pub fn for_run(
        &self,
        params: &BTreeMap<String, AxisValue>,
        backend_axes: &[&str],
    ) -> RunAnalysis {
        let selector = self.reference_selector(backend_axes);
        let mut reference = params.clone();
        for (k, v) in &selector {
            reference.insert(k.clone(), v.clone());
        }
        RunAnalysis {
            is_reference: selects(&selector, params),
            reference,
            eval: self.quality.then(|| EvalSpec {
                text: self.eval_text.clone(),
                tokens: self.eval_tokens,
                window: self.eval_window,
            }),
        }
    }
}

/// `params` has every value the selector names.
pub fn selects(
    selector: &BTreeMap<String, AxisValue>,
    params: &BTreeMap<String, AxisValue>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| params.get(k).is_some_and(|p| p.matches(v)))
}

/// One objective as written on the command line or in a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveSpec {
    pub column: String,
    pub better: Option<Better>,
    pub weight: Option<f64>,
    pub offset: Option<f64>,
}

impl ObjectiveSpec {
    /// Parses `COL[:higher|lower][:weight[:offset]]`; `max_numbers` says how many numeric
    /// fields may follow (0 for Pareto, 1 for a performance metric, 2 for Dynascore metrics).
    pub fn parse(s: &str, max_numbers: usize) -> Result<ObjectiveSpec, String> {
        let mut parts = s.split(':');
        let column = parts.next().unwrap_or("").trim().to_string();
        if column.is_empty() {
            return Err(format!("'{s}': the column name is empty"));
        }
        let rest: Vec<&str> = parts.map(str::trim).collect();
        let mut i = 0;
        let better =
            match rest.first() {
                Some(f) if f.parse::<f64>().is_err() => {
                    i = 1;
                    Some(Better::parse(f).ok_or_else(|| {
                        format!("'{s}': unknown sense '{f}' (use higher or lower)")
                    })?)
                }
                _ => None,
            };
        let numbers = &rest[i..];
        if numbers.len() > max_numbers {
            let allowed = match max_numbers {
                0 => "COL:higher|lower",
                1 => "COL[:higher|lower][:weight]",
                _ => "COL[:higher|lower][:weight[:offset]]",
            };
            return Err(format!("'{s}': too many fields (expected {allowed})"));
        }
        let num = |k: usize, what: &str| -> Result<Option<f64>, String> {
            numbers
                .get(k)
                .map(|t| match t.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err(format!("'{s}': {what} '{t}' is not a finite number")),
                })
                .transpose()
        };
        let weight = num(0, "weight")?;
        if weight.is_some_and(|w| w < 0.0) {
            return Err(format!("'{s}': weight must be >= 0"));
        }
        Ok(ObjectiveSpec {
            column,
            better,
            weight,
            offset: num(1, "offset")?,
        })
    }

    /// Parses an objective whose column is an effbench metric name; the sense defaults to
    /// the metric's own. `perf`: performance metric (weight only, no offset).
    pub fn parse_metric(s: &str, perf: bool) -> Result<(MetricId, ObjectiveSpec), String> {
        let mut o = ObjectiveSpec::parse(s, if perf { 1 } else { 2 })?;
        let id = MetricId::parse(&o.column)?;
        o.better.get_or_insert(id.better());
        Ok((id, o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParetoConfig, DEFAULT_EVAL_TOKENS};

    #[test]
    fn reference_is_the_run_with_the_selector_applied() {
        let cfg = AnalysisConfig::default();
        let params: BTreeMap<String, AxisValue> = [
            ("model", AxisValue::from("default")),
            ("quant", AxisValue::from("q4k")),
            ("sparsity", AxisValue::Float(0.5)),
            ("batch", AxisValue::Int(4)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let ra = cfg.for_run(&params, &["model", "quant", "sparsity", "batch"]);
        assert!(!ra.is_reference);
        assert_eq!(ra.reference["quant"], AxisValue::from("none"));
        assert!(ra.reference["sparsity"].matches(&AxisValue::Int(0)));
        assert_eq!(ra.reference["batch"], AxisValue::Int(4));
        assert_eq!(ra.eval.unwrap().tokens, DEFAULT_EVAL_TOKENS);
        let mut same = params.clone();
        same.insert("quant".into(), "none".into());
        same.insert("sparsity".into(), AxisValue::Int(0));
        assert!(cfg.for_run(&same, &["quant", "sparsity"]).is_reference);
        // a backend without the compression axes gets an empty default selector
        assert!(cfg.reference_selector(&["batch"]).is_empty());
    }

    #[test]
    fn checks_name_the_field() {
        let mut c = AnalysisConfig {
            reference: Some([("quant".to_string(), AxisValue::from("q9"))].into()),
            ..Default::default()
        };
        assert!(c.check().unwrap_err().contains("[analysis] reference"));
        c.reference = None;
        c.pareto = vec![ParetoConfig {
            metrics: vec!["perplexity".into(), "speed".into()],
            reference_point: None,
        }];
        let e = c.check().unwrap_err();
        assert!(
            e.contains("pareto[0]") && e.contains("unknown metric 'speed'"),
            "{e}"
        );
        c.pareto[0].metrics[1] = "tpot:faster".into();
        assert!(c.check().unwrap_err().contains("faster"));
        c.pareto[0].metrics[1] = "tpot".into();
        c.pareto[0].reference_point = Some(vec![1.0]);
        assert!(c.check().unwrap_err().contains("ref has 1 values"));
    }
}
