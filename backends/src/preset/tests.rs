use super::*;
use crate::llama::Llama;
use candle_core::{DType, Device};

/// Parameters of a configuration by the model code's own formula, without building it.
fn counts(c: &LlamaConfig) -> (u64, u64) {
    let (h, d) = (c.hidden_size as u64, c.head_size() as u64);
    let (nh, nkv, ff) = (
        c.num_attention_heads as u64,
        c.kv_heads() as u64,
        c.intermediate_size as u64,
    );
    let bias = if c.qkv_bias() {
        nh * d + 2 * nkv * d
    } else {
        0
    };
    let block = 2 * h * nh * d + 2 * h * nkv * d + 3 * h * ff + 2 * h + bias;
    let non_emb = block * c.num_hidden_layers as u64 + h;
    let emb = c.vocab_size as u64 * h * if c.tie_word_embeddings { 1 } else { 2 };
    (non_emb + emb, non_emb)
}

#[test]
fn every_preset_matches_its_published_parameter_total() {
    for p in PRESETS {
        let c = p.config().unwrap();
        assert_eq!(counts(&c).0, p.published_params, "{}", p.name);
    }
    // The model cards' figures (two decimals, rounded or cut), Qwen's non-embedding counts
    // included.
    let total = |n: &str| counts(&find(n).unwrap().config().unwrap());
    let near = |x: u64, card: f64| (x as f64 / 1e9 - card).abs() < 0.01;
    for (name, card) in [
        ("llama-3.2-1b", 1.23),
        ("llama-3.2-3b", 3.21),
        ("llama-3.1-8b", 8.03),
        ("mistral-7b", 7.25),
        ("smollm2-1.7b", 1.71),
        ("smollm2-135m", 0.135),
    ] {
        assert!(near(total(name).0, card), "{name}: {}", total(name).0);
    }
    for (name, all, non_emb) in [
        ("qwen2.5-0.5b", 0.49, 0.36),
        ("qwen2.5-1.5b", 1.54, 1.31),
        ("qwen2.5-7b", 7.61, 6.53),
    ] {
        let (t, n) = total(name);
        assert!(near(t, all) && near(n, non_emb), "{name}: {t} {n}");
    }
}

#[test]
fn preset_shapes_are_the_published_ones() {
    let c = find("llama-3.2-1b").unwrap().config().unwrap();
    assert_eq!(
        (
            c.hidden_size,
            c.num_hidden_layers,
            c.kv_heads(),
            c.head_size()
        ),
        (2048, 16, 8, 64)
    );
    assert!(c.tie_word_embeddings && !c.qkv_bias());
    assert!(matches!(
        c.rope_scaling_rule().unwrap(),
        Some(crate::llama::RopeScaling::Llama3 { factor, .. }) if factor == 32.0
    ));
    let q = find("qwen2.5-7b").unwrap().config().unwrap();
    assert!(q.qkv_bias() && !q.tie_word_embeddings);
    assert_eq!(
        (q.vocab_size, q.head_size(), q.rms_norm_eps),
        (152064, 128, 1e-6)
    );
    let m = find("mistral-7b").unwrap().config().unwrap();
    assert_eq!(
        (m.arch(), m.vocab_size, m.rope_theta),
        ("mistral", 32768, 1e6)
    );
    assert!(m.rope_scaling_rule().unwrap().is_none());
}

#[test]
fn references_parse_shrink_and_fail_clearly() {
    let s = parse("llama-3.2-1b?layers=2&context=4096").unwrap();
    assert_eq!(
        (s.config.num_hidden_layers, s.config.max_position_embeddings),
        (2, 4096)
    );
    assert_eq!(s.config.hidden_size, 2048);
    assert_eq!(s.seed, PRESET_WEIGHTS_SEED);
    assert_eq!(s.options["layers"], 2);
    assert_eq!(parse("smollm2-135m?seed=7").unwrap().seed, 7);
    let e = parse("llama-9b").unwrap_err().to_string();
    assert!(
        e.contains("unknown preset 'llama-9b'") && e.contains("qwen2.5-0.5b"),
        "{e}"
    );
    let e = parse("llama-3.2-1b?depth=2").unwrap_err().to_string();
    assert!(
        e.contains("unknown preset option 'depth'") && e.contains("layers"),
        "{e}"
    );
    let e = parse("llama-3.2-1b?layers=17").unwrap_err().to_string();
    assert!(e.contains("between 1 and 16"), "{e}");
    assert!(parse("llama-3.2-1b?layers=0").is_err());
    assert!(parse("llama-3.2-1b?layers=x").is_err());
    assert!(parse("llama-3.2-1b?layers").is_err());
    assert!(parse("llama-3.2-1b?layers=1&layers=2").is_err());
}

#[test]
fn a_shrunk_preset_builds_in_its_dtype_with_the_counted_parameters() {
    let spec = parse("qwen2.5-0.5b?layers=1&context=64").unwrap();
    let vb = candle_nn::VarBuilder::from_backend(
        Box::new(SeededWeights::new(spec.seed)),
        DType::BF16,
        Device::Cpu,
    );
    let model = Llama::from_varbuilder(&spec.config, vb).unwrap();
    assert_eq!(model.param_counts(), counts(&spec.config));
    let b = model.blocks[0]
        .attn
        .bias
        .as_ref()
        .expect("qwen2 has q/k/v biases");
    assert_eq!((b.q.dims1().unwrap(), b.k.dims1().unwrap()), (896, 128));
    assert_eq!(model.blocks[0].attn_norm.weight.dtype(), DType::BF16);
    // Every parameter in bf16: 2 bytes each.
    assert_eq!(model.weight_bytes(), 2 * counts(&spec.config).0);
    // The same seed makes the same weights.
    let again = Llama::from_varbuilder(
        &spec.config,
        candle_nn::VarBuilder::from_backend(
            Box::new(SeededWeights::new(spec.seed)),
            DType::BF16,
            Device::Cpu,
        ),
    )
    .unwrap();
    let w = |m: &Llama| {
        m.blocks[0]
            .attn
            .bias
            .as_ref()
            .unwrap()
            .k
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(w(&model), w(&again));
    let json = spec.hf_config().unwrap();
    assert_eq!(json["model_type"], "qwen2");
    assert_eq!(json["num_hidden_layers"], 1);
    assert_eq!(json["effbench"]["weights"], "random (preset)");
}
