//! AdamW (Loshchilov & Hutter, decoupled weight decay) with global-norm gradient clipping,
//! over f32 master weights, with its state exposed so a checkpoint can hold it: candle-nn's
//! `AdamW` keeps its moments private, and resuming with an identical loss trajectory needs
//! them. Weight decay applies to matrices only (not to norm scales), as is usual for
//! transformers.

use anyhow::{anyhow, bail, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use std::collections::HashMap;

/// Hyper-parameters other than the learning rate (which changes every step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWParams {
    /// Decay of the first-moment estimate.
    pub beta1: f64,
    /// Decay of the second-moment estimate.
    pub beta2: f64,
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Decoupled weight decay (applied to 2-D weights only).
    pub weight_decay: f64,
    /// Clip the global L2 norm of the gradients to this (0 = no clipping).
    pub grad_clip: f64,
}

/// One trained variable with its moment estimates.
struct Param {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

/// The optimizer.
pub struct AdamW {
    params: Vec<Param>,
    /// Updates applied so far (the bias-correction exponent).
    t: u64,
    hp: AdamWParams,
}

/// What one [`AdamW::step`] saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
    /// Whether the gradients were scaled down to `grad_clip`.
    pub clipped: bool,
    /// The norm when it was not finite: nothing was updated.
    pub non_finite_norm: Option<f64>,
}

impl AdamW {
    /// Starts with zero moments for `vars` (name, variable), in the given order.
    pub fn new(vars: &[(String, Var)], hp: AdamWParams) -> Result<AdamW> {
        let params = vars
            .iter()
            .map(|(name, var)| {
                Ok(Param {
                    name: name.clone(),
                    var: var.clone(),
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
                    decay: var.rank() >= 2,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW { params, t: 0, hp })
    }

    /// Updates applied so far.
    pub fn updates(&self) -> u64 {
        self.t
    }

    /// Clips and applies one update with learning rate `lr`. With a non-finite gradient norm
    /// nothing is updated and [`StepInfo::non_finite_norm`] says so.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<StepInfo> {
        let mut sq = 0.0f64;
        let mut gs = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let g = grads
                .get(p.var.as_tensor())
                .ok_or_else(|| anyhow!("no gradient for '{}'", p.name))?
                .to_dtype(DType::F32)?;
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            gs.push(g);
        }
        let grad_norm = sq.sqrt();
        if !grad_norm.is_finite() {
            return Ok(StepInfo {
                grad_norm,
                clipped: false,
                non_finite_norm: Some(grad_norm),
            });
        }
        let clipped = self.hp.grad_clip > 0.0 && grad_norm > self.hp.grad_clip;
        let scale = if clipped {
            self.hp.grad_clip / grad_norm
        } else {
            1.0
        };
        self.t += 1;
        let (b1, b2) = (self.hp.beta1, self.hp.beta2);
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2 = 1.0 - b2.powi(self.t as i32);
        for (p, g) in self.params.iter_mut().zip(gs) {
            let g = if clipped { g.affine(scale, 0.0)? } else { g };
            p.m = (p.m.affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?;
            p.v = (p.v.affine(b2, 0.0)? + g.sqr()?.affine(1.0 - b2, 0.0)?)?;
            let denom = (p.v.affine(1.0 / bc2, 0.0)?.sqrt()? + self.hp.eps)?;
            let update = (p.m.affine(lr / bc1, 0.0)? / denom)?;
            let w = p.var.as_tensor();
            let w = if p.decay && self.hp.weight_decay > 0.0 {
                w.affine(1.0 - lr * self.hp.weight_decay, 0.0)?
            } else {
                w.clone()
            };
            p.var.set(&(w - update)?)?;
        }
        Ok(StepInfo {
            grad_norm,
            clipped,
            non_finite_norm: None,
        })
    }

    /// Moments by name (`m.<var>`, `v.<var>`) for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .flat_map(|p| {
                [
                    (format!("m.{}", p.name), p.m.clone()),
                    (format!("v.{}", p.name), p.v.clone()),
                ]
            })
            .collect()
    }

    /// Restores moments and the update count saved by [`AdamW::state_tensors`].
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, updates: u64) -> Result<()> {
        for p in &mut self.params {
            for (prefix, slot) in [("m", &mut p.m), ("v", &mut p.v)] {
                let key = format!("{prefix}.{}", p.name);
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| anyhow!("optimizer state lacks '{key}'"))?;
                if t.shape() != p.var.shape() {
                    bail!(
                        "optimizer state '{key}' has shape {:?}, the model {:?}",
                        t.dims(),
                        p.var.dims()
                    );
                }
                *slot = t.to_dtype(DType::F32)?.to_device(p.var.device())?;
            }
        }
        self.t = updates;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn hp(clip: f64, wd: f64) -> AdamWParams {
        AdamWParams {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: wd,
            grad_clip: clip,
        }
    }

    /// One step by hand: the first AdamW update is lr * g / (|g| + eps) per element, after
    /// decoupled decay w * (1 - lr * wd); clipping scales g first (which the ratio cancels).
    #[test]
    fn first_step_matches_hand_computation() {
        let w =
            Var::from_tensor(&Tensor::new(&[[1.0f32, -2.0], [0.5, 4.0]], &Device::Cpu).unwrap())
                .unwrap();
        let s = Var::from_tensor(&Tensor::new(&[3.0f32, 1.0], &Device::Cpu).unwrap()).unwrap();
        let vars = vec![("w".to_string(), w.clone()), ("s".to_string(), s.clone())];
        let mut opt = AdamW::new(&vars, hp(1.0, 0.5)).unwrap();
        // loss = sum(w * c) + sum(s * s): dL/dw = c, dL/ds = 2 s = [6, 2]
        let c = Tensor::new(&[[1.0f32, -1.0], [2.0, 0.0]], &Device::Cpu).unwrap();
        let loss = ((w.as_tensor() * &c).unwrap().sum_all().unwrap()
            + s.as_tensor().sqr().unwrap().sum_all().unwrap())
        .unwrap();
        let info = opt.step(&loss.backward().unwrap(), 0.1).unwrap();
        assert!((info.grad_norm - (1.0f64 + 1.0 + 4.0 + 36.0 + 4.0).sqrt()).abs() < 1e-5);
        assert!(info.clipped);
        let w1 = w.as_tensor().to_vec2::<f32>().unwrap();
        // decay 1 - 0.1 * 0.5 = 0.95, then - 0.1 * sign(g) (g = 0 gives no update)
        let want = [[0.95 - 0.1, -1.9 + 0.1], [0.475 - 0.1, 3.8]];
        for (row, want_row) in w1.iter().zip(want) {
            for (a, b) in row.iter().zip(want_row) {
                assert!((*a as f64 - b).abs() < 1e-5, "{w1:?}");
            }
        }
        // norm scales are not decayed
        let s1 = s.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (s1[0] - 2.9).abs() < 1e-5 && (s1[1] - 0.9).abs() < 1e-5,
            "{s1:?}"
        );
        assert_eq!(opt.updates(), 1);
    }

    #[test]
    fn state_round_trips_and_bad_gradients_are_refused() {
        let w = Var::from_tensor(&Tensor::new(&[[1.0f32, 2.0]], &Device::Cpu).unwrap()).unwrap();
        let vars = vec![("w".to_string(), w.clone())];
        let mut a = AdamW::new(&vars, hp(0.0, 0.0)).unwrap();
        let loss = w.as_tensor().sqr().unwrap().sum_all().unwrap();
        a.step(&loss.backward().unwrap(), 0.01).unwrap();
        let saved: HashMap<String, Tensor> = a.state_tensors().into_iter().collect();
        let mut b = AdamW::new(&vars, hp(0.0, 0.0)).unwrap();
        b.load_state(&saved, a.updates()).unwrap();
        assert_eq!(b.updates(), 1);
        let nan = (w.as_tensor() * f64::NAN).unwrap().sum_all().unwrap();
        let before = w.as_tensor().to_vec2::<f32>().unwrap();
        let info = b.step(&nan.backward().unwrap(), 0.01).unwrap();
        assert!(info.non_finite_norm.unwrap().is_nan());
        assert_eq!(w.as_tensor().to_vec2::<f32>().unwrap(), before);
        assert_eq!(b.updates(), 1, "no update counted");
        assert!(b.load_state(&HashMap::new(), 1).is_err());
    }
}
