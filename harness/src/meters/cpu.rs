//! CPU share used by other processes during the window (from /proc/stat and
//! /proc/self/stat), for the busy-machine warning.

use super::{Meter, Reading};
use crate::warnings;

/// Clock ticks: (busy ticks of the whole machine, ticks of this process).
fn ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = f.get(3)? + f.get(4).unwrap_or(&0);
    let busy = f.iter().take(8).sum::<u64>() - idle;
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the ")" of the command name: utime is field 14, stime 15 (1-based)
    let after = own.rsplit_once(')')?.1;
    let g: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = g.get(11)?.parse().ok()?;
    let stime: u64 = g.get(12)?.parse().ok()?;
    Some((busy, utime + stime))
}

pub struct CpuShare {
    start: Option<(u64, u64)>,
}

impl CpuShare {
    pub fn new() -> CpuShare {
        CpuShare { start: None }
    }
}

impl Default for CpuShare {
    fn default() -> Self {
        CpuShare::new()
    }
}

impl Meter for CpuShare {
    fn name(&self) -> &'static str {
        "cpu-share"
    }
    fn start(&mut self) {
        self.start = ticks();
    }
    fn stop(&mut self, window_s: f64) -> Reading {
        let mut r = Reading::default();
        let (Some((b0, o0)), Some((b1, o1))) = (self.start, ticks()) else {
            return r;
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let hz = 100.0; // USER_HZ is 100 on every Linux ABI
        let capacity = window_s * hz * cores as f64;
        if capacity < 10.0 {
            return r; // too short for tick resolution
        }
        let others = (b1.saturating_sub(b0)).saturating_sub(o1.saturating_sub(o0)) as f64;
        let load = sysinfo::System::load_average().ok().map(|l| l.one);
        r.warnings
            .extend(warnings::check_busy(others / capacity, load, cores));
        r
    }
}
