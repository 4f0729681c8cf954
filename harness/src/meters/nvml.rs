//! NVML access shared by the GPU meter, `effbench meters` and the environment fingerprint:
//! the library is loaded once per process (libnvidia-ml.so.1, the name the driver installs,
//! then libnvidia-ml.so), and every failure becomes one line saying why.

use super::gpu::{GpuSample, GpuSource};
use crate::records::GpuSelection;
use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use std::ffi::OsStr;
use std::sync::{Arc, OnceLock};

/// Library names tried in order: the driver's soname first (the unversioned link only
/// comes with development packages).
pub const LIB_NAMES: &[&str] = &["libnvidia-ml.so.1", "libnvidia-ml.so"];

static SHARED: OnceLock<Result<Arc<Nvml>, String>> = OnceLock::new();

/// NVML, loaded once for the process; `Err` says why it is unavailable.
pub fn shared() -> Result<Arc<Nvml>, String> {
    SHARED
        .get_or_init(|| {
            let mut errors = Vec::new();
            for name in LIB_NAMES {
                match open(OsStr::new(name)) {
                    Ok(n) => return Ok(Arc::new(n)),
                    Err(e) => errors.push(e),
                }
            }
            // the first library that loaded but failed to initialise explains best
            Err(errors
                .iter()
                .find(|e| !e.contains("not found"))
                .unwrap_or(&errors[0])
                .clone())
        })
        .clone()
}

/// Loads and initialises NVML from `lib` (a name or path).
pub fn open(lib: &OsStr) -> Result<Nvml, String> {
    Nvml::builder()
        .lib_path(lib)
        .init()
        .map_err(|e| explain(&e, &lib.to_string_lossy()))
}

/// One line for an NVML error.
pub fn explain(e: &NvmlError, lib: &str) -> String {
    match e {
        NvmlError::LibloadingError(inner) => format!(
            "NVML: {lib} not found (no NVIDIA driver on this machine): {}",
            inner.to_string().lines().next().unwrap_or("")
        ),
        NvmlError::DriverNotLoaded => {
            format!("NVML: {lib} loaded but the NVIDIA driver is not running")
        }
        NvmlError::NoPermission => {
            "NVML: no permission to talk to the NVIDIA driver (/dev/nvidia*)".into()
        }
        NvmlError::FailedToLoadSymbol(s) => format!("NVML: {lib} is too old: {s}"),
        other => format!("NVML: {other}"),
    }
}

/// NVML indices for a selection; `device` is the run's device axis (`cpu`, `cuda:N`).
/// `cuda:N` goes through CUDA_VISIBLE_DEVICES (indices or GPU-UUIDs) when it is set.
pub fn select(nvml: &Nvml, sel: &GpuSelection, device: &str) -> Result<Vec<u32>, String> {
    let count = nvml
        .device_count()
        .map_err(|e| format!("NVML: cannot count GPUs: {e}"))?;
    let check = |i: u32| {
        if i < count {
            Ok(i)
        } else {
            Err(format!("NVML: GPU {i} does not exist ({count} GPU(s))"))
        }
    };
    match sel {
        GpuSelection::None => Ok(vec![]),
        GpuSelection::All => Ok((0..count).collect()),
        GpuSelection::List(l) => l.iter().map(|i| check(*i)).collect(),
        GpuSelection::Auto => {
            let Some(n) = device
                .strip_prefix("cuda")
                .map(|r| r.trim_start_matches(':').parse::<usize>().unwrap_or(0))
            else {
                return Ok(vec![]);
            };
            let visible = std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_default();
            let entries: Vec<&str> = visible.split(',').map(str::trim).collect();
            if visible.trim().is_empty() {
                return check(n as u32).map(|i| vec![i]);
            }
            let entry = entries.get(n).ok_or_else(|| {
                format!("NVML: {device} is not in CUDA_VISIBLE_DEVICES={visible}")
            })?;
            if let Ok(i) = entry.parse::<u32>() {
                return check(i).map(|i| vec![i]);
            }
            for i in 0..count {
                let uuid = nvml.device_by_index(i).and_then(|d| d.uuid());
                if uuid.is_ok_and(|u| u.starts_with(entry)) {
                    return Ok(vec![i]);
                }
            }
            Err(format!(
                "NVML: CUDA_VISIBLE_DEVICES entry '{entry}' for {device} matches no GPU"
            ))
        }
    }
}

/// Free and total memory, in bytes, of the GPU a run's `device` axis names (`cuda:N`,
/// through CUDA_VISIBLE_DEVICES): what a model about to be loaded there can use.
pub fn device_memory(device: &str) -> Result<(u64, u64), String> {
    let nvml = shared()?;
    let i = *select(&nvml, &GpuSelection::Auto, device)?
        .first()
        .ok_or_else(|| format!("NVML: '{device}' names no GPU"))?;
    let m = nvml
        .device_by_index(i)
        .and_then(|d| d.memory_info())
        .map_err(|e| format!("NVML: memory of GPU {i}: {e}"))?;
    Ok((m.free, m.total))
}

/// Name of GPU `i`.
pub fn name(nvml: &Nvml, i: u32) -> String {
    nvml.device_by_index(i)
        .and_then(|d| d.name())
        .unwrap_or_else(|_| format!("GPU {i}"))
}

/// Throttle reasons that mean the clocks were held down by power or heat.
pub fn slowdown_reasons(bits: u64) -> Vec<&'static str> {
    let r = ThrottleReasons::from_bits_truncate(bits);
    [
        (ThrottleReasons::SW_POWER_CAP, "power cap"),
        (ThrottleReasons::HW_SLOWDOWN, "hardware slowdown"),
        (
            ThrottleReasons::SW_THERMAL_SLOWDOWN,
            "software thermal slowdown",
        ),
        (
            ThrottleReasons::HW_THERMAL_SLOWDOWN,
            "hardware thermal slowdown",
        ),
        (ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN, "power brake"),
    ]
    .into_iter()
    .filter(|(f, _)| r.contains(*f))
    .map(|(_, n)| n)
    .collect()
}

/// Reads the selected GPUs through NVML.
pub struct NvmlSource {
    nvml: Arc<Nvml>,
    indices: Vec<u32>,
}

impl NvmlSource {
    pub fn new(nvml: Arc<Nvml>, indices: Vec<u32>) -> NvmlSource {
        NvmlSource { nvml, indices }
    }
}

/// Whether `pid` is this process or one of its descendants (walks /proc parents).
fn in_our_tree(pid: u32) -> bool {
    let me = std::process::id();
    let mut p = pid;
    for _ in 0..64 {
        if p == me {
            return true;
        }
        if p <= 1 {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            return false;
        };
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|x| x.parse().ok())
        else {
            return false;
        };
        p = ppid;
    }
    false
}

impl GpuSource for NvmlSource {
    fn sample(&mut self) -> Vec<GpuSample> {
        self.indices
            .iter()
            .map(|&i| {
                let Ok(d) = self.nvml.device_by_index(i) else {
                    return GpuSample::default();
                };
                let proc_mem = d.running_compute_processes().ok().map(|ps| {
                    let mine: Vec<u64> = ps
                        .iter()
                        .filter(|p| in_our_tree(p.pid))
                        .filter_map(|p| match p.used_gpu_memory {
                            UsedGpuMemory::Used(b) => Some(b),
                            UsedGpuMemory::Unavailable => None,
                        })
                        .collect();
                    (!mine.is_empty()).then(|| mine.iter().sum())
                });
                GpuSample {
                    power_mw: d.power_usage().ok(),
                    energy_mj: d.total_energy_consumption().ok(),
                    mem_used: d.memory_info().ok().map(|m| m.used),
                    proc_mem: proc_mem.flatten(),
                    util_pct: d.utilization_rates().ok().map(|u| u.gpu),
                    sm_clock_mhz: d.clock_info(Clock::SM).ok(),
                    temp_c: d.temperature(TemperatureSensor::Gpu).ok(),
                    throttle: d.current_throttle_reasons().ok().map(|r| r.bits()),
                }
            })
            .collect()
    }
}

/// Which features GPU `i` supports, for `effbench meters`.
pub fn capabilities(nvml: &Nvml, i: u32) -> String {
    let Ok(d) = nvml.device_by_index(i) else {
        return "not readable".into();
    };
    let yes = |ok: bool| if ok { "yes" } else { "no" };
    let counter = match d.total_energy_consumption() {
        Ok(_) => "yes".to_string(),
        Err(NvmlError::NotSupported) => "not supported (needs Volta or newer)".into(),
        Err(e) => format!("no ({e})"),
    };
    format!(
        "energy counter {counter}; power {}; memory {}; utilisation {}; SM clock {}; temperature {}",
        match d.power_usage() {
            Ok(mw) => format!("yes ({:.0} W now)", mw as f64 / 1e3),
            Err(e) => format!("no ({e})"),
        },
        yes(d.memory_info().is_ok()),
        yes(d.utilization_rates().is_ok()),
        yes(d.clock_info(Clock::SM).is_ok()),
        yes(d.temperature(TemperatureSensor::Gpu).is_ok()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_an_answer_not_an_error() {
        let e = open(OsStr::new("/nonexistent/libnvidia-ml.so.1"))
            .err()
            .unwrap();
        assert!(
            e.starts_with("NVML: /nonexistent/libnvidia-ml.so.1 not found"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn slowdown_reasons_are_named() {
        let bits = (ThrottleReasons::SW_POWER_CAP | ThrottleReasons::GPU_IDLE).bits();
        assert_eq!(slowdown_reasons(bits), ["power cap"]);
        assert!(slowdown_reasons(ThrottleReasons::GPU_IDLE.bits()).is_empty());
    }

    #[test]
    fn our_process_is_in_our_tree() {
        assert!(in_our_tree(std::process::id()));
        assert!(!in_our_tree(1));
    }
}
