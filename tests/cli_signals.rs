//! Signals and child processes through the real CLI (issue 14, class 1): SIGTERM and SIGHUP
//! are handled like Ctrl-C in `run`, training and `loadgen` (the run in progress saved as
//! interrupted, the manifest finished, exit 128 + signal), and no process effbench started
//! outlives it — the trainer child after SIGTERM or SIGKILL of its parent, a worker's own
//! children after SIGKILL of effbench. Every wait is capped.

mod common;
use common::*;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn send(pid: u32, sig: i32) {
    // SAFETY: kill only sends a signal to a child of this test.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

fn wait_gone(pid: u32, what: &str) {
    let t = Instant::now();
    while alive(pid) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{what} (pid {pid}) outlived effbench"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (capped) until `cond` holds.
fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(c.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
            }
        }
    }
    out
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn spawn(w: &Work, args: &[&str]) -> Child {
    w.cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `run` stopped by `sig` while its second run measures: the first run kept, the second
/// saved as interrupted, the manifest finished, exit 128 + sig.
fn run_stopped_by(sig: i32, name: &str) {
    let w = Work::new();
    let measure = "warmup_iters = 0\nmin_iters = 1\nmin_duration_s = 3.0\nmax_duration_s = 60.0\nmax_iters = 1000000";
    w.write(
        "s.toml",
        &tiny_suite("long", "prompt_len = 8\ngen_len = [2, 3, 4]", measure),
    );
    let mut child = spawn(&w, &["run", "s.toml", "--out", "out"]);
    let out = w.path().join("out");
    wait_for("the first run is saved", 180, || {
        std::fs::read_to_string(out.join("manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|m| m["runs"].as_array().is_some_and(|r| r.len() == 1))
    });
    std::thread::sleep(Duration::from_millis(300));
    send(child.id(), sig);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + sig), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(&format!("{name}: stopping")), "{err}");
    let m = manifest(&out);
    assert!(m["finished_at"].is_string(), "manifest finished: {m}");
    let runs = m["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{m}");
    assert_eq!(runs[0]["state"], "ok");
    assert_eq!(runs[1]["state"], "interrupted");
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(runs[1]["file"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert!(
        r["status"]["reason"].as_str().unwrap().contains(name),
        "{r}"
    );
}

#[test]
fn sigterm_saves_the_run_and_finishes_the_manifest() {
    run_stopped_by(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sighup_saves_the_run_and_finishes_the_manifest() {
    run_stopped_by(libc::SIGHUP, "SIGHUP");
}

/// A server that lists no model and streams nothing: every request hangs until the client
/// gives up. Returns its address and how many requests reached it.
fn hanging_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let posts = std::sync::Arc::new(AtomicUsize::new(0));
    let p = posts.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                let _ = r.read_line(&mut line);
                let mut s = s;
                if line.starts_with("GET") {
                    let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
                    return;
                }
                p.fetch_add(1, Ordering::SeqCst);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                );
                std::thread::sleep(Duration::from_secs(120));
            });
        }
    });
    (addr, posts)
}

#[test]
fn sigterm_stops_loadgen_and_saves_the_run() {
    use std::sync::atomic::Ordering;
    let w = Work::new();
    let (addr, posts) = hanging_server();
    let url = format!("http://{addr}");
    let mut child = spawn(
        &w,
        &[
            "loadgen",
            "--base-url",
            &url,
            "--model",
            "m",
            "--num-prompts",
            "2",
            "--warmup-requests",
            "0",
            "--timeout-s",
            "300",
            "--out",
            "out",
        ],
    );
    wait_for("requests reach the server", 120, || {
        posts.load(Ordering::SeqCst) >= 1
    });
    send(child.id(), libc::SIGTERM);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{err}");
    let m = manifest(&w.path().join("out"));
    assert!(m["finished_at"].is_string(), "{m}");
    assert_eq!(m["runs"][0]["state"], "interrupted", "{m}");
}

/// A training suite long enough to be interrupted (the default model's architecture, many
/// steps).
const LONG_TRAINING: &str = r#"
name = "train-long"
scenario = "training"
backend = "candle-train"
seed = 42
[matrix]
batch = 2
seq_len = 16
steps = 100000
[measure]
warmup_iters = 0
min_iters = 1
max_iters = 1000000
max_duration_s = 600.0
"#;

/// `run` of a suite on the trained default starts a trainer child; returns effbench and the
/// child once the child is training.
fn start_training_child(w: &Work) -> (Child, u32) {
    w.write("train.toml", LONG_TRAINING);
    w.write(
        "s.toml",
        &tiny_suite("d", "prompt_len = 4\ngen_len = 2", QUICK).replace("\"seeded\"", "\"default\""),
    );
    let mut cmd = w.cmd(&["run", "s.toml", "--out", "out"]);
    cmd.env("EFFBENCH_DEFAULT_TRAIN_SUITE", w.path().join("train.toml"))
        .env("EFFBENCH_MODELS_DIR", w.path().join("models"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let mut trainer = 0;
    wait_for("the trainer child starts", 120, || {
        trainer = children(child.id()).first().copied().unwrap_or(0);
        trainer != 0
    });
    // Let it reach its measurement loop.
    std::thread::sleep(Duration::from_secs(2));
    (child, trainer)
}

#[test]
fn sigterm_stops_the_trainer_child_too() {
    let w = Work::new();
    let (mut child, trainer) = start_training_child(&w);
    send(child.id(), libc::SIGTERM);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{err}");
    wait_gone(trainer, "the trainer child");
}

#[test]
fn sigkill_of_effbench_ends_the_trainer_child() {
    let w = Work::new();
    let (mut child, trainer) = start_training_child(&w);
    send(child.id(), libc::SIGKILL);
    let _ = child.wait();
    wait_gone(trainer, "the trainer child");
}

#[test]
fn sigkill_of_effbench_ends_a_workers_own_children() {
    let w = Work::new();
    let pidfile = w.path().join("grandchild.pid");
    // A worker that starts a child of its own and never answers `describe`.
    let suite = format!(
        "name = \"p\"\nscenario = \"inference\"\nbackend = \"process\"\nmodel = \"seeded\"\n\
         [matrix]\nbatch = 1\n[options]\ncmd = [\"sh\", \"-c\", \"sleep 600 & echo $! > {}; exec sleep 600\"]\n",
        pidfile.display()
    );
    w.write("s.toml", &suite);
    let mut child = spawn(&w, &["run", "s.toml", "--out", "out"]);
    wait_for("the worker starts its child", 120, || {
        std::fs::read_to_string(&pidfile).is_ok_and(|t| t.trim().parse::<u32>().is_ok())
    });
    let grandchild: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let worker = children(child.id())
        .into_iter()
        .find(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.starts_with("sleep"))
        })
        .expect("the worker is a child of effbench");
    assert!(alive(grandchild) && alive(worker));
    send(child.id(), libc::SIGKILL);
    let _ = child.wait();
    wait_gone(worker, "the worker");
    wait_gone(grandchild, "the worker's own child");
}
