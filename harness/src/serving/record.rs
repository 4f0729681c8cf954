//! One request of a serving load test as the harness sees it ([`RequestRecord`]), how a
//! failed request is classified ([`ErrorKind`]) and the latency SLOs a request must meet to
//! count towards goodput ([`Slo`]). Latencies come from the same formulas as in-process
//! generation ([`crate::trace::latencies`]): the record carries a [`GenerationTrace`] whose
//! emissions are relative to the moment the request was sent.

use crate::backend::GenerationTrace;
use crate::metric::MetricId;
use crate::trace::{self, TraceLatencies};
use serde::{Deserialize, Serialize};

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Could not connect, or the connection broke before the response ended.
    Connection,
    /// The per-request timeout (`[serving] timeout_s`) expired.
    Timeout,
    /// HTTP 400-499.
    Http4xx,
    /// HTTP 500-599 (and any other non-2xx status).
    Http5xx,
    /// The response was not what the OpenAI API specifies (malformed SSE or JSON, a stream
    /// that ends without `[DONE]` or a finish reason).
    Protocol,
    /// A well-formed error object inside a 200 response (e.g. an error event mid-stream).
    Server,
    /// Cancelled by effbench (Ctrl-C, or the run was ended after the server became unreachable).
    Cancelled,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connection,
        ErrorKind::Timeout,
        ErrorKind::Http4xx,
        ErrorKind::Http5xx,
        ErrorKind::Protocol,
        ErrorKind::Server,
        ErrorKind::Cancelled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connection => "connection",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Http4xx => "http_4xx",
            ErrorKind::Http5xx => "http_5xx",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Server => "server",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    /// The count metric of this kind.
    pub fn metric(self) -> MetricId {
        match self {
            ErrorKind::Connection => MetricId::FailuresConnection,
            ErrorKind::Timeout => MetricId::FailuresTimeout,
            ErrorKind::Http4xx => MetricId::FailuresHttp4xx,
            ErrorKind::Http5xx => MetricId::FailuresHttp5xx,
            ErrorKind::Protocol => MetricId::FailuresProtocol,
            ErrorKind::Server => MetricId::FailuresServer,
            ErrorKind::Cancelled => MetricId::FailuresCancelled,
        }
    }

    /// The kind of a non-2xx HTTP status.
    pub fn of_status(status: u16) -> ErrorKind {
        if (400..500).contains(&status) {
            ErrorKind::Http4xx
        } else {
            ErrorKind::Http5xx
        }
    }
}

/// How the output token count of each streamed chunk was known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenCounts {
    /// Every chunk said how many tokens it carried (cumulative `usage` per chunk).
    #[default]
    Exact,
    /// Only the total (final `usage`) was known; it was spread evenly over the chunks.
    Spread,
    /// The server reported no usage: one token per content chunk was assumed.
    Chunks,
}

/// A failed request: its kind and a one-line message (never containing the API key).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

/// What one measured request produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestRecord {
    /// How late it was sent: send time minus the later of its scheduled time and the moment a
    /// concurrency slot was free (ns). A generator that cannot keep its schedule shows here.
    pub lateness_ns: u64,
    /// `None` when the request succeeded.
    pub failure: Option<Failure>,
    /// HTTP status when a response arrived.
    pub http_status: Option<u16>,
    /// Prompt tokens (server `usage`, else the workload's own count).
    pub input_tokens: u64,
    /// Output tokens (server `usage`, else counted chunks).
    pub output_tokens: u64,
    /// Output tokens asked for (`max_tokens`), to notice servers that stop early.
    pub requested_output_tokens: u64,
    /// Whether the response was streamed; only streamed requests have TTFT/TPOT/ITL.
    pub streamed: bool,
    /// Streamed token emissions, ns since the send (a chunk of k tokens is one emission of k).
    pub trace: GenerationTrace,
    /// Send to the last token (streaming) or to the end of the response (ns).
    pub e2e_ns: u64,
    pub token_counts: TokenCounts,
    /// Index of the request in the run (its place in the arrival schedule).
    pub index: u64,
    /// Send time, ns since the start of the measured window.
    pub sent_ns: u64,
    /// When the request finished, successfully or not (ns since its send).
    pub done_ns: u64,
    /// The first attempt died on a kept-alive connection the server had closed before
    /// answering; the request was sent once more on a fresh connection (this record is the
    /// second attempt's outcome; its times still count from the first send).
    pub retried: bool,
    /// Prompt length the workload aimed for (tokens with a tokenizer, else words; 0 when the
    /// prompt came from a dataset as it is).
    pub planned_prompt_len: u64,
}

impl RequestRecord {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// TTFT, TPOT, ITL of a streamed request (empty for non-streamed or failed ones), with
    /// `e2e` set from `e2e_ns` in every case.
    pub fn latencies(&self) -> TraceLatencies {
        let mut l = if self.streamed && self.ok() {
            trace::latencies(&self.trace)
        } else {
            TraceLatencies::default()
        };
        l.prefill_tps = None;
        l.e2e = self.ok().then_some(self.e2e_ns as f64 / 1e6);
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Slo;

    #[test]
    fn slo_parsing_and_checks() {
        let s = Slo::parse_cli("ttft=200ms, tpot=50, e2el=2s").unwrap();
        assert_eq!(
            (s.ttft_ms, s.tpot_ms, s.e2el_ms),
            (Some(200.0), Some(50.0), Some(2000.0))
        );
        assert!(Slo::parse_cli("itl=5ms")
            .unwrap_err()
            .contains("unknown objective 'itl'"));
        assert!(Slo::parse_cli("ttft=-1ms").unwrap_err().contains("> 0"));
        assert!(Slo::parse_cli("ttft").is_err());
        assert_eq!(s.describe(), "ttft<=200ms, tpot<=50ms, e2el<=2000ms");
    }

    #[test]
    fn single_token_meets_tpot_but_not_a_missing_ttft() {
        let slo = Slo {
            ttft_ms: Some(10.0),
            tpot_ms: Some(1.0),
            e2el_ms: None,
        };
        let l = TraceLatencies {
            ttft: Some(5.0),
            e2e: Some(5.0),
            ..Default::default()
        };
        assert!(slo.met_by(true, &l));
        assert!(!slo.met_by(false, &l), "failed requests are never good");
        let no_ttft = TraceLatencies {
            e2e: Some(5.0),
            ..Default::default()
        };
        assert!(!slo.met_by(true, &no_ttft));
    }

    #[test]
    fn status_kinds() {
        assert_eq!(ErrorKind::of_status(429), ErrorKind::Http4xx);
        assert_eq!(ErrorKind::of_status(503), ErrorKind::Http5xx);
        assert_eq!(ErrorKind::of_status(302), ErrorKind::Http5xx);
    }
}
