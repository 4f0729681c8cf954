//! A worker process speaking protocol v1 ([`crate::protocol`]): spawning, one request at a
//! time with a timeout, bounded reply lines, the stderr tail, and reaping.
//!
//! The worker is started through [`crate::guard`]: its own process group (Ctrl-C in the
//! terminal reaches effbench only; effbench then stops the worker), `PR_SET_PDEATHSIG` =
//! SIGKILL, and a guardian that kills the whole group — the worker's own children included —
//! when effbench is gone, even after a SIGKILL. Dropping a [`Worker`] kills the whole group
//! and waits for the worker, so no zombie or orphan outlives it. Requests are written by a writer thread and replies read by a
//! reader thread, so a worker that stops reading or writing can never block effbench past the
//! op's timeout.

use crate::interrupt;
use crate::protocol::{self, Fault, Op, WorkerError};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Stderr lines kept (the last ones).
pub const STDERR_KEEP: usize = 200;
/// Longest stderr line kept; longer ones are cut.
const STDERR_LINE_MAX: usize = 2000;
/// How often a waiting call checks for Ctrl-C and for the worker's exit.
const POLL: Duration = Duration::from_millis(50);
/// After the worker exited: how long its last reply line may take to arrive.
const EXIT_DRAIN: Duration = Duration::from_millis(500);

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct WorkerCommand {
    /// Program and arguments (non-empty).
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Longest reply line accepted.
    pub max_line_bytes: usize,
}

/// A reply and how long the harness waited for it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub body: Map<String, Value>,
    /// Harness-side round trip: request written → reply parsed.
    pub round_trip: Duration,
}

enum LineEvent {
    Line(String),
    TooLong(usize),
    NotUtf8,
    Eof,
}

type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running worker. Dropping it kills and reaps it.
pub struct Worker {
    child: Child,
    label: String,
    to_writer: Option<Sender<String>>,
    lines: Receiver<LineEvent>,
    tail: Tail,
    stderr_thread: Option<JoinHandle<()>>,
    /// Kills the worker's process group if effbench dies (dropped after the kill).
    guardian: Option<crate::guard::Guardian>,
    next_id: u64,
    /// Set once the worker is known dead or unusable (no further requests).
    broken: bool,
    reaped: bool,
}

impl Worker {
    /// Starts the command with piped stdin/stdout/stderr.
    pub fn spawn(cmd: &WorkerCommand) -> Result<Worker, WorkerError> {
        let Some((program, args)) = cmd.argv.split_first() else {
            return Err(WorkerError::new(
                Fault::Spawn,
                Op::Describe,
                "empty worker command",
            ));
        };
        let label = program.clone();
        let mut c = Command::new(program);
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("PYTHONUNBUFFERED", "1")
            .env("EFFBENCH_PROTOCOL", protocol::PROTOCOL_VERSION.to_string());
        for (k, v) in &cmd.env {
            c.env(k, v);
        }
        if let Some(dir) = &cmd.cwd {
            c.current_dir(dir);
        }
        crate::guard::prepare(&mut c, libc::SIGKILL);
        // Without a guardian (fork refused, e.g. out of memory) the worker still dies with
        // effbench through PDEATHSIG; only its own children could stay behind.
        let mut guardian = crate::guard::Guardian::start().ok();
        let mut child = c.spawn().map_err(|e| {
            WorkerError::new(
                Fault::Spawn,
                Op::Describe,
                format!("cannot start worker `{}`: {e}", cmd.argv.join(" ")),
            )
        })?;
        if let Some(g) = guardian.as_mut() {
            g.arm(child.id());
        }
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");

        let (to_writer, from_harness) = mpsc::channel::<String>();
        std::thread::spawn(move || writer_loop(stdin, from_harness));
        let (line_tx, lines) = mpsc::channel();
        let max = cmd.max_line_bytes.max(1);
        std::thread::spawn(move || reader_loop(stdout, line_tx, max));
        let tail: Tail = Arc::default();
        let t = Arc::clone(&tail);
        let stderr_thread = Some(std::thread::spawn(move || stderr_loop(stderr, t)));
        Ok(Worker {
            child,
            label,
            to_writer: Some(to_writer),
            lines,
            tail,
            stderr_thread,
            guardian,
            next_id: 0,
            broken: false,
            reaped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last `n` stderr lines seen so far.
    pub fn stderr_tail(&self, n: usize) -> Vec<String> {
        let t = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        t.iter().skip(t.len().saturating_sub(n)).cloned().collect()
    }

    /// Sends one request and waits up to `timeout` for its reply. Any failure leaves the
    /// worker killed and reaped, with its stderr tail in the error.
    pub fn call(
        &mut self,
        op: Op,
        body: &Map<String, Value>,
        timeout: Duration,
    ) -> Result<Reply, WorkerError> {
        if self.broken {
            return Err(WorkerError::new(
                Fault::Crash,
                op,
                "worker is no longer running",
            ));
        }
        let id = self.next_id;
        self.next_id += 1;
        let line = protocol::request_line(op, id, body);
        let start = Instant::now();
        let sent = self
            .to_writer
            .as_ref()
            .is_some_and(|w| w.send(line).is_ok());
        if !sent {
            return Err(self.fail(Fault::Crash, op, "cannot write to the worker".into()));
        }
        let deadline = crate::limits::deadline(start, timeout).unwrap_or(start + POLL);
        loop {
            if interrupt::requested() {
                let msg = interrupt::Interrupted.to_string();
                return Err(self.fail(Fault::Interrupted, op, msg));
            }
            let now = Instant::now();
            if now >= deadline {
                let msg = format!(
                    "worker `{}` did not answer within {} s (timeouts.{op} in [options])",
                    self.label,
                    fmt_secs(timeout)
                );
                return Err(self.fail(Fault::Timeout, op, msg));
            }
            match self.lines.recv_timeout(POLL.min(deadline - now)) {
                Err(RecvTimeoutError::Timeout) => {
                    // A worker that exited while a process it started still holds its stdout
                    // never closes the pipe: notice the exit itself, not only end-of-file.
                    if let Some(status) = peek_exit(self.child.id()) {
                        // (its last line may still be in the pipe: give the reader a moment)
                        let last = self.lines.recv_timeout(EXIT_DRAIN);
                        if let Ok(LineEvent::Line(text)) = last {
                            // it replied just before exiting
                            return match protocol::parse_reply(&text, op, id) {
                                Ok(body) => Ok(Reply {
                                    body,
                                    round_trip: start.elapsed(),
                                }),
                                Err(e) => Err(self.fail(e.fault, op, e.message)),
                            };
                        }
                        let msg = format!(
                            "worker `{}` {} before replying (a process it started still holds \
                             its stdout)",
                            self.label,
                            describe_exit(Some(status))
                        );
                        return Err(self.fail(Fault::Crash, op, msg));
                    }
                    continue;
                }
                Ok(LineEvent::Line(text)) => {
                    return match protocol::parse_reply(&text, op, id) {
                        Ok(body) => Ok(Reply {
                            body,
                            round_trip: start.elapsed(),
                        }),
                        Err(e) if e.fault == Fault::Reported => {
                            // The worker is alive and said why; keep its context for the log.
                            Err(WorkerError {
                                stderr_tail: self.stderr_tail(STDERR_KEEP),
                                ..e
                            })
                        }
                        Err(e) => Err(self.fail(e.fault, op, e.message)),
                    };
                }
                Ok(LineEvent::TooLong(n)) => {
                    let msg = format!(
                        "worker wrote a reply line of more than {n} bytes (max_line_bytes in [options])"
                    );
                    return Err(self.fail(Fault::HugeLine, op, msg));
                }
                Ok(LineEvent::NotUtf8) => {
                    let msg = "worker wrote a line that is not UTF-8".to_string();
                    return Err(self.fail(Fault::Garbage, op, msg));
                }
                Ok(LineEvent::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(2));
                    let msg = format!(
                        "worker `{}` {} before replying",
                        self.label,
                        describe_exit(status)
                    );
                    return Err(self.fail(Fault::Crash, op, msg));
                }
            }
        }
    }

    /// Sends `shutdown`, waits up to `timeout` for the reply and the exit, then makes sure
    /// the group is gone. Returns how the worker ended.
    pub fn shutdown(mut self, timeout: Duration) -> Result<String, WorkerError> {
        let reply = self.call(Op::Shutdown, &Map::new(), timeout);
        self.to_writer = None; // closes stdin: a worker may also exit on EOF
        let status = self.wait_exit(timeout);
        self.kill_and_reap();
        reply.map(|_| match status {
            Some(_) => describe_exit(status),
            None => format!(
                "did not exit within {} s of `shutdown`; killed",
                fmt_secs(timeout)
            ),
        })
    }

    /// Ends the worker because of `e` (a reply with an error, a wrong version or bad
    /// content): kills and reaps it, and attaches its whole stderr tail. The tail is read
    /// once the worker is gone, so lines it wrote just before its reply are not missed by a
    /// stderr reader that had not caught up yet.
    pub fn abort(&mut self, e: WorkerError) -> WorkerError {
        WorkerError {
            kind: e.kind,
            ..self.fail(e.fault, e.op, e.message)
        }
    }

    /// Kills the group, reaps, collects the stderr tail and marks the worker broken.
    fn fail(&mut self, fault: Fault, op: Op, message: String) -> WorkerError {
        self.kill_and_reap();
        WorkerError {
            fault,
            op,
            kind: None,
            message,
            stderr_tail: self.stderr_tail(STDERR_KEEP),
        }
    }

    /// Waits (without reaping) until the worker has exited, up to `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let now = Instant::now();
        let deadline = crate::limits::deadline(now, timeout).unwrap_or(now);
        loop {
            if let Some(s) = peek_exit(self.child.id()) {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL to the worker's process group (the worker is not reaped yet, so its pid
    /// cannot have been reused), then wait for it and for its stderr to drain.
    fn kill_and_reap(&mut self) {
        self.broken = true;
        self.to_writer = None;
        if self.reaped {
            return;
        }
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: plain syscall; the group is ours (process_group(0) at spawn).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        // The guardian goes before the reap, while the unreaped worker still holds the group id.
        drop(self.guardian.take());
        let _ = self.child.wait();
        self.reaped = true;
        if let Some(h) = self.stderr_thread.take() {
            // The pipe closes when the group is gone; don't hang on a stray holder.
            let deadline = Instant::now() + Duration::from_secs(1);
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// Exit status of `pid` if it has exited, leaving it unreaped (waitid with WNOWAIT).
fn peek_exit(pid: u32) -> Option<ExitStatus> {
    // SAFETY: siginfo_t is plain data; waitid fills it.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        if r != 0 || info.si_pid() == 0 {
            return None;
        }
        let code = info.si_status();
        Some(if info.si_code == libc::CLD_EXITED {
            ExitStatus::from_raw((code & 0xff) << 8)
        } else {
            ExitStatus::from_raw(code & 0x7f)
        })
    }
}

fn describe_exit(status: Option<ExitStatus>) -> String {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(0), _) => "exited normally".into(),
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(sig)) => format!("was killed by signal {sig} ({})", signal_name(sig)),
            _ => "ended".into(),
        },
        None => "closed its stdout".into(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL; out of memory?",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGBUS => "SIGBUS",
        _ => "signal",
    }
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

fn writer_loop(mut stdin: std::process::ChildStdin, lines: Receiver<String>) {
    for line in lines {
        if stdin
            .write_all(line.as_bytes())
            .and_then(|_| stdin.flush())
            .is_err()
        {
            return;
        }
    }
}

/// Reads `\n`-terminated lines of at most `max` bytes; stops at the first problem.
fn reader_loop(stdout: std::process::ChildStdout, tx: Sender<LineEvent>, max: usize) {
    let mut r = BufReader::with_capacity(1 << 16, stdout);
    loop {
        let mut line = Vec::new();
        let event = loop {
            let buf = match r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break LineEvent::Eof,
            };
            if buf.is_empty() {
                break LineEvent::Eof; // a partial last line without '\n' is not a reply
            }
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            if line.len() + chunk.len() > max {
                break LineEvent::TooLong(max);
            }
            line.extend_from_slice(chunk);
            let used = done.unwrap_or(chunk.len());
            r.consume(used);
            if done.is_some() {
                break match String::from_utf8(std::mem::take(&mut line)) {
                    Ok(s) => LineEvent::Line(s),
                    Err(_) => LineEvent::NotUtf8,
                };
            }
        };
        let stop = !matches!(event, LineEvent::Line(_));
        if tx.send(event).is_err() || stop {
            return;
        }
    }
}

/// Keeps the last [`STDERR_KEEP`] lines, each cut to [`STDERR_LINE_MAX`] bytes (memory stays
/// bounded whatever the worker writes).
fn stderr_loop(stderr: std::process::ChildStderr, tail: Tail) {
    let mut r = BufReader::with_capacity(1 << 16, stderr);
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if buf.is_empty() {
            break;
        }
        let (chunk, used, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = STDERR_LINE_MAX.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        cut |= chunk.len() > room;
        r.consume(used);
        if end {
            push_line(&tail, &line, cut);
            line.clear();
            cut = false;
        }
    }
    if !line.is_empty() {
        push_line(&tail, &line, cut);
    }
}

fn push_line(tail: &Tail, bytes: &[u8], cut: bool) {
    let text = String::from_utf8_lossy(bytes);
    let mut text = text.trim_end_matches('\r').to_string();
    if cut {
        text.push('…');
    }
    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
    if t.len() == STDERR_KEEP {
        t.pop_front();
    }
    t.push_back(text);
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
