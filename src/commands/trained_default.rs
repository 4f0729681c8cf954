//! The trained default model (`model = "default"`). Before any run that uses it, `effbench
//! run` makes sure it exists: when the models directory holds no trained default, it trains
//! one first with suites/train-tiny.toml (compiled into the binary, so this works from any
//! directory), publishes the checkpoint as `<models_dir>/default`, and says so; otherwise it
//! says that it reuses the one there. Delete that directory to retrain.
//! `EFFBENCH_DEFAULT_TRAIN_SUITE=FILE` trains it with another training suite instead (a
//! bigger default, or a short one in tests); the provenance names the suite used.

use anyhow::{Context, Result};
use effbench_backends::default_model::{models_dir, publish_trained_default, trained_default};
use effbench_harness::axes::AxisValue;
use effbench_harness::invocation::{self, Options};
use effbench_harness::result::RunState;
use effbench_harness::{matrix, MetricId, Registry, RunResult, RunSpec, Suite};
use sha2::{Digest, Sha256};
use std::process::ExitCode;

/// The suite that trains the default model, as built into this binary.
pub const TRAIN_TINY: &str = include_str!("../../suites/train-tiny.toml");
/// Where that suite lives in the repository (named in messages and results).
pub const TRAIN_TINY_FILE: &str = "suites/train-tiny.toml";

/// Names a training suite file that replaces the built-in one for training the default.
pub const SUITE_ENV: &str = "EFFBENCH_DEFAULT_TRAIN_SUITE";

/// The suite that trains the default: its text, its file name, and where it came from.
fn training_suite() -> Result<(String, String, String)> {
    match std::env::var_os(SUITE_ENV) {
        Some(path) if !path.is_empty() => {
            let file = std::path::PathBuf::from(path).display().to_string();
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("{SUITE_ENV}: cannot read '{file}'"))?;
            Ok((text, file.clone(), format!("{file} (from {SUITE_ENV})")))
        }
        _ => Ok((
            TRAIN_TINY.to_string(),
            TRAIN_TINY_FILE.to_string(),
            format!("{TRAIN_TINY_FILE} (built into effbench)"),
        )),
    }
}

/// True when some run names the trained default model.
pub fn needed(specs: &[RunSpec]) -> bool {
    specs
        .iter()
        .any(|s| s.param("model").and_then(AxisValue::as_str) == Some("default"))
}

fn describe(section: &serde_json::Value) -> String {
    let from = &section["default_from"];
    let num = |k: &str| from.get(k).and_then(|v| v.as_f64());
    match (num("heldout_perplexity"), num("perplexity_floor")) {
        (Some(p), Some(f)) => format!(
            "trained by {}, held-out perplexity {p:.2} vs floor {f:.2}",
            from.get("suite").and_then(|v| v.as_str()).unwrap_or("?")
        ),
        _ => "trained".into(),
    }
}

/// Makes sure the trained default exists. `Ok(None)`: ready; `Ok(Some(code))`: training it
/// failed or was interrupted, exit with `code`.
pub fn ensure(
    registry: &Registry,
    resume: bool,
    meter_args: &super::meters::MeterArgs,
    features: Vec<&'static str>,
    on_result: &mut dyn FnMut(&RunResult, &effbench_harness::progress::TerminalProgress),
) -> Result<Option<ExitCode>> {
    let models = models_dir();
    let dir = models.join("default");
    if let Some(section) = trained_default(&models) {
        eprintln!(
            "effbench: default model: reusing the trained model in {} ({})",
            dir.display(),
            describe(&section)
        );
        return Ok(None);
    }
    let (text, file, origin) = training_suite()?;
    let how_long = if file == TRAIN_TINY_FILE {
        " (about 75 s of CPU time: a minute or two on idle cores, longer on a busy machine)"
    } else {
        ""
    };
    eprintln!(
        "effbench: default model: no trained model in {} yet; training it first with \
         {file}{how_long}",
        dir.display()
    );
    let suite = Suite::parse(&text, &origin)?;
    if suite.scenario != effbench_harness::Scenario::Training {
        anyhow::bail!(
            "{origin}: the default model is trained by a suite with scenario = \"training\""
        );
    }
    let mut specs = matrix::expand(&suite, registry)?;
    let meter_settings = meter_args.resolve(&suite.meters)?;
    for s in &mut specs {
        s.resume = resume;
        s.meters = meter_settings.clone();
    }
    let opts = Options {
        out: None,
        command: std::env::args().collect(),
        features,
        shard: None,
    };
    let outcome = invocation::run_suite(&suite, &specs, registry, &opts, on_result)?;
    let Some(r) = outcome.results.first() else {
        eprintln!("effbench: default model: training was interrupted before it started");
        return Ok(Some(ExitCode::from(super::EXIT_INTERRUPTED)));
    };
    match r.status.state {
        RunState::Ok => {}
        RunState::Interrupted => {
            eprintln!(
                "effbench: default model: training interrupted; `effbench run --resume ...` \
                 continues it (results in {})",
                outcome.out_dir.display()
            );
            return Ok(Some(ExitCode::from(super::EXIT_INTERRUPTED)));
        }
        RunState::Failed => {
            eprintln!(
                "effbench: default model: training failed: {} (results in {})",
                r.status.reason.as_deref().unwrap_or("?"),
                outcome.out_dir.display()
            );
            return Ok(Some(ExitCode::from(super::EXIT_RUN_FAILED)));
        }
    }
    let checkpoint = r
        .model
        .as_ref()
        .and_then(|m| m.path.clone())
        .context("the training result names no checkpoint")?;
    let value = |id: MetricId| r.metric(id).map(|m| m.value);
    let provenance = serde_json::json!({
        "suite": suite.name,
        "suite_file": file,
        "suite_sha256": invocation::hex(&Sha256::digest(text.as_bytes())),
        "run_id": r.id,
        "result": outcome.out_dir.join(format!("{}.json", r.id)).display().to_string(),
        "finished_at": r.finished_at,
        "heldout_loss": value(MetricId::HeldoutLoss),
        "heldout_perplexity": value(MetricId::HeldoutPerplexity),
        "perplexity_floor": value(MetricId::PerplexityFloor),
    });
    let section_text = describe(&serde_json::json!({ "default_from": provenance.clone() }));
    publish_trained_default(&models, checkpoint.as_ref(), provenance)?;
    eprintln!(
        "effbench: default model: {section_text}; saved to {}\n",
        dir.display()
    );
    Ok(None)
}
