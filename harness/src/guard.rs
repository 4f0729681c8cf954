//! No process effbench starts outlives it. Every child (a protocol worker, the trainer
//! child, an A/B side) is started through [`prepare`]: its own process group (a terminal's
//! Ctrl-C reaches effbench, which stops or forwards it) and `PR_SET_PDEATHSIG` (the child is
//! signalled the moment effbench dies, even by SIGKILL). The death signal reaches only the
//! child itself, not what it started, so a [`Guardian`] watches the group: a tiny process
//! forked from effbench that waits on a pipe only effbench holds and, when the pipe closes
//! (effbench exited or was killed, or the child was let go), sends SIGKILL to the child's
//! whole process group — its children and grandchildren with it.
//!
//! Limit: a descendant that leaves the group on purpose (`setsid`, `setpgid`) is not in it.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Sets `cmd` up as a child that dies with effbench: its own process group and
/// `PR_SET_PDEATHSIG` = `death_signal` (SIGKILL for workers; SIGTERM for a child effbench,
/// which then saves its work like on Ctrl-C). If effbench is already gone when the child
/// starts, the child exits at once.
pub fn prepare(cmd: &mut Command, death_signal: i32) {
    cmd.process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                death_signal as libc::c_ulong,
                0,
                0,
                0,
            );
            if libc::getppid() != parent {
                libc::_exit(128 + death_signal); // effbench died before prctl took effect
            }
            Ok(())
        });
    }
}

/// Kills a process group with SIGKILL once effbench is gone (see the module docs). Create
/// it before the child starts, [`Guardian::arm`] it with the child's pid, and drop it after
/// the child is killed but before it is reaped (so the group id cannot be reused meanwhile).
pub struct Guardian {
    pid: libc::pid_t,
    /// Write end of the pipe; the guardian acts when every copy of it is closed.
    fd: libc::c_int,
    armed: bool,
}

impl Guardian {
    /// Forks the guardian process.
    pub fn start() -> std::io::Result<Guardian> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills two fds; O_CLOEXEC keeps them out of exec'd children.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let [read_fd, write_fd] = fds;
        // SAFETY: the child runs only async-signal-safe calls (sigaction-free signal(),
        // close, syscall, read, kill, _exit) and never returns into Rust code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: closing our own fds.
            unsafe {
                libc::close(read_fd);
                libc::close(write_fd);
            }
            return Err(e);
        }
        if pid == 0 {
            // SAFETY: see above; this branch ends in _exit.
            unsafe { guardian_main(read_fd) }
        }
        // SAFETY: the parent keeps only the write end.
        unsafe {
            libc::close(read_fd);
        }
        Ok(Guardian {
            pid,
            fd: write_fd,
            armed: false,
        })
    }

    /// Tells the guardian which process group to kill (the child's pid, as the child leads
    /// its own group after [`prepare`]).
    pub fn arm(&mut self, pgid: u32) {
        let bytes = pgid.to_ne_bytes();
        // SAFETY: writes 4 bytes from a local into our pipe (atomic: under PIPE_BUF).
        let n = unsafe { libc::write(self.fd, bytes.as_ptr().cast(), bytes.len()) };
        self.armed = n == bytes.len() as isize;
    }

    /// True when the guardian knows the group.
    pub fn is_armed(&self) -> bool {
        self.armed
    }
}

impl Drop for Guardian {
    /// Lets the guardian act (it kills the group, if any is left) and reaps it.
    fn drop(&mut self) {
        // SAFETY: our own fd and our own child.
        unsafe {
            libc::close(self.fd);
            let mut status = 0;
            while libc::waitpid(self.pid, &mut status, 0) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
        }
    }
}

/// The guardian: closes everything but its pipe, ignores the signals a terminal or a
/// scheduler sends to effbench's group, reads the group id, waits for end-of-file, kills.
unsafe fn guardian_main(read_fd: libc::c_int) -> ! {
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
    ] {
        libc::signal(sig, libc::SIG_IGN);
    }
    // Keep no other pipe open (a worker's stdout must reach EOF when the worker dies).
    let mut closed = libc::syscall(
        libc::SYS_close_range,
        read_fd as libc::c_uint + 1,
        libc::c_uint::MAX,
        0 as libc::c_uint,
    ) == 0;
    if read_fd > 0 {
        closed &= libc::syscall(
            libc::SYS_close_range,
            0 as libc::c_uint,
            read_fd as libc::c_uint - 1,
            0 as libc::c_uint,
        ) == 0;
    }
    if !closed {
        // Kernels before 5.9 have no close_range.
        for fd in 0..65_536 {
            if fd != read_fd {
                libc::close(fd);
            }
        }
    }
    let mut buf = [0u8; 4];
    let mut got = 0usize;
    loop {
        let n = libc::read(
            read_fd,
            buf.as_mut_ptr().add(got.min(3)).cast(),
            4 - got.min(3),
        );
        if n > 0 {
            got = (got + n as usize).min(4);
            continue;
        }
        if n < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        }
        break; // end of file: effbench is gone or let the child go
    }
    if got == 4 {
        let pgid = u32::from_ne_bytes(buf) as libc::pid_t;
        if pgid > 1 {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    libc::_exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn alive(pid: i32) -> bool {
        // A zombie still answers kill(0); read its state instead.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                let state = s.rsplit(')').next().unwrap_or("").trim_start();
                !state.starts_with('Z') && !state.starts_with('X')
            })
            .unwrap_or(false)
    }

    fn wait_gone(pid: i32) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn dropping_the_guardian_kills_the_grandchildren() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild");
        let mut g = Guardian::start().unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("sleep 300 & echo $! > {}; wait", pidfile.display()));
        prepare(&mut cmd, libc::SIGKILL);
        let mut child = cmd.spawn().unwrap();
        g.arm(child.id());
        assert!(g.is_armed());
        let t = Instant::now();
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
            assert!(t.elapsed() < Duration::from_secs(20), "no grandchild");
            std::thread::sleep(Duration::from_millis(10));
        }
        let grandchild: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(alive(grandchild));
        drop(g);
        let _ = child.wait();
        assert!(
            wait_gone(grandchild),
            "grandchild {grandchild} outlived the guardian"
        );
    }
}
