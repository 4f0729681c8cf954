//! Building a preset for a run: dense in the run's dtype on its device ([`load_dense`]), or
//! quantized ([`load_quantized`]: the seeded weights written to an in-memory GGUF of the
//! `quant` axis's type and read back by the very code that loads GGUF files, so a preset runs
//! the same kernels as a real file of the same shape and type).

use super::{PresetSpec, SeededWeights};
use crate::compress::quantize::{type_for, type_name};
use crate::llama::{write_gguf_with, Llama, QkvBias, RopeLayout};
use crate::loader::{arch_details, dtype_name, LoadedModel};
use anyhow::{Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use effbench_harness::ModelInfo;
use serde_json::json;
use std::collections::HashMap;

/// What results say about a preset's weights (and why they carry no quality metrics).
pub const WEIGHTS_LABEL: &str = "random (preset)";

/// The preset with seeded weights in `dtype` on `device`, built tensor by tensor.
pub fn load_dense(
    reference: &str,
    spec: &PresetSpec,
    dtype: DType,
    device: &Device,
) -> Result<LoadedModel> {
    let vb = VarBuilder::from_backend(
        Box::new(SeededWeights::new(spec.seed)),
        dtype,
        device.clone(),
    );
    let model = Llama::from_varbuilder(&spec.config, vb)
        .with_context(|| format!("building preset '{}'", spec.preset))?;
    let info = info(reference, spec, &model, dtype_name(dtype), "half-split");
    Ok(finish(model, info))
}

/// The preset quantized to `qtype` (f32 activations, like a GGUF file): seeded f32 weights
/// quantized tensor by tensor into an in-memory GGUF, then loaded with [`Llama::from_gguf`].
/// The q/k rows are permuted for interleaved rope on the way, as llama.cpp's converter
/// does, so the model computes what the dense preset computes, up to the quantization.
pub fn load_quantized(
    reference: &str,
    spec: &PresetSpec,
    qtype: GgmlDType,
    device: &Device,
) -> Result<LoadedModel> {
    let c = &spec.config;
    let seeded = SeededWeights::recording(spec.seed);
    let vb = VarBuilder::from_backend(Box::new(seeded.clone()), DType::F32, Device::Cpu);
    // Built once in f32 on the host: every tensor with its name, shape and initialisation.
    drop(Llama::from_varbuilder(c, vb)?);
    let tensors = seeded.take();
    let biases: HashMap<String, Tensor> = tensors
        .iter()
        .filter(|(n, _)| n.ends_with(".bias"))
        .cloned()
        .collect();
    let weights: HashMap<String, Tensor> = tensors
        .into_iter()
        .filter(|(n, _)| !n.ends_with(".bias"))
        .collect();
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut gguf_config = c.clone();
    gguf_config.model_type = Some("llama".into());
    gguf_config.rope_scaling = None;
    let types = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    let choose = |hf: &str, t: &Tensor| -> Result<GgmlDType> {
        let chosen = tensor_type(hf, t, qtype, c.tie_word_embeddings);
        *types.borrow_mut().entry(type_name(chosen)).or_default() += 1;
        Ok(chosen)
    };
    write_gguf_with(&mut bytes, &gguf_config, &weights, &choose, &[])
        .with_context(|| format!("quantizing preset '{}' to {qtype:?}", spec.preset))?;
    drop(weights);
    bytes.set_position(0);
    let ct = gguf_file::Content::read(&mut bytes)?;
    let kernels = crate::llama::QuantKernels::from_env()?;
    crate::llama::check_decode_env()?;
    let mut model = Llama::from_gguf_with(&ct, &mut bytes, device, kernels)?;
    drop(bytes);
    // What the GGUF metadata cannot say: Qwen2's biases, rope scaling, the model type.
    model.config = c.clone();
    model.rope = crate::llama::Rope::from_inv_freq(
        c.rope_inv_freq()?,
        c.max_position_embeddings,
        RopeLayout::Interleaved,
        DType::F32,
        device,
    )?;
    if c.qkv_bias() {
        for (i, b) in model.blocks.iter_mut().enumerate() {
            let get = |p: &str| -> Result<Tensor> {
                let name = format!("model.layers.{i}.self_attn.{p}_proj.bias");
                let t = biases
                    .get(&name)
                    .with_context(|| format!("preset has no tensor '{name}'"))?;
                Ok(t.to_device(device)?)
            };
            // Rows of q and k were permuted for interleaved rope; their biases alike.
            let q = crate::llama::permute_qk_to_interleaved(
                &get("q")?.unsqueeze(1)?,
                c.num_attention_heads,
            )?
            .squeeze(1)?;
            let k =
                crate::llama::permute_qk_to_interleaved(&get("k")?.unsqueeze(1)?, c.kv_heads())?
                    .squeeze(1)?;
            b.attn.bias = Some(QkvBias { q, k, v: get("v")? });
        }
    }
    let mut info = info(reference, spec, &model, &type_name(qtype), "interleaved");
    info.details
        .insert("tensor_types".into(), json!(types.into_inner()));
    info.details.insert("compute_dtype".into(), json!("f32"));
    info.details.insert(
        "matmul_kernels".into(),
        crate::llama::kernel_report(&model, kernels),
    );
    info.details.insert(
        "quantized".into(),
        json!(format!(
            "seeded f32 weights quantized to {qtype:?} in memory, loaded as a GGUF"
        )),
    );
    Ok(finish(model, info))
}

/// The storage type of one tensor, as llama.cpp's `llama-quantize` chooses it: norms F32;
/// the output head (the token embedding when tied) Q6_K for types below 6 bits, Q8_0 when its
/// rows do not split into 256-value blocks (SmolLM2's Q4_1 file has a Q8_0 embedding for that
/// reason); every other matrix `qtype`, with the block-size fallbacks of
/// [`crate::compress::quantize::type_for`].
fn tensor_type(hf: &str, t: &Tensor, qtype: GgmlDType, tied: bool) -> GgmlDType {
    let cols = *t.dims().last().unwrap_or(&0);
    if t.rank() == 1 {
        return GgmlDType::F32;
    }
    let head = hf == "lm_head.weight" || (tied && hf == "model.embed_tokens.weight");
    let low_bits = !matches!(
        qtype,
        GgmlDType::Q8_0 | GgmlDType::Q6K | GgmlDType::F16 | GgmlDType::F32
    );
    if head && low_bits {
        return type_for(GgmlDType::Q6K, cols);
    }
    type_for(qtype, cols)
}

fn info(reference: &str, spec: &PresetSpec, model: &Llama, dtype: &str, rope: &str) -> ModelInfo {
    let base = spec.base();
    let mut details = arch_details(&model.config);
    details.insert("weights".into(), json!(WEIGHTS_LABEL));
    details.insert("preset".into(), json!(spec.preset));
    details.insert("preset_source".into(), json!(base.source));
    if !spec.options.is_empty() {
        details.insert("preset_options".into(), json!(spec.options));
    }
    details.insert("weights_seed".into(), json!(spec.seed));
    details.insert("rope_layout".into(), json!(rope));
    if let Some(s) = &model.config.rope_scaling {
        details.insert("rope_scaling".into(), s.clone());
    }
    details.insert("qkv_bias".into(), json!(model.config.qkv_bias()));
    let (params_total, params_non_embedding) = model.param_counts();
    ModelInfo {
        name: reference.to_string(),
        format: "preset".into(),
        arch: model.config.arch().into(),
        dtype: dtype.into(),
        params_total,
        params_non_embedding,
        file_bytes: 0,
        loaded_bytes: model.weight_bytes(),
        path: None,
        sha256: None,
        details,
        roofline: None,
    }
}

fn finish(model: Llama, info: ModelInfo) -> LoadedModel {
    let special_ids = model
        .config
        .bos_token_id
        .into_iter()
        .chain(model.config.eos_token_id)
        .collect();
    LoadedModel {
        model,
        info,
        special_ids,
    }
}
