//! Pruning the linear layers of a llama checkpoint (HF tensor names), in place:
//!
//! - `magnitude-layer`: in every prunable matrix, the `round(s · n)` weights of smallest
//!   |w| become 0 (unstructured, per layer);
//! - `magnitude-global`: one threshold over all prunable matrices together, so layers with
//!   small weights lose more (ties at the threshold broken in name then index order);
//! - `2:4`: in every group of 4 consecutive weights of a row, the 2 of smallest |w| become 0
//!   (semi-structured, the pattern sparse tensor cores accelerate); exactly 50 %.
//!
//! Prunable = the attention and MLP projections of the decoder blocks; the token embedding,
//! the output head and the norms are kept (as in SparseGPT and Wanda).

use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;

/// How weights are chosen for removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneMethod {
    /// Smallest |w| of each matrix.
    MagnitudeLayer,
    /// One |w| threshold over all prunable matrices.
    MagnitudeGlobal,
    /// 2 of every 4 consecutive weights of a row (sparsity 0.5).
    SemiStructured24,
}

impl PruneMethod {
    /// From the `prune` axis value.
    pub fn parse(s: &str) -> Option<PruneMethod> {
        match s {
            "magnitude-layer" => Some(PruneMethod::MagnitudeLayer),
            "magnitude-global" => Some(PruneMethod::MagnitudeGlobal),
            "2:4" => Some(PruneMethod::SemiStructured24),
            _ => None,
        }
    }
    /// The `prune` axis value.
    pub fn name(self) -> &'static str {
        match self {
            PruneMethod::MagnitudeLayer => "magnitude-layer",
            PruneMethod::MagnitudeGlobal => "magnitude-global",
            PruneMethod::SemiStructured24 => "2:4",
        }
    }
}

/// What pruning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Weights in the prunable matrices.
    pub prunable: u64,
    /// Weights that were non-zero and are now zero.
    pub zeroed: u64,
}

/// HF names of the matrices pruning touches.
pub fn is_prunable(name: &str) -> bool {
    name.starts_with("model.layers.")
        && [
            "self_attn.q_proj.weight",
            "self_attn.k_proj.weight",
            "self_attn.v_proj.weight",
            "self_attn.o_proj.weight",
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "mlp.down_proj.weight",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Prunes the prunable tensors (converted to f32) to `sparsity` with `method`.
pub fn prune(
    tensors: &mut HashMap<String, Tensor>,
    method: PruneMethod,
    sparsity: f64,
) -> Result<PruneReport> {
    if !tensors.keys().any(|n| is_prunable(n)) {
        bail!("no prunable llama projection weights (model.layers.N.*_proj.weight) found");
    }
    prune_matching(tensors, method, sparsity, is_prunable)
}

/// [`prune`] over the tensors whose names `prunable` accepts (other architectures, e.g.
/// BERT encoders, name their projections differently).
pub fn prune_matching(
    tensors: &mut HashMap<String, Tensor>,
    method: PruneMethod,
    sparsity: f64,
    prunable: fn(&str) -> bool,
) -> Result<PruneReport> {
    if !(0.0..1.0).contains(&sparsity) {
        bail!("sparsity {sparsity} must be in [0, 1)");
    }
    let mut names: Vec<String> = tensors.keys().filter(|n| prunable(n)).cloned().collect();
    names.sort();
    if names.is_empty() {
        bail!("no prunable weights found");
    }
    let mut data: Vec<(Vec<f32>, (usize, usize))> = Vec::with_capacity(names.len());
    for n in &names {
        let t = &tensors[n];
        let dims = t.dims2()?;
        data.push((
            t.to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1()?,
            dims,
        ));
    }
    let mut report = PruneReport {
        prunable: data.iter().map(|(d, _)| d.len() as u64).sum(),
        zeroed: 0,
    };
    let before: u64 = data.iter().map(|(d, _)| nonzero(d)).sum();
    if sparsity > 0.0 {
        match method {
            PruneMethod::MagnitudeLayer => {
                for (d, _) in data.iter_mut() {
                    let k = (sparsity * d.len() as f64).round() as usize;
                    zero_smallest(d, k);
                }
            }
            PruneMethod::MagnitudeGlobal => {
                let k = (sparsity * report.prunable as f64).round() as usize;
                zero_smallest_global(&mut data, k);
            }
            PruneMethod::SemiStructured24 => {
                if (sparsity - 0.5).abs() > 1e-9 {
                    bail!("2:4 pruning removes exactly half the weights; sparsity must be 0.5, not {sparsity}");
                }
                for ((d, (_, cols)), n) in data.iter_mut().zip(&names) {
                    if *cols % 4 != 0 {
                        bail!("2:4 pruning needs rows whose length is a multiple of 4; '{n}' has {cols}");
                    }
                    two_of_four(d);
                }
            }
        }
    }
    let after: u64 = data.iter().map(|(d, _)| nonzero(d)).sum();
    report.zeroed = before - after;
    for (n, (d, dims)) in names.iter().zip(data) {
        tensors.insert(n.clone(), Tensor::from_vec(d, dims, &Device::Cpu)?);
    }
    Ok(report)
}

/// Non-zero values in a slice.
pub fn nonzero(d: &[f32]) -> u64 {
    d.iter().filter(|x| **x != 0.0).count() as u64
}

/// Order by |w|, then by position (deterministic ties).
fn by_magnitude(d: &[f32]) -> impl Fn(&usize, &usize) -> std::cmp::Ordering + '_ {
    move |&a, &b| d[a].abs().total_cmp(&d[b].abs()).then(a.cmp(&b))
}

/// Zeroes the `k` entries of smallest magnitude.
fn zero_smallest(d: &mut [f32], k: usize) {
    if k == 0 {
        return;
    }
    let mut idx: Vec<usize> = (0..d.len()).collect();
    if k < d.len() {
        idx.select_nth_unstable_by(k - 1, by_magnitude(d));
    }
    for &i in &idx[..k.min(d.len())] {
        d[i] = 0.0;
    }
}

/// Zeroes the `k` entries of smallest magnitude over all tensors: everything below the k-th
/// magnitude, then entries equal to it in tensor and index order until `k` are gone.
fn zero_smallest_global(data: &mut [(Vec<f32>, (usize, usize))], k: usize) {
    if k == 0 {
        return;
    }
    let mut mags: Vec<f32> = data
        .iter()
        .flat_map(|(d, _)| d.iter().map(|x| x.abs()))
        .collect();
    let k = k.min(mags.len());
    let (_, kth, _) = mags.select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b));
    let t = *kth;
    drop(mags);
    let mut left = k;
    for (d, _) in data.iter_mut() {
        for x in d.iter_mut() {
            if x.abs() < t {
                *x = 0.0;
                left -= 1;
            }
        }
    }
    for (d, _) in data.iter_mut() {
        for x in d.iter_mut() {
            if left == 0 {
                return;
            }
            if x.abs() == t {
                *x = 0.0;
                left -= 1;
            }
        }
    }
}

/// In each group of 4 consecutive values, zeroes the 2 of smallest magnitude.
fn two_of_four(d: &mut [f32]) {
    for g in d.chunks_exact_mut(4) {
        let mut idx = [0usize, 1, 2, 3];
        idx.sort_by(by_magnitude(g));
        g[idx[0]] = 0.0;
        g[idx[1]] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: Vec<f32>, dims: (usize, usize)) -> Tensor {
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    fn vals(m: &HashMap<String, Tensor>, n: &str) -> Vec<f32> {
        m[n].flatten_all().unwrap().to_vec1().unwrap()
    }

    const Q: &str = "model.layers.0.self_attn.q_proj.weight";
    const UP: &str = "model.layers.0.mlp.up_proj.weight";
    const EMB: &str = "model.embed_tokens.weight";

    fn model() -> HashMap<String, Tensor> {
        HashMap::from([
            // small weights
            (
                Q.to_string(),
                t(vec![0.1, -0.4, 0.3, -0.2, 0.05, 0.6, -0.7, 0.8], (2, 4)),
            ),
            // large weights
            (
                UP.to_string(),
                t(vec![1.0, -2.0, 3.0, -4.0, 5.0, -6.0, 7.0, -8.0], (2, 4)),
            ),
            (EMB.to_string(), t(vec![0.0001; 8], (2, 4))),
        ])
    }

    #[test]
    fn layer_magnitude_prunes_each_matrix_alike() {
        let mut m = model();
        let r = prune(&mut m, PruneMethod::MagnitudeLayer, 0.5).unwrap();
        assert_eq!(
            r,
            PruneReport {
                prunable: 16,
                zeroed: 8
            }
        );
        assert_eq!(vals(&m, Q), vec![0.0, -0.4, 0.0, 0.0, 0.0, 0.6, -0.7, 0.8]);
        assert_eq!(vals(&m, UP), vec![0.0, 0.0, 0.0, 0.0, 5.0, -6.0, 7.0, -8.0]);
        assert_eq!(vals(&m, EMB), vec![0.0001; 8], "embedding is never pruned");
    }

    #[test]
    fn global_magnitude_takes_from_the_small_layer_first() {
        let mut m = model();
        let r = prune(&mut m, PruneMethod::MagnitudeGlobal, 0.5).unwrap();
        assert_eq!(r.zeroed, 8);
        assert_eq!(vals(&m, Q), vec![0.0; 8]);
        assert_eq!(
            vals(&m, UP),
            vec![1.0, -2.0, 3.0, -4.0, 5.0, -6.0, 7.0, -8.0]
        );
        // ties at the threshold: exactly k removed, in name then index order
        let mut tie = HashMap::from([(Q.to_string(), t(vec![1.0; 8], (2, 4)))]);
        let r = prune(&mut tie, PruneMethod::MagnitudeGlobal, 0.25).unwrap();
        assert_eq!(r.zeroed, 2);
        assert_eq!(vals(&tie, Q), vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn two_of_four_keeps_the_two_largest_of_each_group() {
        let mut m = model();
        let r = prune(&mut m, PruneMethod::SemiStructured24, 0.5).unwrap();
        assert_eq!(r.zeroed, 8);
        assert_eq!(vals(&m, Q), vec![0.0, -0.4, 0.3, 0.0, 0.0, 0.0, -0.7, 0.8]);
        for g in vals(&m, UP).chunks(4) {
            assert_eq!(g.iter().filter(|x| **x == 0.0).count(), 2);
        }
        let e = prune(&mut model(), PruneMethod::SemiStructured24, 0.7).unwrap_err();
        assert!(e.to_string().contains("sparsity must be 0.5"));
    }

    #[test]
    fn existing_zeros_are_not_counted_twice() {
        let mut m = HashMap::from([(Q.to_string(), t(vec![0.0, 0.0, 1.0, 2.0], (1, 4)))]);
        let r = prune(&mut m, PruneMethod::MagnitudeLayer, 0.5).unwrap();
        assert_eq!(r.zeroed, 0, "the two smallest were already zero");
        assert!(prune(&mut m, PruneMethod::MagnitudeLayer, 1.0).is_err());
    }
}
