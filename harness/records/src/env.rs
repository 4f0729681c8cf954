//! Environment fingerprint: the hardware and software a result was measured on, so any row
//! can be reproduced or explained. Plain data; collected once per invocation by
//! `effbench_harness::probe::environment`.

pub use crate::roofline::{PeakBandwidth, PeakFlops};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub memory_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub effbench_version: String,
    /// Commit effbench was built from ("" when built outside git).
    pub git_commit: String,
    /// Built with uncommitted changes to tracked files.
    pub git_dirty: bool,
    pub rustc_version: String,
    pub build_profile: String,
    pub target: String,
    /// Cargo features compiled in (e.g. `cuda`).
    pub features: Vec<String>,
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub cpu_model: String,
    pub cpu_cores_physical: usize,
    pub cpu_threads: usize,
    pub ram_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_governor: Option<String>,
    pub gpus: Vec<GpuInfo>,
    /// `ok (driver X, CUDA Y)` or why NVML is unavailable.
    pub nvml: String,
    /// The batch scheduler (Slurm, Kubernetes ...), job id and node name, when run under one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerInfo>,
    /// Measured peak FLOP/s of the run's device and dtype (matmul probe), when the run
    /// computes MFU (training runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_flops: Option<PeakFlops>,
    /// Measured memory bandwidth of the run's device (streaming-read probe), when the run
    /// computes MBU (inference runs whose backend reports the model's work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_bandwidth: Option<PeakBandwidth>,
}

impl Environment {
    /// Identity of the machine for "same hardware" questions (speed-up baselines, the
    /// newest result of a run per machine): host, CPU, threads and GPUs.
    pub fn machine_key(&self) -> String {
        let gpus: Vec<&str> = self.gpus.iter().map(|g| g.name.as_str()).collect();
        format!(
            "{}|{}|{}|{}",
            self.hostname,
            self.cpu_model,
            self.cpu_threads,
            gpus.join(",")
        )
    }

    /// One line for terminal output.
    pub fn summary(&self) -> String {
        let gpu = match self.gpus.first() {
            Some(g) => format!(", {} x {}", self.gpus.len(), g.name),
            None => String::new(),
        };
        format!(
            "{} ({} threads), {:.1} GiB RAM{gpu}, {} {}",
            self.cpu_model,
            self.cpu_threads,
            self.ram_bytes as f64 / (1u64 << 30) as f64,
            self.os,
            self.kernel
        )
    }
}

/// The scheduler, job and node a result was measured under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulerInfo {
    /// `slurm`, `kubernetes`, or the value of `EFFBENCH_SCHEDULER`.
    pub name: String,
    /// Slurm: the array job id (`SLURM_ARRAY_JOB_ID`) or `SLURM_JOB_ID`; Kubernetes: the Job
    /// name (`EFFBENCH_JOB_NAME`, set by `effbench k8s`) or else the pod name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Slurm: `SLURM_ARRAY_TASK_ID`; Kubernetes: `JOB_COMPLETION_INDEX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Slurm: `SLURMD_NODENAME`; Kubernetes: the node the pod runs on (`EFFBENCH_NODE_NAME`,
    /// from the downward API `spec.nodeName` in manifests written by `effbench k8s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
}

impl SchedulerInfo {
    /// `slurm job 12_3 on node7` style text.
    pub fn summary(&self) -> String {
        let mut s = self.name.clone();
        if let Some(j) = &self.job_id {
            s.push_str(&format!(" job {j}"));
            if let Some(t) = &self.task {
                s.push_str(&format!("_{t}"));
            }
        }
        if let Some(n) = &self.node_name {
            s.push_str(&format!(" on {n}"));
        }
        s
    }
}
