//! The `[retrieval]` table of a `retrieval` suite: which dataset (BEIR layout:
//! `corpus.jsonl`, `queries.jsonl`, optional `qrels/<split>.tsv`) is encoded and queried,
//! how many documents a query returns, and the memory the index may take. Part of every run's
//! id (another dataset is another measurement).

use serde::{Deserialize, Serialize};

/// `[retrieval]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrievalConfig {
    /// Directory in BEIR layout, relative to the current directory.
    pub dataset: String,
    /// Relevance labels: `qrels/<split>.tsv`. Default: `test` when present, else the only
    /// file in `qrels/`; no `qrels/` directory = fidelity only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// Documents returned per query (quality is always measured at 10).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Sequences per batch when the corpus (and, for quality, the queries) are encoded.
    #[serde(default = "default_corpus_batch")]
    pub corpus_batch: usize,
    /// Most memory the corpus embeddings and index may take, in bytes (a number or a string
    /// such as "2GiB"); default: the memory the system has available when the run starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<ByteSize>,
}

fn default_top_k() -> usize {
    10
}
fn default_corpus_batch() -> usize {
    32
}

/// A byte count written as a number or as a string with a unit (`500MB`, `2GiB`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ByteSize {
    Bytes(u64),
    Text(String),
}

impl ByteSize {
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            ByteSize::Bytes(b) => Ok(*b),
            ByteSize::Text(t) => parse_bytes(t),
        }
    }
}

/// `1234`, `500MB`, `2 GiB`, `1.5e9` ... (kB/MB/GB/TB decimal, KiB/MiB/GiB/TiB binary).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        other => {
            return Err(format!(
                "'{s}': unknown unit '{other}' (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok((v * mult).round() as u64),
        _ => Err(format!("'{s}' is not a byte count such as 500MB or 2GiB")),
    }
}

impl RetrievalConfig {
    /// Checks values; errors name the `[retrieval]` field.
    pub fn check(&self) -> Result<(), String> {
        if self.dataset.trim().is_empty() {
            return Err("[retrieval] dataset must name a directory in BEIR layout".into());
        }
        if self.top_k == 0 {
            return Err("[retrieval] top_k must be at least 1".into());
        }
        if self.corpus_batch == 0 {
            return Err("[retrieval] corpus_batch must be at least 1".into());
        }
        if let Some(m) = &self.memory_limit {
            m.bytes()
                .map_err(|e| format!("[retrieval] memory_limit: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("1234").unwrap(), 1234);
        assert_eq!(parse_bytes("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_bytes("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("1.5e9").unwrap(), 1_500_000_000);
        assert!(parse_bytes("3 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_bytes("-1MB").is_err());
    }

    #[test]
    fn checks_name_the_field() {
        let c: RetrievalConfig =
            toml::from_str("dataset = \"d\"\nmemory_limit = \"2GiB\"").unwrap();
        assert_eq!((c.top_k, c.corpus_batch), (10, 32));
        assert_eq!(c.memory_limit.unwrap().bytes().unwrap(), 2 << 30);
        let c: RetrievalConfig = toml::from_str("dataset = \"d\"\ntop_k = 0").unwrap();
        assert_eq!(
            c.check().unwrap_err(),
            "[retrieval] top_k must be at least 1"
        );
        let e = toml::from_str::<RetrievalConfig>("dataset = \"d\"\ntopk = 3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `topk`"), "{e}");
    }
}
