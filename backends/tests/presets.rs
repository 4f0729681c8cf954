//! Presets built by the real loading code: the in-memory GGUF route computes what the dense
//! preset computes (exactly in F32, closely in Q8_0), Qwen2's q/k/v biases and the
//! interleaved q/k permutation included; a preset with the SmolLM2 GGUF's shape loads the
//! same tensors as the real file.

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use effbench_backends::llama::{Llama, Logits};
use effbench_backends::preset::{self, load};

fn logits(m: &Llama, ids: &[u32]) -> Vec<f32> {
    let input = Tensor::from_vec(ids.to_vec(), (1, ids.len()), &m.device).unwrap();
    m.forward(&input, None, Logits::Last)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (d / n).sqrt()
}

#[test]
fn quantized_presets_compute_what_dense_presets_compute() {
    let reference = "preset:qwen2.5-0.5b?layers=1&context=64";
    let spec = preset::parse(reference.strip_prefix("preset:").unwrap()).unwrap();
    let dense = load::load_dense(reference, &spec, DType::F32, &Device::Cpu).unwrap();
    let ids = [11u32, 400, 9000, 151000, 77];
    let want = logits(&dense.model, &ids);
    // GGUF F32: the same weights through the GGUF loader (q/k rows and biases permuted,
    // interleaved rope): the same numbers.
    let f32q = load::load_quantized(reference, &spec, GgmlDType::F32, &Device::Cpu).unwrap();
    let got = logits(&f32q.model, &ids);
    let err = rel_l2(&got, &want);
    assert!(
        err < 1e-5,
        "GGUF F32 preset differs from the dense one: {err}"
    );
    assert!(f32q.model.blocks[0].attn.bias.is_some());
    // Q8_0: close.
    let q8 = load::load_quantized(reference, &spec, GgmlDType::Q8_0, &Device::Cpu).unwrap();
    let err = rel_l2(&logits(&q8.model, &ids), &want);
    assert!(err < 0.05, "Q8_0 preset too far from f32: {err}");
    assert_eq!(q8.info.dtype, "q8_0");
    assert_eq!(q8.info.details["weights"], "random (preset)");
    assert_eq!(q8.info.params_total, dense.info.params_total);
    assert!(q8.info.loaded_bytes < dense.info.loaded_bytes / 3);
}

#[test]
fn the_smollm2_preset_has_the_shape_of_the_real_file() {
    let Some(path) = std::env::var_os("EFFBENCH_SMOLLM2_GGUF").filter(|p| !p.is_empty()) else {
        assert!(
            std::env::var_os("EFFBENCH_REQUIRE_EXTERNAL").is_none(),
            "EFFBENCH_SMOLLM2_GGUF is not set"
        );
        eprintln!("skipped: EFFBENCH_SMOLLM2_GGUF is not set");
        return;
    };
    let (ct, _) = effbench_backends::loader::read_gguf_header(std::path::Path::new(&path)).unwrap();
    let real = effbench_backends::llama::LlamaConfig::from_gguf(&ct).unwrap();
    let p = preset::find("smollm2-135m").unwrap().config().unwrap();
    assert_eq!(
        (
            real.hidden_size,
            real.intermediate_size,
            real.num_hidden_layers,
            real.num_attention_heads,
            real.kv_heads(),
            real.head_size(),
            real.vocab_size,
            real.tie_word_embeddings,
        ),
        (
            p.hidden_size,
            p.intermediate_size,
            p.num_hidden_layers,
            p.num_attention_heads,
            p.kv_heads(),
            p.head_size(),
            p.vocab_size,
            p.tie_word_embeddings,
        )
    );
    // GGUF stores these as f32.
    assert_eq!(real.rope_theta, p.rope_theta);
    assert!((real.rms_norm_eps / p.rms_norm_eps - 1.0).abs() < 1e-6);
    // A Q4_1 preset stores its tensors as the real Q4_1 file does (llama.cpp's choice of a
    // Q8_0 embedding included), so their speeds can be compared.
    let spec = preset::parse("smollm2-135m?layers=2").unwrap();
    let q = load::load_quantized("p", &spec, GgmlDType::Q4_1, &Device::Cpu).unwrap();
    assert_eq!(
        q.info.details["tensor_types"],
        serde_json::json!({"f32": 5, "q4_1": 14, "q8_0": 1})
    );
    let mut real_types = std::collections::BTreeMap::new();
    for t in ct.tensor_infos.values() {
        *real_types
            .entry(format!("{:?}", t.ggml_dtype).to_lowercase())
            .or_insert(0) += 1;
    }
    assert_eq!(
        serde_json::json!(real_types),
        serde_json::json!({"f32": 61, "q4_1": 210, "q8_0": 1})
    );
    // Same parameter count as the file's tensors.
    let file_params: usize = ct.tensor_infos.values().map(|t| t.shape.elem_count()).sum();
    assert_eq!(
        file_params as u64,
        preset::find("smollm2-135m").unwrap().published_params
    );
}
