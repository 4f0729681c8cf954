//! Interrupts shared by the runner and backends: Ctrl-C (SIGINT), SIGTERM and SIGHUP — what a
//! terminal, Slurm at the time limit, Kubernetes on eviction and `timeout` send — all ask
//! everything to stop at the next safe point (the current run is saved as `interrupted`, the
//! manifest finished). The CLI installs the handlers ([`install`]) and exits with 128 + the
//! signal ([`exit_code`]). Child processes registered with [`forward_to`] get every signal
//! passed on, so a child effbench saves its work too.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;

static REQUESTED: AtomicBool = AtomicBool::new(false);
/// The first signal received (0: none; a plain [`request`] counts as SIGINT).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Signals received so far.
static COUNT: AtomicU32 = AtomicU32::new(0);
/// Write end of the pipe the signal handler wakes the handling thread through.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// Children that get every signal passed on.
static FORWARD: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// The signals handled like Ctrl-C.
pub const SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Asks running work to stop (as if Ctrl-C was pressed).
pub fn request() {
    request_by(libc::SIGINT);
}

/// Asks running work to stop because of signal `sig` (the first signal is kept).
pub fn request_by(sig: i32) {
    let _ = SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    REQUESTED.store(true, Ordering::SeqCst);
}

/// True once an interrupt was requested. Cheap: poll it in inner loops.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// The signal that asked for the stop, if any.
pub fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Exit status after an interrupt: 128 + the signal (130 for Ctrl-C, 143 for SIGTERM, 129
/// for SIGHUP), as shells report a process killed by it.
pub fn exit_code() -> u8 {
    exit_code_of(signal())
}

/// [`exit_code`] of a given signal (none: as Ctrl-C).
pub fn exit_code_of(sig: Option<i32>) -> u8 {
    128u8.saturating_add(sig.unwrap_or(libc::SIGINT).clamp(1, 127) as u8)
}

/// True for the exit status of an effbench stopped by one of [`SIGNALS`] (129, 130, 143).
pub fn is_interrupt_exit(code: Option<i32>) -> bool {
    code.is_some_and(|c| SIGNALS.iter().any(|&s| c == 128 + s))
}

/// `Ctrl-C`, `SIGTERM` or `SIGHUP`, for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "Ctrl-C",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Clears the flag (tests, or a fresh suite in the same process).
pub fn reset() {
    REQUESTED.store(false, Ordering::SeqCst);
    SIGNAL.store(0, Ordering::SeqCst);
    COUNT.store(0, Ordering::SeqCst);
}

/// Error returned by work that stopped because of an interrupt.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {} (saved what was done)", signal_name(signal().unwrap_or(libc::SIGINT)))]
pub struct Interrupted;

/// While the returned guard lives, every signal effbench handles is passed on to `pid` (a
/// child in its own process group, which a terminal's Ctrl-C does not reach directly). A
/// signal that came before the child was registered is passed on at once.
pub fn forward_to(pid: u32) -> Forwarding {
    FORWARD.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
    if let Some(sig) = signal() {
        send(pid, sig);
    }
    Forwarding(pid)
}

/// Registration of [`forward_to`]; dropping it stops the forwarding.
pub struct Forwarding(u32);

impl Drop for Forwarding {
    fn drop(&mut self) {
        let mut f = FORWARD.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = f.iter().position(|&p| p == self.0) {
            f.swap_remove(i);
        }
    }
}

fn send(pid: u32, sig: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill only sends a signal; the pid is a child we have not reaped yet.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    // Async-signal-safe only: atomics and write(2).
    let _ = SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    REQUESTED.store(true, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write to a pipe we own; the result does not matter (the flag is set).
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// Installs the handlers of [`SIGNALS`]. Each signal sets the flag at once; then, on a
/// thread, it is passed on to the registered children and `then(signal, count)` runs (count
/// 1 for the first signal). Call once, early in `main`.
pub fn install(then: fn(i32, u32)) -> std::io::Result<()> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    WAKE_FD.store(fds[1], Ordering::SeqCst);
    let read_fd = fds[0];
    std::thread::Builder::new()
        .name("effbench-signals".into())
        .spawn(move || loop {
            let mut b = 0u8;
            // SAFETY: reads one byte into a local.
            let n = unsafe { libc::read(read_fd, (&mut b as *mut u8).cast(), 1) };
            if n == 1 {
                let sig = i32::from(b);
                let count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
                let children: Vec<u32> = FORWARD.lock().unwrap_or_else(|p| p.into_inner()).clone();
                for pid in children {
                    send(pid, sig);
                }
                then(sig, count);
            } else if n == 0
                || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                return;
            }
        })?;
    for sig in SIGNALS {
        // SAFETY: installs a handler that only touches atomics and write(2).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The flag itself is process-wide (other tests of this binary poll it), so only the pure
    // parts are tested here; tests/cli_signals.rs sends real signals to a real effbench.
    #[test]
    fn exit_codes_follow_the_signal() {
        assert_eq!(exit_code_of(None), 130, "no signal: as Ctrl-C");
        assert_eq!(exit_code_of(Some(libc::SIGINT)), 130);
        assert_eq!(exit_code_of(Some(libc::SIGTERM)), 143);
        assert_eq!(exit_code_of(Some(libc::SIGHUP)), 129);
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert!(is_interrupt_exit(Some(143)) && is_interrupt_exit(Some(130)));
        assert!(!is_interrupt_exit(Some(2)) && !is_interrupt_exit(None));
    }
}
