//! Brute-force vector indexes over corpus embeddings (the `index` axis):
//!
//! - `exact`: f32 vectors, score = dot product (cosine for normalized embeddings);
//! - `int8`: scalar quantization with sentence-transformers' calibration
//!   (`quantize_embeddings(..., "int8")`): per dimension, the corpus's [min, max] is cut into
//!   256 steps and each value stored as the signed step index (4x smaller than f32). Queries
//!   stay f32 and are scored against the reconstructed values (asymmetric distance
//!   computation, as FAISS's SQ8): `q . d ~ sum_k q_k start_k + sum_k q_k step_k (c_k + 128)`;
//! - `binary`: one sign bit per dimension packed into u64 words, score = -Hamming distance
//!   (32x smaller than f32).
//!
//! Every query scores every document; the top k are the highest scores, ties broken by
//! document order, so results are deterministic.

use anyhow::{bail, Result};

/// How corpus embeddings are stored and scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// f32 vectors, dot product.
    Exact,
    /// int8 codes, scored against the f32 query.
    Int8,
    /// Sign bits, Hamming distance.
    Binary,
}

impl IndexKind {
    /// From the `index` axis value.
    pub fn parse(s: &str) -> Result<IndexKind> {
        Ok(match s {
            "exact" => IndexKind::Exact,
            "int8" => IndexKind::Int8,
            "binary" => IndexKind::Binary,
            other => bail!("index '{other}' is not one of exact, int8, binary"),
        })
    }
    /// The `index` axis value.
    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Exact => "exact",
            IndexKind::Int8 => "int8",
            IndexKind::Binary => "binary",
        }
    }
    /// Bytes the index of `n` vectors of `dim` values holds (what [`Index::bytes`] reports).
    pub fn bytes(self, n: usize, dim: usize) -> u64 {
        let (n, dim) = (n as u64, dim as u64);
        match self {
            IndexKind::Exact => n * dim * 4,
            IndexKind::Int8 => n * dim + 2 * dim * 4,
            IndexKind::Binary => n * dim.div_ceil(64) * 8,
        }
    }
}

enum Store {
    F32(Vec<f32>),
    Int8 {
        codes: Vec<i8>,
        starts: Vec<f32>,
        steps: Vec<f32>,
    },
    Binary {
        words: Vec<u64>,
        per_vec: usize,
    },
}

/// A built index.
pub struct Index {
    /// How vectors are stored and scored.
    pub kind: IndexKind,
    /// Vector width.
    pub dim: usize,
    /// Documents indexed.
    pub len: usize,
    store: Store,
}

fn int8_code(x: f32, start: f32, step: f32) -> i8 {
    ((x - start) / step - 128.0).round().clamp(-128.0, 127.0) as i8
}

fn pack_bits(v: &[f32], out: &mut Vec<u64>) {
    for chunk in v.chunks(64) {
        let mut w = 0u64;
        for (i, x) in chunk.iter().enumerate() {
            if *x > 0.0 {
                w |= 1 << i;
            }
        }
        out.push(w);
    }
}

impl Index {
    /// Builds an index of `vectors` (all of one width).
    pub fn build(kind: IndexKind, vectors: &[Vec<f32>]) -> Result<Index> {
        let dim = vectors.first().map_or(0, Vec::len);
        if dim == 0 || vectors.iter().any(|v| v.len() != dim) {
            bail!(
                "cannot index {} vectors: empty or of different widths",
                vectors.len()
            );
        }
        let store = match kind {
            IndexKind::Exact => Store::F32(vectors.concat()),
            IndexKind::Int8 => {
                let mut lo = vec![f32::INFINITY; dim];
                let mut hi = vec![f32::NEG_INFINITY; dim];
                for v in vectors {
                    for (k, x) in v.iter().enumerate() {
                        lo[k] = lo[k].min(*x);
                        hi[k] = hi[k].max(*x);
                    }
                }
                let steps: Vec<f32> = lo
                    .iter()
                    .zip(&hi)
                    .map(|(l, h)| if h > l { (h - l) / 255.0 } else { 1.0 })
                    .collect();
                let codes = vectors
                    .iter()
                    .flat_map(|v| {
                        v.iter()
                            .enumerate()
                            .map(|(k, x)| int8_code(*x, lo[k], steps[k]))
                    })
                    .collect();
                Store::Int8 {
                    codes,
                    starts: lo,
                    steps,
                }
            }
            IndexKind::Binary => {
                let mut words = Vec::with_capacity(vectors.len() * dim.div_ceil(64));
                for v in vectors {
                    pack_bits(v, &mut words);
                }
                Store::Binary {
                    words,
                    per_vec: dim.div_ceil(64),
                }
            }
        };
        Ok(Index {
            kind,
            dim,
            len: vectors.len(),
            store,
        })
    }

    /// Bytes held (vectors and quantization parameters).
    pub fn bytes(&self) -> u64 {
        self.kind.bytes(self.len, self.dim)
    }

    /// Score of every document for `query`, in document order.
    pub fn scores(&self, query: &[f32]) -> Vec<f32> {
        assert_eq!(query.len(), self.dim, "query width");
        match &self.store {
            Store::F32(data) => data
                .chunks_exact(self.dim)
                .map(|d| d.iter().zip(query).map(|(a, b)| a * b).sum())
                .collect(),
            Store::Int8 {
                codes,
                starts,
                steps,
            } => {
                // per-dimension weights q_k step_k and the document-independent part
                let w: Vec<f32> = query.iter().zip(steps).map(|(q, s)| q * s).collect();
                let base: f32 = query
                    .iter()
                    .zip(starts)
                    .zip(&w)
                    .map(|((q, st), wk)| q * st + 128.0 * wk)
                    .sum();
                codes
                    .chunks_exact(self.dim)
                    .map(|d| base + d.iter().zip(&w).map(|(c, wk)| *c as f32 * wk).sum::<f32>())
                    .collect()
            }
            Store::Binary { words, per_vec } => {
                let mut q = Vec::with_capacity(*per_vec);
                pack_bits(query, &mut q);
                words
                    .chunks_exact(*per_vec)
                    .map(|d| {
                        -(d.iter()
                            .zip(&q)
                            .map(|(a, b)| (a ^ b).count_ones())
                            .sum::<u32>() as f32)
                    })
                    .collect()
            }
        }
    }

    /// The `k` best documents for `query`: (document index, score), best first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<(usize, f32)> {
        top_k(&self.scores(query), k)
    }
}

/// Indices of the `k` highest scores, best first; ties go to the lower index.
pub fn top_k(scores: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    let better = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, better);
        idx.truncate(k);
    }
    idx.sort_by(better);
    idx.into_iter().map(|i| (i, scores[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<Vec<f32>> {
        vec![
            vec![1.0, 0.0, 0.0],
            vec![0.6, 0.8, 0.0],
            vec![0.0, 0.6, -0.8],
            vec![-1.0, 0.0, 0.0],
        ]
    }

    #[test]
    fn exact_scores_by_hand() {
        let ix = Index::build(IndexKind::Exact, &docs()).unwrap();
        // q = (0.8, 0.6, 0): dots 0.8, 0.48 + 0.48 = 0.96, 0.36, -0.8
        let top = ix.search(&[0.8, 0.6, 0.0], 2);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 0]);
        assert!((top[0].1 - 0.96).abs() < 1e-6);
        assert_eq!(ix.bytes(), 4 * 3 * 4);
    }

    #[test]
    fn int8_codes_by_hand() {
        // dim 0 spans [-1, 1]: step 2/255; 1.0 -> 255 - 128 = 127, -1.0 -> -128,
        // 0.5 -> round(1.5 * 127.5 - 128) = round(63.25) = 63
        assert_eq!(int8_code(1.0, -1.0, 2.0 / 255.0), 127);
        assert_eq!(int8_code(-1.0, -1.0, 2.0 / 255.0), -128);
        assert_eq!(int8_code(0.5, -1.0, 2.0 / 255.0), 63);
        let ix = Index::build(IndexKind::Int8, &docs()).unwrap();
        assert_eq!(ix.bytes(), 4 * 3 + 2 * 3 * 4);
        // scores approximate the dot products 0.8, 0.96, 0.36, -0.8 within half a step
        // (at most 1/255 per dimension here) per dimension
        let s = ix.scores(&[0.8, 0.6, 0.0]);
        for (got, want) in s.iter().zip([0.8f32, 0.96, 0.36, -0.8]) {
            assert!((got - want).abs() < 0.01, "{s:?}");
        }
        let top = ix.search(&[0.8, 0.6, 0.0], 4);
        assert_eq!(
            top.iter().map(|t| t.0).collect::<Vec<_>>(),
            vec![1, 0, 2, 3]
        );
    }

    #[test]
    fn binary_is_hamming_by_hand() {
        let ix = Index::build(IndexKind::Binary, &docs()).unwrap();
        // sign bits: d0 100, d1 110, d2 010, d3 000; query (0.8, 0.6, 0) -> 110
        // Hamming: d0 1, d1 0, d2 1, d3 2
        let s = ix.scores(&[0.8, 0.6, 0.0]);
        assert_eq!(s, vec![-1.0, 0.0, -1.0, -2.0]);
        // ties (d0, d2) keep document order
        let top = ix.search(&[0.8, 0.6, 0.0], 3);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 0, 2]);
        assert_eq!(ix.bytes(), 4 * 8);
        assert_eq!(IndexKind::Binary.bytes(10, 384), 10 * 6 * 8);
    }

    #[test]
    fn top_k_edges() {
        assert_eq!(top_k(&[], 3), vec![]);
        assert_eq!(
            top_k(&[1.0, 3.0, 3.0, 2.0], 10)
                .iter()
                .map(|t| t.0)
                .collect::<Vec<_>>(),
            vec![1, 2, 3, 0]
        );
        assert!(Index::build(IndexKind::Exact, &[vec![1.0], vec![1.0, 2.0]]).is_err());
    }
}
