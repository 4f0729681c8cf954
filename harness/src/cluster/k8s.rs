//! `effbench k8s`: Kubernetes manifests for a suite split into an Indexed Job (one pod per
//! shard, `completionMode: Indexed`, the shard taken from `JOB_COMPLETION_INDEX`), results on
//! a mounted PersistentVolumeClaim, plus a merge Job and `submit.sh` (applies the shards,
//! waits for the Job to complete, then applies the merge).
//!
//! The suite travels in a ConfigMap, so every pod reads the same bytes (its hash is checked by
//! `merge`). `JOB_COMPLETION_INDEX` is declared in the container's `env` from the Job's
//! completion-index annotation (the value the control plane injects under the same name), so
//! `$(JOB_COMPLETION_INDEX)` in `args` is expanded by the kubelet without a shell in the image.

use super::yaml::{int, map, s, seq, Node};
use anyhow::{bail, Result};

#[derive(Debug, Clone)]
pub struct K8sOptions {
    pub shards: usize,
    pub image: String,
    /// Job name (DNS-1123 label); the merge Job is `<name>-merge`, the ConfigMap `<name>-suite`.
    pub name: String,
    pub namespace: Option<String>,
    /// PersistentVolumeClaim for results (ReadWriteMany when pods land on several nodes).
    pub pvc: String,
    /// Pods at once; default all shards.
    pub parallelism: Option<usize>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub gpus: Option<u32>,
    /// effbench inside the image.
    pub command: String,
    /// Suite file name (ConfigMap key) and text.
    pub suite_file: String,
    pub suite_text: String,
    pub filters: Vec<String>,
    /// Pod retries for the whole Job (node loss, eviction ...; bad input fails at once).
    pub backoff_limit: u32,
}

#[derive(Debug)]
pub struct K8sManifests {
    /// ConfigMap + Indexed Job.
    pub shards: Vec<Node>,
    pub merge: Node,
    pub submit: String,
}

pub const SHARDS_FILE: &str = "shards.yaml";
pub const MERGE_FILE: &str = "merge.yaml";
pub const SUBMIT_FILE: &str = "submit.sh";
pub const RESULTS_MOUNT: &str = "/results";
pub const SUITE_MOUNT: &str = "/etc/effbench";
pub const SCRATCH_MOUNT: &str = "/scratch";
/// Seconds between SIGTERM and SIGKILL when a shard pod is evicted or deleted.
pub const TERMINATION_GRACE_S: i64 = 120;
/// Exit code of effbench for bad input: the Job fails at once instead of retrying.
const EXIT_BAD_INPUT: i64 = 2;

/// A DNS-1123 label: lowercase letters, digits and '-', starting and ending alphanumeric.
pub fn check_dns_label(what: &str, v: &str, max: usize) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= max
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if !ok {
        bail!(
            "{what} '{v}': expected a DNS-1123 label (lowercase letters, digits and '-', \
             at most {max} characters, starting and ending with a letter or digit)"
        );
    }
    Ok(())
}

/// A Kubernetes quantity like `2`, `500m`, `4Gi`, `1.5`.
pub fn check_quantity(what: &str, v: &str) -> Result<()> {
    let num_end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, suffix) = v.split_at(num_end);
    let num_ok = !num.is_empty() && num.parse::<f64>().is_ok_and(|x| x > 0.0);
    let suffixes = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    if !num_ok || !suffixes.contains(&suffix) {
        bail!("{what} '{v}': expected a Kubernetes quantity such as 2, 500m, 8Gi or 512Mi");
    }
    Ok(())
}

/// Lowercase, '-' for anything else, trimmed: a usable default Job name from a suite name.
pub fn default_name(suite: &str) -> String {
    let mut n: String = format!("effbench-{suite}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while n.contains("--") {
        n = n.replace("--", "-");
    }
    n.truncate(MAX_NAME);
    n.trim_matches('-').to_string()
}

/// Room for `-merge` and for the pod suffixes Kubernetes adds to Indexed Job pods.
pub const MAX_NAME: usize = 52;

fn labels(o: &K8sOptions, component: &str) -> Node {
    map(vec![
        ("app.kubernetes.io/name", s("effbench")),
        ("app.kubernetes.io/component", s(component)),
        ("app.kubernetes.io/instance", s(&o.name)),
    ])
}

fn metadata(o: &K8sOptions, name: &str, component: &str) -> Node {
    let mut m = vec![("name", s(name))];
    if let Some(ns) = &o.namespace {
        m.push(("namespace", s(ns)));
    }
    m.push(("labels", labels(o, component)));
    map(m)
}

fn field_env(name: &str, path: &str) -> Node {
    map(vec![
        ("name", s(name)),
        (
            "valueFrom",
            map(vec![("fieldRef", map(vec![("fieldPath", s(path))]))]),
        ),
    ])
}

fn value_env(name: &str, value: &str) -> Node {
    map(vec![("name", s(name)), ("value", s(value))])
}

fn resources(o: &K8sOptions, with_gpus: bool) -> Node {
    let mut req = Vec::new();
    let mut lim = Vec::new();
    if let Some(c) = &o.cpu {
        req.push(("cpu", s(c)));
    }
    if let Some(m) = &o.memory {
        req.push(("memory", s(m)));
        lim.push(("memory", s(m)));
    }
    if let (Some(g), true) = (o.gpus, with_gpus) {
        lim.push(("nvidia.com/gpu", int(g as i64)));
    }
    let mut r = Vec::new();
    if !req.is_empty() {
        r.push(("requests", map(req)));
    }
    if !lim.is_empty() {
        r.push(("limits", map(lim)));
    }
    map(r)
}

fn results_volume(o: &K8sOptions) -> Node {
    map(vec![
        ("name", s("results")),
        ("persistentVolumeClaim", map(vec![("claimName", s(&o.pvc))])),
    ])
}

fn job_dir(o: &K8sOptions) -> String {
    format!("{RESULTS_MOUNT}/{}", o.name)
}

/// Validates the options and builds the manifests.
pub fn manifests(o: &K8sOptions, runs: usize) -> Result<K8sManifests> {
    check_options(o, runs)?;
    let suite_cm = format!("{}-suite", o.name);
    let configmap = map(vec![
        ("apiVersion", s("v1")),
        ("kind", s("ConfigMap")),
        ("metadata", metadata(o, &suite_cm, "suite")),
        ("data", map(vec![(o.suite_file.as_str(), s(&o.suite_text))])),
    ]);
    Ok(K8sManifests {
        shards: vec![configmap, shard_job(o, &suite_cm)],
        merge: merge_job(o),
        submit: submit_script(o),
    })
}

/// Every option is one Kubernetes accepts, checked before anything is written.
fn check_options(o: &K8sOptions, runs: usize) -> Result<()> {
    super::check_shard_count(o.shards, runs)?;
    check_dns_label("--name", &o.name, MAX_NAME)?;
    if let Some(ns) = &o.namespace {
        check_dns_label("--namespace", ns, 63)?;
    }
    check_dns_label("--pvc", &o.pvc, 253)?;
    if o.image.trim().is_empty() || o.image.chars().any(|c| c.is_whitespace()) {
        bail!(
            "--image '{}': expected an image reference such as registry.example.com/effbench:0.1",
            o.image
        );
    }
    super::check_count("--parallelism", o.parallelism.map(|v| v as u64), "")?;
    super::check_count(
        "--gpus",
        o.gpus.map(u64::from),
        " (leave it out for CPU-only pods)",
    )?;
    if let Some(c) = &o.cpu {
        check_quantity("--cpu", c)?;
    }
    if let Some(m) = &o.memory {
        check_quantity("--memory", m)?;
    }
    Ok(())
}

/// The indexed Job: one pod per shard, each running its shard of the suite.
fn shard_job(o: &K8sOptions, suite_cm: &str) -> Node {
    let n = o.shards;
    let suite_path = format!("{SUITE_MOUNT}/{}", o.suite_file);
    // The kubelet expands `$(VAR)` in command and args: every user-given part goes through
    // escape::kubelet, only effbench's own `$(JOB_COMPLETION_INDEX)` stays live.
    let k = crate::escape::kubelet;
    let mut args = vec![
        s("run"),
        s(k(&suite_path)),
        s(format!("--shard=$(JOB_COMPLETION_INDEX)/{n}")),
        s(format!(
            "--out={}/{}$(JOB_COMPLETION_INDEX)",
            job_dir(o),
            super::SHARD_DIR_PREFIX
        )),
    ];
    args.extend(o.filters.iter().map(|f| s(format!("--filter={}", k(f)))));
    let env = seq(vec![
        field_env(
            "JOB_COMPLETION_INDEX",
            "metadata.annotations['batch.kubernetes.io/job-completion-index']",
        ),
        field_env("EFFBENCH_NODE_NAME", "spec.nodeName"),
        value_env("EFFBENCH_JOB_NAME", &o.name),
        value_env("EFFBENCH_MODELS_DIR", &format!("{SCRATCH_MOUNT}/models")),
    ]);
    let container = map(vec![
        ("name", s("effbench")),
        ("image", s(&o.image)),
        ("command", seq(vec![s(k(&o.command))])),
        ("args", seq(args)),
        ("workingDir", s(SCRATCH_MOUNT)),
        ("env", env),
        ("resources", resources(o, true)),
        ("volumeMounts", mounts(true)),
    ]);
    let pod = map(vec![
        ("restartPolicy", s("Never")),
        // On eviction the kubelet sends SIGTERM, then SIGKILL after this: time for effbench
        // to save the run in progress.
        ("terminationGracePeriodSeconds", int(TERMINATION_GRACE_S)),
        ("containers", seq(vec![container])),
        (
            "volumes",
            seq(vec![
                results_volume(o),
                map(vec![
                    ("name", s("suite")),
                    ("configMap", map(vec![("name", s(suite_cm))])),
                ]),
                scratch_volume(),
            ]),
        ),
    ]);
    map(vec![
        ("apiVersion", s("batch/v1")),
        ("kind", s("Job")),
        ("metadata", metadata(o, &o.name, "shard")),
        (
            "spec",
            map(vec![
                ("completionMode", s("Indexed")),
                ("completions", int(n as i64)),
                ("parallelism", int(o.parallelism.unwrap_or(n).min(n) as i64)),
                ("backoffLimit", int(o.backoff_limit as i64)),
                ("podFailurePolicy", pod_failure_policy()),
                (
                    "template",
                    map(vec![
                        ("metadata", map(vec![("labels", labels(o, "shard"))])),
                        ("spec", pod),
                    ]),
                ),
            ]),
        ),
    ])
}

/// Bad input (exit code EXIT_BAD_INPUT) fails the whole Job at once; a pod's eviction does
/// not count against the retries.
fn pod_failure_policy() -> Node {
    map(vec![(
        "rules",
        seq(vec![
            map(vec![
                ("action", s("FailJob")),
                (
                    "onExitCodes",
                    map(vec![
                        ("containerName", s("effbench")),
                        ("operator", s("In")),
                        ("values", seq(vec![int(EXIT_BAD_INPUT)])),
                    ]),
                ),
            ]),
            map(vec![
                ("action", s("Ignore")),
                (
                    "onPodConditions",
                    seq(vec![map(vec![("type", s("DisruptionTarget"))])]),
                ),
            ]),
        ]),
    )])
}

/// The volume mounts of a container: results, the suite (shard pods), scratch.
fn mounts(suite: bool) -> Node {
    let mut m = vec![map(vec![
        ("name", s("results")),
        ("mountPath", s(RESULTS_MOUNT)),
    ])];
    if suite {
        m.push(map(vec![
            ("name", s("suite")),
            ("mountPath", s(SUITE_MOUNT)),
            ("readOnly", Node::Bool(true)),
        ]));
    }
    m.push(map(vec![
        ("name", s("scratch")),
        ("mountPath", s(SCRATCH_MOUNT)),
    ]));
    seq(m)
}

fn scratch_volume() -> Node {
    map(vec![("name", s("scratch")), ("emptyDir", map(vec![]))])
}

/// The Job that merges the shards' directories once they all completed.
fn merge_job(o: &K8sOptions) -> Node {
    let n = o.shards;
    let k = crate::escape::kubelet;
    let mut merge_args = vec![s("merge")];
    merge_args.extend((0..n).map(|i| s(format!("{}/{}", job_dir(o), super::shard_dir_name(i)))));
    merge_args.push(s(format!("--out={}/{}", job_dir(o), super::MERGED_DIR)));
    let merge_container = map(vec![
        ("name", s("effbench-merge")),
        ("image", s(&o.image)),
        ("command", seq(vec![s(k(&o.command))])),
        ("args", seq(merge_args)),
        ("workingDir", s(SCRATCH_MOUNT)),
        ("volumeMounts", mounts(false)),
    ]);
    let merge_name = format!("{}-merge", o.name);
    map(vec![
        ("apiVersion", s("batch/v1")),
        ("kind", s("Job")),
        ("metadata", metadata(o, &merge_name, "merge")),
        (
            "spec",
            map(vec![
                ("completions", int(1)),
                ("parallelism", int(1)),
                ("backoffLimit", int(0)),
                (
                    "template",
                    map(vec![
                        ("metadata", map(vec![("labels", labels(o, "merge"))])),
                        (
                            "spec",
                            map(vec![
                                ("restartPolicy", s("Never")),
                                ("containers", seq(vec![merge_container])),
                                ("volumes", seq(vec![results_volume(o), scratch_volume()])),
                            ]),
                        ),
                    ]),
                ),
            ]),
        ),
    ])
}

/// `submit.sh`: applies the shard Job, waits for it, then applies the merge Job.
fn submit_script(o: &K8sOptions) -> String {
    let n = o.shards;
    let merge_name = format!("{}-merge", o.name);
    let ns = o
        .namespace
        .as_ref()
        .map_or(String::new(), |n| format!(" -n {n}"));
    format!(
        "#!/bin/sh\n\
         # Applies the shard Job, waits until it completes (or fails), then applies the merge Job.\n\
         set -eu\n\
         cd \"$(dirname \"$0\")\"\n\
         kubectl{ns} apply -f {SHARDS_FILE}\n\
         echo \"waiting for job/{name} ({n} shards) ...\"\n\
         while :; do\n\
         \x20 state=$(kubectl{ns} get job/{name} -o 'jsonpath={{.status.conditions[?(@.status==\"True\")].type}}')\n\
         \x20 case \"$state\" in\n\
         \x20   *Failed*) echo \"job/{name} failed: kubectl{ns} describe job/{name}\" >&2; exit 1 ;;\n\
         \x20   *Complete*) break ;;\n\
         \x20 esac\n\
         \x20 sleep 30\n\
         done\n\
         kubectl{ns} apply -f {MERGE_FILE}\n\
         kubectl{ns} wait --for=condition=complete --timeout=1h job/{merge_name}\n\
         echo \"merged results: {dir}/{merged} on PVC {pvc}\"\n",
        name = o.name,
        dir = job_dir(o),
        merged = super::MERGED_DIR,
        pvc = o.pvc,
    )
}

#[cfg(test)]
#[path = "k8s_tests.rs"]
mod tests;
