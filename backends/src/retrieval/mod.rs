//! Scenario `retrieval` (MS MARCO efficiency / BEIR style): at load, the corpus of a BEIR-
//! layout dataset ([`beir`]) is encoded and indexed ([`index`]: exact, int8 or binary);
//! every measured iteration then answers one query (tokenize, encode, search, top k), so
//! per-query latency and queries/s are those of a single-stream search service. After the
//! window, all queries are encoded and searched once more for quality ([`quality`]):
//! recall@10 and nDCG@10 against the dataset's qrels when it has them, and always fidelity,
//! overlap@10 with exact f32 search by the same model unpruned in f32, so compressed
//! variants are judged without labels. A corpus whose embeddings and index would not fit in
//! memory is refused before it is encoded, with the estimate.

pub mod beir;
pub mod index;
pub mod quality;

use crate::encoder::model::{forward_flops, Encoder};
use anyhow::{anyhow, bail, Result};
use beir::Dataset;
use candle_core::DType;
use effbench_harness::backend::{Extras, IterationCtx, Sample, Work};
use effbench_harness::retrieval::RetrievalConfig;
use effbench_harness::{Metric, MetricId, ModelInfo, RunSpec, Session};
use index::{Index, IndexKind};
use std::path::Path;
use std::time::Instant;

/// Depth at which quality and fidelity are measured.
pub const QUALITY_K: usize = 10;

/// How the run's model differs from the fidelity reference (f32, unpruned, exact search).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The encoder's dtype.
    pub dtype: DType,
    /// The encoder is pruned.
    pub pruned: bool,
    /// The index type.
    pub index: IndexKind,
}

impl Variant {
    /// Embeddings equal the reference's (only the index may differ).
    pub fn same_embeddings(&self) -> bool {
        self.dtype == DType::F32 && !self.pruned
    }
}

/// `MemAvailable` of /proc/meminfo, in bytes.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes the run holds for the corpus beyond the model: f32 embeddings while indexing (twice
/// when the fidelity reference is encoded separately), the index, and the text.
pub fn memory_estimate(
    n_docs: usize,
    dim: usize,
    kind: IndexKind,
    text_bytes: u64,
    variant: &Variant,
) -> u64 {
    let f32_emb = IndexKind::Exact.bytes(n_docs, dim);
    let reference = if variant.same_embeddings() {
        0
    } else {
        f32_emb
    };
    // token ids take about as many bytes as the text (4-byte ids, ~4 characters a token)
    f32_emb + kind.bytes(n_docs, dim) + reference + 2 * text_bytes
}

/// Refuses a corpus that would not fit: `limit` from `[retrieval] memory_limit`, else the
/// memory available now.
pub fn check_memory(
    ds: &Dataset,
    dim: usize,
    variant: &Variant,
    cfg: &RetrievalConfig,
) -> Result<String> {
    let need = memory_estimate(ds.docs.len(), dim, variant.index, ds.text_bytes(), variant);
    let (limit, what) = match &cfg.memory_limit {
        Some(m) => (
            m.bytes()
                .map_err(|e| anyhow!("[retrieval] memory_limit: {e}"))?,
            "[retrieval] memory_limit",
        ),
        None => match available_memory() {
            Some(a) => (a, "memory available (MemAvailable)"),
            None => return Ok("memory check skipped: /proc/meminfo unreadable".into()),
        },
    };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let text = format!(
        "the corpus of {} documents x {dim} dims needs about {:.3} GiB (f32 embeddings, the {} index{}, text and token ids); {what}: {:.3} GiB",
        ds.docs.len(),
        gib(need),
        variant.index.name(),
        if variant.same_embeddings() { "" } else { ", f32 reference embeddings for fidelity" },
        gib(limit)
    );
    if need > limit {
        bail!("refused: {text}");
    }
    Ok(text)
}

/// A retrieval run.
pub struct RetrievalSession {
    enc: Encoder,
    ds: Dataset,
    cfg: RetrievalConfig,
    variant: Variant,
    index: Index,
    /// Kept for the fidelity reference when the run's embeddings are the reference's.
    corpus_f32: Option<Vec<Vec<f32>>>,
    corpus_encode_s: f64,
    build_ms: f64,
    model_dir: std::path::PathBuf,
    notes: Vec<String>,
}

impl RetrievalSession {
    /// Encodes the corpus of `ds` (already loaded and checked against memory: `notes`)
    /// and builds the index.
    pub fn new(
        enc: Encoder,
        spec: &RunSpec,
        ds: Dataset,
        variant: Variant,
        model_dir: &Path,
        mut notes: Vec<String>,
    ) -> Result<RetrievalSession> {
        let cfg = spec
            .retrieval
            .clone()
            .ok_or_else(|| anyhow!("scenario retrieval needs a [retrieval] table"))?;
        let t = Instant::now();
        let emb = enc.embed_texts(
            &ds.docs.iter().map(String::as_str).collect::<Vec<_>>(),
            cfg.corpus_batch,
        )?;
        let corpus_encode_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let index = Index::build(variant.index, &emb)?;
        let build_ms = t.elapsed().as_secs_f64() * 1e3;
        notes.push(format!(
            "retrieval: {} documents and {} queries from '{}'; corpus encoded {} at a time in {corpus_encode_s:.2} s; {} index built in {build_ms:.1} ms",
            ds.docs.len(),
            ds.queries.len(),
            ds.dir.display(),
            cfg.corpus_batch,
            variant.index.name()
        ));
        let keep = variant.same_embeddings() && variant.index != IndexKind::Exact;
        Ok(RetrievalSession {
            corpus_f32: keep.then_some(emb),
            enc,
            ds,
            cfg,
            variant,
            index,
            corpus_encode_s,
            build_ms,
            model_dir: model_dir.to_path_buf(),
            notes,
        })
    }

    fn ranked(index: &Index, queries: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
        queries
            .iter()
            .map(|q| index.search(q, k).into_iter().map(|(d, _)| d).collect())
            .collect()
    }

    /// Exact f32 rankings of the unpruned f32 model (the fidelity reference).
    fn reference(
        &mut self,
        own_queries: &[Vec<f32>],
        own: &[Vec<usize>],
    ) -> Result<Vec<Vec<usize>>> {
        if self.variant.same_embeddings() && self.variant.index == IndexKind::Exact {
            return Ok(own.to_vec());
        }
        if let Some(corpus) = self.corpus_f32.take() {
            let exact = Index::build(IndexKind::Exact, &corpus)?;
            return Ok(Self::ranked(&exact, own_queries, QUALITY_K));
        }
        let t = Instant::now();
        let r = Encoder::load(&self.model_dir, DType::F32, &self.enc.device, None)?;
        let docs: Vec<&str> = self.ds.docs.iter().map(String::as_str).collect();
        let exact = Index::build(
            IndexKind::Exact,
            &r.embed_texts(&docs, self.cfg.corpus_batch)?,
        )?;
        let queries: Vec<&str> = self.ds.queries.iter().map(String::as_str).collect();
        let q = r.embed_texts(&queries, self.cfg.corpus_batch)?;
        self.notes.push(format!(
            "fidelity: the reference (f32, unpruned, exact) encoded corpus and queries again in {:.2} s",
            t.elapsed().as_secs_f64()
        ));
        Ok(Self::ranked(&exact, &q, QUALITY_K))
    }
}

impl Session for RetrievalSession {
    fn model_info(&self) -> &ModelInfo {
        &self.enc.info
    }

    fn iteration(&mut self, ctx: IterationCtx) -> Result<Sample> {
        let text = &self.ds.queries[ctx.index as usize % self.ds.queries.len()];
        let t = Instant::now();
        let ids = self.enc.tokenize(&[text.as_str()])?;
        let q = self.enc.embed_ids(&ids)?;
        let ts = Instant::now();
        let top = self.index.search(&q[0], self.cfg.top_k);
        let search_ms = ts.elapsed().as_secs_f64() * 1e3;
        let total_ms = t.elapsed().as_secs_f64() * 1e3;
        std::hint::black_box(top);
        Ok(Sample {
            values: vec![
                (MetricId::QueryLatency, total_ms),
                (MetricId::SearchLatency, search_ms),
            ],
            work: Work {
                input_tokens: ids[0].len() as u64,
                output_tokens: 0,
                requests: 1,
            },
            ..Default::default()
        })
    }

    fn finish(&mut self) -> Result<Extras> {
        let wall = "wall-clock (monotonic)";
        let mut metrics = vec![
            Metric::scalar(MetricId::CorpusEncodeTime, self.corpus_encode_s, wall),
            Metric::scalar(MetricId::IndexBuildTime, self.build_ms, wall),
            Metric::scalar(
                MetricId::IndexBytes,
                self.index.bytes() as f64,
                format!(
                    "{} index: {} vectors x {} dims",
                    self.variant.index.name(),
                    self.index.len,
                    self.index.dim
                ),
            ),
        ];
        if let Some(w) = self.enc.weights_remaining {
            metrics.push(Metric::scalar(
                MetricId::WeightsRemaining,
                w,
                "non-zero weights after pruning / params_total",
            ));
        }
        let texts: Vec<&str> = self.ds.queries.iter().map(String::as_str).collect();
        let ids = self.enc.tokenize(&texts)?;
        let queries = self.enc.embed_many(&ids, self.cfg.corpus_batch)?;
        let flops: f64 = ids
            .iter()
            .map(|q| forward_flops(&self.enc.config, q.len()))
            .sum::<f64>()
            / ids.len() as f64;
        metrics.push(Metric::scalar(
            MetricId::FlopsPerEmbedding,
            flops,
            "analytic: 2 N T + 4 L H T^2, mean over the queries' token counts (docs/encoders.md)",
        ));
        let own = Self::ranked(&self.index, &queries, QUALITY_K);
        let reference = self.reference(&queries, &own)?;
        let mut notes = std::mem::take(&mut self.notes);
        let mut measures = Vec::new();
        if let Some(qrels) = &self.ds.qrels {
            let n = qrels.judged.len() as f64;
            let (mut recall, mut ndcg) = (0.0, 0.0);
            for (q, rel) in &qrels.judged {
                recall += quality::recall_at(&own[*q], rel, QUALITY_K);
                ndcg += quality::ndcg_at(&own[*q], rel, QUALITY_K);
            }
            let src = format!(
                "qrels '{}': {} judged queries{}",
                qrels.file.display(),
                qrels.judged.len(),
                if qrels.unknown > 0 {
                    format!(
                        ", {} label lines naming unknown ids left out",
                        qrels.unknown
                    )
                } else {
                    String::new()
                }
            );
            metrics.push(Metric::scalar(
                MetricId::RecallAt10,
                100.0 * recall / n,
                &src,
            ));
            metrics.push(Metric::scalar(MetricId::NdcgAt10, ndcg / n, &src));
            measures.push(format!("recall@10 and nDCG@10 against {src}"));
        } else {
            measures.push("no relevance labels (no qrels/): fidelity only".into());
        }
        let overlap: f64 = own
            .iter()
            .zip(&reference)
            .map(|(a, b)| quality::overlap_at(a, b, QUALITY_K))
            .sum::<f64>()
            / own.len() as f64;
        metrics.push(Metric::scalar(
            MetricId::OverlapAt10,
            100.0 * overlap,
            format!(
                "vs exact f32 search with the unpruned f32 model, all {} queries",
                own.len()
            ),
        ));
        measures.push("fidelity overlap@10 against exact f32 search".into());
        notes.push(format!("quality measures: {}", measures.join("; ")));
        Ok(Extras {
            metrics,
            series: Vec::new(),
            notes,
        })
    }
}
