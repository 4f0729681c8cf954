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
use effbench_harness::records::RunState;
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

/// True when some run loads the trained default model here (a serving run's `model` names
/// the model on the server, not one effbench loads).
pub fn needed(specs: &[RunSpec]) -> bool {
    specs.iter().any(|s| {
        s.scenario != effbench_harness::Scenario::Serving
            && s.param("model").and_then(AxisValue::as_str) == Some("default")
    })
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

/// Makes sure the trained default exists, training it in a child process (this binary with
/// the same arguments and `--train-default-only`) when it does not: training sets up the
/// process's thread pools its own way
/// ([`effbench_backends::loader::pin_training_threads`]), and the benchmarks
/// that follow must run with the same settings whether or not a training came first (their
/// peak memory must not include the training's either). `Ok(None)`: ready; `Ok(Some(code))`:
/// training failed or was interrupted (the child said why), exit with `code`.
pub fn ensure_in_child_process() -> Result<Option<ExitCode>> {
    let models = models_dir();
    if let Some(section) = trained_default(&models) {
        eprintln!(
            "effbench: default model: reusing the trained model in {} ({})",
            models.join("default").display(),
            describe(&section)
        );
        return Ok(None);
    }
    // The same `run` arguments (suite, meters, --resume, ...), so the training is set up as
    // this run asked.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().and_then(|a| a.to_str()) != Some("run") {
        anyhow::bail!("the default model can only be trained from `effbench run`");
    }
    let exe = std::env::current_exe().context("cannot find the effbench executable")?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(&args)
        .arg("--train-default-only")
        // The child's tables go to stderr: stdout belongs to this run (`--json`).
        .stdout(std::io::stderr());
    // Its own process group: a terminal's Ctrl-C reaches it once, forwarded by this process
    // (not twice, which would mean "leave at once, without saving"); SIGTERM when this
    // process dies, even by SIGKILL, so it saves its checkpoint and ends too.
    effbench_harness::guard::prepare(&mut cmd, libc::SIGTERM);
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "cannot start '{}' to train the default model",
            exe.display()
        )
    })?;
    // Every Ctrl-C/SIGTERM/SIGHUP is passed on (one that came already, at once).
    let forwarding = effbench_harness::interrupt::forward_to(child.id());
    let status = child.wait();
    drop(forwarding);
    let status = status.context("waiting for the training process")?;
    Ok(match status.code() {
        Some(0) => None,
        Some(code) => Some(ExitCode::from(
            u8::try_from(code).unwrap_or(super::EXIT_RUN_FAILED),
        )),
        None => {
            use std::os::unix::process::ExitStatusExt;
            eprintln!("effbench: default model: the training process was killed by a signal");
            Some(ExitCode::from(match status.signal() {
                Some(sig) => effbench_harness::interrupt::exit_code_of(Some(sig)),
                None => super::EXIT_RUN_FAILED,
            }))
        }
    })
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
        " (about 70 s of CPU time: under a minute on two idle cores, longer on a busy machine)"
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
        return Ok(Some(ExitCode::from(
            effbench_harness::interrupt::exit_code(),
        )));
    };
    match r.status.state {
        RunState::Ok => {}
        RunState::Interrupted => {
            eprintln!(
                "effbench: default model: training interrupted; `effbench run --resume ...` \
                 continues it (results in {})",
                outcome.out_dir.display()
            );
            return Ok(Some(ExitCode::from(
                effbench_harness::interrupt::exit_code(),
            )));
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
