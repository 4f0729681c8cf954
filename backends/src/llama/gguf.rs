//! GGUF side of the llama model: loading [`Llama`] from a GGUF file (quantized weights,
//! interleaved rope) and writing one from HF-named dense tensors, with the q/k row
//! permutation llama.cpp applies on conversion.
//!
//! # The q/k permutation convention
//! HF checkpoints rotate pairs `(j, j + d/2)` of each head (`rotate_half`); llama.cpp rotates
//! adjacent pairs `(2j, 2j + 1)`. `convert_hf_to_gguf.py` therefore permutes the output rows
//! of `q_proj` (per attention head) and `k_proj` (per key/value head): within a head, HF row
//! `i * d/2 + j` (half `i` ∈ {0, 1}, `j` < d/2) becomes GGUF row `2j + i`. Values, output
//! projection and MLP are unchanged. Because q and k are permuted alike, attention scores are
//! identical, so a GGUF written with [`permute_qk_to_interleaved`] and run with interleaved
//! rope gives the same logits as the HF weights with half-split rope.

use super::config::{LlamaConfig, RopeLayout};
use super::kernels::QuantKernels;
use super::layers::{RmsNorm, Rope};
use super::model::{Attention, Block, Llama, Mlp};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::io::{Read, Seek, Write};

/// HF rows → llama.cpp rows for a q (`heads` = attention heads) or k (`heads` = kv heads)
/// projection weight `(heads * d, in)`.
pub fn permute_qk_to_interleaved(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    w.reshape((heads, 2, out / heads / 2, inp))?
        .transpose(1, 2)?
        .reshape((out, inp))
}

/// Inverse of [`permute_qk_to_interleaved`] (GGUF rows → HF rows).
pub fn permute_qk_to_half_split(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    w.reshape((heads, out / heads / 2, 2, inp))?
        .transpose(1, 2)?
        .reshape((out, inp))
}

/// GGUF tensor name for an HF llama tensor name (`None` for names llama does not use).
pub fn gguf_tensor_name(hf: &str) -> Option<String> {
    match hf {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    layer.parse::<usize>().ok()?;
    let part = match part {
        "input_layernorm.weight" => "attn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{part}"))
}

/// Writes a llama GGUF from dense HF-named tensors: 2-D weights quantized to `qtype` (q/k
/// permuted for interleaved rope), norms kept in F32, `llama.*` metadata from `config`, plus
/// `extra` metadata (e.g. tokenizer keys).
pub fn write_gguf<W: Write + Seek>(
    w: &mut W,
    config: &LlamaConfig,
    tensors: &HashMap<String, Tensor>,
    qtype: GgmlDType,
    extra: &[(String, gguf_file::Value)],
) -> Result<()> {
    let choose = |hf: &str, t: &Tensor| -> Result<GgmlDType> {
        let dtype = if t.rank() == 1 { GgmlDType::F32 } else { qtype };
        let cols = *t.dims().last().unwrap_or(&0);
        if !cols.is_multiple_of(dtype.block_size()) {
            bail!(
                "tensor '{hf}' has rows of {cols} values, not a multiple of the {dtype:?} block \
                 size {}",
                dtype.block_size()
            );
        }
        Ok(dtype)
    };
    write_gguf_with(w, config, tensors, &choose, extra)
}

/// Like [`write_gguf`], with the storage type of each tensor chosen by `choose(hf_name,
/// tensor)` (the tensor as written: f32, q/k already permuted).
pub fn write_gguf_with<W: Write + Seek>(
    w: &mut W,
    config: &LlamaConfig,
    tensors: &HashMap<String, Tensor>,
    choose: &dyn Fn(&str, &Tensor) -> Result<GgmlDType>,
    extra: &[(String, gguf_file::Value)],
) -> Result<()> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut out: Vec<(String, QTensor)> = Vec::new();
    for hf in names {
        let Some(name) = gguf_tensor_name(hf) else {
            continue;
        };
        if config.tie_word_embeddings && name == "output.weight" {
            continue;
        }
        let t = tensors[hf].to_dtype(DType::F32)?;
        let t = if hf.ends_with("q_proj.weight") {
            permute_qk_to_interleaved(&t, config.num_attention_heads)?
        } else if hf.ends_with("k_proj.weight") {
            permute_qk_to_interleaved(&t, config.kv_heads())?
        } else {
            t
        };
        let dtype = choose(hf, &t)?;
        let q = QTensor::quantize(&t, dtype).with_context(|| format!("quantizing '{hf}'"))?;
        out.push((name, q));
    }
    let c = config;
    let u = |x: usize| gguf_file::Value::U32(x as u32);
    let mut meta: Vec<(String, gguf_file::Value)> = vec![
        (
            "general.architecture".into(),
            gguf_file::Value::String("llama".into()),
        ),
        ("llama.embedding_length".into(), u(c.hidden_size)),
        ("llama.feed_forward_length".into(), u(c.intermediate_size)),
        ("llama.block_count".into(), u(c.num_hidden_layers)),
        (
            "llama.attention.head_count".into(),
            u(c.num_attention_heads),
        ),
        ("llama.attention.head_count_kv".into(), u(c.kv_heads())),
        ("llama.rope.dimension_count".into(), u(c.head_size())),
        ("llama.vocab_size".into(), u(c.vocab_size)),
        ("llama.context_length".into(), u(c.max_position_embeddings)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            gguf_file::Value::F32(c.rms_norm_eps as f32),
        ),
        (
            "llama.rope.freq_base".into(),
            gguf_file::Value::F32(c.rope_theta as f32),
        ),
    ];
    meta.extend(extra.iter().cloned());
    let meta_refs: Vec<(&str, &gguf_file::Value)> =
        meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = out.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(w, &meta_refs, &tensor_refs)?;
    Ok(())
}

impl Llama {
    /// Loads a llama GGUF (metadata already read into `ct`) onto `device`. Matrices stay
    /// quantized (effbench's repacked kernels where the format has one, else candle's
    /// `QMatMul`); the embedding is dequantized row by row on lookup; activations are f32 and
    /// rope is interleaved.
    pub fn from_gguf<R: Read + Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Llama> {
        Llama::from_gguf_with(ct, reader, device, QuantKernels::default())
    }

    /// [`Llama::from_gguf`] with the quantized matrices on the chosen kernels.
    pub fn from_gguf_with<R: Read + Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
        kernels: QuantKernels,
    ) -> Result<Llama> {
        let config = LlamaConfig::from_gguf(ct)?;
        let c = &config;
        let (h, d) = (c.hidden_size, c.head_size());
        let mut get = |name: &str, shape: &[usize]| -> Result<QTensor> {
            let info = ct
                .tensor_infos
                .get(name)
                .ok_or_else(|| anyhow!("GGUF has no tensor '{name}'"))?;
            if info.shape.dims() != shape {
                bail!(
                    "GGUF tensor '{name}' has shape {:?}, the metadata implies {shape:?}",
                    info.shape.dims()
                );
            }
            ct.tensor(reader, name, device)
                .with_context(|| format!("reading GGUF tensor '{name}'"))
        };
        let lin = |q: QTensor| kernels.linear(q);
        let norm = |q: QTensor| -> Result<RmsNorm> {
            Ok(RmsNorm {
                weight: q.dequantize(device)?.to_dtype(DType::F32)?,
                eps: c.rms_norm_eps,
            })
        };
        let (embed, tied_head) = kernels.embedding(
            get("token_embd.weight", &[c.vocab_size, h])?,
            c.tie_word_embeddings,
        )?;
        let (nh, nkv, ff) = (c.num_attention_heads, c.kv_heads(), c.intermediate_size);
        let mut blocks = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            blocks.push(Block {
                attn_norm: norm(get(&p("attn_norm"), &[h])?)?,
                attn: Attention {
                    q: lin(get(&p("attn_q"), &[nh * d, h])?)?,
                    k: lin(get(&p("attn_k"), &[nkv * d, h])?)?,
                    v: lin(get(&p("attn_v"), &[nkv * d, h])?)?,
                    o: lin(get(&p("attn_output"), &[h, nh * d])?)?,
                    bias: None,
                },
                mlp_norm: norm(get(&p("ffn_norm"), &[h])?)?,
                mlp: Mlp {
                    gate: lin(get(&p("ffn_gate"), &[ff, h])?)?,
                    up: lin(get(&p("ffn_up"), &[ff, h])?)?,
                    down: lin(get(&p("ffn_down"), &[h, ff])?)?,
                },
            });
        }
        let lm_head = match tied_head {
            Some(head) => head,
            None => lin(get("output.weight", &[c.vocab_size, h])?)?,
        };
        let final_norm = norm(get("output_norm.weight", &[h])?)?;
        let rope = Rope::new(
            d,
            c.rope_theta,
            c.max_position_embeddings,
            RopeLayout::Interleaved,
            DType::F32,
            device,
        )?;
        Ok(Llama {
            config: config.clone(),
            embed,
            blocks,
            norm: final_norm,
            lm_head,
            rope,
            dtype: DType::F32,
            device: device.clone(),
        })
    }
}

/// Storage dtypes of the GGUF's tensors, e.g. `q4_1` or `mixed(q4_1,q8_0,f32)`.
pub fn gguf_weight_dtype(ct: &gguf_file::Content) -> String {
    let mut kinds: Vec<String> = ct
        .tensor_infos
        .values()
        .filter(|t| t.shape.rank() >= 2)
        .map(|t| format!("{:?}", t.ggml_dtype).to_lowercase())
        .collect();
    kinds.sort();
    kinds.dedup();
    match kinds.len() {
        0 => "unknown".into(),
        1 => kinds.remove(0),
        _ => {
            // The most common matrix dtype names the file (as llama.cpp's file type does).
            let mut counts: HashMap<String, usize> = HashMap::new();
            for t in ct.tensor_infos.values().filter(|t| t.shape.rank() >= 2) {
                *counts
                    .entry(format!("{:?}", t.ggml_dtype).to_lowercase())
                    .or_default() += 1;
            }
            let main = counts
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            format!("{main} (mixed: {})", kinds.join(","))
        }
    }
}
