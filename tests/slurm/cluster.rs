//! A private one-node Slurm cluster for tests: munged, slurmctld and slurmd with their
//! config, key, state and logs in a temp dir, talking over 127.0.0.1 on free ports. Every
//! process it starts (daemons and jobs) carries a marker variable; dropping the [`Cluster`]
//! cancels the jobs, stops the daemons (TERM, then KILL) and kills anything marked that is
//! left, so a failing test leaves nothing running.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NODE: &str = "effbench-node";
pub const PARTITION: &str = "effbench";
/// Marks every process this cluster starts (daemons and jobs) so the guard finds them all.
pub const MARKER: &str = "EFFBENCH_SLURM_TEST_CLUSTER";

pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The daemons and their files; stopping them is the `Drop`.
pub struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    pub daemons: Vec<(&'static str, Child)>,
}

/// Two distinct free ports on loopback (both held until both are chosen).
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Cluster {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The last lines of every daemon log, for failure messages.
    pub fn logs(&self) -> String {
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

    pub fn client(&self, prog: &str) -> Command {
        let mut c = Command::new(find(prog).unwrap_or_else(|| prog.into()));
        c.env("SLURM_CONF", &self.conf).env(MARKER, self.dir.path());
        c
    }

    pub fn client_out(&self, prog: &str, args: &[&str]) -> String {
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
    pub fn check_alive(&mut self) -> Result<(), String> {
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

    pub fn start() -> Result<Cluster, (String, Option<Cluster>)> {
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

        // Slurm compares the short host name with SlurmctldHost.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().split('.').next().unwrap_or("").to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let ports = free_ports();
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
            ctld = ports.0,
            slurmd = ports.1,
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
    pub fn marked(&self) -> Vec<(u32, String)> {
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
    pub fn stop(&mut self) -> Vec<String> {
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

pub fn missing_tools() -> Vec<&'static str> {
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
