//! Re-quantizing a GGUF file into another type mix, for speed comparisons on files both
//! effbench and llama.cpp can read (scripts/vs-llamacpp.sh). Every quantized matrix is
//! dequantized to f32 and quantized again with candle's ggml quantizers, so a file made from
//! an already quantized one carries both roundings: it is a faithful *speed* fixture (the same
//! shapes and block types as a file quantized from the original weights), not a quality one.
//!
//! Mixes:
//! - `q8_0`: every matrix Q8_0 (norms stay F32).
//! - `q4_k_m`: llama.cpp's Q4_K_M rules (`llama_tensor_get_type`): Q4_K by default; Q6_K for
//!   the output head (or the tied token embedding), and for `attn_v` and `ffn_down` of the
//!   layers `use_more_bits` picks (the first and last eighth, and every third in between);
//!   where a row is not a multiple of 256 values, llama.cpp's fallbacks Q4_K → Q5_0 and
//!   Q6_K → Q8_0.
//!
//! Metadata and tensor order are kept; `general.file_type` is set to llama.cpp's value for
//! the mix (7 = MOSTLY_Q8_0, 15 = MOSTLY_Q4_K_M).

use super::quantize::type_name;
use crate::loader::read_gguf_header;
use anyhow::{bail, Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::Path;

/// A type mix [`requantize_gguf`] can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Every matrix Q8_0.
    Q8_0,
    /// llama.cpp's Q4_K_M rules with its fallbacks.
    Q4KM,
}

impl Mix {
    /// `q8_0` or `q4_k_m`.
    pub fn parse(s: &str) -> Result<Mix> {
        match s {
            "q8_0" => Ok(Mix::Q8_0),
            "q4_k_m" => Ok(Mix::Q4KM),
            other => bail!("mix '{other}' is not one of q8_0, q4_k_m"),
        }
    }

    /// llama.cpp's `general.file_type` for the mix.
    pub fn file_type(self) -> u32 {
        match self {
            Mix::Q8_0 => 7,
            Mix::Q4KM => 15,
        }
    }

    /// The type of matrix `name` with rows of `cols` values, in a model of `layers` blocks
    /// whose output head is tied to the embedding when `tied`.
    pub fn type_for(self, name: &str, cols: usize, layers: usize, tied: bool) -> GgmlDType {
        let want = match self {
            Mix::Q8_0 => return GgmlDType::Q8_0,
            Mix::Q4KM => {
                let layer = name
                    .strip_prefix("blk.")
                    .and_then(|r| r.split('.').next())
                    .and_then(|i| i.parse::<usize>().ok());
                let more_bits = layer.is_some_and(|i| use_more_bits(i, layers));
                let head = name == "output.weight" || (tied && name == "token_embd.weight");
                let sensitive =
                    name.ends_with("attn_v.weight") || name.ends_with("ffn_down.weight");
                if head || (sensitive && more_bits) {
                    GgmlDType::Q6K
                } else {
                    GgmlDType::Q4K
                }
            }
        };
        if cols.is_multiple_of(want.block_size()) {
            return want;
        }
        match want {
            GgmlDType::Q4K => GgmlDType::Q5_0,
            _ => GgmlDType::Q8_0,
        }
    }
}

/// llama.cpp's choice of layers that get more bits: the first and last eighth, and every
/// third layer in between.
pub fn use_more_bits(i: usize, n: usize) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// Writes `src` re-quantized to `mix` at `dst`; returns the count of matrices per type.
pub fn requantize_gguf(src: &Path, dst: &Path, mix: Mix) -> Result<BTreeMap<String, usize>> {
    let (ct, mut file) = read_gguf_header(src)?;
    let layers = ct
        .metadata
        .get("llama.block_count")
        .and_then(|v| v.to_u32().ok())
        .context("GGUF has no llama.block_count")? as usize;
    let tied = !ct.tensor_infos.contains_key("output.weight");
    let mut names: Vec<(&String, u64)> =
        ct.tensor_infos.iter().map(|(n, i)| (n, i.offset)).collect();
    names.sort_by_key(|(_, off)| *off);
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (name, _) in names {
        let q = ct
            .tensor(&mut file, name, &Device::Cpu)
            .with_context(|| format!("reading tensor '{name}' of '{}'", src.display()))?;
        let q = if q.shape().rank() < 2 {
            q
        } else {
            let cols = *q.shape().dims().last().unwrap_or(&0);
            let t = mix.type_for(name, cols, layers, tied);
            *counts.entry(type_name(t)).or_default() += 1;
            let f = q.dequantize(&Device::Cpu)?;
            QTensor::quantize(&f, t).with_context(|| format!("quantizing '{name}' to {t:?}"))?
        };
        tensors.push((name.clone(), q));
    }
    let mut meta: Vec<(String, gguf_file::Value)> = ct
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in meta.iter_mut() {
        if k == "general.file_type" {
            *v = gguf_file::Value::U32(mix.file_type());
        }
    }
    let tmp = dst.with_extension("gguf.tmp");
    {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create '{}'", tmp.display()))?,
        );
        let meta_refs: Vec<(&str, &gguf_file::Value)> =
            meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensor_refs: Vec<(&str, &QTensor)> =
            tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        gguf_file::write(&mut out, &meta_refs, &tensor_refs)
            .with_context(|| format!("writing '{}'", tmp.display()))?;
        std::io::Write::flush(&mut out)?;
    }
    std::fs::rename(&tmp, dst)
        .with_context(|| format!("cannot move '{}' to '{}'", tmp.display(), dst.display()))?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_cpp_q4_k_m_rules_for_30_layers() {
        // n / 8 = 3, 7 n / 8 = 26: layers 0-2, 26-29 and 5, 8, ..., 23.
        let more: Vec<usize> = (0..30).filter(|&i| use_more_bits(i, 30)).collect();
        assert_eq!(more, [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]);
        let m = Mix::Q4KM;
        assert_eq!(
            m.type_for("blk.5.ffn_down.weight", 1536, 30, true),
            GgmlDType::Q6K
        );
        assert_eq!(
            m.type_for("blk.6.ffn_down.weight", 1536, 30, true),
            GgmlDType::Q4K
        );
        assert_eq!(
            m.type_for("blk.5.attn_v.weight", 576, 30, true),
            GgmlDType::Q8_0
        );
        assert_eq!(
            m.type_for("blk.6.attn_v.weight", 576, 30, true),
            GgmlDType::Q5_0
        );
        assert_eq!(
            m.type_for("blk.6.ffn_up.weight", 576, 30, true),
            GgmlDType::Q5_0
        );
        assert_eq!(
            m.type_for("blk.6.ffn_up.weight", 512, 30, true),
            GgmlDType::Q4K
        );
        assert_eq!(
            m.type_for("token_embd.weight", 576, 30, true),
            GgmlDType::Q8_0
        );
        assert_eq!(
            m.type_for("token_embd.weight", 512, 30, false),
            GgmlDType::Q4K
        );
        assert_eq!(m.type_for("output.weight", 512, 30, false), GgmlDType::Q6K);
        assert_eq!(
            Mix::Q8_0.type_for("blk.0.attn_q.weight", 576, 30, true),
            GgmlDType::Q8_0
        );
        assert!(Mix::parse("q4_k_s").is_err());
    }
}
