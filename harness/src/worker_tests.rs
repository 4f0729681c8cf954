//! Worker process handling against tiny `sh` workers (no Python needed): every fault ends
//! in its error with the stderr tail, and the worker is always reaped.

use super::*;

fn sh(script: &str) -> WorkerCommand {
    WorkerCommand {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        max_line_bytes: 1 << 20,
        ..Default::default()
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The process is neither running nor a zombie: its /proc entry is gone (reaped).
fn assert_gone(pid: u32) {
    let p = format!("/proc/{pid}");
    assert!(
        !std::path::Path::new(&p).exists(),
        "worker {pid} still has a /proc entry: {:?}",
        std::fs::read_to_string(format!("{p}/stat"))
    );
}

/// State letter of a process from /proc/PID/stat, None when gone.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim().chars().next()
}

const DESCRIBE_OK: &str =
    r#"{"id":0,"ok":true,"protocol":1,"scenarios":[],"dtypes":[],"devices":[]}"#;

#[test]
fn a_well_behaved_worker_answers_and_shuts_down() {
    let script = format!(
        "read l; echo '{DESCRIBE_OK}'; read l; echo started >&2; echo '{{\"id\":1,\"ok\":true}}'; exit 0"
    );
    let mut w = Worker::spawn(&sh(&script)).unwrap();
    let pid = w.pid();
    let r = w.call(Op::Describe, &Map::new(), secs(5.0)).unwrap();
    assert_eq!(r.body["protocol"], 1);
    assert!(r.round_trip > Duration::ZERO);
    let how = w.shutdown(secs(5.0)).unwrap();
    assert_eq!(how, "exited normally");
    assert_gone(pid);
}

#[test]
fn crash_gives_exit_status_and_stderr() {
    let mut w = Worker::spawn(&sh(
        "read l; echo 'Traceback' >&2; echo 'RuntimeError: boom' >&2; exit 3",
    ))
    .unwrap();
    let pid = w.pid();
    let e = w.call(Op::Run, &Map::new(), secs(10.0)).unwrap_err();
    assert_eq!(e.fault, Fault::Crash);
    let msg = e.to_string();
    assert!(
        msg.contains("exited with status 3 before replying during `run`")
            && msg.ends_with("worker stderr: Traceback | RuntimeError: boom"),
        "{msg}"
    );
    assert_gone(pid);
    // the worker is not used again
    let again = w.call(Op::Run, &Map::new(), secs(1.0)).unwrap_err();
    assert!(again.to_string().contains("no longer running"), "{again}");
}

#[test]
fn killed_worker_names_the_signal() {
    let mut w = Worker::spawn(&sh("read l; kill -9 $$")).unwrap();
    let e = w.call(Op::Load, &Map::new(), secs(10.0)).unwrap_err();
    assert!(e.to_string().contains("killed by signal 9"), "{e}");
}

#[test]
fn hang_times_out_and_the_group_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild");
    let script = format!(
        "sleep 600 & echo $! > '{}'; echo waiting >&2; read l; sleep 600",
        pidfile.display()
    );
    let mut w = Worker::spawn(&sh(&script)).unwrap();
    let pid = w.pid();
    let t = Instant::now();
    let e = w.call(Op::Run, &Map::new(), secs(0.5)).unwrap_err();
    assert!(t.elapsed() < secs(10.0));
    assert_eq!(e.fault, Fault::Timeout);
    let msg = e.to_string();
    assert!(
        msg.contains("did not answer within 0.5 s (timeouts.run in [options])"),
        "{msg}"
    );
    assert!(msg.contains("worker stderr: waiting"), "{msg}");
    assert_gone(pid);
    let gc: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The grandchild was killed with the group; init reaps it (or leaves a zombie that is
    // no longer ours); it must not be running.
    let deadline = Instant::now() + secs(5.0);
    while matches!(state(gc), Some(s) if s != 'Z') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        matches!(state(gc), None | Some('Z')),
        "grandchild {gc} is {:?}",
        state(gc)
    );
}

#[test]
fn garbage_line_is_rejected() {
    let mut w = Worker::spawn(&sh("read l; echo 'hello from print()'; sleep 600")).unwrap();
    let pid = w.pid();
    let e = w.call(Op::Describe, &Map::new(), secs(10.0)).unwrap_err();
    assert_eq!(e.fault, Fault::Garbage);
    assert!(e.to_string().contains("'hello from print()'"), "{e}");
    assert_gone(pid);
}

#[test]
fn huge_line_is_cut_off() {
    let script = "read l; head -c 3000000 /dev/zero | tr '\\0' a; echo; sleep 600";
    let mut w = Worker::spawn(&sh(script)).unwrap();
    let pid = w.pid();
    let e = w.call(Op::Run, &Map::new(), secs(20.0)).unwrap_err();
    assert_eq!(e.fault, Fault::HugeLine);
    assert!(e.to_string().contains("more than 1048576 bytes"), "{e}");
    assert_gone(pid);
}

#[test]
fn wrong_id_and_reported_errors() {
    let mut w = Worker::spawn(&sh("read l; echo '{\"id\":5,\"ok\":true}'; sleep 600")).unwrap();
    let e = w.call(Op::Describe, &Map::new(), secs(10.0)).unwrap_err();
    assert_eq!(e.fault, Fault::BadReply);
    assert!(e.to_string().contains("request id 5, expected 0"), "{e}");

    let script = "read l; echo 'cuda missing' >&2; echo '{\"id\":0,\"error\":{\"kind\":\"unsupported\",\"message\":\"no CUDA device\"}}'; read l; echo '{\"id\":1,\"ok\":true}'; exit 0";
    let mut w = Worker::spawn(&sh(script)).unwrap();
    let pid = w.pid();
    let e = w.call(Op::Load, &Map::new(), secs(10.0)).unwrap_err();
    assert_eq!(e.fault, Fault::Reported);
    assert_eq!(
        e.to_string(),
        "worker error during `load` (unsupported): no CUDA device"
    );
    // the worker is still alive after a reported error and can be shut down
    w.shutdown(secs(5.0)).unwrap();
    assert_gone(pid);
}

#[test]
fn worker_ignoring_shutdown_is_killed() {
    let w = Worker::spawn(&sh(
        "trap '' TERM; read l; echo '{\"id\":0,\"ok\":true}'; sleep 600",
    ))
    .unwrap();
    let pid = w.pid();
    let how = w.shutdown(secs(0.3)).unwrap();
    assert!(how.contains("did not exit within 0.3 s"), "{how}");
    assert_gone(pid);
}

#[test]
fn drop_reaps_a_busy_worker_and_missing_programs_are_named() {
    let w = Worker::spawn(&sh("sleep 600")).unwrap();
    let pid = w.pid();
    drop(w);
    assert_gone(pid);
    let e = match Worker::spawn(&WorkerCommand {
        argv: vec!["/nonexistent/worker".into()],
        ..Default::default()
    }) {
        Err(e) => e,
        Ok(_) => panic!("spawned a missing program"),
    };
    assert_eq!(e.fault, Fault::Spawn);
    assert!(
        e.to_string()
            .contains("cannot start worker `/nonexistent/worker`"),
        "{e}"
    );
}

#[test]
fn stderr_tail_is_bounded() {
    let script = "i=0; while [ $i -lt 300 ]; do echo line$i >&2; i=$((i+1)); done; head -c 10000 /dev/zero | tr '\\0' e >&2; echo >&2; read l; exit 1";
    let mut w = Worker::spawn(&sh(script)).unwrap();
    let e = w.call(Op::Run, &Map::new(), secs(10.0)).unwrap_err();
    assert_eq!(e.stderr_tail.len(), STDERR_KEEP);
    assert_eq!(e.stderr_tail[0], "line101");
    let last = e.stderr_tail.last().unwrap();
    assert!(last.ends_with('…') && last.len() < 2100, "{}", last.len());
}

#[test]
fn an_exit_is_noticed_while_a_child_keeps_stdout_open() {
    // The worker exits at once; the sleep it started holds the pipe open for 10 minutes.
    let mut w = Worker::spawn(&sh("read l; sleep 600 & exit 3")).unwrap();
    let pid = w.pid();
    let t = Instant::now();
    let e = w.call(Op::Describe, &Map::new(), secs(120.0)).unwrap_err();
    assert_eq!(e.fault, Fault::Crash, "{e}");
    assert!(
        e.to_string().contains("exited with status 3") && e.to_string().contains("stdout"),
        "{e}"
    );
    assert!(t.elapsed() < secs(60.0), "noticed long before the timeout");
    assert_gone(pid);
}

#[test]
fn a_reply_written_just_before_exit_is_kept() {
    let script = format!("read l; echo '{DESCRIBE_OK}'; sleep 600 & exit 0");
    let mut w = Worker::spawn(&sh(&script)).unwrap();
    let r = w.call(Op::Describe, &Map::new(), secs(60.0)).unwrap();
    assert_eq!(r.body["protocol"], 1);
}
