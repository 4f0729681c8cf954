//! Bounds on every number that comes from outside (a suite file, a flag, an environment
//! variable, a result file, a peer): the documented caps, the one range check whose error
//! names the key and the allowed range, the one conversion of float seconds into a
//! [`Duration`], and checked arithmetic on user numbers. docs/reliability.md lists the caps.

use std::time::Duration;

/// Most runs one suite may expand to (the matrix product, counted before it is built, and
/// the runs after include rules). A run takes at least its warm-up and one iteration, so
/// this is days of machine time; split a larger study into several suites.
pub const MAX_RUNS: u64 = 100_000;
/// Most `include` or `exclude` rules in one `[matrix]`.
pub const MAX_RULES: usize = 1_000;
/// Most values of one axis.
pub const MAX_AXIS_VALUES: usize = 10_000;
/// Longest any duration from a file or flag may be (30 days), in seconds.
pub const MAX_SECONDS: f64 = 30.0 * 86_400.0;
/// Tokens one iteration may hold (batch x (prompt_len + gen_len), or batch x seq_len for
/// training): 16 Mi token ids, 64 MiB as u32, before any activation.
pub const MAX_TOKENS_PER_ITERATION: u64 = 1 << 24;
/// Most shards a suite may be split into.
pub const MAX_SHARDS: u64 = 100_000;
/// Most requests one serving run may send (measured plus warm-up).
pub const MAX_REQUESTS: u64 = 10_000_000;
/// Longest line accepted from a peer (a worker's reply, an SSE line, a JSONL record) unless
/// the suite raises it; 64 MiB.
pub const MAX_LINE_BYTES: u64 = 64 << 20;
/// Largest whole response body read from a server (non-streamed reply or error), 64 MiB.
pub const MAX_BODY_BYTES: usize = 64 << 20;
/// Largest input file read whole (suites, result and manifest files, CSV tables, datasets).
pub const MAX_INPUT_FILE_BYTES: u64 = 1 << 30;

/// `v` rendered for messages: plain for ordinary magnitudes, scientific for huge or tiny.
pub fn show(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e12).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// `key = v` must be a finite number in `[lo, hi]`; `unit` (e.g. " s") follows the range in
/// the message: `[meters] period_ms = 1e300 is out of range: allowed 1 to 3600000 ms`.
pub fn check_f64(key: &str, v: f64, lo: f64, hi: f64, unit: &str) -> Result<f64, String> {
    if v.is_finite() && v >= lo && v <= hi {
        return Ok(v);
    }
    Err(format!(
        "{key} = {} is out of range: allowed {} to {}{unit}",
        show(v),
        show(lo),
        show(hi)
    ))
}

/// `key = v` must be an integer in `[lo, hi]` (same message shape as [`check_f64`]).
pub fn check_int(key: &str, v: i128, lo: i128, hi: i128) -> Result<(), String> {
    if (lo..=hi).contains(&v) {
        return Ok(());
    }
    Err(format!("{key} = {v} is out of range: allowed {lo} to {hi}"))
}

/// The one conversion of float seconds into a `Duration`: `key = secs` must be finite, >= 0
/// and at most [`MAX_SECONDS`]; the error names the key and the range.
pub fn seconds(key: &str, secs: f64) -> Result<Duration, String> {
    let s = check_f64(key, secs, 0.0, MAX_SECONDS, " s")?;
    Duration::try_from_secs_f64(s).map_err(|e| format!("{key} = {}: {e}", show(secs)))
}

/// For durations effbench computes itself from checked inputs (arrival offsets, sleeps):
/// NaN and negatives are 0, anything past [`MAX_SECONDS`] is [`MAX_SECONDS`]. Never panics.
pub fn seconds_clamped(secs: f64) -> Duration {
    let s = if secs.is_nan() {
        0.0
    } else {
        secs.clamp(0.0, MAX_SECONDS)
    };
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

/// Milliseconds as a `Duration` (through [`seconds`]).
pub fn millis(key: &str, ms: f64) -> Result<Duration, String> {
    let s = check_f64(key, ms, 0.0, MAX_SECONDS * 1e3, " ms")?;
    seconds(key, s / 1e3)
}

/// `now + d`, or `None` when the clock cannot represent it (instead of the panic of `+`).
pub fn deadline(now: std::time::Instant, d: Duration) -> Option<std::time::Instant> {
    now.checked_add(d)
}

/// Product of counts read from a file, or an error naming `what` when it passes `max` (or
/// overflows) — for sizes checked before anything is allocated.
pub fn product(what: &str, factors: &[u64], max: u64) -> Result<u64, String> {
    let mut p: u64 = 1;
    for &f in factors {
        p = p.checked_mul(f).filter(|&p| p <= max).ok_or_else(|| {
            format!(
                "{what} = {} is more than the maximum {max}",
                factors
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" x ")
            )
        })?;
    }
    Ok(p)
}

/// Sum of user numbers (weights, volumes): an error, not `inf`/NaN, when it is not finite.
pub fn finite_sum(what: &str, values: impl IntoIterator<Item = f64>) -> Result<f64, String> {
    let mut s = 0.0f64;
    for v in values {
        if !v.is_finite() {
            return Err(format!("{what}: {} is not a finite number", show(v)));
        }
        s += v;
        if !s.is_finite() {
            return Err(format!(
                "{what}: the sum overflows (values too large to add up)"
            ));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_errors_name_the_key_and_the_range() {
        assert_eq!(check_f64("k", 2.0, 0.0, 3.0, " s"), Ok(2.0));
        assert_eq!(
            check_f64("[meters] period_ms", 1e300, 1.0, 3.6e6, " ms").unwrap_err(),
            "[meters] period_ms = 1e300 is out of range: allowed 1 to 3600000 ms"
        );
        assert!(check_f64("k", f64::NAN, 0.0, 1.0, "").is_err());
        assert!(check_f64("k", f64::INFINITY, 0.0, f64::MAX, "").is_err());
        assert_eq!(
            check_int("batch", 1_000_000_000, 1, 65_536).unwrap_err(),
            "batch = 1000000000 is out of range: allowed 1 to 65536"
        );
    }

    #[test]
    fn float_seconds_never_panic() {
        for bad in [1e20, 1e300, f64::NAN, f64::INFINITY, -1.0, f64::MAX] {
            let e = seconds("--grace-s", bad).unwrap_err();
            assert!(
                e.starts_with("--grace-s = ") && e.contains("allowed 0 to"),
                "{e}"
            );
            let _ = seconds_clamped(bad);
        }
        assert_eq!(seconds("t", 1.5).unwrap(), Duration::from_millis(1500));
        assert_eq!(seconds_clamped(-3.0), Duration::ZERO);
        assert_eq!(seconds_clamped(1e300).as_secs_f64(), MAX_SECONDS);
        assert!(millis("p", 1e300).is_err());
        assert!(deadline(std::time::Instant::now(), Duration::MAX).is_none());
    }

    #[test]
    fn products_and_sums_are_checked() {
        assert_eq!(product("runs", &[10, 10], 100), Ok(100));
        assert_eq!(
            product("runs", &[1000, 1000, 1000], 100_000).unwrap_err(),
            "runs = 1000 x 1000 x 1000 is more than the maximum 100000"
        );
        assert!(product("runs", &[u64::MAX, 3], u64::MAX).is_err());
        assert_eq!(finite_sum("w", [1.0, 2.0]), Ok(3.0));
        assert!(finite_sum("w", [f64::MAX, f64::MAX])
            .unwrap_err()
            .contains("overflows"));
        assert!(finite_sum("w", [f64::NAN]).is_err());
    }
}
