//! Variants of the real default model: file sizes, fidelity of q8_0, perplexity against an
//! independent computation, pruning counts and the GGUF refusal.

use super::quality::{evaluate, EvalSet, Reference};
use super::*;
use crate::llama::Logits;

fn recipe(quant: &str, sparsity: f64, prune: PruneMethod) -> Recipe {
    Recipe {
        quant: quant.into(),
        sparsity,
        prune,
    }
}

fn base(tmp: &Path) -> PathBuf {
    crate::default_model::ensure_seeded_model_in(tmp).unwrap()
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[test]
fn compression_ratio_and_bits_per_param_from_real_file_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let base = base(tmp.path());
    let root = tmp.path().join("variants");
    let v = materialize_in(
        &root,
        &base,
        &recipe("q8_0", 0.0, PruneMethod::MagnitudeLayer),
    )
    .unwrap();
    let dense = file_len(&base.join("model.safetensors"));
    let q8 = file_len(&v.weights());
    // q8_0 stores 32 weights in 34 bytes (8.5 bits) and the norms in f32, so the file is a
    // little over a quarter of the f32 one.
    let ratio = dense as f64 / q8 as f64;
    assert!(
        (3.6..4.0).contains(&ratio),
        "ratio {ratio} ({dense} / {q8})"
    );
    let loaded = crate::loader::load_gguf(&v.weights(), &Device::Cpu).unwrap();
    assert_eq!(loaded.info.file_bytes, q8);
    let bits = 8.0 * q8 as f64 / loaded.info.params_total as f64;
    assert!((8.5..8.7).contains(&bits), "{bits} bits/param");
    assert_eq!(
        v.meta.tensor_types.get("q8_0"),
        Some(&29),
        "{:?}",
        v.meta.tensor_types
    );
    assert_eq!(v.meta.params_total, loaded.info.params_total);
    // cached: a second call reads variant.json and writes nothing
    let again = materialize_in(
        &root,
        &base,
        &recipe("q8_0", 0.0, PruneMethod::MagnitudeLayer),
    )
    .unwrap();
    assert_eq!(again.dir, v.dir);
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
    // the compression ratio the session reports is the same quotient of the same files
    let choice = ModelChoice {
        model: ModelSpec {
            reference: base.display().to_string(),
        },
        dtype: "f32".into(),
        recipe: recipe("none", 0.0, PruneMethod::MagnitudeLayer),
    };
    assert_eq!(extras::weights_bytes(&choice).unwrap(), dense);
}

#[test]
fn q8_0_agrees_with_the_f32_default_model() {
    let tmp = tempfile::tempdir().unwrap();
    let base = base(tmp.path());
    let v = materialize_in(
        &tmp.path().join("v"),
        &base,
        &recipe("q8_0", 0.0, PruneMethod::MagnitudeLayer),
    )
    .unwrap();
    let f32 = crate::loader::load_hf(&base, DType::F32, &Device::Cpu).unwrap();
    let q8 = crate::loader::load_gguf(&v.weights(), &Device::Cpu).unwrap();
    let set = EvalSet::heldout(4096, 128).unwrap();
    let r = evaluate(&q8.model, Reference::Model(&f32.model), &set).unwrap();
    let own = evaluate(&f32.model, Reference::Itself, &set).unwrap();
    eprintln!(
        "default model, q8_0 vs f32 on {} positions: agreement {:.3} %, KL {:.3e} nats, ppl {:.4} vs {:.4}",
        r.positions,
        r.agreement_pct(),
        r.mean_kl(),
        r.perplexity(),
        own.perplexity()
    );
    assert_eq!(r.positions, 32 * 127);
    assert!(r.agreement_pct() >= 99.0, "{}", r.agreement_pct());
    assert!(r.mean_kl() >= 0.0 && r.mean_kl() < 1e-3, "{}", r.mean_kl());
    assert_eq!((own.agreement_pct(), own.mean_kl()), (100.0, 0.0));
}

#[test]
fn perplexity_equals_exp_mean_nll_computed_token_by_token() {
    let tmp = tempfile::tempdir().unwrap();
    let m = crate::loader::load_hf(&base(tmp.path()), DType::F32, &Device::Cpu)
        .unwrap()
        .model;
    let set = EvalSet::heldout(70, 32).unwrap(); // windows of 32, 32 and 6 tokens
    assert_eq!(
        set.windows.iter().map(Vec::len).collect::<Vec<_>>(),
        [32, 32, 6]
    );
    let got = evaluate(&m, Reference::None, &set).unwrap();
    // Independently: decode each window one token at a time with the KV cache, and take
    // -ln softmax(logits)[next] in f64 from the raw logits.
    let (mut nll, mut n) = (0.0f64, 0u64);
    for w in &set.windows {
        let mut cache = m.new_cache(w.len());
        for p in 0..w.len() - 1 {
            let ids = Tensor::from_vec(vec![w[p]], (1, 1), &Device::Cpu).unwrap();
            let logits: Vec<f32> = m
                .forward(&ids, Some(&mut cache), Logits::Last)
                .unwrap()
                .squeeze(0)
                .unwrap()
                .to_vec1()
                .unwrap();
            let max = logits
                .iter()
                .fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
            let lse = max
                + logits
                    .iter()
                    .map(|&x| (x as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
            nll += lse - logits[w[p + 1] as usize] as f64;
            n += 1;
        }
    }
    assert_eq!(got.positions, n);
    let want = (nll / n as f64).exp();
    assert!(
        (got.perplexity() - want).abs() < 1e-4 * want,
        "{} vs {want}",
        got.perplexity()
    );
}

#[test]
fn pruned_variants_count_what_they_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = base(tmp.path());
    let root = tmp.path().join("v");
    let config = LlamaConfig::from_hf_file(&base.join("config.json")).unwrap();
    let (nz0, total) = count_weights(&config, &read_dense(&base).unwrap()).unwrap();
    assert_eq!(nz0, total, "seeded weights have no zeros");
    for method in [
        PruneMethod::MagnitudeLayer,
        PruneMethod::MagnitudeGlobal,
        PruneMethod::SemiStructured24,
    ] {
        let v = materialize_in(&root, &base, &recipe("none", 0.5, method)).unwrap();
        let m = &v.meta;
        assert_eq!(m.weights_file, "model.safetensors");
        assert_eq!(m.pruned_weights, m.prunable_weights / 2, "{method:?}");
        assert_eq!(m.nonzero_weights, total - m.pruned_weights);
        // the stored file really holds those zeros, and loads through the HF path
        let (nz, _) = count_weights(&config, &read_dense(&v.dir).unwrap()).unwrap();
        assert_eq!(nz, m.nonzero_weights);
        crate::loader::load_hf(&v.dir, DType::F32, &Device::Cpu).unwrap();
    }
    // pruned then quantized: q4k falls back to q5_0 on rows of 128 and 352 values
    let v = materialize_in(
        &root,
        &base,
        &recipe("q4k", 0.5, PruneMethod::MagnitudeLayer),
    )
    .unwrap();
    assert_eq!(
        v.meta.tensor_types.get("q5_0"),
        Some(&29),
        "{:?}",
        v.meta.tensor_types
    );
    assert_eq!(v.meta.fallbacks.len(), 29);
    assert!(v.meta.fallbacks[0].contains("not a multiple of the 256-value q4k block; q5_0 used"));
    crate::loader::load_gguf(&v.weights(), &Device::Cpu).unwrap();
}

#[test]
fn gguf_models_are_not_compressed_again() {
    let choice = ModelChoice {
        model: ModelSpec {
            reference: "some/model.Q4_1.gguf".into(),
        },
        dtype: "f32".into(),
        recipe: recipe("q8_0", 0.0, PruneMethod::MagnitudeLayer),
    };
    let e = choice.check().unwrap_err();
    assert!(
        e.contains("already quantized (GGUF)") && e.contains("HF checkpoint"),
        "{e}"
    );
    let mut c2 = choice.clone();
    c2.recipe = recipe("none", 0.5, PruneMethod::MagnitudeLayer);
    assert!(c2.check().unwrap_err().contains("50 % pruned"));
    let mut c3 = choice.clone();
    c3.model.reference = "default".into();
    c3.dtype = "bf16".into();
    assert!(c3
        .check()
        .unwrap_err()
        .contains("dtype 'bf16' does not apply"));
    c3.dtype = "f32".into();
    c3.recipe = recipe("none", 0.3, PruneMethod::SemiStructured24);
    assert!(c3.check().unwrap_err().contains("sparsity must be 0.5"));
}
