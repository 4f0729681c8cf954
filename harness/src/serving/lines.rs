//! The per-request records file of a load test: one JSON object per measured request in
//! `<run id>.requests.jsonl` beside the result ([`RequestLine`]), written as requests finish
//! (so in completion order, not send order). Times are milliseconds: `send_ms` since the
//! start of the measured window, the others since the request's own send. Readers (the vLLM
//! export, the site) use [`read`].

use super::record::RequestRecord;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name suffix of the records file: `<run id>.requests.jsonl`.
pub const SUFFIX: &str = "requests.jsonl";

/// The records file of a result file (`dir/<id>.json` -> `dir/<id>.requests.jsonl`).
pub fn path_for(result_file: &Path) -> PathBuf {
    result_file.with_extension(SUFFIX)
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One measured request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLine {
    /// Index in the arrival schedule.
    pub i: u64,
    /// Send time, ms since the start of the measured window.
    pub send_ms: f64,
    /// How late it was sent (arrival lateness), ms.
    pub late_ms: f64,
    /// Succeeded.
    pub ok: bool,
    /// HTTP status, when a response came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `connection`, `timeout`, `http_4xx`, ... for a failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// One-line error message (credentials scrubbed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Prompt tokens (server usage).
    pub tokens_in: u64,
    /// Output tokens (server usage, else counted chunks).
    pub tokens_out: u64,
    /// `max_tokens` asked for.
    pub max_tokens: u64,
    /// Prompt length the workload aimed for (tokens or words, see the run log; 0 = as given).
    #[serde(default)]
    pub prompt_len: u64,
    /// Time to first token, ms (streamed requests that succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Send to the last token (or the end of the response), ms; successful requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2el_ms: Option<f64>,
    /// Each streamed emission, ms since the send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_ms: Vec<f64>,
    /// Tokens of each emission, when any carried more than one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_counts: Vec<u32>,
    /// Sent a second time on a fresh connection (the server had closed the kept-alive one).
    #[serde(default, skip_serializing_if = "is_false")]
    pub retried: bool,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl RequestLine {
    /// The line of a finished request.
    pub fn of(r: &RequestRecord) -> RequestLine {
        let ok = r.ok();
        let em = &r.trace.emissions;
        let streamed = ok && r.streamed;
        RequestLine {
            i: r.index,
            send_ms: ms(r.sent_ns),
            late_ms: ms(r.lateness_ns),
            ok,
            status: r.http_status,
            error_kind: r.failure.as_ref().map(|f| f.kind.name().to_string()),
            error: r.failure.as_ref().map(|f| f.message.clone()),
            tokens_in: r.input_tokens,
            tokens_out: r.output_tokens,
            max_tokens: r.requested_output_tokens,
            prompt_len: r.planned_prompt_len,
            ttft_ms: if streamed {
                em.first().map(|e| ms(e.t_ns))
            } else {
                None
            },
            e2el_ms: ok.then_some(ms(r.e2e_ns)),
            token_ms: if streamed {
                em.iter().map(|e| ms(e.t_ns)).collect()
            } else {
                Vec::new()
            },
            token_counts: if streamed && em.iter().any(|e| e.tokens != 1) {
                em.iter().map(|e| e.tokens).collect()
            } else {
                Vec::new()
            },
            retried: r.retried,
        }
    }

    /// Gaps between consecutive emissions, ms (vLLM's per-request `itl`).
    pub fn itl_ms(&self) -> Vec<f64> {
        self.token_ms.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

/// Streams lines to `<path>.partial`, renamed to `path` by [`LineWriter::finish`], so a
/// records file on disk is always a finished one. At most `max` lines; a write error stops
/// the writing (the run goes on) and is reported.
pub struct LineWriter {
    path: PathBuf,
    partial: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    max: u64,
    written: u64,
    skipped: u64,
    error: Option<String>,
}

impl LineWriter {
    pub fn create(path: &Path, max: u64) -> LineWriter {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let (out, error) = match std::fs::File::create(&partial) {
            Ok(f) => (Some(std::io::BufWriter::with_capacity(1 << 16, f)), None),
            Err(e) => (
                None,
                Some(format!("cannot create '{}': {e}", partial.display())),
            ),
        };
        LineWriter {
            path: path.to_path_buf(),
            partial,
            out,
            max,
            written: 0,
            skipped: 0,
            error,
        }
    }

    /// Writes one request's line (or counts it past the cap).
    pub fn add(&mut self, r: &RequestRecord) {
        let Some(out) = self.out.as_mut() else {
            self.skipped += 1;
            return;
        };
        if self.written >= self.max {
            self.skipped += 1;
            return;
        }
        let line = serde_json::to_string(&RequestLine::of(r)).expect("lines serialize");
        match writeln!(out, "{line}") {
            Ok(()) => self.written += 1,
            Err(e) => {
                self.error = Some(format!("writing '{}': {e}", self.partial.display()));
                self.out = None;
                self.skipped += 1;
            }
        }
    }

    /// Flushes and renames the file into place; returns a note for the run log.
    pub fn finish(mut self) -> String {
        if let Some(mut out) = self.out.take() {
            let done = out.flush().map_err(|e| e.to_string()).and_then(|()| {
                std::fs::rename(&self.partial, &self.path).map_err(|e| e.to_string())
            });
            if let Err(e) = done {
                self.error = Some(format!("finishing '{}': {e}", self.path.display()));
            }
        }
        let mut note = match &self.error {
            None => format!(
                "per-request records: {} line(s) in {}",
                self.written,
                self.path.display()
            ),
            Some(e) => format!(
                "per-request records incomplete ({} line(s) written): {e}",
                self.written
            ),
        };
        if self.skipped > 0 && self.error.is_none() {
            note.push_str(&format!(
                "; {} more request(s) not written ([serving] max_request_records = {})",
                self.skipped, self.max
            ));
        }
        note
    }
}

/// Reads a records file, sorted by request index; errors name the file and line.
pub fn read(path: &Path) -> Result<Vec<RequestLine>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read request records '{}'", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: RequestLine = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a request record", path.display(), n + 1))?;
        out.push(l);
    }
    out.sort_by_key(|l| l.i);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Emission, GenerationTrace};
    use crate::serving::{ErrorKind, Failure};

    #[test]
    fn lines_round_trip_and_carry_times_in_ms() {
        let ok = RequestRecord {
            index: 3,
            sent_ns: 2_000_000,
            lateness_ns: 50_000,
            http_status: Some(200),
            input_tokens: 5,
            output_tokens: 4,
            requested_output_tokens: 4,
            streamed: true,
            trace: GenerationTrace {
                batch: 1,
                prompt_tokens: 5,
                emissions: vec![
                    Emission {
                        t_ns: 10_000_000,
                        tokens: 1,
                    },
                    Emission {
                        t_ns: 30_000_000,
                        tokens: 3,
                    },
                ],
            },
            e2e_ns: 30_000_000,
            ..Default::default()
        };
        let l = RequestLine::of(&ok);
        assert_eq!((l.send_ms, l.late_ms), (2.0, 0.05));
        assert_eq!((l.ttft_ms, l.e2el_ms), (Some(10.0), Some(30.0)));
        assert_eq!(l.token_counts, vec![1, 3]);
        assert_eq!(l.itl_ms(), vec![20.0]);
        let failed = RequestRecord {
            index: 1,
            http_status: Some(400),
            failure: Some(Failure {
                kind: ErrorKind::Http4xx,
                message: "HTTP 400: too long".into(),
            }),
            retried: true,
            ..Default::default()
        };
        let f = RequestLine::of(&failed);
        let text = serde_json::to_string(&f).unwrap();
        assert!(text.contains("\"error_kind\":\"http_4xx\""), "{text}");
        assert!(
            !text.contains("ttft_ms") && !text.contains("token_ms"),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(format!("abc.{SUFFIX}"));
        let body = format!(
            "{}\n{}\n",
            serde_json::to_string(&l).unwrap(),
            serde_json::to_string(&f).unwrap()
        );
        std::fs::write(&p, body).unwrap();
        let back = read(&p).unwrap();
        assert_eq!(back, vec![f, l], "sorted by index");
        assert_eq!(path_for(&dir.path().join("abc.json")), p);
        std::fs::remove_file(&p).unwrap();
        let mut w = LineWriter::create(&p, 1);
        w.add(&ok);
        w.add(&failed);
        assert!(!p.exists(), "written under a temporary name first");
        let note = w.finish();
        assert!(
            note.contains("1 line(s)") && note.contains("1 more request(s) not written"),
            "{note}"
        );
        assert_eq!(read(&p).unwrap(), vec![RequestLine::of(&ok)]);
        std::fs::write(&p, "{\"i\":1}\n").unwrap();
        let e = read(&p).unwrap_err();
        assert!(format!("{e:#}").contains("abc.requests.jsonl:1"), "{e:#}");
    }
}
