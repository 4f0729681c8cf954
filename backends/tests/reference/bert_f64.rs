//! An independent float64 BERT forward pass for checking the candle encoder: plain loops over
//! `Vec<f64>`, weights read straight from `model.safetensors` by the `safetensors` crate (no
//! candle, no candle-transformers), the standard BERT encoder (Devlin et al. 2019; HF
//! `BertModel` naming), exact erf GELU, mean pooling and L2 normalization as
//! sentence-transformers' all-MiniLM-L6-v2 configures them. One sequence at a time, no
//! padding. Slow and simple on purpose.

use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;

/// A dense matrix, row-major.
pub struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

pub struct BertF64 {
    w: HashMap<String, Mat>,
    layers: usize,
    heads: usize,
    eps: f64,
}

/// erf(x) to about 1e-14: Taylor series for |x| < 3, else a continued fraction for erfc.
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    let v = if a < 3.0 {
        let (mut term, mut sum, mut n) = (a, a, 0.0);
        loop {
            n += 1.0;
            term *= -a * a / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // erfc(a) = exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...)))))
        let mut f = a;
        for k in (1..80).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
    };
    v.copysign(x)
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

impl BertF64 {
    /// Reads every F32 tensor of `dir/model.safetensors` into f64 and the shape settings of
    /// `dir/config.json`.
    pub fn load(dir: &Path) -> BertF64 {
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut w = HashMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                continue;
            }
            let shape = view.shape().to_vec();
            let data: Vec<f64> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
                .collect();
            let (rows, cols) = match shape[..] {
                [n] => (1, n),
                [r, c] => (r, c),
                _ => panic!("unexpected shape of {name}: {shape:?}"),
            };
            w.insert(name.to_string(), Mat { rows, cols, data });
        }
        BertF64 {
            w,
            layers: cfg["num_hidden_layers"].as_u64().unwrap() as usize,
            heads: cfg["num_attention_heads"].as_u64().unwrap() as usize,
            eps: cfg["layer_norm_eps"].as_f64().unwrap(),
        }
    }

    fn get(&self, name: &str) -> &Mat {
        self.w
            .get(name)
            .unwrap_or_else(|| panic!("no weight {name}"))
    }

    /// y = x W^T + b for every row of x (W is [out, in] as in PyTorch).
    fn linear(&self, x: &[Vec<f64>], prefix: &str) -> Vec<Vec<f64>> {
        let w = self.get(&format!("{prefix}.weight"));
        let b = self.get(&format!("{prefix}.bias"));
        x.iter()
            .map(|row| {
                (0..w.rows)
                    .map(|o| {
                        let wr = &w.data[o * w.cols..(o + 1) * w.cols];
                        b.data[o] + wr.iter().zip(row).map(|(a, c)| a * c).sum::<f64>()
                    })
                    .collect()
            })
            .collect()
    }

    fn layer_norm(&self, x: &mut [Vec<f64>], prefix: &str) {
        let g = &self.get(&format!("{prefix}.weight")).data;
        let b = &self.get(&format!("{prefix}.bias")).data;
        for row in x.iter_mut() {
            let n = row.len() as f64;
            let mean = row.iter().sum::<f64>() / n;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (var + self.eps).sqrt();
            for (k, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) * inv * g[k] + b[k];
            }
        }
    }

    /// Token states after the last layer, one row per token.
    pub fn hidden(&self, ids: &[u32]) -> Vec<Vec<f64>> {
        let word = self.get("embeddings.word_embeddings.weight");
        let pos = self.get("embeddings.position_embeddings.weight");
        let typ = self.get("embeddings.token_type_embeddings.weight");
        let h = word.cols;
        let mut x: Vec<Vec<f64>> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                (0..h)
                    .map(|k| word.data[id as usize * h + k] + pos.data[i * h + k] + typ.data[k])
                    .collect()
            })
            .collect();
        self.layer_norm(&mut x, "embeddings.LayerNorm");
        let (t, hd) = (ids.len(), h / self.heads);
        for l in 0..self.layers {
            let p = format!("encoder.layer.{l}");
            let q = self.linear(&x, &format!("{p}.attention.self.query"));
            let k = self.linear(&x, &format!("{p}.attention.self.key"));
            let v = self.linear(&x, &format!("{p}.attention.self.value"));
            let mut ctx = vec![vec![0.0; h]; t];
            for head in 0..self.heads {
                let r = head * hd..(head + 1) * hd;
                for i in 0..t {
                    let scores: Vec<f64> = (0..t)
                        .map(|j| {
                            q[i][r.clone()]
                                .iter()
                                .zip(&k[j][r.clone()])
                                .map(|(a, b)| a * b)
                                .sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for (j, ej) in e.iter().enumerate() {
                        for d in r.clone() {
                            ctx[i][d] += ej / z * v[j][d];
                        }
                    }
                }
            }
            let mut a = self.linear(&ctx, &format!("{p}.attention.output.dense"));
            for (ai, xi) in a.iter_mut().zip(&x) {
                for (u, w) in ai.iter_mut().zip(xi) {
                    *u += w;
                }
            }
            self.layer_norm(&mut a, &format!("{p}.attention.output.LayerNorm"));
            let mut inter = self.linear(&a, &format!("{p}.intermediate.dense"));
            for row in inter.iter_mut() {
                for v in row.iter_mut() {
                    *v = gelu(*v);
                }
            }
            let mut out = self.linear(&inter, &format!("{p}.output.dense"));
            for (oi, ai) in out.iter_mut().zip(&a) {
                for (u, w) in oi.iter_mut().zip(ai) {
                    *u += w;
                }
            }
            self.layer_norm(&mut out, &format!("{p}.output.LayerNorm"));
            x = out;
        }
        x
    }

    /// Mean-pooled, L2-normalized sentence embedding.
    pub fn embed(&self, ids: &[u32]) -> Vec<f64> {
        let x = self.hidden(ids);
        let h = x[0].len();
        let mut m: Vec<f64> = (0..h)
            .map(|k| x.iter().map(|r| r[k]).sum::<f64>() / x.len() as f64)
            .collect();
        let norm = m.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        m.iter_mut().for_each(|v| *v /= norm);
        m
    }
}

#[test]
fn erf_matches_known_values() {
    // Abramowitz & Stegun table 7.1 / high-precision values
    for (x, want) in [
        (0.0, 0.0),
        (0.5, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
        (2.0, 0.995_322_265_018_952_7),
        (3.5, 0.999_999_256_901_627_7),
        (-1.0, -0.842_700_792_949_714_9),
    ] {
        assert!(
            (erf(x) - want).abs() < 1e-13,
            "erf({x}) = {} vs {want}",
            erf(x)
        );
    }
}
