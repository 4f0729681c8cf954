//! Which batch scheduler (if any) started this process: Slurm, Kubernetes, or one named by
//! the user through `EFFBENCH_SCHEDULER`/`EFFBENCH_JOB_ID`/`EFFBENCH_NODE_NAME` (for PBS,
//! LSF, HTCondor ...). Recorded in the environment fingerprint and in shard manifests.

pub use crate::env::SchedulerInfo;

impl SchedulerInfo {
    /// Detects the scheduler from this process's environment.
    pub fn detect() -> Option<SchedulerInfo> {
        detect_from(&|k| std::env::var(k).ok())
    }

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

/// Detection over any variable lookup (testable without touching the process environment).
pub fn detect_from(var: &dyn Fn(&str) -> Option<String>) -> Option<SchedulerInfo> {
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

    fn detect(vars: &[(&str, &str)]) -> Option<SchedulerInfo> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        detect_from(&move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
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
