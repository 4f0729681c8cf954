//! Probes of the machine a result is measured on: [`environment`] fills the
//! environment fingerprint (CPU, memory, OS, build, GPUs through NVML, the batch scheduler).
//! The fingerprint itself is plain data in [`crate::env`]; the probing lives here so that the
//! data module depends on nothing that probes.

use crate::env::{Environment, GpuInfo};

/// Collects the fingerprint; `features` are the calling binary's cargo features.
pub fn environment(features: &[&str]) -> Environment {
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
        let env = super::environment(&[]);
        assert!(env.cpu_threads >= 1);
        assert!(env.ram_bytes > 0);
        assert!(!env.rustc_version.is_empty());
        if env.gpus.is_empty() {
            assert!(env.nvml.starts_with("unavailable") || env.nvml.starts_with("ok"));
        }
    }
}
