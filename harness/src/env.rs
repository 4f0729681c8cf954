//! Environment fingerprint: the hardware and software a result was measured on, so any row
//! can be reproduced or explained. Collected once per invocation.

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
    pub scheduler: Option<crate::cluster::SchedulerInfo>,
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
    /// Collects the fingerprint; `features` are the calling binary's cargo features.
    pub fn collect(features: &[&str]) -> Environment {
        let sys = sysinfo::System::new_with_specifics(
            sysinfo::RefreshKind::nothing()
                .with_cpu(sysinfo::CpuRefreshKind::nothing())
                .with_memory(sysinfo::MemoryRefreshKind::nothing().with_ram()),
        )
        .ok();
        let cpu_model = sys
            .as_ref()
            .and_then(|s| s.cpus().first().map(|c| c.brand().trim().to_string()))
            .unwrap_or_default();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (gpus, nvml) = gpus();
        Environment {
            effbench_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("EFFBENCH_GIT_COMMIT").into(),
            git_dirty: env!("EFFBENCH_GIT_DIRTY") == "true",
            rustc_version: env!("EFFBENCH_RUSTC_VERSION").into(),
            build_profile: env!("EFFBENCH_PROFILE").into(),
            target: env!("EFFBENCH_TARGET").into(),
            features: features.iter().map(|f| f.to_string()).collect(),
            hostname: sysinfo::System::host_name().unwrap_or_default(),
            os: sysinfo::System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.into()),
            kernel: sysinfo::System::kernel_version().unwrap_or_default(),
            arch: std::env::consts::ARCH.into(),
            cpu_model,
            cpu_cores_physical: sysinfo::System::physical_core_count().unwrap_or(threads),
            cpu_threads: threads,
            ram_bytes: sys.as_ref().map_or(0, |s| s.total_memory()),
            cpu_governor: std::fs::read_to_string(
                "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
            )
            .ok()
            .map(|s| s.trim().to_string()),
            gpus,
            nvml,
            scheduler: crate::cluster::SchedulerInfo::detect(),
            peak_flops: None,
            peak_bandwidth: None,
        }
    }

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

/// GPUs through NVML. NVML is loaded at run time; its absence is a normal answer, not an error.
fn gpus() -> (Vec<GpuInfo>, String) {
    let nvml = match crate::meters::nvml::shared() {
        Ok(n) => n,
        Err(e) => return (Vec::new(), format!("unavailable: {e}")),
    };
    let driver = nvml.sys_driver_version().unwrap_or_else(|_| "?".into());
    let cuda = nvml
        .sys_cuda_driver_version()
        .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10))
        .unwrap_or_else(|_| "?".into());
    let count = nvml.device_count().unwrap_or(0);
    let gpus = (0..count)
        .filter_map(|i| {
            let d = nvml.device_by_index(i).ok()?;
            Some(GpuInfo {
                index: i,
                name: d.name().unwrap_or_default(),
                memory_bytes: d.memory_info().map(|m| m.total).unwrap_or(0),
                uuid: d.uuid().ok(),
            })
        })
        .collect();
    (gpus, format!("ok (driver {driver}, CUDA {cuda})"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn collects_without_a_gpu() {
        let env = super::Environment::collect(&[]);
        assert!(env.cpu_threads >= 1);
        assert!(env.ram_bytes > 0);
        assert!(!env.rustc_version.is_empty());
        if env.gpus.is_empty() {
            assert!(env.nvml.starts_with("unavailable") || env.nvml.starts_with("ok"));
        }
    }
}
