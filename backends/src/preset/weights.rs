//! Seeded random weights made directly in the run's dtype: [`SeededWeights`] is a
//! `candle_nn` var-builder backend that answers every tensor [`crate::llama::Llama`] asks
//! for with seeded values, so the very code that loads checkpoints builds the preset.
//!
//! Each tensor is drawn on the host straight into its dtype (f32, f16 or bf16: an 8 B model in
//! bf16 never exists in f32) and moved to the device one tensor at a time, so the transient
//! is one tensor. The stream of a tensor depends only on the seed and the tensor's name, in
//! chunks of [`CHUNK`] values each with its own ChaCha8 stream, so the weights are the same
//! on every machine, device and thread count. Values are approximately normal: the
//! Irwin-Hall sum of four uniform draws, scaled to the requested mean and standard
//! deviation (exact mean and variance; tails cut at ±3.46 σ), which is several times faster
//! than Box-Muller and makes no difference to speed measurements.

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::Init;
use half::{bf16, f16};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex};

/// Seed of preset weights unless the reference sets `?seed=`.
pub const PRESET_WEIGHTS_SEED: u64 = 42;

/// Values per independently seeded stream.
pub const CHUNK: usize = 1 << 16;

/// The tensors a recording [`SeededWeights`] made, by name, shared by its clones.
type Made = Arc<Mutex<Vec<(String, Tensor)>>>;

/// A var-builder backend of seeded random weights (see the module docs). A recording one
/// also keeps every tensor it made, by name, shared by its clones (give a clone to the
/// var-builder, [`SeededWeights::take`] from the original).
#[derive(Debug, Default, Clone)]
pub struct SeededWeights {
    seed: u64,
    made: Option<Made>,
}

impl SeededWeights {
    /// Weights from `seed`.
    pub fn new(seed: u64) -> SeededWeights {
        SeededWeights { seed, made: None }
    }

    /// Weights from `seed`, each tensor also kept for [`SeededWeights::take`].
    pub fn recording(seed: u64) -> SeededWeights {
        SeededWeights {
            seed,
            made: Some(Arc::new(Mutex::new(Vec::new()))),
        }
    }

    /// The tensors made so far, by name, sorted (empty unless recording).
    pub fn take(&self) -> Vec<(String, Tensor)> {
        let mut v = self
            .made
            .as_ref()
            .map(|m| std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

impl SimpleBackend for SeededWeights {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let t = match h {
            Init::Const(c) => (Tensor::ones(s, dtype, dev)? * c)?,
            Init::Randn { mean, stdev } => {
                seeded_tensor(self.seed, name, &s, mean, stdev, dtype, dev)?
            }
            Init::Uniform { lo, up } => {
                // Same mean and variance as U(lo, up).
                let std = (up - lo) / 12f64.sqrt();
                seeded_tensor(self.seed, name, &s, (lo + up) / 2.0, std, dtype, dev)?
            }
            other => {
                candle_core::bail!("seeded weights: init {other:?} of '{name}' is not supported")
            }
        };
        if let Some(m) = &self.made {
            m.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((name.to_string(), t.clone()));
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("seeded weights: '{name}' was asked for without a shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// FNV-1a of the name, mixed with the seed: the key of a tensor's streams.
fn stream_key(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A tensor of `shape` with seeded approximately-normal values, made in `dtype` on the host
/// and moved to `device`.
pub fn seeded_tensor(
    seed: u64,
    name: &str,
    shape: &Shape,
    mean: f64,
    std: f64,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let n = shape.elem_count();
    let key = stream_key(seed, name);
    let (mean, std) = (mean as f32, std as f32);
    let t = match dtype {
        DType::F32 => Tensor::from_vec(fill(n, key, mean, std, |x| x), shape, &Device::Cpu)?,
        DType::F16 => {
            Tensor::from_vec(fill(n, key, mean, std, f16::from_f32), shape, &Device::Cpu)?
        }
        DType::BF16 => {
            Tensor::from_vec(fill(n, key, mean, std, bf16::from_f32), shape, &Device::Cpu)?
        }
        other => candle_core::bail!("seeded weights cannot be made in {other:?}"),
    };
    t.to_device(device)
}

/// `n` values, chunks drawn on parallel threads (each chunk's stream is fixed, so the result
/// does not depend on the thread count).
fn fill<T: Copy + Default + Send>(
    n: usize,
    key: u64,
    mean: f32,
    std: f32,
    conv: impl Fn(f32) -> T + Sync,
) -> Vec<T> {
    let mut out = vec![T::default(); n];
    let chunks: Vec<(usize, &mut [T])> = out.chunks_mut(CHUNK).enumerate().collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(chunks.len())
        .max(1);
    let draw = |(i, chunk): (usize, &mut [T])| {
        let mut rng = ChaCha8Rng::seed_from_u64(key);
        rng.set_stream(i as u64);
        for x in chunk.iter_mut() {
            *x = conv(mean + std * irwin_hall4(rng.next_u64()));
        }
    };
    if threads == 1 {
        chunks.into_iter().for_each(draw);
        return out;
    }
    let mut per: Vec<Vec<(usize, &mut [T])>> = (0..threads).map(|_| Vec::new()).collect();
    for (j, c) in chunks.into_iter().enumerate() {
        per[j % threads].push(c);
    }
    let draw = &draw;
    std::thread::scope(|s| {
        for work in per {
            s.spawn(move || work.into_iter().for_each(draw));
        }
    });
    out
}

/// Zero mean, unit variance: the sum of the four 16-bit uniforms in `bits`, centred and
/// scaled (Irwin-Hall, n = 4).
fn irwin_hall4(bits: u64) -> f32 {
    let u = |k: u32| ((bits >> (16 * k)) & 0xffff) as f32 + 0.5;
    let sum = (u(0) + u(1) + u(2) + u(3)) / 65536.0; // each term uniform on (0, 1), mean 1/2
    (sum - 2.0) * 3f32.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_requested_moments_and_do_not_depend_on_threads() {
        let shape = Shape::from((3 * CHUNK + 17,));
        let t = seeded_tensor(7, "w", &shape, 0.0, 0.02, DType::F32, &Device::Cpu).unwrap();
        let v = t.to_vec1::<f32>().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 2e-4, "{mean}");
        assert!((var.sqrt() - 0.02).abs() < 2e-4, "{}", var.sqrt());
        assert!(v.iter().all(|x| x.abs() <= 0.02 * 3.47));
        // Single-threaded drawing gives the same values.
        let one = fill(v.len(), stream_key(7, "w"), 0.0, 0.02, |x| x);
        assert_eq!(one, v);
        // Another name or seed, another stream; bf16 is the same draw rounded.
        let other = seeded_tensor(7, "u", &shape, 0.0, 0.02, DType::F32, &Device::Cpu).unwrap();
        assert_ne!(other.to_vec1::<f32>().unwrap()[..8], v[..8]);
        let b = seeded_tensor(7, "w", &shape, 0.0, 0.02, DType::BF16, &Device::Cpu).unwrap();
        assert_eq!(b.dtype(), DType::BF16);
        let b = b.to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap();
        assert!(b
            .iter()
            .zip(&v)
            .all(|(x, y)| (x - y).abs() <= y.abs() / 128.0 + 1e-9));
    }
}
