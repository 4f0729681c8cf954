//! Training and held-out token batches from the synthetic Markov language
//! ([`crate::corpus`]). Each training sequence is an independent draw from the source with a
//! seed derived from (run seed, step, row), so the batch of any step is known without
//! replaying earlier ones (resuming needs no data state) and no sequence repeats. The
//! held-out split is the corpus's own held-out stream (a fixed seed of its own), cut into
//! sequences, identical for every run so held-out losses compare across runs.

use crate::corpus::Corpus;
use anyhow::Result;
use candle_core::{Device, Tensor};

/// SplitMix64 finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seed of training row `row` of step `step` for run seed `seed`.
pub fn row_seed(seed: u64, step: u64, row: u64) -> u64 {
    mix(mix(mix(seed ^ 0x7472_6169_6e00_0000) ^ step) ^ row)
}

/// Inputs and next-token targets, both `(rows, seq_len)` u32.
pub struct Batch {
    /// Token ids fed to the model.
    pub inputs: Tensor,
    /// The next token of each input position.
    pub targets: Tensor,
}

/// Splits `rows` sequences of `seq_len + 1` tokens into inputs and shifted targets.
pub fn batch_from(tokens: &[u32], seq_len: usize, device: &Device) -> Result<Batch> {
    let rows = tokens.len() / (seq_len + 1);
    let all = Tensor::from_slice(&tokens[..rows * (seq_len + 1)], (rows, seq_len + 1), device)?;
    Ok(Batch {
        inputs: all.narrow(1, 0, seq_len)?.contiguous()?,
        targets: all.narrow(1, 1, seq_len)?.contiguous()?,
    })
}

/// Where training batches come from.
pub struct TrainData {
    corpus: Corpus,
    seed: u64,
    batch: usize,
    seq_len: usize,
}

impl TrainData {
    /// Batches of `batch` x `seq_len` tokens drawn from the standard corpus for run seed `seed`.
    pub fn new(seed: u64, batch: usize, seq_len: usize) -> TrainData {
        TrainData {
            corpus: Corpus::standard(),
            seed,
            batch,
            seq_len,
        }
    }

    /// Token ids of step `step`'s batch: `batch` rows of `seq_len + 1` tokens.
    pub fn tokens(&self, step: u64) -> Vec<u32> {
        (0..self.batch as u64)
            .flat_map(|r| {
                self.corpus
                    .sample(row_seed(self.seed, step, r), self.seq_len + 1)
            })
            .collect()
    }

    /// Step `step`'s batch on `device`.
    pub fn batch(&self, step: u64, device: &Device) -> Result<Batch> {
        batch_from(&self.tokens(step), self.seq_len, device)
    }

    /// The source the batches are drawn from.
    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }
}

/// The held-out split: at least `tokens` predicted tokens, as sequences of `seq_len + 1`.
pub fn heldout(corpus: &Corpus, tokens: usize, seq_len: usize, device: &Device) -> Result<Batch> {
    let rows = tokens.div_ceil(seq_len).max(1);
    batch_from(
        &corpus.heldout_tokens(rows * (seq_len + 1)),
        seq_len,
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_seekable_distinct_and_shifted() {
        let d = TrainData::new(42, 3, 8);
        assert_eq!(d.tokens(5), TrainData::new(42, 3, 8).tokens(5));
        assert_ne!(d.tokens(5), d.tokens(6));
        assert_ne!(d.tokens(5), TrainData::new(43, 3, 8).tokens(5));
        let t = d.tokens(0);
        assert_ne!(t[..9], t[9..18], "rows differ");
        let b = d.batch(0, &Device::Cpu).unwrap();
        assert_eq!(b.inputs.dims(), [3, 8]);
        let x = b.inputs.to_vec2::<u32>().unwrap();
        let y = b.targets.to_vec2::<u32>().unwrap();
        assert_eq!(
            x[1][1..],
            y[1][..7],
            "targets are the inputs shifted by one"
        );
        assert_eq!(y[2][7], t[26]);
    }

    #[test]
    fn heldout_is_fixed_and_covers_the_tokens_asked() {
        let c = Corpus::standard();
        let h = heldout(&c, 100, 32, &Device::Cpu).unwrap();
        assert_eq!(h.targets.dims(), [4, 32]);
        let again = heldout(&c, 100, 32, &Device::Cpu).unwrap();
        assert_eq!(
            h.inputs.to_vec2::<u32>().unwrap(),
            again.inputs.to_vec2::<u32>().unwrap()
        );
    }
}
