//! The `[options]` table of a `process` suite: the worker command (with `{axis}`
//! placeholders), environment, per-op timeouts, line limit, pass-through worker settings and
//! training hyper-parameters. Errors name the `options.` key.

use effbench_harness::protocol::{Op, DEFAULT_MAX_LINE_BYTES};
use effbench_harness::RunSpec;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Keys `[options]` may hold for this backend.
pub const KEYS: &[&str] = &[
    "cmd",
    "env",
    "env_from",
    "timeouts",
    "max_line_bytes",
    "worker",
    "lr",
    "weight_decay",
];

/// Parsed `[options]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessOptions {
    /// Worker command line, `{axis}` placeholders not yet replaced.
    pub cmd: Vec<String>,
    /// Extra environment variables of the worker (no secrets: see `env_from`).
    pub env: Vec<(String, String)>,
    /// Worker variables whose values come from effbench's own environment when the worker
    /// starts, by name (`HF_TOKEN = "MY_HF_TOKEN"`): secrets are never in the suite, the
    /// results or the run id.
    pub env_from: Vec<(String, String)>,
    /// Timeouts by op name (ops not named use [`Op::default_timeout`]).
    pub timeouts: BTreeMap<&'static str, Duration>,
    /// Longest reply line accepted.
    pub max_line_bytes: usize,
    /// Passed unchanged to the worker's `load` as `options`.
    pub worker: Map<String, Value>,
    /// Training: AdamW learning rate.
    pub lr: f64,
    /// Training: AdamW decoupled weight decay.
    pub weight_decay: f64,
}

fn err<T>(msg: String) -> Result<T, String> {
    Err(msg)
}

impl ProcessOptions {
    /// Parses `[options]`; the error names the offending `options.` key.
    pub fn parse(o: &Map<String, Value>) -> Result<ProcessOptions, String> {
        if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return err(format!(
                "options.{k} is not a setting of backend 'process' (it has: {})",
                KEYS.join(", ")
            ));
        }
        let cmd = match o.get("cmd") {
            None => {
                return err(
                    "backend 'process' needs options.cmd, the worker command line, e.g. \
                     cmd = [\"python3\", \"backends/workers/torch_worker.py\"]"
                        .into(),
                )
            }
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("options.cmd must be a list of strings")?,
            Some(_) => return err("options.cmd must be a non-empty list of strings".into()),
        };
        let table = |key: &str| -> Result<Vec<(String, String)>, String> {
            match o.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect::<Option<Vec<_>>>()
                    .ok_or(format!("options.{key} values must be strings")),
                Some(_) => err(format!("options.{key} must be a table of strings")),
            }
        };
        let env = table("env")?;
        for (k, v) in &env {
            effbench_harness::secrets::check_env_value("options.env", k, v)?;
        }
        let env_from = table("env_from")?;
        for (k, v) in &env_from {
            effbench_harness::secrets::check_env_name(&format!("options.env_from.{k}"), v)?;
        }
        let mut timeouts = BTreeMap::new();
        match o.get("timeouts") {
            None => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let op = Op::ALL.iter().find(|op| op.name() == k).ok_or_else(|| {
                        format!(
                            "options.timeouts.{k}: unknown op (ops: {})",
                            Op::ALL.map(|o| o.name()).join(", ")
                        )
                    })?;
                    match v.as_f64() {
                        Some(s) if s > 0.0 => {
                            let d = effbench_harness::limits::seconds(
                                &format!("options.timeouts.{k}"),
                                s,
                            )?;
                            timeouts.insert(op.name(), d);
                        }
                        _ => return err(format!("options.timeouts.{k} must be seconds > 0")),
                    }
                }
            }
            Some(_) => return err("options.timeouts must be a table of op = seconds".into()),
        }
        let max_line_bytes = match o.get("max_line_bytes") {
            None => DEFAULT_MAX_LINE_BYTES,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1024 => {
                    effbench_harness::limits::check_int(
                        "options.max_line_bytes",
                        n.into(),
                        1024,
                        (1u64 << 30).into(),
                    )?;
                    n as usize
                }
                _ => return err("options.max_line_bytes must be an integer >= 1024".into()),
            },
        };
        let worker = match o.get("worker") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return err("options.worker must be a table".into()),
        };
        let number = |key: &str, default: f64, ok: fn(f64) -> bool, want: &str| match o.get(key) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && ok(x) => Ok(x),
                _ => err(format!("options.{key} must be a number {want}")),
            },
        };
        Ok(ProcessOptions {
            cmd,
            env,
            env_from,
            timeouts,
            max_line_bytes,
            worker,
            lr: number("lr", 1e-3, |x| x > 0.0 && x <= 100.0, "> 0 and <= 100")?,
            weight_decay: number(
                "weight_decay",
                0.0,
                |x| (0.0..=100.0).contains(&x),
                "between 0 and 100",
            )?,
        })
    }

    /// The worker's extra environment: `env`, then each `env_from` variable read from
    /// effbench's environment now (its value registered for scrubbing, never stored).
    pub fn worker_env(&self) -> Result<Vec<(String, String)>, String> {
        let mut out = self.env.clone();
        for (name, from) in &self.env_from {
            let v = std::env::var(from).map_err(|_| {
                format!("options.env_from.{name} = \"{from}\": the environment variable {from} is not set")
            })?;
            effbench_harness::secrets::register(&v);
            out.push((name.clone(), v));
        }
        Ok(out)
    }

    /// The timeout of `op`.
    pub fn timeout(&self, op: Op) -> Duration {
        self.timeouts
            .get(op.name())
            .copied()
            .unwrap_or_else(|| op.default_timeout())
    }

    /// The command with `{axis}` placeholders replaced by the run's values (`{model}` by the
    /// resolved model path); `{{` and `}}` are literal braces.
    pub fn argv(&self, spec: &RunSpec, model_path: &str) -> Result<Vec<String>, String> {
        self.cmd
            .iter()
            .map(|arg| substitute(arg, spec, model_path))
            .collect()
    }
}

fn substitute(arg: &str, spec: &RunSpec, model_path: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        let Some(end) = tail.find('}').filter(|_| tail.starts_with('{')) else {
            return err(format!(
                "options.cmd: unbalanced brace in '{arg}' (use {{{{ or }}}})"
            ));
        };
        let name = &tail[1..end];
        let value = match name {
            "model" => model_path.to_string(),
            _ => match spec.params.get(name) {
                Some(v) => v.to_string(),
                None => {
                    let known: Vec<&str> = spec.params.keys().map(String::as_str).collect();
                    return err(format!(
                        "options.cmd: unknown placeholder {{{name}}} in '{arg}' (available: {})",
                        known.join(", ")
                    ));
                }
            },
        };
        out.push_str(&value);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
