//! The compression, quality and fidelity metrics a candle session adds after its measured
//! window when the suite has `[analysis]`: compression ratio and size reduction against the
//! reference variant's weight files, % weights remaining, perplexity on the evaluation text,
//! and top-1 agreement and KL against the reference model on the same positions.

use super::quality::{evaluate, EvalSet, Reference};
use super::{load, materialize, weights_remaining, ModelChoice, Variant};
use crate::llama::{Llama, LlamaConfig};
use crate::loader::{self, LoadedModel};
use anyhow::{Context, Result};
use candle_core::Device;
use effbench_harness::backend::Extras;
use effbench_harness::records::ModelFormat;
use effbench_harness::records::RunAnalysis;
use effbench_harness::{Metric, MetricId, ModelInfo};
use std::path::Path;

/// Bytes of the weight file(s) the choice loads (its variant made if needed).
pub fn weights_bytes(choice: &ModelChoice) -> Result<u64> {
    let files = if choice.recipe.is_identity() {
        let path = loader::resolve(&choice.model)?;
        match choice.model.format() {
            ModelFormat::Gguf => vec![path],
            _ => loader::safetensors_files(&path)?,
        }
    } else {
        vec![materialize(&loader::resolve(&choice.model)?, &choice.recipe)?.weights()]
    };
    files.iter().try_fold(0u64, |acc, f| {
        Ok(acc
            + std::fs::metadata(f)
                .with_context(|| format!("cannot stat '{}'", f.display()))?
                .len())
    })
}

/// Whether the synthetic held-out split is in this model's language: the built-in models
/// (`default`, `seeded`), or an HF model whose config.json has effbench's `effbench.weights`
/// (a seeded or trained copy).
fn speaks_synthetic(choice: &ModelChoice) -> bool {
    if choice.model.is_builtin() {
        return true;
    }
    let Some(dir) = choice
        .model
        .path()
        .filter(|_| choice.model.format() == ModelFormat::Hf)
    else {
        return false;
    };
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.pointer("/effbench/weights").is_some())
}

/// The evaluation windows for a run, or why there are none.
fn eval_set(
    choice: &ModelChoice,
    config: &LlamaConfig,
    text: Option<&str>,
    tokens: usize,
    window: usize,
) -> Result<std::result::Result<EvalSet, String>> {
    let window = window.min(config.max_position_embeddings);
    let Some(text) = text else {
        if speaks_synthetic(choice) {
            return Ok(Ok(EvalSet::heldout(tokens, window)?));
        }
        return Ok(Err(format!(
            "quality not measured: the synthetic held-out split is only in the default model's \
             language; give '{}' evaluation text with [analysis] eval_text or --eval-text",
            choice.model.reference
        )));
    };
    let path = loader::resolve(&choice.model)?;
    let tokenizer = match choice.model.format() {
        ModelFormat::Gguf => {
            crate::tokenizer::tokenizer_from_gguf(&loader::read_gguf_header(&path)?.0)?
        }
        _ => {
            let f = path.join("tokenizer.json");
            tokenizers::Tokenizer::from_file(&f)
                .map_err(|e| anyhow::anyhow!("cannot load tokenizer '{}': {e}", f.display()))?
        }
    };
    Ok(Ok(EvalSet::from_file(
        Path::new(text),
        &tokenizer,
        tokens,
        window,
    )?))
}

/// Everything the session reports after its window.
pub fn run_extras(
    choice: &ModelChoice,
    variant: Option<&Variant>,
    model: &Llama,
    info: &ModelInfo,
    analysis: &RunAnalysis,
    device: &Device,
) -> Result<Extras> {
    let mut ex = Extras::default();
    if choice.model.format() == ModelFormat::Preset {
        ex.notes.push(format!(
            "compression, quality and fidelity not measured: weights: {} ('{}' has seeded \
             random weights; its speed, memory and energy are those of the real architecture)",
            crate::preset::WEIGHTS_LABEL,
            choice.model.reference
        ));
        return Ok(ex);
    }
    let ref_choice = ModelChoice::from_params(&analysis.reference);
    let ref_text = format!(
        "{} ({})",
        ref_choice.model.reference,
        analysis
            .reference
            .iter()
            .filter(|(k, _)| ["dtype", "quant", "sparsity", "prune"].contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    // --- compression against the reference variant's files ---
    let ref_bytes = if analysis.is_reference {
        info.file_bytes
    } else {
        weights_bytes(&ref_choice)?
    };
    if info.file_bytes > 0 && ref_bytes > 0 {
        let src = format!(
            "weight file sizes: reference {ref_text} {ref_bytes} B / this {} B",
            info.file_bytes
        );
        let ratio = ref_bytes as f64 / info.file_bytes as f64;
        ex.metrics.push(Metric::scalar(
            MetricId::CompressionRatio,
            ratio,
            src.clone(),
        ));
        ex.metrics.push(Metric::scalar(
            MetricId::SizeReduction,
            100.0 * (1.0 - 1.0 / ratio),
            src,
        ));
    }
    if let Some((nz, total)) = weights_remaining(choice, variant)? {
        ex.metrics.push(Metric::scalar(
            MetricId::WeightsRemaining,
            100.0 * nz as f64 / total as f64,
            format!(
                "count of non-zero weights after pruning, before quantization: {nz} of {total}"
            ),
        ));
    }
    // --- quality and fidelity ---
    let Some(eval) = &analysis.eval else {
        return Ok(ex);
    };
    let set = match eval_set(
        choice,
        &model.config,
        eval.text.as_deref(),
        eval.tokens,
        eval.window,
    )? {
        Ok(s) => s,
        Err(why) => {
            ex.notes.push(why);
            return Ok(ex);
        }
    };
    let reference: Option<LoadedModel> = if analysis.is_reference {
        None
    } else {
        Some(
            load(&ref_choice, device)
                .map(|(l, _)| l)
                .with_context(|| format!("loading the reference {ref_text}"))?,
        )
    };
    let r = evaluate(
        model,
        reference
            .as_ref()
            .map_or(Reference::Itself, |l| Reference::Model(&l.model)),
        &set,
    )?;
    let where_ = format!(
        "{} positions of {} ({} windows of up to {} tokens)",
        r.positions,
        set.source,
        set.windows.len(),
        set.windows[0].len()
    );
    let src = format!("forward pass on {where_}");
    ex.metrics.push(Metric::scalar(
        MetricId::Perplexity,
        r.perplexity(),
        src.clone(),
    ));
    ex.metrics
        .push(Metric::scalar(MetricId::EvalNll, r.mean_nll(), src));
    let fsrc = match &reference {
        None => format!(
            "this run is the reference variant {ref_text}: compared with itself on {where_}"
        ),
        Some(l) => format!(
            "vs reference {ref_text}, weights sha256 {}, on the same {where_}",
            l.info
                .sha256
                .as_deref()
                .map_or("?", |s| s.get(..12).unwrap_or(s))
        ),
    };
    ex.metrics.push(Metric::scalar(
        MetricId::Top1Agreement,
        r.agreement_pct(),
        fsrc.clone(),
    ));
    ex.metrics
        .push(Metric::scalar(MetricId::KlDivergence, r.mean_kl(), fsrc));
    ex.notes.push(format!(
        "quality: evaluated on {where_}; reference {ref_text}"
    ));
    Ok(ex)
}
