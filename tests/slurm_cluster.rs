//! A real Slurm cluster: munged, slurmctld and slurmd started here as a one-node cluster
//! (config in a temp dir, loopback only, private ports), a tiny suite submitted by
//! `effbench slurm --submit` as a 3-task job array plus the dependent merge job; the merged
//! set must hold exactly the run ids of a local `effbench run`, all `ok`, measured under
//! Slurm. The daemons are stopped by a guard, also when the test fails.
//!
//! Needs Debian's `slurm-wlm` and `munge` (`.ci/run` installs them). Without them it skips
//! with the reason, unless `EFFBENCH_REQUIRE_EXTERNAL=1`, where it fails.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NODE: &str = "effbench-node";
const PARTITION: &str = "effbench";
/// Marks every process this cluster starts (daemons and jobs) so the guard finds them all.
const MARKER: &str = "EFFBENCH_SLURM_TEST_CLUSTER";

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The daemons and their files; stopping them is the `Drop`.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Cluster {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The last lines of every daemon log, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for name in [
            "munged.log",
            "slurmctld.out",
            "slurmctld.log",
            "slurmd.out",
            "slurmd.log",
        ] {
            out.push_str(&format!(
                "\n===== {name} =====\n{}\n",
                tail(&self.path(name), 40)
            ));
        }
        out
    }

    fn client(&self, prog: &str) -> Command {
        let mut c = Command::new(find(prog).unwrap_or_else(|| prog.into()));
        c.env("SLURM_CONF", &self.conf).env(MARKER, self.dir.path());
        c
    }

    fn client_out(&self, prog: &str, args: &[&str]) -> String {
        match self.client(prog).args(args).output() {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => format!("cannot run {prog}: {e}"),
        }
    }

    fn spawn(&mut self, name: &'static str, prog: &str, args: &[&str], log: &str) {
        let log = std::fs::File::create(self.path(log)).unwrap();
        let child = Command::new(find(prog).unwrap())
            .args(args)
            .env(MARKER, self.dir.path())
            .env_remove("SLURM_CONF")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {prog}: {e}"));
        self.daemons.push((name, child));
    }

    /// Fails (with the logs) if a daemon already exited.
    fn check_alive(&mut self) -> Result<(), String> {
        for (name, child) in &mut self.daemons {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{name} exited early ({status})"));
            }
        }
        Ok(())
    }

    fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if done(self) {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!("timed out after {limit:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn start() -> Result<Cluster, (String, Option<Cluster>)> {
        let dir = tempfile::Builder::new()
            .prefix("effbench-slurm-")
            .tempdir_in("/tmp")
            .map_err(|e| (format!("temp dir: {e}"), None))?;
        let mut c = Cluster {
            conf: dir.path().join("slurm.conf"),
            dir,
            daemons: Vec::new(),
        };
        match c.boot() {
            Ok(()) => Ok(c),
            Err(e) => Err((e, Some(c))),
        }
    }

    fn boot(&mut self) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let d = self.dir.path().to_path_buf();
        let set_mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        // munged insists that its socket directory is reachable by all and not writable by others.
        set_mode(&d, 0o711);
        for sub in ["munge", "state", "spool"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
            set_mode(&d.join(sub), 0o755);
        }
        let mut key = vec![0u8; 1024];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(|e| format!("random key: {e}"))?;
        let key_path = d.join("munge.key");
        std::fs::write(&key_path, &key).unwrap();
        set_mode(&key_path, 0o400);
        let socket = d.join("munge/munge.socket");
        let p = |x: &Path| x.display().to_string();
        self.spawn(
            "munged",
            "munged",
            &[
                "--foreground",
                &format!("--socket={}", p(&socket)),
                &format!("--key-file={}", p(&key_path)),
                &format!("--pid-file={}", p(&d.join("munged.pid"))),
                &format!("--seed-file={}", p(&d.join("munged.seed"))),
                "--num-threads=2",
            ],
            "munged.log",
        );
        let sock = socket.clone();
        self.wait_for("the munge socket", Duration::from_secs(20), move |_| {
            sock.exists()
        })?;

        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let user = String::from_utf8_lossy(&Command::new("id").arg("-un").output().unwrap().stdout)
            .trim()
            .to_string();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let conf = format!(
            "ClusterName=effbenchtest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={ctld}\n\
             SlurmdPort={slurmd}\n\
             AuthType=auth/munge\n\
             AuthInfo=socket={sock}\n\
             CredType=cred/munge\n\
             SlurmUser={user}\n\
             SlurmdUser={user}\n\
             StateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\n\
             SlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/slurmctld.log\n\
             SlurmdLogFile={d}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             SchedulerType=sched/backfill\n\
             SchedulerParameters=sched_interval=1\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\n\
             MpiDefault=none\n\
             SwitchType=switch/none\n\
             ReturnToService=2\n\
             MessageTimeout=5\n\
             MinJobAge=600\n\
             NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={host} CPUs={cpus} RealMemory=1000 State=UNKNOWN\n\
             PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP\n",
            ctld = free_port(),
            slurmd = free_port(),
            sock = p(&socket),
            d = p(&d),
        );
        std::fs::write(&self.conf, conf).unwrap();
        let conf = p(&self.conf);
        self.spawn(
            "slurmctld",
            "slurmctld",
            &["-D", "-i", "-f", &conf],
            "slurmctld.out",
        );
        self.wait_for("slurmctld to answer", Duration::from_secs(30), |c| {
            c.client("scontrol")
                .arg("ping")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("is UP"))
        })?;
        self.spawn(
            "slurmd",
            "slurmd",
            &["-D", "-N", NODE, "-f", &conf],
            "slurmd.out",
        );
        self.wait_for("the node to be idle", Duration::from_secs(60), |c| {
            let state = c.client_out("sinfo", &["-h", "-n", NODE, "-o", "%T"]);
            state.trim() == "idle"
        })
    }

    /// Processes carrying this cluster's marker (jobs, slurmstepd, daemons), except us.
    fn marked(&self) -> Vec<(u32, String)> {
        let needle = format!("{MARKER}={}", self.dir.path().display());
        let me = std::process::id();
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(env) = std::fs::read(e.path().join("environ")) else {
                continue;
            };
            if env.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                found.push((pid, cmd.trim().to_string()));
            }
        }
        found
    }

    /// Cancels jobs, stops the daemons (TERM, then KILL after 10 s), then kills anything
    /// left with this cluster's marker. Returns what had to be killed.
    fn stop(&mut self) -> Vec<String> {
        let mut forced = Vec::new();
        if self.daemons.is_empty() {
            return forced;
        }
        let _ = self
            .client("scancel")
            .args(["--partition", PARTITION])
            .output();
        for (name, child) in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    let _ = child.wait();
                    forced.push(name.to_string());
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for (pid, cmd) in self.marked() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            forced.push(format!("{pid} {cmd}"));
        }
        self.daemons.clear();
        forced
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let forced = self.stop();
        if !forced.is_empty() {
            eprintln!("slurm test guard had to kill: {forced:?}");
        }
    }
}

fn missing_tools() -> Vec<&'static str> {
    [
        "munged",
        "slurmctld",
        "slurmd",
        "sbatch",
        "scontrol",
        "sinfo",
        "scancel",
    ]
    .into_iter()
    .filter(|t| find(t).is_none())
    .collect()
}

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
