//! Probes of the machine a result is measured on: [`environment`] fills the
//! environment fingerprint (CPU, memory, OS, build, GPUs through NVML, the batch scheduler).
//! The fingerprint itself is plain data in [`crate::env`]; the probing lives here so that the
//! data module depends on nothing that probes.

use crate::env::{Environment, GpuInfo, SchedulerInfo};

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
        scheduler: scheduler(),
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

/// Which batch scheduler (if any) started this process: Slurm, Kubernetes, or one named by
/// the user through `EFFBENCH_SCHEDULER`/`EFFBENCH_JOB_ID`/`EFFBENCH_NODE_NAME` (for PBS,
/// LSF, HTCondor ...). Recorded in the environment fingerprint and in shard manifests.
pub fn scheduler() -> Option<SchedulerInfo> {
    scheduler_from(&|k| std::env::var(k).ok())
}

/// Detection over any variable lookup (testable without touching the process environment).
pub fn scheduler_from(var: &dyn Fn(&str) -> Option<String>) -> Option<SchedulerInfo> {
    let get = |k: &str| {
        var(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut info = if let Some(job) = get("SLURM_JOB_ID") {
        SchedulerInfo {
            name: "slurm".into(),
            job_id: Some(get("SLURM_ARRAY_JOB_ID").unwrap_or(job)),
            task: get("SLURM_ARRAY_TASK_ID"),
            node_name: get("SLURMD_NODENAME").or_else(|| get("SLURM_NODELIST")),
        }
    } else if get("KUBERNETES_SERVICE_HOST").is_some() || get("JOB_COMPLETION_INDEX").is_some() {
        SchedulerInfo {
            name: "kubernetes".into(),
            job_id: get("EFFBENCH_JOB_NAME").or_else(|| get("HOSTNAME")),
            task: get("JOB_COMPLETION_INDEX"),
            node_name: None,
        }
    } else if let Some(name) = get("EFFBENCH_SCHEDULER") {
        SchedulerInfo {
            name,
            job_id: None,
            task: None,
            node_name: None,
        }
    } else {
        return None;
    };
    if let Some(n) = get("EFFBENCH_SCHEDULER") {
        info.name = n;
    }
    if let Some(j) = get("EFFBENCH_JOB_ID") {
        info.job_id = Some(j);
    }
    if let Some(n) = get("EFFBENCH_NODE_NAME") {
        info.node_name = Some(n);
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_without_a_gpu() {
        let env = environment(&[]);
        assert!(env.cpu_threads >= 1);
        assert!(env.ram_bytes > 0);
        assert!(!env.rustc_version.is_empty());
        if env.gpus.is_empty() {
            assert!(env.nvml.starts_with("unavailable") || env.nvml.starts_with("ok"));
        }
    }

    fn detect(vars: &[(&str, &str)]) -> Option<SchedulerInfo> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        scheduler_from(&move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn slurm_array_task() {
        let i = detect(&[
            ("SLURM_JOB_ID", "17"),
            ("SLURM_ARRAY_JOB_ID", "15"),
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURMD_NODENAME", "gpu07"),
        ])
        .unwrap();
        assert_eq!(i.name, "slurm");
        assert_eq!(i.job_id.as_deref(), Some("15"));
        assert_eq!(i.task.as_deref(), Some("2"));
        assert_eq!(i.summary(), "slurm job 15_2 on gpu07");
        let plain = detect(&[("SLURM_JOB_ID", "9"), ("SLURM_NODELIST", "n1")]).unwrap();
        assert_eq!(plain.summary(), "slurm job 9 on n1");
    }

    #[test]
    fn kubernetes_indexed_job_and_overrides() {
        let i = detect(&[
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("JOB_COMPLETION_INDEX", "3"),
            ("HOSTNAME", "bench-3-abcde"),
            ("EFFBENCH_JOB_NAME", "bench"),
            ("EFFBENCH_NODE_NAME", "node-a"),
        ])
        .unwrap();
        assert_eq!(i.summary(), "kubernetes job bench_3 on node-a");
        let pbs = detect(&[("EFFBENCH_SCHEDULER", "pbs"), ("EFFBENCH_JOB_ID", "77")]).unwrap();
        assert_eq!(pbs.summary(), "pbs job 77");
        assert!(detect(&[("HOSTNAME", "laptop")]).is_none());
        assert!(detect(&[("SLURM_JOB_ID", " ")]).is_none());
    }
}
