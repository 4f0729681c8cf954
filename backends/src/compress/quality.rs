//! Quality and fidelity of a model on evaluation text (design.md §3).
//!
//! The text is cut into consecutive windows of `window` tokens, each scored as an
//! independent sequence from position 0 with all-position logits. Every position but a
//! window's last predicts the next token:
//! - **perplexity** = exp(mean over those positions of −ln p(next token));
//! - **top-1 agreement** = share of those positions where the variant's arg-max equals the
//!   reference's; **KL** = mean over them of Σ_v p_ref(v) (ln p_ref(v) − ln p_var(v)).
//!
//! Log-probabilities come from candle's log-softmax in f32; sums are kept in f64.

use crate::corpus::Corpus;
use crate::llama::{Llama, Logits};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::Tensor;
use effbench_harness::interrupt;
use std::path::Path;

/// Token windows to score, and what they are.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSet {
    /// Token windows, each scored independently from position 0.
    pub windows: Vec<Vec<u32>>,
    /// Human-readable origin, e.g. `synthetic held-out split (seed 2)` or a file name.
    pub source: String,
}

impl EvalSet {
    /// Cuts `ids` into windows of `window` tokens (a last shorter one kept if it has 2+).
    pub fn from_tokens(ids: &[u32], window: usize, source: String) -> Result<EvalSet> {
        if window < 2 {
            bail!("evaluation window must be at least 2 tokens");
        }
        let windows: Vec<Vec<u32>> = ids
            .chunks(window)
            .filter(|c| c.len() >= 2)
            .map(<[u32]>::to_vec)
            .collect();
        if windows.is_empty() {
            bail!("{source}: fewer than 2 tokens to evaluate on");
        }
        Ok(EvalSet { windows, source })
    }

    /// The synthetic language's held-out split (the default model's language).
    pub fn heldout(tokens: usize, window: usize) -> Result<EvalSet> {
        let ids = Corpus::standard().heldout_tokens(tokens);
        EvalSet::from_tokens(
            &ids,
            window,
            format!(
                "synthetic held-out split (seed {}, {tokens} tokens)",
                crate::corpus::HELDOUT_SEED
            ),
        )
    }

    /// The first `tokens` tokens of a UTF-8 file, tokenized with `tokenizer`.
    pub fn from_file(
        path: &Path,
        tokenizer: &tokenizers::Tokenizer,
        tokens: usize,
        window: usize,
    ) -> Result<EvalSet> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read eval text '{}'", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            anyhow!(
                "eval text '{}' is not UTF-8 (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        let enc = tokenizer
            .encode(text.as_str(), false)
            .map_err(|e| anyhow!("tokenizing '{}': {e}", path.display()))?;
        let ids = enc.get_ids();
        let n = ids.len().min(tokens);
        EvalSet::from_tokens(
            &ids[..n],
            window,
            format!("{} ({n} of {} tokens)", path.display(), ids.len()),
        )
    }

    /// Positions with a next token.
    pub fn positions(&self) -> u64 {
        self.windows.iter().map(|w| w.len() as u64 - 1).sum()
    }
}

/// What the fidelity of a model is measured against.
pub enum Reference<'a> {
    /// No reference: fidelity is not computed.
    None,
    /// The model is the reference itself (agreement with itself, computed).
    Itself,
    /// Reference model whose distributions the variant is compared with.
    Model(&'a Llama),
}

/// Sums over the scored positions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QualityReport {
    /// Positions scored (every position of a window but its last).
    pub positions: u64,
    /// Sum of -ln p(next token) over the positions.
    pub nll_sum: f64,
    /// Positions where the arg-max agreed with the reference (with a reference).
    pub agree: u64,
    /// Sum of KL(reference || variant) over the positions.
    pub kl_sum: f64,
}

impl QualityReport {
    /// Mean negative log-likelihood per position (nats).
    pub fn mean_nll(&self) -> f64 {
        self.nll_sum / self.positions as f64
    }
    /// exp(mean NLL).
    pub fn perplexity(&self) -> f64 {
        self.mean_nll().exp()
    }
    /// Percent of positions whose top-1 token matches the reference.
    pub fn agreement_pct(&self) -> f64 {
        100.0 * self.agree as f64 / self.positions as f64
    }
    /// Mean KL(reference || variant) per position (nats).
    pub fn mean_kl(&self) -> f64 {
        self.kl_sum / self.positions as f64
    }
}

/// Log-probabilities `(rows, vocab)` of the windows' positions except the last of each.
fn log_probs(model: &Llama, batch: &[&Vec<u32>]) -> Result<Vec<Vec<f32>>> {
    let (b, t) = (batch.len(), batch[0].len());
    let flat: Vec<u32> = batch.iter().flat_map(|w| w.iter().copied()).collect();
    let ids = Tensor::from_vec(flat, (b, t), &model.device)?;
    let logits = model.forward(&ids, None, Logits::All)?;
    let lp = candle_nn::ops::log_softmax(&logits.narrow(1, 0, t - 1)?, candle_core::D::Minus1)?;
    Ok(lp.flatten_to(1)?.to_vec2()?)
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Scores `model` on `set` (and against `reference`), in batches of equal-length windows
/// holding at most ~8 M logits.
pub fn evaluate(model: &Llama, reference: Reference, set: &EvalSet) -> Result<QualityReport> {
    let vocab = model.config.vocab_size;
    let mut r = QualityReport::default();
    let mut i = 0;
    while i < set.windows.len() {
        if interrupt::requested() {
            return Err(interrupt::Interrupted.into());
        }
        let len = set.windows[i].len();
        let per = (8_000_000 / (len * vocab).max(1)).max(1);
        let mut j = i;
        while j < set.windows.len() && j - i < per && set.windows[j].len() == len {
            j += 1;
        }
        let batch: Vec<&Vec<u32>> = set.windows[i..j].iter().collect();
        let lv = log_probs(model, &batch)?;
        let lr = match reference {
            Reference::Model(m) => Some(log_probs(m, &batch)?),
            _ => None,
        };
        for (row, lpv) in lv.iter().enumerate() {
            let (w, p) = (row / (len - 1), row % (len - 1));
            let target = batch[w][p + 1] as usize;
            let lp = *lpv
                .get(target)
                .ok_or_else(|| anyhow!("token id {target} is outside the vocabulary of {vocab}"))?;
            r.nll_sum -= lp as f64;
            r.positions += 1;
            let lpr = match (&reference, &lr) {
                (Reference::Itself, _) => lpv,
                (Reference::Model(_), Some(lr)) => &lr[row],
                _ => continue,
            };
            r.agree += u64::from(argmax(lpr) == argmax(lpv));
            r.kl_sum += lpr
                .iter()
                .zip(lpv)
                .map(|(&a, &b)| (a as f64).exp() * (a as f64 - b as f64))
                .sum::<f64>();
        }
        i = j;
    }
    Ok(r)
}
