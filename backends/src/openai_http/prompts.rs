//! Prompt text of a given length: exactly `n` tokens of the served model's tokenizer when one
//! is available (a `tokenizer.json`, a GGUF file's vocabulary, or a Hugging Face id in the
//! local cache), else `n` words (one token each in typical BPE vocabularies). The run log says
//! which.
//!
//! Token-accurate text costs almost nothing per request: each word of the list is tokenized
//! once, alone and after a space; byte-level BPE pre-tokenizers split at the space before a
//! word, so a text's token count is the sum of its words' counts. That additivity is checked
//! on a sample when the tokenizer is loaded; where it does not hold, each prompt is encoded,
//! cut to `n` tokens and decoded instead.

use anyhow::{bail, Context, Result};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// Words of synthetic prompts: common English words, one token each in typical BPE
/// vocabularies.
pub const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "she", "other", "its", "may",
    "these", "what", "them", "than", "some", "him", "time", "into", "only", "do", "could", "new",
    "about", "two", "over", "then", "first", "any", "like", "now", "my", "such", "made", "out",
    "also", "most", "well", "after", "man", "our", "years", "through", "where", "many", "before",
    "must", "very", "up", "me", "world", "life", "work", "water", "light", "house", "city", "day",
    "way", "part", "place", "case", "point", "number", "group", "system", "order", "story",
    "music", "river", "field", "market", "game", "paper", "money", "power",
];

/// How prompt lengths are counted.
#[derive(Clone)]
enum Unit {
    Words,
    Tokens {
        tok: Box<Tokenizer>,
        /// Tokens of `WORDS[i]` at the start of a text, and after a space.
        first: Vec<u32>,
        later: Vec<u32>,
        /// Words of one token after a space (to land exactly on `n`).
        ones: Vec<usize>,
        /// Counts add up word by word (checked on a sample).
        additive: bool,
    },
}

/// Makes prompt text of an exact length and counts the length of given text.
#[derive(Clone)]
pub struct PromptMaker {
    unit: Unit,
    /// Where the tokenizer came from, or why there is none.
    source: String,
}

impl std::fmt::Debug for PromptMaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PromptMaker({}, {})", self.unit_name(), self.source)
    }
}

impl PromptMaker {
    /// Lengths in words; `why` says why there is no tokenizer.
    pub fn words(why: impl Into<String>) -> PromptMaker {
        PromptMaker {
            unit: Unit::Words,
            source: why.into(),
        }
    }

    /// Lengths in tokens of `tok` (loaded from `source`).
    pub fn tokens(tok: Tokenizer, source: impl Into<String>) -> Result<PromptMaker> {
        let count = |t: &str| -> Result<u32> {
            Ok(tok
                .encode(t, false)
                .map_err(|e| anyhow::anyhow!("tokenizing {t:?}: {e}"))?
                .len() as u32)
        };
        let mut first = Vec::with_capacity(WORDS.len());
        let mut later = Vec::with_capacity(WORDS.len());
        for w in WORDS {
            first.push(count(w)?);
            later.push(count(&format!(" {w}"))?);
        }
        let ones: Vec<usize> = (0..WORDS.len()).filter(|&i| later[i] == 1).collect();
        // Check additivity on a seeded sample of 400 words.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let idx: Vec<usize> = (0..400).map(|_| rng.random_range(0..WORDS.len())).collect();
        let text = idx.iter().map(|&i| WORDS[i]).collect::<Vec<_>>().join(" ");
        let want: u32 = first[idx[0]] + idx[1..].iter().map(|&i| later[i]).sum::<u32>();
        let additive = !ones.is_empty() && first.iter().all(|&c| c > 0) && count(&text)? == want;
        Ok(PromptMaker {
            unit: Unit::Tokens {
                tok: Box::new(tok),
                first,
                later,
                ones,
                additive,
            },
            source: source.into(),
        })
    }

    /// `tokens` or `words`.
    pub fn unit_name(&self) -> &'static str {
        match self.unit {
            Unit::Words => "words",
            Unit::Tokens { .. } => "tokens",
        }
    }

    /// For the run log: the unit and where the tokenizer came from (or why there is none).
    pub fn describe(&self) -> String {
        match &self.unit {
            Unit::Words => format!(
                "prompt lengths in words, one token each in typical BPE vocabularies ({})",
                self.source
            ),
            Unit::Tokens { additive, .. } => format!(
                "prompt lengths in tokens of {}{}",
                self.source,
                if *additive {
                    ""
                } else {
                    " (each prompt encoded, cut and decoded)"
                }
            ),
        }
    }

    /// Length of `text` in this maker's unit (no special tokens).
    pub fn count(&self, text: &str) -> u64 {
        match &self.unit {
            Unit::Words => text.split_whitespace().count() as u64,
            Unit::Tokens { tok, .. } => tok.encode(text, false).map_or_else(
                |_| text.split_whitespace().count() as u64,
                |e| e.len() as u64,
            ),
        }
    }

    /// Text of exactly `n` units of random words (`n` = 0 gives "").
    pub fn text(&self, n: u64, rng: &mut ChaCha8Rng) -> String {
        self.text_from(n, rng, true)
    }

    /// Like [`PromptMaker::text`], for text that follows other text and a space.
    pub fn text_after(&self, n: u64, rng: &mut ChaCha8Rng) -> String {
        self.text_from(n, rng, false)
    }

    fn text_from(&self, n: u64, rng: &mut ChaCha8Rng, at_start: bool) -> String {
        let pick = |rng: &mut ChaCha8Rng| rng.random_range(0..WORDS.len());
        match &self.unit {
            Unit::Words => {
                let words: Vec<&str> = (0..n).map(|_| WORDS[pick(rng)]).collect();
                words.join(" ")
            }
            Unit::Tokens {
                first,
                later,
                ones,
                additive: true,
                ..
            } => {
                let mut out = String::new();
                let mut total = 0u64;
                let cost = |i: usize, total: u64| {
                    u64::from(if total == 0 && at_start {
                        first[i]
                    } else {
                        later[i]
                    })
                };
                while total < n {
                    let mut i = pick(rng);
                    if total + cost(i, total) > n {
                        // Land exactly: one-token words from here on.
                        i = if total == 0 && at_start {
                            (0..WORDS.len()).find(|&j| first[j] == 1).unwrap_or(ones[0])
                        } else {
                            ones[rng.random_range(0..ones.len())]
                        };
                    }
                    total += cost(i, total);
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(WORDS[i]);
                }
                out
            }
            Unit::Tokens { tok, .. } => {
                // Not additive: overshoot in words, cut the ids, decode.
                let words: Vec<&str> = (0..n + 8).map(|_| WORDS[pick(rng)]).collect();
                let text = words.join(" ");
                match tok.encode(text.as_str(), false) {
                    Ok(e) => {
                        let ids = &e.get_ids()[..(n as usize).min(e.len())];
                        tok.decode(ids, false).unwrap_or(text)
                    }
                    Err(_) => text,
                }
            }
        }
    }
}

/// Where a tokenizer for `spec` may be: a file or directory path, or a Hugging Face id in the
/// local cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`).
pub fn locate(spec: &str) -> Option<PathBuf> {
    let p = Path::new(spec);
    if p.is_file() {
        return Some(p.to_path_buf());
    }
    if p.is_dir() {
        let t = p.join("tokenizer.json");
        return t.is_file().then_some(t);
    }
    let (org, name) = spec.split_once('/')?;
    if name.contains('/') || org.is_empty() || name.is_empty() {
        return None;
    }
    let mut roots = Vec::new();
    if let Some(c) = std::env::var_os("HF_HUB_CACHE") {
        roots.push(PathBuf::from(c));
    }
    if let Some(h) = std::env::var_os("HF_HOME") {
        roots.push(PathBuf::from(h).join("hub"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(h).join(".cache/huggingface/hub"));
    }
    for root in roots {
        let snaps = root
            .join(format!("models--{org}--{name}"))
            .join("snapshots");
        let Ok(rd) = std::fs::read_dir(&snaps) else {
            continue;
        };
        let mut found: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path().join("tokenizer.json"))
            .filter(|t| t.is_file())
            .collect();
        found.sort();
        if let Some(t) = found.pop() {
            return Some(t);
        }
    }
    None
}

/// Why `spec` names no tokenizer.
pub fn not_found(spec: &str) -> String {
    format!(
        "'{spec}' is neither a tokenizer.json, a .gguf file, a directory with tokenizer.json, \
         nor a Hugging Face id in the local cache"
    )
}

/// Loads a tokenizer file: `.gguf` (its `tokenizer.ggml.*` vocabulary) or `tokenizer.json`.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    {
        let mut f = std::fs::File::open(path)
            .with_context(|| format!("cannot open '{}'", path.display()))?;
        let ct = candle_core::quantized::gguf_file::Content::read(&mut f).map_err(|e| {
            anyhow::anyhow!("'{}' is not a readable GGUF file: {e}", path.display())
        })?;
        return crate::tokenizer::tokenizer_from_gguf(&ct)
            .with_context(|| format!("the vocabulary of '{}'", path.display()));
    }
    Tokenizer::from_file(path)
        .map_err(|e| anyhow::anyhow!("'{}' is not a tokenizer.json: {e}", path.display()))
}

/// The prompt maker of a run: the tokenizer `explicit` names (an error when it cannot be
/// used), else the one the model name leads to, else words (with the reason).
pub fn prompt_maker(explicit: Option<&str>, model: &str) -> Result<PromptMaker> {
    if let Some(spec) = explicit {
        let Some(path) = locate(spec) else {
            bail!("{}", not_found(spec));
        };
        let tok = load_tokenizer(&path)?;
        return PromptMaker::tokens(tok, path.display().to_string());
    }
    match locate(model) {
        None => Ok(PromptMaker::words(format!(
            "no local tokenizer for model '{model}'; give [serving] tokenizer (loadgen --tokenizer) for exact token counts"
        ))),
        Some(path) => match load_tokenizer(&path).and_then(|t| {
            PromptMaker::tokens(t, path.display().to_string())
        }) {
            Ok(m) => Ok(m),
            Err(e) => Ok(PromptMaker::words(format!(
                "the tokenizer of model '{model}' could not be used: {e:#}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_counted_and_made_exactly() {
        let m = PromptMaker::words("test");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let t = m.text(17, &mut rng);
        assert_eq!(t.split(' ').count(), 17);
        assert_eq!(m.count(&t), 17);
        assert_eq!(m.text(0, &mut rng), "");
        assert!(m.describe().contains("words") && m.describe().contains("test"));
    }

    #[test]
    fn missing_tokenizers_fall_back_or_fail_by_name() {
        let m = prompt_maker(None, "no-such-org/no-such-model").unwrap();
        assert_eq!(m.unit_name(), "words");
        assert!(m.describe().contains("no-such-org/no-such-model"));
        let e = prompt_maker(Some("/no/such/tokenizer.json"), "m").unwrap_err();
        assert!(e.to_string().contains("/no/such/tokenizer.json"), "{e}");
    }

    /// The real SmolLM2 vocabulary (GGUF): exact token counts for every length asked.
    #[test]
    fn gguf_tokenizer_gives_exact_token_counts() {
        let Some(gguf) = std::env::var_os("EFFBENCH_SMOLLM2_GGUF") else {
            if std::env::var_os("EFFBENCH_REQUIRE_EXTERNAL").is_some() {
                panic!("EFFBENCH_SMOLLM2_GGUF is not set (required in CI)");
            }
            eprintln!("skipped: EFFBENCH_SMOLLM2_GGUF is not set (SmolLM2 GGUF)");
            return;
        };
        let m = prompt_maker(Some(gguf.to_str().unwrap()), "x").unwrap();
        assert_eq!(m.unit_name(), "tokens");
        assert!(
            m.describe().contains(".gguf") && !m.describe().contains("cut"),
            "{}",
            m.describe()
        );
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [1u64, 2, 7, 64, 300] {
            let t = m.text(n, &mut rng);
            assert_eq!(m.count(&t), n, "{t:?}");
            let joined = format!("{t} {}", m.text_after(5, &mut rng));
            assert_eq!(m.count(&joined), n + 5, "{joined:?}");
        }
    }
}
