//! Datasets in BEIR layout (Thakur et al., NeurIPS 2021 Datasets and Benchmarks):
//! `corpus.jsonl` (`{"_id", "title", "text"}` per line), `queries.jsonl` (`{"_id", "text"}`)
//! and, optionally, relevance labels `qrels/<split>.tsv` (`query-id<TAB>corpus-id<TAB>score`
//! after a header line). A document is encoded as `title + " " + text`, as BEIR's
//! sentence-transformers models are. Every malformed line is an error naming file and line.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Relevance labels: for each judged query (by index), (document index, grade > 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Qrels {
    /// The `qrels/<split>.tsv` file.
    pub file: PathBuf,
    /// Query index → (document index, grade) of its relevant documents.
    pub judged: BTreeMap<usize, Vec<(usize, u32)>>,
    /// Label lines naming a query or document the dataset does not have (left out).
    pub unknown: usize,
}

/// A loaded dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The dataset directory.
    pub dir: PathBuf,
    /// `_id` of each document, in file order.
    pub doc_ids: Vec<String>,
    /// `title + " " + text` (just the text when there is no title).
    pub docs: Vec<String>,
    /// `_id` of each query, in file order.
    pub query_ids: Vec<String>,
    /// Query texts.
    pub queries: Vec<String>,
    /// Relevance labels, when the dataset has them.
    pub qrels: Option<Qrels>,
}

/// What a JSON-lines record must hold.
fn id_of(v: &Value) -> Option<String> {
    match v.get("_id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads `(id, text)` records; `title` is prepended when `with_title`.
fn read_jsonl(path: &Path, with_title: bool) -> Result<(Vec<String>, Vec<String>)> {
    let f =
        std::fs::File::open(path).with_context(|| format!("cannot open '{}'", path.display()))?;
    let (mut ids, mut texts) = (Vec::new(), Vec::new());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("{}:{n}: cannot read the line", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .map_err(|e| anyhow!("{}:{n}: not a JSON object: {e}", path.display()))?;
        let id = id_of(&v).ok_or_else(|| {
            anyhow!(
                "{}:{n}: no \"_id\" (a string) in this record",
                path.display()
            )
        })?;
        let text = v.get("text").and_then(Value::as_str).ok_or_else(|| {
            anyhow!(
                "{}:{n}: no \"text\" (a string) in record '{id}'",
                path.display()
            )
        })?;
        if let Some(first) = seen.insert(id.clone(), n) {
            bail!(
                "{}:{n}: \"_id\" '{id}' already appeared on line {first}",
                path.display()
            );
        }
        let title = with_title
            .then(|| v.get("title").and_then(Value::as_str))
            .flatten()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        texts.push(match title {
            Some(t) => format!("{t} {}", text.trim()),
            None => text.trim().to_string(),
        });
        ids.push(id);
    }
    if ids.is_empty() {
        bail!("'{}' has no records", path.display());
    }
    Ok((ids, texts))
}

/// The qrels file to read: `qrels/<split>.tsv`, else `qrels/test.tsv`, else the only one.
fn qrels_file(dir: &Path, split: Option<&str>) -> Result<Option<PathBuf>> {
    let qdir = dir.join("qrels");
    if let Some(s) = split {
        let f = qdir.join(format!("{s}.tsv"));
        if !f.is_file() {
            bail!("split '{s}': '{}' does not exist", f.display());
        }
        return Ok(Some(f));
    }
    if !qdir.is_dir() {
        return Ok(None);
    }
    if qdir.join("test.tsv").is_file() {
        return Ok(Some(qdir.join("test.tsv")));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&qdir)
        .with_context(|| format!("cannot list '{}'", qdir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tsv"))
        .collect();
    files.sort();
    match files.len() {
        0 => Ok(None),
        1 => Ok(files.pop()),
        _ => bail!(
            "'{}' has several splits and no test.tsv: set [retrieval] split",
            qdir.display()
        ),
    }
}

fn read_qrels(
    path: &Path,
    docs: &HashMap<&str, usize>,
    queries: &HashMap<&str, usize>,
) -> Result<Qrels> {
    let f =
        std::fs::File::open(path).with_context(|| format!("cannot open '{}'", path.display()))?;
    let mut q = Qrels {
        file: path.to_path_buf(),
        judged: BTreeMap::new(),
        unknown: 0,
    };
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("{}:{n}: cannot read the line", path.display()))?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || (n == 1 && line.starts_with("query-id")) {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [qid, did, score] = cols[..] else {
            bail!(
                "{}:{n}: expected 3 tab-separated columns (query-id, corpus-id, score), found {}",
                path.display(),
                cols.len()
            );
        };
        let score: i64 = score
            .trim()
            .parse()
            .map_err(|_| anyhow!("{}:{n}: score '{score}' is not an integer", path.display()))?;
        match (queries.get(qid.trim()), docs.get(did.trim())) {
            (Some(&qi), Some(&di)) => {
                if score > 0 {
                    q.judged.entry(qi).or_default().push((di, score as u32));
                }
            }
            _ => q.unknown += 1,
        }
    }
    Ok(q)
}

impl Dataset {
    /// Loads `dir`; `split` picks the qrels file.
    pub fn load(dir: &Path, split: Option<&str>) -> Result<Dataset> {
        if !dir.is_dir() {
            bail!("dataset '{}' is not a directory (BEIR layout: corpus.jsonl, queries.jsonl, qrels/)", dir.display());
        }
        let (doc_ids, docs) = read_jsonl(&dir.join("corpus.jsonl"), true)?;
        let (query_ids, queries) = read_jsonl(&dir.join("queries.jsonl"), false)?;
        let qrels = match qrels_file(dir, split)? {
            None => None,
            Some(f) => {
                let d: HashMap<&str, usize> = doc_ids
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.as_str(), i))
                    .collect();
                let q: HashMap<&str, usize> = query_ids
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.as_str(), i))
                    .collect();
                let qr = read_qrels(&f, &d, &q)?;
                if qr.judged.is_empty() {
                    bail!("'{}' judges no query of queries.jsonl relevant to any document of corpus.jsonl", f.display());
                }
                Some(qr)
            }
        };
        Ok(Dataset {
            dir: dir.to_path_buf(),
            doc_ids,
            docs,
            query_ids,
            queries,
            qrels,
        })
    }

    /// Bytes of the text, for the memory estimate.
    pub fn text_bytes(&self) -> u64 {
        self.docs
            .iter()
            .chain(&self.queries)
            .map(|s| s.len() as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, corpus: &str, queries: &str, qrels: Option<&str>) {
        std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
        std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
        if let Some(q) = qrels {
            std::fs::create_dir_all(dir.join("qrels")).unwrap();
            std::fs::write(dir.join("qrels/test.tsv"), q).unwrap();
        }
    }

    const CORPUS: &str = "{\"_id\": \"d1\", \"title\": \"Cats\", \"text\": \"Cats purr.\"}\n\n{\"_id\": 2, \"text\": \"Dogs bark.\"}\n";
    const QUERIES: &str = "{\"_id\": \"q1\", \"text\": \"what purrs\"}\n{\"_id\": \"q2\", \"text\": \"what barks\"}\n";

    #[test]
    fn loads_the_layout() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            CORPUS,
            QUERIES,
            Some("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\t2\t2\nq2\td1\t0\nq9\td1\t1\n"),
        );
        let ds = Dataset::load(d.path(), None).unwrap();
        assert_eq!(ds.doc_ids, vec!["d1", "2"]);
        assert_eq!(ds.docs, vec!["Cats Cats purr.", "Dogs bark."]);
        let q = ds.qrels.unwrap();
        assert_eq!(q.judged[&0], vec![(0, 1)]);
        assert_eq!(q.judged[&1], vec![(1, 2)], "score 0 is not relevant");
        assert_eq!(q.unknown, 1);
        let e = Dataset::load(d.path(), Some("dev"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("split 'dev'") && e.contains("dev.tsv"), "{e}");
    }

    #[test]
    fn no_qrels_means_fidelity_only() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), CORPUS, QUERIES, None);
        assert!(Dataset::load(d.path(), None).unwrap().qrels.is_none());
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let bad = CORPUS.replace("\"_id\": 2, ", "");
        write(d.path(), &bad, QUERIES, None);
        let e = Dataset::load(d.path(), None).unwrap_err().to_string();
        assert!(
            e.ends_with("corpus.jsonl:3: no \"_id\" (a string) in this record"),
            "{e}"
        );
        write(
            d.path(),
            "{\"_id\": \"a\", \"text\": \"x\"}\n{oops\n",
            QUERIES,
            None,
        );
        let e = Dataset::load(d.path(), None).unwrap_err().to_string();
        assert!(e.contains("corpus.jsonl:2: not a JSON object"), "{e}");
        write(
            d.path(),
            "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"a\", \"text\": \"y\"}\n",
            QUERIES,
            None,
        );
        let e = Dataset::load(d.path(), None).unwrap_err().to_string();
        assert!(
            e.contains("corpus.jsonl:2: \"_id\" 'a' already appeared on line 1"),
            "{e}"
        );
        write(
            d.path(),
            CORPUS,
            QUERIES,
            Some("query-id\tcorpus-id\tscore\nq1 d1 1\n"),
        );
        let e = Dataset::load(d.path(), None).unwrap_err().to_string();
        assert!(
            e.contains("test.tsv:2: expected 3 tab-separated columns"),
            "{e}"
        );
        write(d.path(), CORPUS, QUERIES, Some("q1\td1\thigh\n"));
        let e = Dataset::load(d.path(), None).unwrap_err().to_string();
        assert!(
            e.contains("test.tsv:1: score 'high' is not an integer"),
            "{e}"
        );
        let e = Dataset::load(&d.path().join("nope"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a directory"), "{e}");
    }
}
