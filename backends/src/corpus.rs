//! The synthetic language of the embedded default model: a deterministic word list (the
//! vocabulary, after four special tokens), its word-level `tokenizer.json`, and a seeded
//! first-order Markov source over the words with sparse, skewed transitions. The source's
//! entropy rate is known exactly (`H = Σ_i π_i H(P_i)` over the stationary distribution π),
//! so a model trained on it can be compared with the perplexity floor `exp(H)`.

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet};

/// Special tokens, in id order.
pub const SPECIAL_TOKENS: [&str; 4] = ["<unk>", "<s>", "</s>", "<pad>"];
/// `<unk>`: anything the word list lacks.
pub const UNK_ID: u32 = 0;
/// `<s>`: beginning of sequence.
pub const BOS_ID: u32 = 1;
/// `</s>`: end of sequence.
pub const EOS_ID: u32 = 2;
/// `<pad>`: padding.
pub const PAD_ID: u32 = 3;
/// Number of special tokens; word `w` has token id `w + FIRST_WORD_ID`.
pub const FIRST_WORD_ID: u32 = SPECIAL_TOKENS.len() as u32;

/// Seed of the default language (word list and transitions).
pub const DEFAULT_CORPUS_SEED: u64 = 0x5eed_c0de;
/// Seed of the standard training stream ([`Corpus::train_tokens`]).
pub const TRAIN_SEED: u64 = 1;
/// Seed of the standard held-out stream ([`Corpus::heldout_tokens`]).
pub const HELDOUT_SEED: u64 = 2;

/// Successors per word, and the Zipf exponents of the transition weights and of which words
/// are picked as successors (common words are successors more often).
const SUCCESSORS: usize = 12;
const TRANSITION_ZIPF: f64 = 1.2;
const POPULARITY_ZIPF: f64 = 0.8;

const CONSONANTS: &[u8] = b"bdfghklmnprstvz";
const VOWELS: &[u8] = b"aeiou";

/// A synthetic language: words plus a Markov chain over them.
#[derive(Debug, Clone)]
pub struct Corpus {
    words: Vec<String>,
    index: HashMap<String, u32>,
    /// Per word: (successor word, probability), probabilities summing to 1.
    transitions: Vec<Vec<(u32, f64)>>,
    stationary: Vec<f64>,
}

impl Corpus {
    /// The language of the default model.
    pub fn standard() -> Corpus {
        Corpus::new(DEFAULT_CORPUS_SEED, 512).expect("the standard corpus parameters are valid")
    }

    /// A language of `vocab_size` tokens (4 special + `vocab_size - 4` words) from `seed`.
    pub fn new(seed: u64, vocab_size: usize) -> Result<Corpus> {
        let n = vocab_size.saturating_sub(SPECIAL_TOKENS.len());
        if !(SUCCESSORS + 3..=20_000).contains(&n) {
            bail!(
                "corpus vocabulary {vocab_size} must be in {}..=20004",
                SUCCESSORS + 7
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let words = word_list(&mut rng, n);
        let index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        let popularity = cumulative(&(0..n).map(|j| zipf(j, POPULARITY_ZIPF)).collect::<Vec<_>>());
        let transitions = (0..n)
            .map(|i| {
                // i+1 and i+2 make the chain irreducible (a Hamiltonian cycle) and aperiodic
                // (cycles of lengths n and n-1).
                let mut succ = vec![(i + 1) % n, (i + 2) % n];
                while succ.len() < SUCCESSORS {
                    let j = sample(&popularity, rng.random::<f64>());
                    if !succ.contains(&j) {
                        succ.push(j);
                    }
                }
                shuffle(&mut succ, &mut rng);
                let total: f64 = (0..SUCCESSORS).map(|r| zipf(r, TRANSITION_ZIPF)).sum();
                succ.iter()
                    .enumerate()
                    .map(|(r, &j)| (j as u32, zipf(r, TRANSITION_ZIPF) / total))
                    .collect()
            })
            .collect();
        let mut corpus = Corpus {
            words,
            index,
            transitions,
            stationary: Vec::new(),
        };
        corpus.stationary = corpus.solve_stationary();
        Ok(corpus)
    }

    /// Tokens in the vocabulary, specials included.
    pub fn vocab_size(&self) -> usize {
        self.words.len() + SPECIAL_TOKENS.len()
    }

    /// The words, in id order (word `w` is token `w + FIRST_WORD_ID`).
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Token id of a word (specials included), or `None`.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        if let Some(i) = SPECIAL_TOKENS.iter().position(|s| *s == token) {
            return Some(i as u32);
        }
        self.index.get(token).map(|w| w + FIRST_WORD_ID)
    }

    /// The token of an id, or `None` when out of range.
    pub fn token(&self, id: u32) -> Option<&str> {
        match id.checked_sub(FIRST_WORD_ID) {
            None => SPECIAL_TOKENS.get(id as usize).copied(),
            Some(w) => self.words.get(w as usize).map(String::as_str),
        }
    }

    /// Stationary distribution over words (index = token id - 4).
    pub fn stationary(&self) -> &[f64] {
        &self.stationary
    }

    /// Next-word distribution of a word (index = token id - 4).
    pub fn transitions(&self, word: usize) -> &[(u32, f64)] {
        &self.transitions[word]
    }

    /// Entropy rate of the source in nats per token: `Σ_i π_i H(P_i)`.
    pub fn entropy_rate_nats(&self) -> f64 {
        self.stationary
            .iter()
            .zip(&self.transitions)
            .map(|(pi, row)| pi * row.iter().map(|(_, p)| -p * p.ln()).sum::<f64>())
            .sum()
    }

    /// The lowest perplexity any model can reach on this source: `exp(H)`.
    pub fn perplexity_floor(&self) -> f64 {
        self.entropy_rate_nats().exp()
    }

    /// `n` token ids drawn from the source (first word from π), deterministic in `seed`.
    /// The stream has no special tokens and no document breaks.
    pub fn sample(&self, seed: u64, n: usize) -> Vec<u32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let start = cumulative(&self.stationary);
        let rows: Vec<Vec<f64>> = self
            .transitions
            .iter()
            .map(|r| cumulative(&r.iter().map(|(_, p)| *p).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(n);
        let mut w = sample(&start, rng.random::<f64>());
        for _ in 0..n {
            out.push(w as u32 + FIRST_WORD_ID);
            let k = sample(&rows[w], rng.random::<f64>());
            w = self.transitions[w][k].0 as usize;
        }
        out
    }

    /// The standard training stream.
    pub fn train_tokens(&self, n: usize) -> Vec<u32> {
        self.sample(TRAIN_SEED, n)
    }

    /// The standard held-out stream (a different seed from training).
    pub fn heldout_tokens(&self, n: usize) -> Vec<u32> {
        self.sample(HELDOUT_SEED, n)
    }

    /// Space-separated text of token ids (unknown ids as `<unk>`).
    pub fn text(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&i| self.token(i).unwrap_or(SPECIAL_TOKENS[0]))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A word-level `tokenizer.json` (whitespace pre-tokenizer, `<unk>` for anything else,
    /// specials as added tokens) that the `tokenizers` crate loads.
    pub fn tokenizer_json(&self) -> String {
        let mut vocab = serde_json::Map::new();
        for id in 0..self.vocab_size() as u32 {
            if let Some(t) = self.token(id) {
                vocab.insert(t.to_string(), id.into());
            }
        }
        let added: Vec<serde_json::Value> = SPECIAL_TOKENS
            .iter()
            .enumerate()
            .map(|(id, t)| {
                serde_json::json!({"id": id, "content": t, "single_word": false,
                    "lstrip": false, "rstrip": false, "normalized": false, "special": true})
            })
            .collect();
        let doc = serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": {"type": "WhitespaceSplit"},
            "post_processor": null,
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": SPECIAL_TOKENS[0]},
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    }

    /// π with π P = π, by power iteration (the chain is irreducible and aperiodic).
    fn solve_stationary(&self) -> Vec<f64> {
        let n = self.words.len();
        let mut pi = vec![1.0 / n as f64; n];
        for _ in 0..100_000 {
            let mut next = vec![0.0; n];
            for (i, row) in self.transitions.iter().enumerate() {
                for &(j, p) in row {
                    next[j as usize] += pi[i] * p;
                }
            }
            let total: f64 = next.iter().sum();
            next.iter_mut().for_each(|x| *x /= total);
            let change: f64 = next.iter().zip(&pi).map(|(a, b)| (a - b).abs()).sum();
            pi = next;
            if change < 1e-15 {
                break;
            }
        }
        pi
    }
}

fn zipf(rank: usize, s: f64) -> f64 {
    1.0 / ((rank + 1) as f64).powf(s)
}

fn cumulative(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

/// Index of the first cumulative weight above `u` ∈ [0, 1).
fn sample(cum: &[f64], u: f64) -> usize {
    cum.partition_point(|&c| c <= u).min(cum.len() - 1)
}

fn shuffle<T>(xs: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..xs.len()).rev() {
        let j = rng.random_range(0..=i);
        xs.swap(i, j);
    }
}

/// `n` distinct pronounceable words of 1-3 consonant-vowel syllables.
fn word_list(rng: &mut ChaCha8Rng, n: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut words = Vec::with_capacity(n);
    while words.len() < n {
        let syllables = 1 + rng.random_range(0..3);
        let mut w = String::new();
        for _ in 0..syllables {
            w.push(CONSONANTS[rng.random_range(0..CONSONANTS.len())] as char);
            w.push(VOWELS[rng.random_range(0..VOWELS.len())] as char);
        }
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_corpus_is_deterministic_and_sane() {
        let a = Corpus::standard();
        let b = Corpus::standard();
        assert_eq!(a.words(), b.words());
        assert_eq!(a.vocab_size(), 512);
        assert_eq!(a.train_tokens(1000), b.train_tokens(1000));
        assert_ne!(a.train_tokens(100), a.heldout_tokens(100));
        assert_eq!(a.token_id("<s>"), Some(BOS_ID));
        let w = &a.words()[7];
        assert_eq!(a.token(a.token_id(w).unwrap()), Some(w.as_str()));
        assert_eq!(a.token(100_000), None);
    }

    #[test]
    fn stationary_distribution_is_fixed_point() {
        let c = Corpus::standard();
        let pi = c.stationary();
        assert!((pi.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let mut next = vec![0.0; pi.len()];
        for (i, row) in (0..pi.len()).map(|i| (i, c.transitions(i))) {
            assert!((row.iter().map(|(_, p)| p).sum::<f64>() - 1.0).abs() < 1e-12);
            for &(j, p) in row {
                next[j as usize] += pi[i] * p;
            }
        }
        let err: f64 = next.iter().zip(pi).map(|(a, b)| (a - b).abs()).sum();
        assert!(err < 1e-12, "{err}");
    }

    #[test]
    fn entropy_rate_is_well_below_uniform_and_matches_samples() {
        let c = Corpus::standard();
        let h = c.entropy_rate_nats();
        let uniform = (c.words().len() as f64).ln();
        eprintln!(
            "entropy rate {h:.4} nats/token, perplexity floor {:.3}",
            h.exp()
        );
        assert!(h > 0.5 && h < uniform / 2.0, "H = {h}, uniform {uniform}");
        // Empirical cross-entropy of the true model on a long sample approaches H.
        let ids = c.sample(99, 200_000);
        let nll: f64 = ids
            .windows(2)
            .map(|w| {
                let row = c.transitions((w[0] - FIRST_WORD_ID) as usize);
                let p = row
                    .iter()
                    .find(|(j, _)| *j + FIRST_WORD_ID == w[1])
                    .unwrap()
                    .1;
                -p.ln()
            })
            .sum::<f64>()
            / (ids.len() - 1) as f64;
        assert!((nll - h).abs() < 0.02, "sampled {nll} vs exact {h}");
        assert!((c.perplexity_floor() - h.exp()).abs() < 1e-12);
    }

    #[test]
    fn tokenizer_json_loads_and_round_trips() {
        let c = Corpus::standard();
        let tok = tokenizers::Tokenizer::from_bytes(c.tokenizer_json().as_bytes()).unwrap();
        assert_eq!(tok.get_vocab_size(true), 512);
        let ids = c.heldout_tokens(20);
        let text = c.text(&ids);
        let enc = tok.encode(text.as_str(), false).unwrap();
        assert_eq!(enc.get_ids(), ids.as_slice());
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
        let odd = tok.encode("zzzq <s>", false).unwrap();
        assert_eq!(odd.get_ids(), &[UNK_ID, BOS_ID]);
    }

    #[test]
    fn rejects_tiny_vocabularies() {
        assert!(Corpus::new(1, 10).is_err());
    }
}
