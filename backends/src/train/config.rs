//! A training run's settings, read once from its [`RunSpec`] (axes and `[options]`) and
//! checked before anything runs: every error names the axis or option and the allowed range.

use crate::corpus::Corpus;
use crate::default_model::default_config;
use crate::llama::LlamaConfig;
use candle_core::DType;
use effbench_harness::axes::AxisValue;
use effbench_harness::RunSpec;
use serde_json::Value;
use std::sync::OnceLock;

/// Width of one attention head; `width / HEAD_DIM` heads.
pub const HEAD_DIM: usize = 32;

/// `[options]` of the process backend's worker that this backend leaves alone.
const WORKER_KEYS: &[&str] = &["cmd", "env", "timeouts", "max_line_bytes", "worker"];

/// `[options]` the training backend reads, with their defaults, for error messages and docs.
pub const OPTIONS: &[(&str, &str)] = &[
    ("weight_decay", "0.1 (decoupled, on 2-D weights only)"),
    ("beta1", "0.9"),
    ("beta2", "0.95"),
    ("eps", "1e-8"),
    ("grad_clip", "1.0 (global L2 norm; 0 = off)"),
    ("min_lr_ratio", "0.1 (cosine decays to lr x this)"),
    ("eval_tokens", "8192 (held-out tokens per evaluation)"),
    (
        "checkpoint_every",
        "100 (steps; 0 = only at the end and on Ctrl-C)",
    ),
    (
        "stop_at_target",
        "false (stop once the held-out loss reaches target_loss)",
    ),
    (
        "save_checkpoint",
        "true for the width x depth model, false for presets (a checkpoint of random preset \
         weights is many GB and worth nothing)",
    ),
    (
        "data_parallel",
        "\"auto\" (micro-batches per step run on parallel threads, one per CPU thread; 1 = the \
         whole batch at once with multi-threaded matmuls)",
    ),
];

/// How a step's batch is split over threads (`[options] data_parallel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataParallel {
    /// One micro-batch per CPU thread candle uses (`RAYON_NUM_THREADS`, else all cores).
    Auto,
    /// This many micro-batches (1 = no split).
    Fixed(usize),
}

/// Everything a training run needs, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Sequences per step.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Hidden size.
    pub width: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// Optimizer steps in total.
    pub steps: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// Held-out loss for time-to-target (nats/token).
    pub target_loss: f64,
    /// Evaluate the held-out loss every this many steps.
    pub eval_every: u64,
    /// Compute dtype (master weights stay f32).
    pub dtype: DType,
    /// Decoupled AdamW weight decay.
    pub weight_decay: f64,
    /// AdamW first-moment decay.
    pub beta1: f64,
    /// AdamW second-moment decay.
    pub beta2: f64,
    /// AdamW epsilon.
    pub eps: f64,
    /// Global gradient L2 norm limit (0 = off).
    pub grad_clip: f64,
    /// Cosine decays to lr x this.
    pub min_lr_ratio: f64,
    /// Held-out tokens per evaluation.
    pub eval_tokens: usize,
    /// Checkpoint every this many steps (0 = end and Ctrl-C only).
    pub checkpoint_every: u64,
    /// Stop once the held-out loss reaches target_loss.
    pub stop_at_target: bool,
    /// Micro-batches per step, each on its own thread.
    pub data_parallel: DataParallel,
    /// A preset (`model = "preset:..."`) instead of the `width` x `depth` model.
    pub preset: Option<crate::preset::PresetSpec>,
    /// Write checkpoints (periodic, final, on Ctrl-C).
    pub save_checkpoint: bool,
}

/// The default model's context length: the longest `seq_len` a run can train.
pub fn context() -> usize {
    default_config().max_position_embeddings
}

/// Entropy rate of the standard corpus (nats/token), computed once.
pub fn entropy_floor() -> f64 {
    static H: OnceLock<f64> = OnceLock::new();
    *H.get_or_init(|| Corpus::standard().entropy_rate_nats())
}

/// Default target: 0.1 nats/token above the entropy floor, rounded up to 0.01.
pub fn default_target_loss() -> f64 {
    ((entropy_floor() + 0.1) * 100.0).ceil() / 100.0
}

/// The llama architecture of a `width` x `depth` model: the default model's, with heads of
/// [`HEAD_DIM`], half as many key/value heads (GQA) when the head count is even, and an MLP
/// of 8/3 x width rounded up to a multiple of 32 (352 for width 128, as the default model).
pub fn model_config(width: usize, depth: usize) -> LlamaConfig {
    let heads = (width / HEAD_DIM).max(1);
    let mut c = default_config();
    c.hidden_size = width;
    c.num_hidden_layers = depth;
    c.num_attention_heads = heads;
    c.num_key_value_heads = Some(if heads.is_multiple_of(2) {
        heads / 2
    } else {
        heads
    });
    c.intermediate_size = (8 * width).div_ceil(3).div_ceil(32) * 32;
    c
}

fn num(spec: &RunSpec, axis: &str) -> Result<f64, String> {
    spec.param(axis)
        .and_then(AxisValue::as_f64)
        .ok_or_else(|| format!("axis '{axis}' has no numeric value"))
}

fn int(spec: &RunSpec, axis: &str) -> Result<u64, String> {
    spec.param(axis)
        .and_then(AxisValue::as_i64)
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| format!("axis '{axis}' has no integer value"))
}

/// An option value: `Ok(None)` when absent; numbers must be finite and in `range`.
fn opt_num(
    spec: &RunSpec,
    key: &str,
    ok: impl Fn(f64) -> bool,
    want: &str,
) -> Result<Option<f64>, String> {
    match spec.options.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && ok(x) => Ok(Some(x)),
            _ => Err(format!("[options] {key} = {n}: expected {want}")),
        },
        Some(other) => Err(format!("[options] {key} = {other}: expected {want}")),
    }
}

impl TrainConfig {
    /// Reads and checks a spec; the error is one line naming the axis or option.
    pub fn from_spec(spec: &RunSpec) -> Result<TrainConfig, String> {
        for key in spec.options.keys() {
            // The process backend's worker settings, which a suite comparing candle-train with
            // a worker carries in the same [options] (`lr` is not among them: here it is an axis).
            if WORKER_KEYS.contains(&key.as_str()) {
                continue;
            }
            if !OPTIONS.iter().any(|(k, _)| k == key) {
                let known: Vec<&str> = OPTIONS.iter().map(|(k, _)| *k).collect();
                return Err(format!(
                    "unknown option '{key}' for backend candle-train; known: {}",
                    known.join(", ")
                ));
            }
        }
        let dtype = match spec.param("dtype").and_then(AxisValue::as_str) {
            Some("bf16") => DType::BF16,
            Some("f32") | None => DType::F32,
            Some(other) => return Err(format!("dtype '{other}' cannot be trained (f32, bf16)")),
        };
        let fraction = |x: f64| (0.0..1.0).contains(&x);
        let preset = match spec.param("model").and_then(AxisValue::as_str) {
            None | Some(effbench_harness::axes::CUSTOM_MODEL) => None,
            Some(m) => match m.strip_prefix(effbench_harness::records::PRESET_PREFIX) {
                Some(p) => {
                    Some(crate::preset::parse(p).map_err(|e| format!("model '{m}': {e:#}"))?)
                }
                None => {
                    return Err(format!(
                        "model '{m}': candle-train trains the width x depth llama (model = \
                         \"custom\", the default) or a preset (model = \"preset:<name>\"), from \
                         seeded weights"
                    ))
                }
            },
        };
        let save_checkpoint = match spec.options.get("save_checkpoint") {
            None => preset.is_none(),
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "[options] save_checkpoint = {other}: expected true or false"
                ))
            }
        };
        let c = TrainConfig {
            batch: int(spec, "batch")? as usize,
            seq_len: int(spec, "seq_len")? as usize,
            width: int(spec, "width")? as usize,
            depth: int(spec, "depth")? as usize,
            steps: int(spec, "steps")?,
            lr: num(spec, "lr")?,
            warmup_steps: int(spec, "warmup_steps")?,
            target_loss: num(spec, "target_loss")?,
            eval_every: int(spec, "eval_every")?,
            dtype,
            weight_decay: opt_num(spec, "weight_decay", |x| x >= 0.0, "a number >= 0")?
                .unwrap_or(0.1),
            beta1: opt_num(spec, "beta1", fraction, "a number in [0, 1)")?.unwrap_or(0.9),
            beta2: opt_num(spec, "beta2", fraction, "a number in [0, 1)")?.unwrap_or(0.95),
            eps: opt_num(spec, "eps", |x| x > 0.0, "a number > 0")?.unwrap_or(1e-8),
            grad_clip: opt_num(spec, "grad_clip", |x| x >= 0.0, "a number >= 0")?.unwrap_or(1.0),
            min_lr_ratio: opt_num(spec, "min_lr_ratio", |x| (0.0..=1.0).contains(&x), "0..=1")?
                .unwrap_or(0.1),
            eval_tokens: opt_num(
                spec,
                "eval_tokens",
                |x| x >= 1.0 && x.fract() == 0.0,
                "an integer >= 1",
            )?
            .map_or(8192, |x| x as usize),
            checkpoint_every: opt_num(
                spec,
                "checkpoint_every",
                |x| x >= 0.0 && x.fract() == 0.0,
                "an integer >= 0",
            )?
            .map_or(100, |x| x as u64),
            stop_at_target: match spec.options.get("stop_at_target") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(format!(
                        "[options] stop_at_target = {other}: expected true or false"
                    ))
                }
            },
            data_parallel: match spec.options.get("data_parallel") {
                None => DataParallel::Auto,
                Some(Value::String(s)) if s == "auto" => DataParallel::Auto,
                Some(Value::Number(n)) if n.as_u64().is_some_and(|k| k >= 1) => {
                    DataParallel::Fixed(n.as_u64().unwrap_or(1) as usize)
                }
                Some(other) => {
                    return Err(format!(
                        "[options] data_parallel = {other}: expected \"auto\" or an integer >= 1"
                    ))
                }
            },
            preset,
            save_checkpoint,
        };
        c.check()?;
        Ok(c)
    }

    /// Range checks across fields (each field alone was checked by its axis kind).
    fn check(&self) -> Result<(), String> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("lr = {}: the learning rate must be > 0", self.lr));
        }
        if self.preset.is_none() && !self.width.is_multiple_of(HEAD_DIM) {
            return Err(format!(
                "width = {}: must be a multiple of {HEAD_DIM} (attention heads of {HEAD_DIM})",
                self.width
            ));
        }
        let context = self.model().max_position_embeddings;
        if self.seq_len > context {
            return Err(format!(
                "seq_len = {} exceeds the model context of {context} tokens",
                self.seq_len
            ));
        }
        if self.warmup_steps > self.steps {
            return Err(format!(
                "warmup_steps = {} exceeds steps = {}",
                self.warmup_steps, self.steps
            ));
        }
        Ok(())
    }

    /// The micro-batches of a step, `(first row, rows)`: `data_parallel` of them (`auto`: one
    /// per CPU thread on the CPU, one on a GPU), never more than `batch`, as even as the batch
    /// allows.
    pub fn micro_batches(&self, on_cpu: bool) -> Vec<(usize, usize)> {
        let k = match self.data_parallel {
            DataParallel::Auto if on_cpu => candle_core::utils::get_num_threads(),
            DataParallel::Auto => 1,
            DataParallel::Fixed(k) => k,
        }
        .clamp(1, self.batch.max(1));
        let (base, extra) = (self.batch / k, self.batch % k);
        let mut start = 0;
        (0..k)
            .map(|i| {
                let rows = base + usize::from(i < extra);
                let shard = (start, rows);
                start += rows;
                shard
            })
            .collect()
    }

    /// Tokens trained on per step.
    pub fn tokens_per_step(&self) -> u64 {
        (self.batch * self.seq_len) as u64
    }

    /// The model architecture: the preset's, or the `width` x `depth` llama.
    pub fn model(&self) -> LlamaConfig {
        match &self.preset {
            Some(p) => p.config.clone(),
            None => model_config(self.width, self.depth),
        }
    }

    /// Learning rate of step `step` (0-based): linear warm-up to `lr` over `warmup_steps`,
    /// then cosine decay to `lr x min_lr_ratio` at the last step.
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = (self.steps - self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let min = self.lr * self.min_lr_ratio;
        min + (self.lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
impl TrainConfig {
    /// A small valid configuration for unit tests.
    pub(crate) fn for_tests() -> TrainConfig {
        TrainConfig {
            batch: 1,
            seq_len: 8,
            width: 32,
            depth: 1,
            steps: 110,
            lr: 1.0,
            warmup_steps: 10,
            target_loss: 1.0,
            eval_every: 10,
            dtype: DType::F32,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            min_lr_ratio: 0.1,
            eval_tokens: 8,
            checkpoint_every: 0,
            stop_at_target: false,
            data_parallel: DataParallel::Fixed(1),
            preset: None,
            save_checkpoint: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_128_is_the_default_architecture() {
        let c = model_config(128, 4);
        assert_eq!(c, default_config());
        let small = model_config(96, 2);
        assert_eq!((small.num_attention_heads, small.kv_heads()), (3, 3));
        assert_eq!(small.intermediate_size, 256);
        small.check().unwrap();
    }

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let c = TrainConfig::for_tests();
        assert!((c.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(9) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(10) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(60) - 0.55).abs() < 1e-12, "{}", c.lr_at(60));
        assert!((c.lr_at(110) - 0.1).abs() < 1e-12);
        assert!(c.lr_at(109) > 0.1 && c.lr_at(109) < 0.11);
    }

    #[test]
    fn micro_batches_cover_the_batch_evenly() {
        let mut c = TrainConfig {
            batch: 10,
            data_parallel: DataParallel::Fixed(3),
            ..TrainConfig::for_tests()
        };
        assert_eq!(c.micro_batches(true), vec![(0, 4), (4, 3), (7, 3)]);
        c.data_parallel = DataParallel::Fixed(16);
        assert_eq!(
            c.micro_batches(true).len(),
            10,
            "never more than one row each"
        );
        c.data_parallel = DataParallel::Fixed(1);
        assert_eq!(c.micro_batches(true), vec![(0, 10)]);
        c.data_parallel = DataParallel::Auto;
        assert_eq!(
            c.micro_batches(false),
            vec![(0, 10)],
            "auto: no split on a GPU"
        );
    }

    #[test]
    fn default_target_is_above_the_floor() {
        let (h, t) = (entropy_floor(), default_target_loss());
        assert!(t > h + 0.09 && t <= h + 0.11, "{h} {t}");
    }
}
