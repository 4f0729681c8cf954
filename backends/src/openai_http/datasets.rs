//! Prompt datasets: JSON lines (`{"prompt": ...}` or `{"messages": [...]}`, optional
//! `"output_len"`) and ShareGPT JSON (`[{"conversations": [{"from": "human", "value": ...},
//! {"from": "gpt", "value": ...}, ...]}, ...]`). Errors name the file and line or entry.
//!
//! ShareGPT, one turn per conversation (as vLLM's `sharegpt` dataset): the first turn is the
//! prompt, the second turn's length (in the run's unit: tokens with a tokenizer, else words)
//! the output length; conversations whose prompt is under 4 or over 1024, whose reply is
//! under 4, or whose sum is over 2048 are skipped (vLLM's filter), in file order.
//!
//! Multi-turn (chat endpoint): every user turn of a conversation becomes a request whose
//! `messages` carry every earlier turn (the dataset's own assistant replies) and that asks
//! for as many tokens as the dataset's reply to it; it is sent once the previous turn of its
//! conversation has finished.

use super::prompts::PromptMaker;
use anyhow::{bail, Context, Result};
use effbench_harness::records::Endpoint;
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::Path;

/// One prompt of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// A plain prompt (completions, or one user message for chat).
    Text(String),
    /// A chat `messages` array.
    Messages(Value),
}

/// One request a dataset yields.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// What is sent.
    pub prompt: Prompt,
    /// `max_tokens`; `None` = the run's `gen_len`.
    pub output_len: Option<u64>,
    /// Sent only after the request before it has finished (a later turn of a conversation).
    pub after_previous: bool,
}

/// What a dataset file yields.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The requests, in file order.
    pub entries: Vec<Entry>,
    /// For the run log (skipped conversations ...).
    pub notes: Vec<String>,
}

/// How a file is read.
pub struct Options<'a> {
    /// Completions or chat (chat messages need chat).
    pub endpoint: Endpoint,
    /// One request per user turn, carrying the turns before it.
    pub multi_turn: bool,
    /// Every entry asks for this many tokens.
    pub fixed_output_len: Option<u64>,
    /// Stop after this many conversations (the run needs no more).
    pub limit: usize,
    /// Counts prompt and reply lengths.
    pub maker: &'a PromptMaker,
}

/// A conversation turn: (`user` | `assistant` | `system`, content).
type Turn = (&'static str, String);

fn role(from: &str) -> Option<&'static str> {
    match from.to_ascii_lowercase().as_str() {
        "human" | "user" => Some("user"),
        "gpt" | "assistant" | "chatgpt" | "bard" | "bing" | "model" => Some("assistant"),
        "system" => Some("system"),
        _ => None,
    }
}

/// Requests of one conversation, one per user turn, each carrying the turns before it.
fn turns(conv: &[Turn], o: &Options) -> Vec<Entry> {
    let mut out = Vec::new();
    for (k, (r, _)) in conv.iter().enumerate() {
        if *r != "user" {
            continue;
        }
        let messages: Vec<Value> = conv[..=k]
            .iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        let reply = conv.get(k + 1).filter(|(r, _)| *r == "assistant");
        out.push(Entry {
            prompt: Prompt::Messages(Value::Array(messages)),
            output_len: o
                .fixed_output_len
                .or_else(|| reply.map(|(_, c)| o.maker.count(c).max(1))),
            after_previous: !out.is_empty(),
        });
    }
    out
}

/// Reads a JSON-lines prompt file.
pub fn read_jsonl(path: &Path, o: &Options) -> Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read dataset '{}'", path.display()))?;
    let mut out = Loaded::default();
    let mut conversations = 0;
    for (n, line) in text.lines().enumerate() {
        if conversations >= o.limit {
            break;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        let output_len = match v.get("output_len") {
            None => None,
            Some(x) => Some(
                x.as_u64()
                    .filter(|&x| x > 0)
                    .with_context(|| format!("{}: output_len must be an integer > 0", at()))?,
            ),
        };
        let prompt = match (v.get("prompt"), v.get("messages")) {
            (Some(Value::String(p)), None) => Prompt::Text(p.clone()),
            (None, Some(m @ Value::Array(_))) => {
                if o.endpoint == Endpoint::Completions {
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
        conversations += 1;
        if o.multi_turn {
            let Prompt::Messages(Value::Array(msgs)) = &prompt else {
                bail!("{}: multi_turn needs \"messages\" on every line", at());
            };
            let mut conv = Vec::new();
            for m in msgs {
                let r = m.get("role").and_then(Value::as_str).and_then(role);
                let c = m.get("content").and_then(Value::as_str);
                match (r, c) {
                    (Some(r), Some(c)) => conv.push((r, c.to_string())),
                    _ => bail!(
                        "{}: multi_turn needs messages of {{\"role\", \"content\"}} strings",
                        at()
                    ),
                }
            }
            out.entries.extend(turns(&conv, o));
        } else {
            out.entries.push(Entry {
                prompt,
                output_len: o.fixed_output_len.or(output_len),
                after_previous: false,
            });
        }
    }
    if out.entries.is_empty() {
        bail!("dataset '{}' has no prompts", path.display());
    }
    Ok(out)
}

#[derive(Deserialize)]
struct ShareGptTurn {
    from: String,
    value: String,
}

#[derive(Deserialize)]
struct ShareGptEntry {
    #[serde(default)]
    conversations: Option<Vec<ShareGptTurn>>,
}

/// Reads the first `limit` usable conversations of a ShareGPT array and skips the rest
/// without keeping it (the public ShareGPT file is ~650 MB).
struct FirstConversations<'a, 'o> {
    o: &'a Options<'o>,
    loaded: Loaded,
    skipped_short_or_long: usize,
    skipped_shape: usize,
}

impl<'de> Visitor<'de> for &mut FirstConversations<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of {\"conversations\": [...]} objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut used = 0;
        while used < self.o.limit {
            let Some(e) = seq.next_element::<ShareGptEntry>()? else {
                return Ok(());
            };
            let Some(conv) = e.conversations.filter(|c| c.len() >= 2) else {
                self.skipped_shape += 1;
                continue;
            };
            if self.o.multi_turn {
                let turns_of: Option<Vec<Turn>> = conv
                    .into_iter()
                    .map(|t| role(&t.from).map(|r| (r, t.value)))
                    .collect();
                match turns_of {
                    Some(c) if c.iter().any(|(r, _)| *r == "user") => {
                        self.loaded.entries.extend(turns(&c, self.o));
                        used += 1;
                    }
                    _ => self.skipped_shape += 1,
                }
                continue;
            }
            let (prompt, reply) = (&conv[0].value, &conv[1].value);
            let p = self.o.maker.count(prompt);
            let out = self
                .o
                .fixed_output_len
                .unwrap_or_else(|| self.o.maker.count(reply));
            let fixed = self.o.fixed_output_len.is_some();
            if p < 4 || (!fixed && out < 4) || p > 1024 || p + out > 2048 {
                self.skipped_short_or_long += 1;
                continue;
            }
            self.loaded.entries.push(Entry {
                prompt: Prompt::Text(prompt.clone()),
                output_len: Some(out),
                after_previous: false,
            });
            used += 1;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// Reads a ShareGPT JSON file.
pub fn read_sharegpt(path: &Path, o: &Options) -> Result<Loaded> {
    if o.multi_turn && o.endpoint != Endpoint::Chat {
        bail!("multi_turn needs endpoint = \"chat\" ([serving] endpoint)");
    }
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot read dataset '{}'", path.display()))?;
    let mut v = FirstConversations {
        o,
        loaded: Loaded::default(),
        skipped_short_or_long: 0,
        skipped_shape: 0,
    };
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(f));
    serde::Deserializer::deserialize_seq(&mut de, &mut v)
        .and_then(|()| de.end())
        .with_context(|| format!("'{}' is not a ShareGPT JSON array", path.display()))?;
    let mut out = v.loaded;
    if v.skipped_short_or_long > 0 {
        out.notes.push(format!(
            "dataset: {} ShareGPT conversation(s) skipped: prompt < 4 or > 1024, reply < 4, or both > 2048 {} (vLLM's filter)",
            v.skipped_short_or_long,
            o.maker.unit_name()
        ));
    }
    if v.skipped_shape > 0 {
        out.notes.push(format!(
            "dataset: {} ShareGPT entr(y/ies) skipped: fewer than two turns or unknown roles",
            v.skipped_shape
        ));
    }
    if out.entries.is_empty() {
        bail!(
            "dataset '{}' has no usable ShareGPT conversation",
            path.display()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(maker: &PromptMaker, endpoint: Endpoint, multi_turn: bool) -> Options<'_> {
        Options {
            endpoint,
            multi_turn,
            fixed_output_len: None,
            limit: 100,
            maker,
        }
    }

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sharegpt_small.json")
    }

    #[test]
    fn sharegpt_first_turns_with_vllms_filter() {
        let m = PromptMaker::words("test");
        let l = read_sharegpt(&fixture(), &opts(&m, Endpoint::Completions, false)).unwrap();
        // 5 entries: one has a 3-word prompt, one a single turn: 3 usable.
        assert_eq!(l.entries.len(), 3, "{:?}", l.entries);
        let Prompt::Text(t) = &l.entries[0].prompt else {
            panic!()
        };
        assert!(t.starts_with("Explain how a river"), "{t}");
        assert_eq!(l.entries[0].output_len, Some(12));
        assert!(
            l.notes
                .iter()
                .any(|n| n.contains("1 ShareGPT conversation(s) skipped")),
            "{:?}",
            l.notes
        );
        assert!(
            l.notes.iter().any(|n| n.contains("fewer than two turns")),
            "{:?}",
            l.notes
        );
        let mut o = opts(&m, Endpoint::Completions, false);
        o.limit = 1;
        o.fixed_output_len = Some(5);
        let l = read_sharegpt(&fixture(), &o).unwrap();
        assert_eq!(l.entries.len(), 1);
        assert_eq!(l.entries[0].output_len, Some(5));
    }

    #[test]
    fn multi_turn_carries_earlier_turns() {
        let m = PromptMaker::words("test");
        let l = read_sharegpt(&fixture(), &opts(&m, Endpoint::Chat, true)).unwrap();
        // the first conversation has two user turns
        let Prompt::Messages(Value::Array(first)) = &l.entries[0].prompt else {
            panic!()
        };
        let Prompt::Messages(Value::Array(second)) = &l.entries[1].prompt else {
            panic!()
        };
        assert_eq!(first.len(), 1);
        assert_eq!(second.len(), 3);
        assert_eq!(second[1]["role"], "assistant");
        assert!(!l.entries[0].after_previous && l.entries[1].after_previous);
        assert_eq!(l.entries[1].output_len, Some(7));
        let e = read_sharegpt(&fixture(), &opts(&m, Endpoint::Completions, true)).unwrap_err();
        assert!(e.to_string().contains("chat"), "{e}");
    }

    #[test]
    fn jsonl_lines_and_their_errors() {
        let m = PromptMaker::words("test");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        std::fs::write(
            &p,
            "{\"prompt\": \"hi there\", \"output_len\": 3}\n\n{\"prompt\": \"x\"}\n",
        )
        .unwrap();
        let l = read_jsonl(&p, &opts(&m, Endpoint::Completions, false)).unwrap();
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.entries[0].output_len, Some(3));
        std::fs::write(&p, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b c\"}, {\"role\": \"user\", \"content\": \"d\"}]}\n").unwrap();
        let e = read_jsonl(&p, &opts(&m, Endpoint::Completions, false)).unwrap_err();
        assert!(
            e.to_string()
                .contains("d.jsonl:1: \"messages\" needs endpoint"),
            "{e}"
        );
        let l = read_jsonl(&p, &opts(&m, Endpoint::Chat, true)).unwrap();
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.entries[0].output_len, Some(2));
        assert_eq!(l.entries[1].output_len, None);
        std::fs::write(&p, "oops\n").unwrap();
        let e = read_jsonl(&p, &opts(&m, Endpoint::Chat, false)).unwrap_err();
        assert!(format!("{e:#}").contains("d.jsonl:1: not JSON"), "{e:#}");
        std::fs::write(&p, "[1, 2]").unwrap();
        let e = read_sharegpt(&p, &opts(&m, Endpoint::Chat, false)).unwrap_err();
        assert!(
            format!("{e:#}").contains("not a ShareGPT JSON array"),
            "{e:#}"
        );
    }
}
