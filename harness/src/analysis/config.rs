//! The optional `[analysis]` section of a suite and what it gives each run.
//!
//! A suite names a **reference** variant (axis values, default `quant = "none"`,
//! `sparsity = 0`): every run's fidelity and compression ratio are measured against the model
//! those values select (with the run's other axes). A **baseline** variant (default: the
//! reference) is the denominator of speed-ups. Quality settings say which text perplexity and
//! fidelity are computed on; `pareto` and `dynascore` configure the suite-level analysis
//! written to `analysis.json` (see [`super::suite`]).

use super::table::ObjectiveSpec;
use crate::axes::{self, AxisValue};
use crate::records::{AnalysisConfig, EvalSpec, RunAnalysis};
use std::collections::BTreeMap;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ParetoConfig, DEFAULT_EVAL_TOKENS};

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
