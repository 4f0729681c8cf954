//! Tokenizers rebuilt from GGUF metadata (`tokenizer.ggml.*`), matching llama.cpp.
//!
//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`) is supported with the pre-tokenizers
//! llama.cpp knows by `tokenizer.ggml.pre`: `smollm` (SmolLM/SmolLM2, StarCoder-style:
//! every digit split off, then the GPT-2 regex), `gpt2`/`default`, `llama3`/`llama-bpe`/
//! `smaug-bpe`, and `qwen2`. None adds a prefix space (candle's generic helper does, which
//! turns "The" into " The"). SentencePiece (`"llama"`) vocabularies are rejected by name.

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// Pre-tokenizer names accepted in `tokenizer.ggml.pre`.
pub const SUPPORTED_PRE: &[&str] = &[
    "smollm",
    "gpt2",
    "default",
    "llama3",
    "llama-bpe",
    "smaug-bpe",
    "qwen2",
];

const REGEX_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const REGEX_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types (llama.cpp `llama_token_type`).
const TYPE_NORMAL: u32 = 1;
const TYPE_CONTROL: u32 = 3;
const TYPE_USER_DEFINED: u32 = 4;

/// Builds the tokenizer described by a GGUF file's metadata.
pub fn tokenizer_from_gguf(ct: &Content) -> Result<Tokenizer> {
    let model = meta_str(ct, "tokenizer.ggml.model")?;
    if model != "gpt2" {
        bail!(
            "GGUF tokenizer model '{model}' is not supported (only byte-level BPE, 'gpt2'); \
             SentencePiece ('llama') vocabularies need an HF tokenizer.json"
        );
    }
    let tokens = string_array(ct, "tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = string_array(ct, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| anyhow!("tokenizer.ggml.merges: entry '{m}' is not 'a b'"))
        })
        .collect::<Result<_>>()?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| anyhow!("building BPE from GGUF vocabulary: {e}"))?;
    let mut tok = Tokenizer::new(bpe);
    let pre = ct
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .map_or("default", String::as_str);
    tok.with_pre_tokenizer(Some(pre_tokenizer(pre)?));
    if pre == "qwen2" {
        tok.with_normalizer(Some(NFC))
            .map_err(|e| anyhow!("setting the normalizer: {e}"))?;
    }
    tok.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));

    // Control tokens (<|im_start|> ...) and user-defined tokens match as whole tokens.
    let types = token_types(ct, tokens.len())?;
    let added: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &ty)| ty == TYPE_CONTROL || ty == TYPE_USER_DEFINED)
        .map(|(t, &ty)| AddedToken::from(t.clone(), ty == TYPE_CONTROL))
        .collect();
    if !added.is_empty() {
        tok.add_special_tokens(added)
            .map_err(|e| anyhow!("adding special tokens: {e}"))?;
    }
    Ok(tok)
}

/// Token ids that are not ordinary text (control, unknown, unused ... and bos/eos/pad),
/// from the GGUF metadata; empty when the file has no vocabulary.
pub fn special_token_ids(ct: &Content) -> Vec<u32> {
    let n = ct
        .metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .map_or(0, Vec::len);
    let mut ids: Vec<u32> = token_types(ct, n)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|(_, &ty)| ty != TYPE_NORMAL && ty != 6)
        .map(|(i, _)| i as u32)
        .collect();
    for key in [
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.unknown_token_id",
    ] {
        if let Some(id) = ct.metadata.get(key).and_then(|v| v.to_u32().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` name.
pub fn pre_tokenizer(pre: &str) -> Result<PreTokenizerWrapper> {
    let byte_level = |use_regex| ByteLevel::new(false, true, use_regex);
    let split = |regex: &str| -> Result<PreTokenizerWrapper> {
        Ok(Split::new(
            SplitPattern::Regex(regex.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| anyhow!("pre-tokenizer regex: {e}"))?
        .into())
    };
    Ok(match pre {
        // SmolLM2 tokenizer.json: Digits(individual) + ByteLevel(GPT-2 regex, no prefix space).
        "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level(true).into()]).into(),
        "gpt2" | "default" => byte_level(true).into(),
        "llama3" | "llama-bpe" | "smaug-bpe" => {
            Sequence::new(vec![split(REGEX_LLAMA3)?, byte_level(false).into()]).into()
        }
        "qwen2" => Sequence::new(vec![split(REGEX_QWEN2)?, byte_level(false).into()]).into(),
        other => bail!(
            "GGUF pre-tokenizer '{other}' (tokenizer.ggml.pre) is not supported; supported: {}",
            SUPPORTED_PRE.join(", ")
        ),
    })
}

fn meta_str<'a>(ct: &'a Content, key: &str) -> Result<&'a str> {
    ct.metadata
        .get(key)
        .ok_or_else(|| anyhow!("GGUF metadata lacks '{key}'"))?
        .to_string()
        .map(String::as_str)
        .map_err(|e| anyhow!("GGUF metadata '{key}': {e}"))
}

fn string_array(ct: &Content, key: &str) -> Result<Vec<String>> {
    let arr = ct
        .metadata
        .get(key)
        .ok_or_else(|| anyhow!("GGUF metadata lacks '{key}'"))?
        .to_vec()
        .with_context(|| format!("GGUF metadata '{key}' is not an array"))?;
    arr.iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(anyhow!(
                "GGUF metadata '{key}' holds a non-string {other:?}"
            )),
        })
        .collect()
}

/// Token types, all "normal" when the file has none.
fn token_types(ct: &Content, n: usize) -> Result<Vec<u32>> {
    match ct.metadata.get("tokenizer.ggml.token_type") {
        None => Ok(vec![TYPE_NORMAL; n]),
        Some(v) => {
            let arr = v
                .to_vec()
                .context("GGUF metadata 'tokenizer.ggml.token_type' is not an array")?;
            if arr.len() != n {
                bail!(
                    "GGUF metadata 'tokenizer.ggml.token_type' has {} entries for {n} tokens",
                    arr.len()
                );
            }
            arr.iter()
                .map(|v| match v {
                    Value::I32(x) => Ok(*x as u32),
                    other => other
                        .to_u32()
                        .map_err(|e| anyhow!("tokenizer.ggml.token_type: {e}")),
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    fn splits(pre: &str, input: &str) -> Vec<String> {
        let mut s = PreTokenizedString::from(input);
        pre_tokenizer(pre).unwrap().pre_tokenize(&mut s).unwrap();
        s.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(s, _, _)| s.to_string())
            .collect()
    }

    #[test]
    fn smollm_splits_digits_and_adds_no_prefix_space() {
        assert_eq!(
            splits("smollm", "The year 2024's"),
            ["The", "Ġyear", "Ġ", "2", "0", "2", "4", "'s"]
        );
        assert_eq!(splits("gpt2", "The year"), ["The", "Ġyear"]);
        assert_eq!(splits("llama3", "abc 12345"), ["abc", "Ġ", "123", "45"]);
    }

    #[test]
    fn unknown_pre_tokenizer_is_named() {
        let e = pre_tokenizer("tekken").unwrap_err().to_string();
        assert!(e.contains("tekken") && e.contains("smollm"), "{e}");
    }

    fn content(meta: Vec<(&str, Value)>) -> Content {
        let mut buf = std::io::Cursor::new(Vec::new());
        let refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
        candle_core::quantized::gguf_file::write(&mut buf, &refs, &[]).unwrap();
        buf.set_position(0);
        Content::read(&mut buf).unwrap()
    }

    fn strings(xs: &[&str]) -> Value {
        Value::Array(xs.iter().map(|s| Value::String(s.to_string())).collect())
    }

    #[test]
    fn builds_a_small_bpe_and_round_trips() {
        let ct = content(vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("smollm".into())),
            (
                "tokenizer.ggml.tokens",
                strings(&["<eos>", "a", "b", "Ġ", "ab", "Ġa", "Ġab", "1", "2"]),
            ),
            ("tokenizer.ggml.merges", strings(&["Ġ a", "Ġa b", "a b"])),
            (
                "tokenizer.ggml.token_type",
                Value::Array([3, 1, 1, 1, 1, 1, 1, 1, 1].map(Value::I32).to_vec()),
            ),
            ("tokenizer.ggml.eos_token_id", Value::U32(0)),
        ]);
        let tok = tokenizer_from_gguf(&ct).unwrap();
        let enc = tok.encode("ab ab12<eos>", false).unwrap();
        assert_eq!(enc.get_ids(), &[4, 6, 7, 8, 0]);
        assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), "ab ab12<eos>");
        assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), "ab ab12");
        assert_eq!(special_token_ids(&ct), vec![0]);
    }

    #[test]
    fn sentencepiece_is_rejected_by_name() {
        let ct = content(vec![(
            "tokenizer.ggml.model",
            Value::String("llama".into()),
        )]);
        let e = tokenizer_from_gguf(&ct).unwrap_err().to_string();
        assert!(e.contains("'llama'"), "{e}");
        let ct = content(vec![]);
        assert!(tokenizer_from_gguf(&ct)
            .unwrap_err()
            .to_string()
            .contains("tokenizer.ggml.model"));
    }
}
