//! What each meter can do on this machine, and why not when it cannot (`effbench meters`).

use super::{nvml, rapl, ESTIMATE_TDP};
use crate::records::MeterSettings;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Works: measurements.
    Works,
    /// Cannot measure here.
    Unavailable,
    /// Gives estimates, labelled as such.
    Estimate,
    /// Not needed because a measurement works.
    Unused,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Works => "works",
            State::Unavailable => "unavailable",
            State::Estimate => "estimate",
            State::Unused => "not used",
        }
    }
}

/// One line of the survey.
#[derive(Debug, Clone, PartialEq)]
pub struct Availability {
    pub meter: &'static str,
    pub state: State,
    /// What it reads, or why it cannot.
    pub detail: String,
}

/// Probes every meter with these settings.
pub fn survey(s: &MeterSettings) -> Vec<Availability> {
    let mut out = Vec::new();
    let clear_refs = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    out.push(match super::memory::peak_rss() {
        Some(_) => Availability {
            meter: "memory",
            state: State::Works,
            detail: format!(
                "procfs: peak RSS (VmHWM, {}) and RSS sampled every {} ms",
                if clear_refs {
                    "reset per window through /proc/self/clear_refs"
                } else {
                    "clear_refs refused: the peak covers the whole process"
                },
                s.period_ms
            ),
        },
        None => Availability {
            meter: "memory",
            state: State::Unavailable,
            detail: "/proc/self/status not readable".into(),
        },
    });
    let stat = std::fs::read_to_string("/proc/stat").is_ok();
    out.push(Availability {
        meter: "cpu-share",
        state: if stat {
            State::Works
        } else {
            State::Unavailable
        },
        detail: if stat {
            "procfs /proc/stat: other processes' CPU share (busy_machine warning)".into()
        } else {
            "/proc/stat not readable".into()
        },
    });
    out.push(match nvml::shared() {
        Ok(n) => {
            let count = n.device_count().unwrap_or(0);
            let gpus: Vec<String> = (0..count)
                .map(|i| {
                    format!(
                        "gpu{i} {}: {}",
                        nvml::name(&n, i),
                        nvml::capabilities(&n, i)
                    )
                })
                .collect();
            Availability {
                meter: "gpu (nvml)",
                state: if count > 0 {
                    State::Works
                } else {
                    State::Unavailable
                },
                detail: if count > 0 {
                    format!(
                        "{count} GPU(s), metered: {} ({}); {}",
                        s.gpus,
                        s.sources.get("gpus").map_or("", |x| x.as_str()),
                        gpus.join("; ")
                    )
                } else {
                    "NVML loaded but it sees no GPU".into()
                },
            }
        }
        Err(why) => Availability {
            meter: "gpu (nvml)",
            state: State::Unavailable,
            detail: why,
        },
    });
    let rapl = rapl::discover(Path::new(&s.powercap_root));
    let rapl_ok = rapl.is_ok();
    out.push(match rapl {
        Ok(domains) => Availability {
            meter: "cpu/dram (rapl)",
            state: State::Works,
            detail: domains
                .iter()
                .map(|d| format!("{} ({})", d.name, d.energy_path().display()))
                .collect::<Vec<_>>()
                .join(", "),
        },
        Err(why) => Availability {
            meter: "cpu/dram (rapl)",
            state: State::Unavailable,
            detail: why,
        },
    });
    out.push(Availability {
        meter: ESTIMATE_TDP,
        state: if rapl_ok {
            State::Unused
        } else {
            State::Estimate
        },
        detail: format!(
            "{}CPU energy = {:.3} W per thread ({} W / {} threads, {}) x CPU seconds; \
             labelled estimate-tdp, never counted as measured",
            if rapl_ok {
                "fallback when RAPL is unreadable: "
            } else {
                "used for CPU energy because RAPL is unavailable: "
            },
            s.cpu_tdp.watts_per_thread(),
            s.cpu_tdp.tdp_w,
            s.cpu_tdp.threads,
            s.cpu_tdp.source
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survey_explains_a_missing_powercap_tree() {
        let s = MeterSettings {
            powercap_root: "/nonexistent/powercap".into(),
            ..Default::default()
        };
        let v = survey(&s);
        let names: Vec<&str> = v.iter().map(|a| a.meter).collect();
        assert_eq!(
            names,
            [
                "memory",
                "cpu-share",
                "gpu (nvml)",
                "cpu/dram (rapl)",
                "estimate-tdp"
            ]
        );
        assert_eq!(v[3].state, State::Unavailable);
        assert!(v[3].detail.contains("/nonexistent/powercap does not exist"));
        assert_eq!(v[4].state, State::Estimate);
        if v[2].state == State::Unavailable {
            assert!(v[2].detail.starts_with("NVML"), "{}", v[2].detail);
        }
    }
}
