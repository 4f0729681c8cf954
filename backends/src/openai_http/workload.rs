//! What the load generator sends: request bodies for `/v1/completions` or
//! `/v1/chat/completions`, from seeded synthetic prompts (`prompt_len` words drawn from a
//! list of common English words, each one token in typical BPE vocabularies; lengths vary by
//! `range_ratio`) or from a JSONL file (`{"prompt": ...}` or `{"messages": [...]}` with an
//! optional `"output_len"`). Bodies are built one at a time, so a long run holds none of them.
//! Prompt token counts in results come from the server's `usage`.

use anyhow::{bail, Context, Result};
use effbench_harness::serving::Endpoint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::path::Path;

/// Words of synthetic prompts.
const WORDS: &[&str] = &[
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

/// One prompt of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// A plain prompt (completions, or one user message for chat).
    Text(String),
    /// A chat `messages` array.
    Messages(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    prompt: Prompt,
    output_len: Option<u64>,
}

/// Where prompts come from.
#[derive(Debug, Clone)]
enum Source {
    Synthetic {
        prompt_len: u64,
        gen_len: u64,
        range_ratio: f64,
    },
    Dataset {
        entries: Vec<Entry>,
        gen_len: u64,
    },
}

/// Builds request `i` of a run, deterministically from the seed.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Completions or chat.
    pub endpoint: Endpoint,
    /// The `model` field sent.
    pub model: String,
    /// Ask for SSE streaming.
    pub stream: bool,
    /// Send `ignore_eos: true`.
    pub ignore_eos: bool,
    seed: u64,
    source: Source,
}

/// A built request.
pub struct Request {
    /// The JSON body.
    pub body: Vec<u8>,
    /// The `max_tokens` it asks for.
    pub max_tokens: u64,
}

impl Workload {
    /// Synthetic prompts of about `prompt_len` tokens asking for `gen_len` tokens.
    pub fn synthetic(
        endpoint: Endpoint,
        model: &str,
        stream: bool,
        ignore_eos: bool,
        seed: u64,
        (prompt_len, gen_len, range_ratio): (u64, u64, f64),
    ) -> Workload {
        Workload {
            endpoint,
            model: model.to_string(),
            stream,
            ignore_eos,
            seed,
            source: Source::Synthetic {
                prompt_len,
                gen_len,
                range_ratio,
            },
        }
    }

    /// Prompts from a JSONL file; `gen_len` where a line has no `output_len`.
    pub fn dataset(
        endpoint: Endpoint,
        model: &str,
        stream: bool,
        ignore_eos: bool,
        seed: u64,
        path: &Path,
        gen_len: u64,
    ) -> Result<Workload> {
        let entries = read_jsonl(path, endpoint)?;
        Ok(Workload {
            endpoint,
            model: model.to_string(),
            stream,
            ignore_eos,
            seed,
            source: Source::Dataset { entries, gen_len },
        })
    }

    /// A short description for the log.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Synthetic {
                prompt_len,
                gen_len,
                range_ratio,
            } => format!(
                "synthetic prompts of {prompt_len} words (one token each in typical BPE vocabularies), max_tokens {gen_len}, lengths varied by +-{:.0} %",
                range_ratio * 100.0
            ),
            Source::Dataset { entries, gen_len } => format!(
                "{} dataset prompts, max_tokens from output_len or {gen_len}",
                entries.len()
            ),
        }
    }

    /// Request number `i` (warm-up requests use indices after the measured ones).
    pub fn request(&self, i: u64) -> Request {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (prompt, max_tokens) = match &self.source {
            Source::Synthetic {
                prompt_len,
                gen_len,
                range_ratio,
            } => {
                let vary = |len: u64, rng: &mut ChaCha8Rng| -> u64 {
                    if *range_ratio <= 0.0 {
                        return len;
                    }
                    let lo = ((len as f64) * (1.0 - range_ratio)).round().max(1.0) as u64;
                    let hi = ((len as f64) * (1.0 + range_ratio)).round().max(lo as f64) as u64;
                    rng.random_range(lo..=hi)
                };
                let n = vary(*prompt_len, &mut rng);
                let out = vary(*gen_len, &mut rng);
                let words: Vec<&str> = (0..n)
                    .map(|_| WORDS[rng.random_range(0..WORDS.len())])
                    .collect();
                (Prompt::Text(words.join(" ")), out)
            }
            Source::Dataset { entries, gen_len } => {
                let e = &entries[(i % entries.len() as u64) as usize];
                (e.prompt.clone(), e.output_len.unwrap_or(*gen_len))
            }
        };
        let mut body = match (self.endpoint, prompt) {
            (Endpoint::Completions, Prompt::Text(t)) => json!({"prompt": t}),
            (Endpoint::Completions, Prompt::Messages(_)) => {
                unreachable!("read_jsonl rejects messages for the completions endpoint")
            }
            (Endpoint::Chat, Prompt::Text(t)) => {
                json!({"messages": [{"role": "user", "content": t}]})
            }
            (Endpoint::Chat, Prompt::Messages(m)) => json!({ "messages": m }),
        };
        body["model"] = json!(self.model);
        body["max_tokens"] = json!(max_tokens);
        body["temperature"] = json!(0.0);
        body["stream"] = json!(self.stream);
        if self.stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        if self.ignore_eos {
            body["ignore_eos"] = json!(true);
        }
        Request {
            body: serde_json::to_vec(&body).expect("JSON values serialize"),
            max_tokens,
        }
    }
}

/// Reads a JSONL prompt file; errors name the file and line.
fn read_jsonl(path: &Path, endpoint: Endpoint) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read dataset '{}'", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), n + 1);
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        let output_len = match v.get("output_len") {
            None => None,
            Some(o) => Some(
                o.as_u64()
                    .filter(|&x| x > 0)
                    .with_context(|| format!("{}: output_len must be an integer > 0", at()))?,
            ),
        };
        let prompt = match (v.get("prompt"), v.get("messages")) {
            (Some(Value::String(p)), None) => Prompt::Text(p.clone()),
            (None, Some(m @ Value::Array(_))) => {
                if endpoint == Endpoint::Completions {
                    bail!(
                        "{}: \"messages\" needs endpoint = \"chat\" ([serving] endpoint)",
                        at()
                    );
                }
                Prompt::Messages(m.clone())
            }
            _ => bail!(
                "{}: each line needs \"prompt\" (a string) or \"messages\" (an array), not both",
                at()
            ),
        };
        out.push(Entry { prompt, output_len });
    }
    if out.is_empty() {
        bail!("dataset '{}' has no prompts", path.display());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(w: &Workload, i: u64) -> Value {
        serde_json::from_slice(&w.request(i).body).unwrap()
    }

    #[test]
    fn synthetic_bodies_are_seeded_and_sized() {
        let w = Workload::synthetic(Endpoint::Completions, "m", true, true, 7, (20, 8, 0.0));
        let b = body(&w, 3);
        assert_eq!(b["prompt"].as_str().unwrap().split(' ').count(), 20);
        assert_eq!(b["max_tokens"], 8);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["ignore_eos"], true);
        assert_eq!(b, body(&w, 3), "same index, same request");
        assert_ne!(b["prompt"], body(&w, 4)["prompt"]);
        let varied = Workload::synthetic(Endpoint::Chat, "m", false, false, 7, (100, 50, 0.5));
        for i in 0..50 {
            let b = body(&varied, i);
            let n = b["messages"][0]["content"]
                .as_str()
                .unwrap()
                .split(' ')
                .count();
            assert!((50..=150).contains(&n), "{n}");
            assert!((25..=75).contains(&b["max_tokens"].as_u64().unwrap()));
            assert!(b.get("ignore_eos").is_none() && b.get("stream_options").is_none());
        }
    }

    #[test]
    fn datasets_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        std::fs::write(
            &p,
            "{\"prompt\": \"hi there\", \"output_len\": 3}\n\n{\"prompt\": \"x\"}\n",
        )
        .unwrap();
        let w = Workload::dataset(Endpoint::Completions, "m", true, true, 1, &p, 9).unwrap();
        assert_eq!(body(&w, 0)["prompt"], "hi there");
        assert_eq!(body(&w, 0)["max_tokens"], 3);
        assert_eq!(body(&w, 1)["max_tokens"], 9);
        assert_eq!(body(&w, 2)["prompt"], "hi there", "cycles");
        std::fs::write(
            &p,
            "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n",
        )
        .unwrap();
        let e = Workload::dataset(Endpoint::Completions, "m", true, true, 1, &p, 9).unwrap_err();
        assert!(
            e.to_string()
                .contains("d.jsonl:1: \"messages\" needs endpoint"),
            "{e}"
        );
        let w = Workload::dataset(Endpoint::Chat, "m", true, true, 1, &p, 9).unwrap();
        assert_eq!(body(&w, 0)["messages"][0]["content"], "x");
        std::fs::write(&p, "{\"prompt\": 3}\n").unwrap();
        let e = Workload::dataset(Endpoint::Chat, "m", true, true, 1, &p, 9).unwrap_err();
        assert!(e.to_string().contains("d.jsonl:1:"), "{e}");
        std::fs::write(&p, "oops\n").unwrap();
        let e = Workload::dataset(Endpoint::Chat, "m", true, true, 1, &p, 9).unwrap_err();
        assert!(format!("{e:#}").contains("d.jsonl:1: not JSON"), "{e:#}");
    }
}
