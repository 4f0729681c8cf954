//! Retrieval quality against relevance labels (BEIR's measures as trec_eval computes them)
//! and fidelity against a reference ranking, for one query at a time:
//!
//! - recall@k = |relevant documents in the top k| / |relevant documents|;
//! - nDCG@k = DCG@k / IDCG@k with DCG@k = sum over ranks i = 1..k of grade(doc_i) / log2(i + 1)
//!   (linear gain, trec_eval's `ndcg_cut`) and IDCG@k the DCG of the grades sorted best first;
//! - overlap@k = |top k ∩ reference top k| / k.
//!
//! Relevant = grade > 0; `ranked` lists document indices best first.

/// recall@k of one query (`relevant`: (document, grade > 0)).
pub fn recall_at(ranked: &[usize], relevant: &[(usize, u32)], k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let hit = ranked
        .iter()
        .take(k)
        .filter(|d| relevant.iter().any(|(r, _)| r == *d))
        .count();
    hit as f64 / relevant.len() as f64
}

/// nDCG@k of one query.
pub fn ndcg_at(ranked: &[usize], relevant: &[(usize, u32)], k: usize) -> f64 {
    let disc = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let grade = |d: usize| {
        relevant
            .iter()
            .find(|(r, _)| *r == d)
            .map_or(0.0, |(_, g)| *g as f64)
    };
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| grade(*d) * disc(i))
        .sum();
    let mut ideal: Vec<f64> = relevant.iter().map(|(_, g)| *g as f64).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| g * disc(i))
        .sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

/// overlap@k of one query with its reference ranking.
pub fn overlap_at(ranked: &[usize], reference: &[usize], k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    let refs = &reference[..reference.len().min(k)];
    let hit = ranked.iter().take(k).filter(|d| refs.contains(d)).count();
    hit as f64 / k.min(reference.len().max(1)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_and_ndcg_by_hand() {
        // relevant: doc 3 (grade 2), doc 7 (grade 1), doc 9 (grade 1)
        let rel = [(3, 2), (7, 1), (9, 1)];
        let ranked = [7, 1, 3, 4];
        // top 4 holds 7 and 3: 2 of 3
        assert!((recall_at(&ranked, &rel, 4) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(recall_at(&ranked, &rel, 1), 1.0 / 3.0);
        // DCG@4 = 1/log2(2) + 0 + 2/log2(4) + 0 = 1 + 1 = 2
        // IDCG@4 = 2/log2(2) + 1/log2(3) + 1/log2(4) = 2 + 0.63093 + 0.5 = 3.13093
        let want = 2.0 / (2.0 + 1.0 / 3f64.log2() + 0.5);
        assert!((ndcg_at(&ranked, &rel, 4) - want).abs() < 1e-12);
        // a perfect ranking scores 1, an empty one 0
        assert!((ndcg_at(&[3, 7, 9], &rel, 10) - 1.0).abs() < 1e-12);
        assert_eq!(ndcg_at(&[1, 2], &rel, 10), 0.0);
        assert_eq!(recall_at(&[1], &[], 10), 0.0);
    }

    #[test]
    fn overlap_by_hand() {
        assert_eq!(overlap_at(&[1, 2, 3, 4], &[4, 3, 9, 8], 4), 0.5);
        assert_eq!(overlap_at(&[1, 2], &[2, 1], 2), 1.0);
        // fewer documents than k: share of what the reference has
        assert_eq!(overlap_at(&[1, 2], &[2, 1], 10), 1.0);
    }
}
