//! Numbers a peer reports — a server's token counts, a worker's timestamps and sizes — checked
//! against what was physically possible before they become measurements (issue 14, class
//! 10): no more output tokens than were asked for, no more prompt tokens than the request
//! had bytes, no time inside a request longer than the round trip effbench measured around
//! it, no memory larger than any machine has. A peer that lies fails its request or run with
//! a message that says what it claimed and what was possible; it never skews a statistic.

use crate::serving::{ErrorKind, Failure, RequestRecord};
use std::time::Duration;

/// Template and special tokens a server may add to a prompt beyond one token per byte.
pub const PROMPT_TOKEN_SLACK: u64 = 4096;
/// Largest memory figure a worker may report (1 PiB).
pub const MAX_MEMORY_BYTES: u64 = 1 << 50;
/// Largest parameter count a worker may report (10^15).
pub const MAX_PARAMS: u64 = 1_000_000_000_000_000;

/// Checks a finished request's record from a server; an impossible one becomes a
/// `protocol` failure. `request_bytes` is the size of the request body sent, `round_trip`
/// the time effbench measured from sending it to the end of the response.
pub fn check_request(rec: &mut RequestRecord, request_bytes: usize, round_trip: Duration) {
    if rec.failure.is_some() {
        return;
    }
    if let Err(message) = request_problem(rec, request_bytes, round_trip) {
        rec.failure = Some(Failure {
            kind: ErrorKind::Protocol,
            message: format!("implausible response: {message}"),
        });
    }
}

fn request_problem(
    rec: &RequestRecord,
    request_bytes: usize,
    round_trip: Duration,
) -> Result<(), String> {
    let asked = rec.requested_output_tokens;
    if asked > 0 && rec.output_tokens > asked {
        return Err(format!(
            "{} output tokens for max_tokens {asked}",
            rec.output_tokens
        ));
    }
    let emitted: u64 = rec
        .trace
        .emissions
        .iter()
        .map(|e| u64::from(e.tokens))
        .sum();
    if asked > 0 && emitted > asked {
        return Err(format!(
            "chunks carry {emitted} tokens for max_tokens {asked}"
        ));
    }
    let max_in = (request_bytes as u64).saturating_add(PROMPT_TOKEN_SLACK);
    if rec.input_tokens > max_in {
        return Err(format!(
            "{} prompt tokens for a request of {request_bytes} bytes",
            rec.input_tokens
        ));
    }
    let rtt = round_trip.as_nanos().min(u64::MAX as u128) as u64;
    if let Some(e) = rec.trace.emissions.iter().find(|e| e.t_ns > rtt) {
        return Err(format!(
            "a token at {} ms, after the response ended ({} ms)",
            e.t_ns / 1_000_000,
            rtt / 1_000_000
        ));
    }
    Ok(())
}

/// Checks a worker's `run` reply timing: every emission and the worker's own op time within
/// the round trip effbench measured around the request.
pub fn check_worker_times(
    emissions_ns: impl IntoIterator<Item = u64>,
    op_ns: Option<u64>,
    round_trip: Duration,
) -> Result<(), String> {
    let rtt = round_trip.as_nanos().min(u64::MAX as u128) as u64;
    if let Some(t) = emissions_ns.into_iter().find(|&t| t > rtt) {
        return Err(format!(
            "an emission at t_ns = {t}, later than the {rtt} ns round trip effbench measured \
             around the request (the worker's clock or counts are wrong)"
        ));
    }
    if let Some(op) = op_ns.filter(|&op| op > rtt) {
        return Err(format!(
            "op_ns = {op} is longer than the {rtt} ns round trip effbench measured"
        ));
    }
    Ok(())
}

/// Checks a size a worker reports (`what` names the field).
pub fn check_worker_size(what: &str, v: Option<u64>, max: u64) -> Result<(), String> {
    match v {
        Some(x) if x > max => Err(format!(
            "{what} = {x} is more than any machine holds (at most {max})"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Emission, GenerationTrace};

    fn rec(asked: u64, out: u64, input: u64, t: &[u64]) -> RequestRecord {
        RequestRecord {
            requested_output_tokens: asked,
            output_tokens: out,
            input_tokens: input,
            trace: GenerationTrace {
                batch: 1,
                prompt_tokens: 0,
                emissions: t.iter().map(|&t_ns| Emission { t_ns, tokens: 1 }).collect(),
            },
            ..Default::default()
        }
    }

    #[test]
    fn possible_records_pass() {
        let mut r = rec(8, 8, 100, &[1, 2, 3]);
        check_request(&mut r, 500, Duration::from_nanos(10));
        assert!(r.failure.is_none());
    }

    #[test]
    fn lies_become_protocol_failures() {
        let rtt = Duration::from_millis(10);
        for (mut r, want) in [
            (
                rec(8, 3_000_000_000, 10, &[]),
                "output tokens for max_tokens 8",
            ),
            (rec(8, 8, u64::MAX, &[]), "prompt tokens for a request"),
            (
                rec(8, 1, 10, &[5, 365 * 24 * 3600 * 1_000_000_000]),
                "after the response ended",
            ),
        ] {
            check_request(&mut r, 100, rtt);
            let f = r.failure.expect(want);
            assert_eq!(f.kind, ErrorKind::Protocol);
            assert!(f.message.contains(want), "{}", f.message);
        }
        assert!(check_worker_times([1, u64::MAX], None, rtt).is_err());
        assert!(check_worker_times([1], Some(u64::MAX), rtt).is_err());
        check_worker_times([1, 2], Some(3), rtt).unwrap();
        assert!(check_worker_size("x", Some(u64::MAX), MAX_MEMORY_BYTES).is_err());
    }
}
