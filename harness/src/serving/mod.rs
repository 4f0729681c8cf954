//! Serving load tests (scenario `serving`): what the harness owns, whichever backend sends
//! the requests.
//!
//! - The `[serving]` suite table (server URL, endpoint, workload, SLOs, search, dataset
//!   formats, shared-prefix and multi-turn workloads, headers, extra body fields, failure
//!   threshold, record keeping) is a record: [`crate::records::ServingConfig`], with its checks.
//! - [`arrivals`]: seeded arrival schedules (constant, Poisson, Gamma burstiness, ramp-up).
//! - [`record`]: one request's outcome ([`record::RequestRecord`]) and error kinds.
//! - [`aggregate`]: folds records into metrics in bounded memory (HDR histograms, capped
//!   raw samples): latencies, throughput, goodput, failures by kind, arrival lateness.
//! - [`search`]: the MLPerf-style bisection for the highest rate meeting the SLOs.
//! - [`lines`]: the per-request records file (`<run id>.requests.jsonl`).
//! - [`timeline`]: latency, throughput and concurrency over time, as series.

pub mod aggregate;
pub mod arrivals;
pub mod lines;
pub mod record;
pub mod search;
pub mod timeline;

pub use aggregate::{Aggregate, Summary};
pub use arrivals::{Ramp, Schedule, ScheduleSpec};
pub use record::{ErrorKind, Failure, RequestRecord, TokenCounts};
