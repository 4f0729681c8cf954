//! What the load generator sends: request bodies for `/v1/completions` or
//! `/v1/chat/completions`, built one at a time (a long run holds none of them) and
//! deterministically from the seed and the request's index, from one of:
//! - synthetic prompts of `prompt_len` (varied by `range_ratio`) random common words, exact in
//!   tokens when the served model's tokenizer is available ([`super::prompts`]);
//! - the shared-prefix workload: request `i` is group `i % groups`'s prefix followed by its
//!   own suffix;
//! - a dataset ([`super::datasets`]: JSON lines or ShareGPT, single or multi-turn).
//!
//! `extra_body` fields are merged into every body. Prompt token counts in results come from
//! the server's `usage`; the length each prompt aimed for is kept in the request records.

use super::datasets::{self, Entry, Prompt};
use super::prompts::PromptMaker;
use anyhow::Result;
use effbench_harness::metric::name_hash;
use effbench_harness::records::{DatasetFormat, Endpoint, PrefixConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use std::path::Path;

/// Where prompts come from.
#[derive(Debug, Clone)]
enum Source {
    Synthetic {
        prompt_len: u64,
        gen_len: u64,
        range_ratio: f64,
    },
    Prefix {
        prefix: PrefixConfig,
        suffix_len: u64,
        gen_len: u64,
        range_ratio: f64,
    },
    Dataset {
        entries: Vec<Entry>,
        /// Planned length of each text entry (0 for chat messages).
        lens: Vec<u64>,
        gen_len: u64,
        what: String,
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
    maker: PromptMaker,
    extra_body: Option<Map<String, Value>>,
    notes: Vec<String>,
}

/// A built request.
pub struct Request {
    /// The JSON body.
    pub body: Vec<u8>,
    /// The `max_tokens` it asks for.
    pub max_tokens: u64,
    /// Prompt length it aimed for (the maker's unit; 0 = a dataset prompt as given).
    pub prompt_len: u64,
    /// Send it only after the previous request finished (a later conversation turn).
    pub after_previous: bool,
}

/// A dataset file to read.
pub struct DatasetSpec<'a> {
    /// The file.
    pub path: &'a Path,
    /// JSON lines or ShareGPT.
    pub format: DatasetFormat,
    /// One request per conversation turn.
    pub multi_turn: bool,
    /// Every request's `max_tokens`, overriding the dataset's lengths.
    pub fixed_output_len: Option<u64>,
    /// The run needs at most this many conversations.
    pub limit: usize,
}

/// `len` varied uniformly in [len (1 - r), len (1 + r)].
fn vary(len: u64, r: f64, rng: &mut ChaCha8Rng) -> u64 {
    if r <= 0.0 {
        return len;
    }
    let lo = ((len as f64) * (1.0 - r)).round().max(1.0) as u64;
    let hi = ((len as f64) * (1.0 + r)).round().max(lo as f64) as u64;
    rng.random_range(lo..=hi)
}

impl Workload {
    fn with_source(
        endpoint: Endpoint,
        model: &str,
        stream: bool,
        ignore_eos: bool,
        seed: u64,
        source: Source,
    ) -> Workload {
        Workload {
            endpoint,
            model: model.to_string(),
            stream,
            ignore_eos,
            seed,
            source,
            maker: PromptMaker::words("no tokenizer given"),
            extra_body: None,
            notes: Vec::new(),
        }
    }

    /// Synthetic prompts of `prompt_len` (words until [`Workload::with_maker`]) asking for
    /// `gen_len` tokens.
    pub fn synthetic(
        endpoint: Endpoint,
        model: &str,
        stream: bool,
        ignore_eos: bool,
        seed: u64,
        (prompt_len, gen_len, range_ratio): (u64, u64, f64),
    ) -> Workload {
        Workload::with_source(
            endpoint,
            model,
            stream,
            ignore_eos,
            seed,
            Source::Synthetic {
                prompt_len,
                gen_len,
                range_ratio,
            },
        )
    }

    /// The shared-prefix workload; `suffix_len` is used where the config gives 0.
    pub fn prefix(
        endpoint: Endpoint,
        model: &str,
        stream: bool,
        ignore_eos: bool,
        seed: u64,
        prefix: PrefixConfig,
        (suffix_len, gen_len, range_ratio): (u64, u64, f64),
    ) -> Workload {
        let suffix_len = if prefix.suffix_len > 0 {
            prefix.suffix_len
        } else {
            suffix_len
        };
        Workload::with_source(
            endpoint,
            model,
            stream,
            ignore_eos,
            seed,
            Source::Prefix {
                prefix,
                suffix_len,
                gen_len,
                range_ratio,
            },
        )
    }

    /// Prompts from a dataset file, counted with `maker`; `gen_len` where an entry has no
    /// output length.
    pub fn dataset(
        endpoint: Endpoint,
        model: &str,
        (stream, ignore_eos): (bool, bool),
        seed: u64,
        spec: &DatasetSpec,
        gen_len: u64,
        maker: PromptMaker,
    ) -> Result<Workload> {
        let o = datasets::Options {
            endpoint,
            multi_turn: spec.multi_turn,
            fixed_output_len: spec.fixed_output_len,
            limit: spec.limit.max(1),
            maker: &maker,
        };
        let loaded = match spec.format {
            DatasetFormat::Jsonl => datasets::read_jsonl(spec.path, &o)?,
            DatasetFormat::Sharegpt => datasets::read_sharegpt(spec.path, &o)?,
        };
        let lens = loaded
            .entries
            .iter()
            .map(|e| match &e.prompt {
                Prompt::Text(t) => maker.count(t),
                Prompt::Messages(_) => 0,
            })
            .collect();
        let what = format!(
            "{} {}{} prompts from '{}'",
            loaded.entries.len(),
            spec.format.name(),
            if spec.multi_turn { " multi-turn" } else { "" },
            spec.path.display()
        );
        let mut w = Workload::with_source(
            endpoint,
            model,
            stream,
            ignore_eos,
            seed,
            Source::Dataset {
                entries: loaded.entries,
                lens,
                gen_len,
                what,
            },
        );
        w.maker = maker;
        w.notes = loaded.notes;
        Ok(w)
    }

    /// Counts and makes prompt lengths with `maker` (tokens of a tokenizer, or words).
    pub fn with_maker(mut self, maker: PromptMaker) -> Workload {
        self.maker = maker;
        self
    }

    /// Merges these fields into every request body.
    pub fn with_extra_body(mut self, extra: Option<Map<String, Value>>) -> Workload {
        self.extra_body = extra.filter(|m| !m.is_empty());
        self
    }

    /// Whether some request must wait for the one before it (multi-turn conversations).
    pub fn ordered_turns(&self) -> bool {
        matches!(&self.source, Source::Dataset { entries, .. } if entries.iter().any(|e| e.after_previous))
    }

    /// Notes for the run log (how lengths are counted, dataset filtering ...).
    pub fn notes(&self) -> Vec<String> {
        let mut n = vec![self.maker.describe()];
        n.extend(self.notes.iter().cloned());
        if let Some(b) = &self.extra_body {
            let keys: Vec<&str> = b.keys().map(String::as_str).collect();
            n.push(format!(
                "extra body fields sent with every request: {}",
                keys.join(", ")
            ));
        }
        n
    }

    /// A short description for the log.
    pub fn describe(&self) -> String {
        let unit = self.maker.unit_name();
        match &self.source {
            Source::Synthetic {
                prompt_len,
                gen_len,
                range_ratio,
            } => format!(
                "synthetic prompts of {prompt_len} {unit}, max_tokens {gen_len}, lengths varied by +-{:.0} %",
                range_ratio * 100.0
            ),
            Source::Prefix {
                prefix,
                suffix_len,
                gen_len,
                ..
            } => format!(
                "shared-prefix prompts: {} group(s), each a common prefix of {} {unit} + {suffix_len} own {unit}, max_tokens {gen_len}",
                prefix.groups, prefix.prefix_len
            ),
            Source::Dataset { what, gen_len, .. } => {
                format!("{what}, max_tokens from the dataset or {gen_len}")
            }
        }
    }

    /// Request number `i` (warm-up requests use indices after the measured ones).
    pub fn request(&self, i: u64) -> Request {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut after_previous = false;
        let (prompt, max_tokens, prompt_len) = match &self.source {
            Source::Synthetic {
                prompt_len,
                gen_len,
                range_ratio,
            } => {
                let n = vary(*prompt_len, *range_ratio, &mut rng);
                let out = vary(*gen_len, *range_ratio, &mut rng);
                (Prompt::Text(self.maker.text(n, &mut rng)), out, n)
            }
            Source::Prefix {
                prefix,
                suffix_len,
                gen_len,
                range_ratio,
            } => {
                let g = i % prefix.groups;
                let mut prng = ChaCha8Rng::seed_from_u64(
                    self.seed ^ name_hash("prefix") ^ g.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                );
                let mut text = self.maker.text(prefix.prefix_len, &mut prng);
                let n = vary(*suffix_len, *range_ratio, &mut rng);
                if n > 0 {
                    text.push(' ');
                    text.push_str(&self.maker.text_after(n, &mut rng));
                }
                let out = vary(*gen_len, *range_ratio, &mut rng);
                (Prompt::Text(text), out, prefix.prefix_len + n)
            }
            Source::Dataset {
                entries,
                lens,
                gen_len,
                ..
            } => {
                let k = (i % entries.len() as u64) as usize;
                let e = &entries[k];
                after_previous = e.after_previous;
                (e.prompt.clone(), e.output_len.unwrap_or(*gen_len), lens[k])
            }
        };
        let mut body = match (self.endpoint, prompt) {
            (Endpoint::Completions, Prompt::Text(t)) => json!({"prompt": t}),
            (Endpoint::Completions, Prompt::Messages(_)) => {
                unreachable!("datasets reject messages for the completions endpoint")
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
        if let Some(extra) = &self.extra_body {
            for (k, v) in extra {
                body[k.as_str()] = v.clone();
            }
        }
        let max_tokens = body["max_tokens"].as_u64().unwrap_or(max_tokens);
        Request {
            body: serde_json::to_vec(&body).expect("JSON values serialize"),
            max_tokens,
            prompt_len,
            after_previous,
        }
    }
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
        assert_eq!(w.request(3).prompt_len, 20);
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
    fn extra_body_fields_override_defaults() {
        let mut extra = Map::new();
        extra.insert("temperature".into(), json!(0.7));
        extra.insert("top_k".into(), json!(5));
        extra.insert("max_tokens".into(), json!(3));
        let w = Workload::synthetic(Endpoint::Completions, "m", true, true, 1, (4, 8, 0.0))
            .with_extra_body(Some(extra));
        let b = body(&w, 0);
        assert_eq!(
            (b["temperature"].as_f64(), b["top_k"].as_u64()),
            (Some(0.7), Some(5))
        );
        assert_eq!(w.request(0).max_tokens, 3, "max_tokens as sent");
        assert!(w
            .notes()
            .iter()
            .any(|n| n.contains("max_tokens, temperature, top_k")));
    }

    #[test]
    fn shared_prefix_groups() {
        let p = PrefixConfig {
            groups: 3,
            prefix_len: 10,
            suffix_len: 4,
        };
        let w = Workload::prefix(Endpoint::Completions, "m", true, true, 5, p, (99, 8, 0.0));
        let text = |i| body(&w, i)["prompt"].as_str().unwrap().to_string();
        let prefix = |t: &str| t.split(' ').take(10).collect::<Vec<_>>().join(" ");
        assert_eq!(text(0).split(' ').count(), 14);
        assert_eq!(w.request(0).prompt_len, 14);
        assert_eq!(
            prefix(&text(0)),
            prefix(&text(3)),
            "same group, same prefix"
        );
        assert_ne!(prefix(&text(0)), prefix(&text(1)), "other group");
        assert_ne!(text(0), text(3), "own suffixes");
        assert!(w.describe().contains("3 group(s)"), "{}", w.describe());
    }

    #[test]
    fn datasets_cycle_and_keep_turn_order() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sharegpt_small.json");
        let spec = DatasetSpec {
            path: &path,
            format: DatasetFormat::Sharegpt,
            multi_turn: true,
            fixed_output_len: None,
            limit: 10,
        };
        let w = Workload::dataset(
            Endpoint::Chat,
            "m",
            (true, false),
            1,
            &spec,
            9,
            PromptMaker::words("test"),
        )
        .unwrap();
        assert!(!w.request(0).after_previous && w.request(1).after_previous);
        assert_eq!(body(&w, 1)["messages"].as_array().unwrap().len(), 3);
        assert_eq!(w.request(0).max_tokens, 12);
        assert!(
            w.describe().contains("sharegpt multi-turn"),
            "{}",
            w.describe()
        );
    }
}
