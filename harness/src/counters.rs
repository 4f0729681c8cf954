//! Per-iteration process counters, read by the runner right around every measured iteration:
//! process CPU time (user + system, all threads; `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`,
//! always available) and, where the kernel allows `perf_event_open`, retired instructions and
//! CPU cycles of every thread of the process in user space (so `perf_event_paranoid` <= 2
//! suffices). They move far less than wall time on a shared host: waiting for a CPU is not
//! counted. Where hardware counters cannot be opened (no PMU in a VM, paranoid 3, seccomp) the
//! reason is kept and the result's log says they are unavailable.
//!
//! Hardware counters are opened once per measured window, one per existing thread with
//! `inherit` (threads started later are counted with their parent), and summed on each read.
//! A counter the kernel had to multiplex (it did not run all the time) reads as `None` and the
//! runner drops it with a note: scaled counts would be estimates.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Source of the `cpu_time` metric.
pub const CPU_TIME_SOURCE: &str = "clock_gettime(CLOCK_PROCESS_CPUTIME_ID), all threads";
/// Source of the `instructions` and `cycles` metrics.
pub const PERF_SOURCE: &str = "perf_event_open (user space, all threads)";

/// Process CPU time in ns.
pub fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid pointer to a timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The first 64 bytes of `struct perf_event_attr` (PERF_ATTR_SIZE_VER0), all the kernel needs.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const PERF_TYPE_HARDWARE: u32 = 0;
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_HW_CPU_CYCLES: u64 = 0;
const PERF_COUNT_HW_INSTRUCTIONS: u64 = 1;
const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;
const FLAG_INHERIT: u64 = 1 << 1;
const FLAG_EXCLUDE_KERNEL: u64 = 1 << 5;
const FLAG_EXCLUDE_HV: u64 = 1 << 6;
const FORMAT_TOTAL_TIME_ENABLED: u64 = 1;
const FORMAT_TOTAL_TIME_RUNNING: u64 = 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// A hardware (or, for tests, software) event to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Instructions,
    Cycles,
    /// The kernel's task clock (ns): a software event every kernel has; exercises the same
    /// code as the hardware events where those are missing.
    TaskClock,
}

impl Event {
    fn attr(self) -> PerfEventAttr {
        let (kind, config) = match self {
            Event::Instructions => (PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS),
            Event::Cycles => (PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES),
            Event::TaskClock => (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK),
        };
        PerfEventAttr {
            kind,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config,
            read_format: FORMAT_TOTAL_TIME_ENABLED | FORMAT_TOTAL_TIME_RUNNING,
            flags: FLAG_INHERIT | FLAG_EXCLUDE_KERNEL | FLAG_EXCLUDE_HV,
            ..PerfEventAttr::default()
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Event::Instructions => "instructions",
            Event::Cycles => "cycles",
            Event::TaskClock => "task-clock",
        }
    }
}

/// One event counted on every thread of this process.
pub struct ProcessCounter {
    event: Event,
    fds: Vec<OwnedFd>,
}

fn paranoid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unreadable".into())
}

fn open_one(event: Event, tid: i32) -> std::io::Result<OwnedFd> {
    let attr = event.attr();
    // SAFETY: perf_event_open reads `size` bytes of a valid attr; the returned fd is ours.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            tid,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn threads() -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if out.is_empty() {
        out.push(0);
    }
    out
}

impl ProcessCounter {
    /// Opens `event` on every thread; `Err` says why it is unavailable, in one line.
    pub fn open(event: Event) -> Result<ProcessCounter, String> {
        let mut fds = Vec::new();
        for tid in threads() {
            match open_one(event, tid) {
                Ok(fd) => fds.push(fd),
                // A thread that ended since the listing.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) && !fds.is_empty() => {}
                Err(e) => {
                    let why = match e.raw_os_error() {
                        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => {
                            "the CPU exposes no such hardware counter (a VM without a virtual PMU?)"
                        }
                        Some(libc::EACCES) | Some(libc::EPERM) => {
                            "not permitted (perf_event_paranoid too high, or a seccomp/container policy)"
                        }
                        Some(libc::ENOSYS) => "the kernel has no perf events",
                        _ => "the kernel refused it",
                    };
                    return Err(format!(
                        "perf_event_open({}): {e}: {why}; kernel.perf_event_paranoid = {}",
                        event.name(),
                        paranoid()
                    ));
                }
            }
        }
        Ok(ProcessCounter { event, fds })
    }

    pub fn event(&self) -> Event {
        self.event
    }

    /// The count so far, summed over threads (`None` when a read failed or the kernel
    /// multiplexed the counter, so the count is incomplete).
    pub fn read(&mut self) -> Option<u64> {
        let mut total = 0u64;
        for fd in &self.fds {
            let mut buf = [0u64; 3];
            // SAFETY: reading 24 bytes into a 24-byte buffer from our own descriptor.
            let n = unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    std::mem::size_of_val(&buf),
                )
            };
            if n != std::mem::size_of_val(&buf) as isize {
                return None;
            }
            if buf[2] < buf[1] {
                return None;
            }
            total = total.wrapping_add(buf[0]);
        }
        Some(total)
    }
}

/// The counters of one measured window.
pub struct Counters {
    pub hardware: Vec<ProcessCounter>,
    /// Why hardware counters are unavailable (one line each), for the log.
    pub unavailable: Vec<String>,
}

/// One reading of all counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub cpu_ns: u64,
    /// Aligned with [`Counters::hardware`].
    pub hw: [Option<u64>; 2],
}

impl Counters {
    /// Opens instructions and cycles (each where the kernel allows it).
    pub fn open() -> Counters {
        Counters::open_events(&[Event::Instructions, Event::Cycles])
    }

    /// Opens the given events (at most 2).
    pub fn open_events(events: &[Event]) -> Counters {
        let mut c = Counters {
            hardware: Vec::new(),
            unavailable: Vec::new(),
        };
        for e in events.iter().take(2) {
            match ProcessCounter::open(*e) {
                Ok(p) => c.hardware.push(p),
                Err(why) => c.unavailable.push(why),
            }
        }
        c
    }

    pub fn read(&mut self) -> Snapshot {
        let mut s = Snapshot {
            cpu_ns: process_cpu_ns(),
            hw: [None, None],
        };
        for (slot, p) in s.hw.iter_mut().zip(self.hardware.iter_mut()) {
            *slot = p.read();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(ms: u64) {
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(ms) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    /// A fixed amount of CPU work (not a wall-clock duration: the machine may be loaded).
    fn work() {
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }

    #[test]
    fn process_cpu_time_advances_with_work() {
        let a = process_cpu_ns();
        spin(20);
        let b = process_cpu_ns();
        assert!(b > a, "{a} -> {b}");
    }

    /// The perf_event_open path with a software event every kernel has: counts work done on
    /// this thread and on a thread started after the counter was opened (inherit).
    #[test]
    fn perf_counter_sums_threads_with_a_software_event() {
        let mut c = match ProcessCounter::open(Event::TaskClock) {
            Ok(c) => c,
            Err(why) => {
                // perf events forbidden altogether (paranoid 3 or a sandbox): the reason is the
                // whole contract then.
                assert!(why.starts_with("perf_event_open(task-clock): "), "{why}");
                return;
            }
        };
        let (a, cpu_a) = (c.read().expect("readable"), process_cpu_ns());
        work();
        std::thread::spawn(work).join().unwrap();
        let (b, cpu_b) = (c.read().expect("readable"), process_cpu_ns());
        // task-clock counts ns of CPU: both threads' equal work, about all of the process's
        // CPU time meanwhile (only the first thread's would be about half of it).
        let (counted, cpu) = ((b - a) as f64, (cpu_b - cpu_a) as f64);
        assert!(
            counted >= 0.75 * cpu,
            "task-clock {counted} ns vs process CPU {cpu} ns"
        );
    }

    /// Hardware counters either count or say why not (both happen: a VM without a PMU here,
    /// bare metal elsewhere).
    #[test]
    fn hardware_counters_count_or_explain() {
        let mut c = Counters::open();
        assert_eq!(c.hardware.len() + c.unavailable.len(), 2);
        for why in &c.unavailable {
            assert!(
                why.starts_with("perf_event_open(instructions)")
                    || why.starts_with("perf_event_open(cycles)"),
                "{why}"
            );
            assert!(why.contains("perf_event_paranoid = "), "{why}");
        }
        let a = c.read();
        spin(5);
        let b = c.read();
        assert!(b.cpu_ns > a.cpu_ns);
        for i in 0..c.hardware.len() {
            assert!(
                b.hw[i].unwrap() > a.hw[i].unwrap(),
                "{:?}",
                c.hardware[i].event()
            );
        }
    }
}
