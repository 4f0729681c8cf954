//! Quantizing an HF llama checkpoint to GGUF with candle's ggml quantizers, through
//! [`crate::llama::write_gguf_with`] (q/k rows permuted as llama.cpp's converter does).
//!
//! Every matrix gets the requested type ("pure" quantization, as `llama-quantize --pure`),
//! norms stay F32. Where a matrix's rows are not a multiple of the type's block (k-quants
//! need 256 values), the fallback is llama.cpp's: q2k/q3k → q4_0 (llama.cpp uses iq4_nl,
//! which candle lacks), q4k → q5_0, q5k → q5_1, q6k → q8_0; and f16 when even that does
//! not divide the row. Each fallback is reported.

use crate::llama::{write_gguf_with, LlamaConfig};
use anyhow::{bail, Result};
use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::Tensor;
use std::collections::{BTreeMap, HashMap};

/// The ggml type of a `quant` axis value (`None` for `none`).
pub fn ggml_type(name: &str) -> Result<Option<GgmlDType>> {
    Ok(Some(match name {
        "none" => return Ok(None),
        "q8_0" => GgmlDType::Q8_0,
        "q4_0" => GgmlDType::Q4_0,
        "q4_1" => GgmlDType::Q4_1,
        "q5_0" => GgmlDType::Q5_0,
        "q5_1" => GgmlDType::Q5_1,
        "q2k" => GgmlDType::Q2K,
        "q3k" => GgmlDType::Q3K,
        "q4k" => GgmlDType::Q4K,
        "q5k" => GgmlDType::Q5K,
        "q6k" => GgmlDType::Q6K,
        other => bail!(
            "quant '{other}' is not one of {}",
            effbench_harness::axes::QUANT_TYPES.join(", ")
        ),
    }))
}

/// Lower-case ggml name of a type (`q8_0`, `q4k`, `f32` ...), as the `quant` axis spells it.
pub fn type_name(t: GgmlDType) -> String {
    format!("{t:?}").to_lowercase()
}

/// The type a matrix with rows of `cols` values gets when `requested` is asked for.
pub fn type_for(requested: GgmlDType, cols: usize) -> GgmlDType {
    if cols.is_multiple_of(requested.block_size()) {
        return requested;
    }
    let fallback = match requested {
        GgmlDType::Q2K | GgmlDType::Q3K => GgmlDType::Q4_0,
        GgmlDType::Q4K => GgmlDType::Q5_0,
        GgmlDType::Q5K => GgmlDType::Q5_1,
        GgmlDType::Q6K => GgmlDType::Q8_0,
        _ => GgmlDType::F16,
    };
    if cols.is_multiple_of(fallback.block_size()) {
        fallback
    } else {
        GgmlDType::F16
    }
}

/// What quantization wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantReport {
    /// Tensors per storage type (`q8_0` → 29, `f32` → 9 ...).
    pub types: BTreeMap<String, usize>,
    /// One line per matrix that could not get the requested type.
    pub fallbacks: Vec<String>,
}

/// Writes `tensors` (HF names, dense) as a GGUF of `qtype`.
pub fn write_quantized<W: std::io::Write + std::io::Seek>(
    w: &mut W,
    config: &LlamaConfig,
    tensors: &HashMap<String, Tensor>,
    qtype: GgmlDType,
    extra: &[(String, gguf_file::Value)],
) -> Result<QuantReport> {
    let report = std::cell::RefCell::new(QuantReport::default());
    let choose = |hf: &str, t: &Tensor| -> Result<GgmlDType> {
        let chosen = if t.rank() == 1 {
            GgmlDType::F32
        } else {
            let cols = *t.dims().last().unwrap_or(&0);
            let c = type_for(qtype, cols);
            if c != qtype {
                report.borrow_mut().fallbacks.push(format!(
                    "{hf}: rows of {cols} values are not a multiple of the {}-value {} block; {} used",
                    qtype.block_size(),
                    type_name(qtype),
                    type_name(c)
                ));
            }
            c
        };
        *report
            .borrow_mut()
            .types
            .entry(type_name(chosen))
            .or_default() += 1;
        Ok(chosen)
    };
    write_gguf_with(w, config, tensors, &choose, extra)?;
    Ok(report.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_fallbacks() {
        assert_eq!(ggml_type("none").unwrap(), None);
        assert_eq!(ggml_type("q4k").unwrap(), Some(GgmlDType::Q4K));
        assert!(ggml_type("q9").unwrap_err().to_string().contains("q8_0"));
        for name in effbench_harness::axes::QUANT_TYPES.iter().skip(1) {
            let t = ggml_type(name).unwrap().unwrap();
            assert_eq!(type_name(t), *name, "axis names are ggml names");
        }
        assert_eq!(type_for(GgmlDType::Q4K, 512), GgmlDType::Q4K);
        assert_eq!(type_for(GgmlDType::Q4K, 128), GgmlDType::Q5_0);
        assert_eq!(type_for(GgmlDType::Q5K, 576), GgmlDType::Q5_1);
        assert_eq!(type_for(GgmlDType::Q6K, 352), GgmlDType::Q8_0);
        assert_eq!(type_for(GgmlDType::Q3K, 96), GgmlDType::Q4_0);
        assert_eq!(type_for(GgmlDType::Q8_0, 48), GgmlDType::F16);
    }
}
