//! A real Slurm cluster: munged, slurmctld and slurmd started here as a one-node cluster
//! (config in a temp dir, loopback only, private ports), a tiny suite submitted by
//! `effbench slurm --submit` as a 3-task job array plus the dependent merge job; the merged
//! set must hold exactly the run ids of a local `effbench run`, all `ok`, measured under
//! Slurm. The daemons are stopped by a guard, also when the test fails.
//!
//! Needs Debian's `slurm-wlm` and `munge` (`.ci/run` installs them). Without them it skips
//! with the reason, unless `EFFBENCH_REQUIRE_EXTERNAL=1`, where it fails.

#[path = "slurm/cluster.rs"]
mod cluster;
mod common;
use cluster::{missing_tools, tail, Cluster, NODE};
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

fn job_state(c: &Cluster, id: &str) -> String {
    let out = c.client_out("scontrol", &["show", "job", id]);
    out.split_whitespace()
        .filter_map(|w| w.strip_prefix("JobState="))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn array_job_on_a_real_one_node_cluster_equals_a_local_run() {
    let missing = missing_tools();
    if !missing.is_empty() {
        let why = format!(
            "Slurm is not installed (missing {}): apt-get install slurm-wlm munge",
            missing.join(", ")
        );
        if std::env::var("EFFBENCH_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
            panic!("EFFBENCH_REQUIRE_EXTERNAL=1 but {why}");
        }
        eprintln!("skipping the real Slurm test: {why}");
        return;
    }
    let w = Work::new();
    w.write(
        "s.toml",
        &tiny_suite(
            "slurmtiny",
            "dtype = [\"f32\", \"bf16\"]\nbatch = [1, 2]\nprompt_len = 8\ngen_len = [2, 3]",
            "warmup_iters = 0\nmin_iters = 2\nmin_duration_s = 0.0\nmax_duration_s = 2.0",
        ),
    );
    let local = w.run(&["run", "s.toml", "--out", "local"]);
    assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));

    let mut cluster = match Cluster::start() {
        Ok(c) => c,
        Err((why, c)) => {
            let logs = c.as_ref().map(|c| c.logs()).unwrap_or_default();
            drop(c);
            panic!("Slurm did not start: {why}\n{logs}");
        }
    };
    let mut cmd = cluster.client("sh");
    let o = cmd
        .current_dir(w.path())
        .args([
            "-c",
            "exec \"$0\" slurm s.toml --shards 3 --out job --time 10 --submit",
        ])
        .arg(bin())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "submit failed: {}{}",
        stderr(&o),
        cluster.logs()
    );
    let array = stdout(&o).trim().to_string();
    let err = stderr(&o);
    let merge = err
        .split("merge job ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no merge job id in: {err}"))
        .to_string();
    assert!(err.contains(&format!("afterok:{array}")), "{err}");

    let job = w.path().join("job");
    let start = Instant::now();
    let terminal = [
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
    ];
    let final_state = loop {
        if let Err(e) = cluster.check_alive() {
            panic!("{e}\n{}", cluster.logs());
        }
        let state = job_state(&cluster, &merge);
        if terminal.iter().any(|t| state == *t) {
            break state;
        }
        if start.elapsed() > Duration::from_secs(300) {
            let jobs = cluster.client_out("squeue", &["-a"]);
            let logs: String = std::fs::read_dir(job.join("logs"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| format!("\n== {} ==\n{}", e.path().display(), tail(&e.path(), 20)))
                .collect();
            panic!(
                "the jobs did not finish in 300 s (merge job {merge}: {state}); squeue:\n{jobs}{logs}{}",
                cluster.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let task_states = job_state(&cluster, &array);
    let merge_log = tail(&job.join("logs/merge.out"), 20);
    assert_eq!(
        final_state,
        "COMPLETED",
        "array tasks: {task_states}; merge log:\n{merge_log}{}",
        cluster.logs()
    );
    assert!(
        task_states.split(',').all(|s| s == "COMPLETED"),
        "{task_states}"
    );

    // The merged set is exactly the local run's, all ok, each measured by one array task.
    let read =
        |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let ids = |m: &Value| -> BTreeSet<String> {
        m["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let local_m = read(&w.path().join("local/manifest.json"));
    let merged_m = read(&job.join("merged/manifest.json"));
    assert_eq!(ids(&merged_m), ids(&local_m));
    assert_eq!(merged_m["planned"], local_m["planned"]);
    assert_eq!(ids(&merged_m).len(), 8);
    let mut tasks = BTreeSet::new();
    for r in merged_m["runs"].as_array().unwrap() {
        assert_eq!(r["state"], "ok", "{r}");
        let res = read(&job.join("merged").join(r["file"].as_str().unwrap()));
        assert_eq!(res["status"]["state"], "ok");
        let s = &res["env"]["scheduler"];
        assert_eq!(s["name"], "slurm", "{s}");
        assert_eq!(s["job_id"], array.as_str(), "{s}");
        assert_eq!(s["node_name"], NODE, "{s}");
        tasks.insert(s["task"].as_str().unwrap().to_string());
    }
    assert_eq!(
        tasks,
        ["0", "1", "2"].map(String::from).into_iter().collect()
    );
    let st = w.run(&["status", "job"]);
    assert_eq!(st.status.code(), Some(0), "{}", stdout(&st));
    assert!(
        stdout(&st).contains("3 of 3 shard(s) finished"),
        "{}",
        stdout(&st)
    );
    assert!(
        stdout(&st).contains(&format!("slurm job {array}_")),
        "{}",
        stdout(&st)
    );

    // The daemons stop, and nothing this cluster started is left behind.
    let pids: Vec<u32> = cluster.daemons.iter().map(|(_, c)| c.id()).collect();
    let forced = cluster.stop();
    assert!(forced.is_empty(), "had to kill: {forced:?}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "daemon {pid} still running"
        );
    }
    assert!(cluster.marked().is_empty(), "{:?}", cluster.marked());
}
