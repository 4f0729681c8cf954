//! Sentence-transformers pooling: which token states become the embedding, read from the
//! model directory's `modules.json` (a `Pooling` module, optionally followed by `Normalize`)
//! and the pooling module's `config.json` (`pooling_mode_*_tokens`). Several modes set at
//! once are concatenated in sentence-transformers' order (cls, max, mean, mean_sqrt_len).

use anyhow::{bail, Context, Result};
use candle_core::{DType, Tensor, D};
use serde_json::Value;
use std::path::Path;

/// One way of pooling token states into a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The first token's state (`[CLS]`).
    Cls,
    /// Element-wise maximum over the real (unpadded) tokens.
    Max,
    /// Mean over the real tokens.
    Mean,
    /// Sum over the real tokens / sqrt(their count).
    MeanSqrtLen,
}

impl Mode {
    /// The `pooling_mode_*` key that selects this mode.
    pub fn key(self) -> &'static str {
        match self {
            Mode::Cls => "pooling_mode_cls_token",
            Mode::Max => "pooling_mode_max_tokens",
            Mode::Mean => "pooling_mode_mean_tokens",
            Mode::MeanSqrtLen => "pooling_mode_mean_sqrt_len_tokens",
        }
    }
    /// Short name for results (`mean`, `cls` ...).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Cls => "cls",
            Mode::Max => "max",
            Mode::Mean => "mean",
            Mode::MeanSqrtLen => "mean_sqrt_len",
        }
    }
}

/// Concatenation order of sentence-transformers' Pooling module.
const ORDER: [Mode; 4] = [Mode::Cls, Mode::Max, Mode::Mean, Mode::MeanSqrtLen];

/// How a model directory pools and whether it normalizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pooling {
    /// Modes, concatenated in this order.
    pub modes: Vec<Mode>,
    /// L2-normalize the pooled vector (a `Normalize` module follows the pooling).
    pub normalize: bool,
    /// Where the settings came from, for the result (`modules.json + 1_Pooling/config.json`).
    pub source: String,
}

impl Pooling {
    /// Reads `modules.json` and the pooling config of `dir`. A directory without
    /// `modules.json` (a plain transformers checkpoint) gets mean pooling without
    /// normalization, sentence-transformers' own default, and says so in `source`.
    pub fn read(dir: &Path) -> Result<Pooling> {
        let modules_path = dir.join("modules.json");
        if !modules_path.is_file() {
            return Ok(Pooling {
                modes: vec![Mode::Mean],
                normalize: false,
                source:
                    "no modules.json: mean pooling, not normalized (sentence-transformers' default)"
                        .into(),
            });
        }
        let modules: Value = read_json(&modules_path)?;
        let list = modules.as_array().with_context(|| {
            format!(
                "'{}': expected a JSON list of modules",
                modules_path.display()
            )
        })?;
        let mut pooling_dir = None;
        let mut normalize = false;
        for m in list {
            let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
            let path = m.get("path").and_then(Value::as_str).unwrap_or("");
            match kind.rsplit('.').next().unwrap_or("") {
                "Transformer" => {}
                "Pooling" => pooling_dir = Some(path.to_string()),
                "Normalize" => normalize = true,
                other => bail!(
                    "'{}': module type '{kind}' ({other}) is not supported (Transformer, Pooling \
                     and Normalize are)",
                    modules_path.display()
                ),
            }
        }
        let Some(pdir) = pooling_dir else {
            bail!("'{}' lists no Pooling module", modules_path.display());
        };
        let cfg_path = dir.join(&pdir).join("config.json");
        let cfg: Value = read_json(&cfg_path)?;
        let on = |key: &str| cfg.get(key).and_then(Value::as_bool).unwrap_or(false);
        for key in ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] {
            if on(key) {
                bail!("'{}': {key} is not supported", cfg_path.display());
            }
        }
        let modes: Vec<Mode> = ORDER.into_iter().filter(|m| on(m.key())).collect();
        if modes.is_empty() {
            bail!(
                "'{}' sets no pooling mode ({})",
                cfg_path.display(),
                ORDER.map(Mode::key).join(", ")
            );
        }
        Ok(Pooling {
            modes,
            normalize,
            source: format!("modules.json + {pdir}/config.json"),
        })
    }

    /// `mean`, `cls+max`, with `, normalized` when it normalizes.
    pub fn describe(&self) -> String {
        let modes: Vec<&str> = self.modes.iter().map(|m| m.name()).collect();
        format!(
            "{}{}",
            modes.join("+"),
            if self.normalize { ", normalized" } else { "" }
        )
    }

    /// Pools `hidden` `(batch, tokens, dim)` under `mask` `(batch, tokens)` (1 = real token,
    /// 0 = padding) into `(batch, dim x modes)` f32 vectors.
    pub fn apply(&self, hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let h = hidden.to_dtype(DType::F32)?;
        let m = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?; // (b, t, 1)
        let counts = m.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (b, 1)
        let mut parts = Vec::with_capacity(self.modes.len());
        for mode in &self.modes {
            parts.push(match mode {
                Mode::Cls => h.narrow(1, 0, 1)?.squeeze(1)?,
                Mode::Max => {
                    // padded positions get -1e9, as sentence-transformers does
                    let pad = ((m.ones_like()? - &m)? * -1e9f64)?;
                    h.broadcast_add(&pad)?.max(1)?
                }
                Mode::Mean => h.broadcast_mul(&m)?.sum(1)?.broadcast_div(&counts)?,
                Mode::MeanSqrtLen => h
                    .broadcast_mul(&m)?
                    .sum(1)?
                    .broadcast_div(&counts.sqrt()?)?,
            });
        }
        let pooled = Tensor::cat(&parts, 1)?;
        if !self.normalize {
            return Ok(pooled);
        }
        // x / max(||x||, 1e-12), as torch.nn.functional.normalize
        let norm = pooled
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        Ok(pooled.broadcast_div(&norm)?)
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("'{}' is not JSON", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn write(dir: &Path, modules: &str, pooling: &str) {
        std::fs::write(dir.join("modules.json"), modules).unwrap();
        std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
        std::fs::write(dir.join("1_Pooling/config.json"), pooling).unwrap();
    }

    const MODULES: &str = r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
        {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
        {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#;

    #[test]
    fn reads_modes_and_normalize() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            MODULES,
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}"#,
        );
        let p = Pooling::read(d.path()).unwrap();
        assert_eq!(p.modes, vec![Mode::Cls, Mode::Mean]);
        assert!(p.normalize);
        assert_eq!(p.describe(), "cls+mean, normalized");
        std::fs::write(d.path().join("1_Pooling/config.json"), "{}").unwrap();
        let e = Pooling::read(d.path()).unwrap_err().to_string();
        assert!(e.contains("sets no pooling mode"), "{e}");
        let dense = MODULES.replace("models.Normalize", "models.Dense");
        std::fs::write(d.path().join("modules.json"), dense).unwrap();
        let e = Pooling::read(d.path()).unwrap_err().to_string();
        assert!(e.contains("'sentence_transformers.models.Dense'"), "{e}");
        let plain = tempfile::tempdir().unwrap();
        assert_eq!(Pooling::read(plain.path()).unwrap().modes, vec![Mode::Mean]);
    }

    #[test]
    fn pooling_by_hand_ignores_padding() {
        // one sequence of 3 positions, the last one padding; dim 2
        let h = Tensor::new(&[[[1f32, 4.], [3., 0.], [100., 100.]]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 0]], &Device::Cpu).unwrap();
        let run = |modes: Vec<Mode>, normalize| {
            Pooling {
                modes,
                normalize,
                source: String::new(),
            }
            .apply(&h, &mask)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()[0]
                .clone()
        };
        assert_eq!(run(vec![Mode::Mean], false), vec![2.0, 2.0]);
        assert_eq!(run(vec![Mode::Cls], false), vec![1.0, 4.0]);
        assert_eq!(run(vec![Mode::Max], false), vec![3.0, 4.0]);
        let s = run(vec![Mode::MeanSqrtLen], false);
        assert!((s[0] - 4.0 / 2f32.sqrt()).abs() < 1e-6 && (s[1] - s[0]).abs() < 1e-6);
        // mean (2, 2) normalized: (1/sqrt 2, 1/sqrt 2); concatenation keeps the order
        let n = run(vec![Mode::Mean], true);
        assert!((n[0] - 0.5f32.sqrt()).abs() < 1e-6);
        assert_eq!(
            run(vec![Mode::Cls, Mode::Mean], false),
            vec![1., 4., 2., 2.]
        );
    }
}
