//! The `candle` backend: in-process inference of llama-family models (HF directory in
//! f32/f16/bf16, or GGUF) with candle on the CPU (CUDA with the `cuda` feature). Each
//! iteration is one request: a batch of seeded synthetic prompts, prefill, then greedy decode
//! of exactly `gen_len` tokens, with a timestamp per generated token. The `quant`, `sparsity`
//! and `prune` axes load a compressed variant ([`crate::compress`]); with a suite
//! `[analysis]`, `finish` adds compression, perplexity and fidelity metrics.

use crate::compress::{self, ModelChoice, Variant};
use crate::llama::{argmax_rows, Cache, Llama, Logits};
use crate::train::flops::peak_flops;
use crate::{loader, memory};
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use effbench_harness::axes::AxisValue;
use effbench_harness::backend::Extras;
use effbench_harness::backend::{Emission, GenerationTrace, IterationCtx, Sample, Work};
use effbench_harness::env::{PeakBandwidth, PeakFlops};
use effbench_harness::records::ModelFormat;
use effbench_harness::records::RunAnalysis;
use effbench_harness::{interrupt, Backend, Capabilities, ModelInfo, RunSpec};
use effbench_harness::{Scenario, Session};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Reason given when a GGUF run asks for a compute dtype.
pub const GGUF_DTYPE_REASON: &str =
    "GGUF weights are already quantized; compute dtype is fixed, omit dtype or use f32";

/// The candle inference backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct CandleBackend;

fn devices() -> Vec<&'static str> {
    let mut d = vec!["cpu"];
    if cfg!(feature = "cuda") {
        d.push("cuda");
    }
    d
}

impl Backend for CandleBackend {
    fn describe(&self) -> Capabilities {
        Capabilities {
            name: "candle",
            description: "in-process llama inference with candle (HF f32/f16/bf16 or GGUF)",
            scenarios: vec![Scenario::Inference],
            dtypes: vec!["f32", "f16", "bf16"],
            devices: devices(),
            formats: vec![ModelFormat::Hf, ModelFormat::Gguf, ModelFormat::Preset],
            axes: crate::inference_axes()
                .into_iter()
                .chain([
                    ("quant", AxisValue::from("none")),
                    ("sparsity", AxisValue::Float(0.0)),
                    ("prune", AxisValue::from("magnitude-layer")),
                ])
                .collect(),
        }
    }

    fn validate(&self, spec: &RunSpec) -> std::result::Result<(), String> {
        let model = spec.model();
        let dtype = spec
            .param("dtype")
            .and_then(AxisValue::as_str)
            .unwrap_or("f32");
        if model.format() == ModelFormat::Gguf && dtype != "f32" {
            return Err(format!("dtype '{dtype}': {GGUF_DTYPE_REASON}"));
        }
        ModelChoice::from_params(&spec.params).check()?;
        if let Some(a) = &spec.analysis {
            ModelChoice::from_params(&a.reference)
                .check()
                .map_err(|e| format!("[analysis] reference variant: {e}"))?;
            if let Some(text) = a.eval.as_ref().and_then(|e| e.text.as_ref()) {
                if !std::path::Path::new(text).is_file() {
                    return Err(format!("eval text '{text}' is not a file"));
                }
            }
        }
        if let Some(p) = model.path() {
            if !p.exists() {
                return Err(format!("model path '{}' does not exist", p.display()));
            }
        }
        let context = loader::context_length(&model).map_err(|e| format!("{e:#}"))?;
        let len = |axis: &str| spec.usize_param(axis).map_err(|e| e.to_string());
        let (prompt, gen) = (len("prompt_len")?, len("gen_len")?);
        if prompt + gen > context {
            return Err(format!(
                "prompt_len {prompt} + gen_len {gen} = {} exceeds the model context of {context} \
                 tokens ({})",
                prompt + gen,
                model.reference
            ));
        }
        Ok(())
    }

    fn load(&self, spec: &RunSpec) -> Result<Box<dyn Session>> {
        self.validate(spec).map_err(anyhow::Error::msg)?;
        let choice = ModelChoice::from_params(&spec.params);
        let batch = spec.usize_param("batch")?;
        let prompt_len = spec.usize_param("prompt_len")?;
        let gen_len = spec.usize_param("gen_len")?;
        let estimate = check_memory(spec, &choice, batch, prompt_len, gen_len)?;
        let device = loader::candle_device(spec.device()?)?;
        let (loaded, variant) = compress::load(&choice, &device)?;
        let ids = synthetic_prompts(
            spec.seed,
            batch * prompt_len,
            loaded.model.config.vocab_size,
            &loaded.special_ids,
        )?;
        let prompts = Tensor::from_vec(ids, (batch, prompt_len), &device)?;
        let mut info = loaded.info;
        info.details.insert(
            "device".into(),
            serde_json::json!(spec.device()?.to_string()),
        );
        info.details
            .insert("memory_estimate".into(), serde_json::to_value(estimate)?);
        info.roofline = Some(crate::roofline::model_work(
            &loaded.model,
            loaded.model.dtype,
        ));
        Ok(Box::new(CandleSession {
            cache: loaded.model.new_cache(prompt_len + gen_len),
            model: loaded.model,
            info,
            prompts,
            gen_len,
            device_label: spec.device()?.to_string(),
            roofs: Roofs::default(),
            quality: spec.analysis.clone().map(|a| QualityJob {
                analysis: a,
                choice,
                variant,
                device,
            }),
        }))
    }
}

/// The memory check before loading ([`memory::check`]): refuses a run that cannot fit.
fn check_memory(
    spec: &RunSpec,
    choice: &ModelChoice,
    batch: usize,
    prompt: usize,
    gen: usize,
) -> Result<memory::Estimate> {
    let config = loader::model_config(&choice.model)?;
    let (weights, act_bytes, load_transient) =
        memory::weights_of(&choice.model, &config, &choice.dtype, &choice.recipe.quant)?;
    let plan = memory::Plan {
        config: &config,
        weights,
        act_bytes,
        work: memory::Work::Inference {
            batch: batch as u64,
            prompt: prompt as u64,
            gen: gen as u64,
        },
        load_transient,
    };
    let held = match choice.recipe.quant.as_str() {
        "none" => choice.dtype.as_str(),
        q => q,
    };
    let what = format!(
        "model '{}' ({held}), batch {batch}, {prompt} + {gen} tokens",
        choice.model.reference
    );
    memory::check(&what, &plan, spec.device()?)
}

/// `n` token ids drawn uniformly from the vocabulary minus `special`, seeded.
pub fn synthetic_prompts(seed: u64, n: usize, vocab: usize, special: &[u32]) -> Result<Vec<u32>> {
    let mut special = special.to_vec();
    special.sort_unstable();
    special.dedup();
    let ordinary = vocab.saturating_sub(special.iter().filter(|&&s| (s as usize) < vocab).count());
    if ordinary == 0 {
        bail!("the vocabulary of {vocab} tokens has no ordinary token to build prompts from");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let id = rng.random_range(0..vocab as u32);
        if special.binary_search(&id).is_err() {
            out.push(id);
        }
    }
    Ok(out)
}

/// A loaded model with its fixed prompts and a reusable KV cache.
pub struct CandleSession {
    model: Llama,
    info: ModelInfo,
    cache: Cache,
    /// `(batch, prompt_len)` u32 ids, the same every iteration.
    prompts: Tensor,
    gen_len: usize,
    /// `cpu` or `cuda:N`, as results name the device.
    device_label: String,
    /// The device's measured roofs (after the window).
    roofs: Roofs,
    /// Compression/quality/fidelity work for after the window (suites with `[analysis]`).
    quality: Option<QualityJob>,
}

/// Bandwidth and matmul probes of the run's device, the denominators of MBU and prefill MFU.
#[derive(Default)]
struct Roofs {
    bandwidth: Option<PeakBandwidth>,
    flops: Option<PeakFlops>,
}

/// What `finish` needs to measure compression, quality and fidelity.
struct QualityJob {
    analysis: RunAnalysis,
    choice: ModelChoice,
    variant: Option<Variant>,
    device: candle_core::Device,
}

impl CandleSession {
    /// The generated ids of one greedy request, one Vec per sequence, with the trace.
    pub fn generate(&mut self) -> Result<(Vec<Vec<u32>>, GenerationTrace)> {
        let (batch, prompt_len) = self.prompts.dims2()?;
        let mut emissions = Vec::with_capacity(self.gen_len);
        let mut out = vec![Vec::with_capacity(self.gen_len); batch];
        let start = Instant::now();
        self.cache.reset();
        let mut input = self.prompts.clone();
        for step in 0..self.gen_len {
            if interrupt::requested() {
                return Err(interrupt::Interrupted.into());
            }
            let logits = self
                .model
                .forward(&input, Some(&mut self.cache), Logits::Last)
                .with_context(|| format!("forward pass at generated token {step}"))?;
            let next = argmax_rows(&logits)?;
            emissions.push(Emission {
                t_ns: start.elapsed().as_nanos() as u64,
                tokens: 1,
            });
            for (seq, &id) in out.iter_mut().zip(&next) {
                seq.push(id);
            }
            if step + 1 < self.gen_len {
                input = Tensor::from_vec(next, (batch, 1), &self.model.device)?;
            }
        }
        let trace = GenerationTrace {
            batch,
            prompt_tokens: prompt_len,
            emissions,
        };
        Ok((out, trace))
    }
}

impl Session for CandleSession {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn iteration(&mut self, _ctx: IterationCtx) -> Result<Sample> {
        let (_, trace) = self.generate()?;
        let (batch, prompt_len) = (trace.batch as u64, trace.prompt_tokens as u64);
        let work = Work {
            input_tokens: batch * prompt_len,
            output_tokens: batch * self.gen_len as u64,
            requests: 1,
        };
        Ok(Sample {
            generation: Some(trace),
            values: Vec::new(),
            work,
            done: false,
            overhead_s: 0.0,
        })
    }

    fn finish(&mut self) -> Result<Extras> {
        // The probes run after the window (memoised per process), so they never disturb it.
        let device = self.model.device.clone();
        let mut notes = Vec::new();
        match crate::roofline::peak_bandwidth(&device, &self.device_label) {
            Ok(p) => self.roofs.bandwidth = Some(p),
            Err(e) => notes.push(format!("no bandwidth probe, so no MBU: {e:#}")),
        }
        match peak_flops(&device, self.model.dtype, &self.device_label) {
            Ok(p) => self.roofs.flops = Some(p),
            Err(e) => notes.push(format!("no matmul probe, so no prefill MFU: {e:#}")),
        }
        let mut extras = match &self.quality {
            None => Extras::default(),
            Some(q) => compress::extras::run_extras(
                &q.choice,
                q.variant.as_ref(),
                &self.model,
                &self.info,
                &q.analysis,
                &q.device,
            )?,
        };
        extras.notes.extend(notes);
        Ok(extras)
    }

    fn peak_flops(&self) -> Option<PeakFlops> {
        self.roofs.flops.clone()
    }

    fn peak_bandwidth(&self) -> Option<PeakBandwidth> {
        self.roofs.bandwidth.clone()
    }
}
