//! Plot axes: linear or log scales from data to pixels, "nice" tick positions and their
//! labels in the data's unit (bytes in KiB/MiB/GiB, counts with k/M/G, others 3 digits).

use crate::format;

/// Log scale when every value is positive and they span at least this ratio.
pub const LOG_RATIO: f64 = 30.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    /// Pixel positions of `lo` and `hi` (hi may be above lo on screen: y axes).
    pub px0: f64,
    pub px1: f64,
}

impl Scale {
    /// A padded domain around `values` (finite ones only); log when useful and allowed.
    pub fn fit(values: &[f64], allow_log: bool, px0: f64, px1: f64) -> Scale {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if lo > hi {
            (lo, hi) = (0.0, 1.0);
        }
        let log = allow_log && lo > 0.0 && hi / lo >= LOG_RATIO;
        let pad = (hi / lo).powf(0.05);
        // A range too wide for f64 once padded (a denormal beside 1e300) stays linear.
        if log && lo / pad > 0.0 && (hi * pad).is_finite() {
            return Scale {
                lo: lo / pad,
                hi: hi * pad,
                log,
                px0,
                px1,
            };
        }
        let log = false;
        if lo == hi {
            let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            lo -= d;
            hi += d;
        } else {
            let pad = (hi - lo) * 0.06;
            // keep a positive quantity's axis from dipping far below zero
            lo = if lo >= 0.0 && lo - pad < 0.0 {
                0.0
            } else {
                lo - pad
            };
            hi += pad;
        }
        Scale {
            lo,
            hi,
            log,
            px0,
            px1,
        }
    }

    /// A fixed linear domain.
    pub fn linear(lo: f64, hi: f64, px0: f64, px1: f64) -> Scale {
        Scale {
            lo,
            hi,
            log: false,
            px0,
            px1,
        }
    }

    pub fn px(&self, v: f64) -> f64 {
        let t = if self.log {
            (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        self.px0 + t * (self.px1 - self.px0)
    }

    /// Tick positions with labels in `unit`.
    pub fn ticks(&self, unit: &str) -> Vec<(f64, String)> {
        let values = if self.log {
            log_ticks(self.lo, self.hi, unit == "bytes")
        } else {
            linear_ticks(
                self.lo,
                self.hi,
                if unit == "bytes" { 1024.0 } else { 1000.0 },
                unit == "count",
            )
        };
        let mut labels: Vec<String> = values.iter().map(|&v| tick_label(v, unit)).collect();
        // ticks close together relative to their size (13.40 and 13.41 MiB) need more digits
        for sig in 4..=9 {
            if distinct(&labels) {
                break;
            }
            labels = values.iter().map(|&v| label_sig(v, unit, sig)).collect();
        }
        values.into_iter().zip(labels).collect()
    }
}

fn distinct(labels: &[String]) -> bool {
    labels.windows(2).all(|w| w[0] != w[1])
}

/// A label with `sig` significant digits in the unit's usual multiple, zeros trimmed.
fn label_sig(v: f64, unit: &str, sig: i32) -> String {
    let (x, suffix) = match unit {
        "bytes" => {
            let units = ["B", "KiB", "MiB", "GiB", "TiB"];
            let (mut x, mut i) = (v, 0);
            while x.abs() >= 1024.0 && i < units.len() - 1 {
                x /= 1024.0;
                i += 1;
            }
            (x, format!(" {}", units[i]))
        }
        "count" => match v.abs() {
            a if a >= 1e9 => (v / 1e9, "G".to_string()),
            a if a >= 1e6 => (v / 1e6, "M".to_string()),
            a if a >= 1e3 => (v / 1e3, "k".to_string()),
            _ => (v, String::new()),
        },
        _ if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) => {
            return format!("{v:.*e}", (sig - 1) as usize);
        }
        _ => (v, String::new()),
    };
    let d = if x == 0.0 {
        0
    } else {
        (sig - 1 - x.abs().log10().floor() as i32).clamp(0, 12) as usize
    };
    trim_zeros(&format!("{x:.d$}{suffix}"))
}

/// 1-2-5 steps giving about 5 ticks; for bytes, steps are nice in the binary unit shown;
/// counts get whole-number steps.
fn linear_ticks(lo: f64, hi: f64, base: f64, integer: bool) -> Vec<f64> {
    let mut scale = 1.0;
    if base == 1024.0 {
        while hi.abs().max(lo.abs()) / scale >= 1024.0 {
            scale *= 1024.0;
        }
    }
    let (l, h) = (lo / scale, hi / scale);
    let raw = (h - l) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let step = if integer { step.max(1.0) } else { step };
    // (tolerate rounding: 13.4 / 0.01 is 1340.0000000000002)
    let mut v = (l / step - 1e-9).ceil() * step;
    let mut out = Vec::new();
    while v <= h + step * 1e-9 && out.len() < 20 {
        // snap tiny floating residue to zero
        out.push(if v.abs() < step * 1e-9 {
            0.0
        } else {
            v * scale
        });
        v += step;
    }
    out
}

/// Decades (with 2 and 5 when fewer than three decades show); powers of two for bytes.
fn log_ticks(lo: f64, hi: f64, bytes: bool) -> Vec<f64> {
    // A log axis needs a positive, finite range (a zero would make the exponent i32::MIN).
    if !(lo > 0.0 && hi.is_finite() && lo <= hi) {
        return Vec::new();
    }
    if bytes {
        let (a, b) = (lo.log2().ceil() as i32, hi.log2().floor() as i32);
        let step = ((b - a) / 6).max(1);
        return (a..=b)
            .filter(|e| (e - a) % step == 0)
            .map(|e| 2f64.powi(e))
            .collect();
    }
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mults: &[f64] = if b - a <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let mut out = Vec::new();
    for e in a..=b {
        for m in mults {
            let v = m * 10f64.powi(e);
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
    }
    out
}

/// A tick label: the unit's formatting with trailing zeros trimmed (`2 MiB`, `1.5`).
pub fn tick_label(v: f64, unit: &str) -> String {
    let s = match unit {
        "bytes" | "count" => format::value(v, unit),
        _ => short(v),
    };
    trim_zeros(&s)
}

fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.1e}")
    } else {
        // enough decimals to tell neighbouring ticks apart
        let d = (3 - a.log10().floor() as i32 - 1).clamp(0, 6) as usize;
        format!("{v:.d$}")
    }
}

fn trim_zeros(s: &str) -> String {
    let (num, rest) = match s.find(|c: char| c == ' ' || c == 'e' || c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let num = if num.contains('.') {
        num.trim_end_matches('0').trim_end_matches('.')
    } else {
        num
    };
    format!("{num}{rest}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn extreme_ranges_never_panic() {
        for values in [
            vec![5e-324, 1.0],
            vec![1e-300, 1e300],
            vec![f64::MIN_POSITIVE, f64::MAX],
        ] {
            let s = Scale::fit(&values, true, 0.0, 100.0);
            for unit in ["bytes", "ms", "count"] {
                let _ = s.ticks(unit);
            }
            assert!(s.px(values[1]).is_finite() || !s.log, "{values:?}");
        }
        assert!(log_ticks(0.0, 10.0, false).is_empty());
        assert!(log_ticks(0.0, f64::INFINITY, true).is_empty());
    }

    use super::*;

    #[test]
    fn linear_ticks_are_nice() {
        assert_eq!(
            linear_ticks(0.0, 10.0, 1000.0, false),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(
            linear_ticks(0.3, 1.1, 1000.0, false),
            vec![0.4, 0.6000000000000001, 0.8, 1.0]
        );
        let mib = 1024.0 * 1024.0;
        let t = linear_ticks(10.0 * mib, 20.0 * mib, 1024.0, false);
        assert_eq!(t[0], 10.0 * mib);
        assert_eq!(tick_label(t[1], "bytes"), "12 MiB");
        assert_eq!(linear_ticks(0.0, 2.2, 1000.0, true), vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn log_scale_only_when_useful() {
        assert!(Scale::fit(&[1.0, 1000.0], true, 0.0, 100.0).log);
        assert!(!Scale::fit(&[1.0, 10.0], true, 0.0, 100.0).log);
        assert!(!Scale::fit(&[-1.0, 1000.0], true, 0.0, 100.0).log);
        let s = Scale::fit(&[1.0, 1000.0], true, 0.0, 100.0);
        assert!((s.px(10f64.powf(1.5)) - 50.0).abs() < 1e-9);
        assert_eq!(
            log_ticks(1.0, 1000.0, false),
            vec![1.0, 10.0, 100.0, 1000.0]
        );
        assert_eq!(
            log_ticks(1.0, 50.0, false),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
        );
        assert_eq!(tick_label(1024.0 * 1024.0, "bytes"), "1 MiB");
        assert_eq!(tick_label(2.5, "ms"), "2.5");
        assert_eq!(tick_label(1500.0, "tok/s"), "1500");
    }

    #[test]
    fn close_ticks_get_enough_digits_to_differ() {
        let mib = 1024.0 * 1024.0;
        let s = Scale::linear(13.40 * mib, 13.44 * mib, 0.0, 100.0);
        let labels: Vec<String> = s.ticks("bytes").into_iter().map(|t| t.1).collect();
        assert_eq!(
            labels,
            [
                "13.4 MiB",
                "13.41 MiB",
                "13.42 MiB",
                "13.43 MiB",
                "13.44 MiB"
            ]
        );
        let s = Scale::linear(0.03410, 0.03414, 0.0, 100.0);
        let labels: Vec<String> = s.ticks("s").into_iter().map(|t| t.1).collect();
        assert_eq!(
            labels,
            ["0.0341", "0.03411", "0.03412", "0.03413", "0.03414"]
        );
        // labels that already differ keep 3 significant digits
        let s = Scale::linear(0.0, 10.0, 0.0, 100.0);
        assert_eq!(s.ticks("ms")[1].1, "2");
    }
}
