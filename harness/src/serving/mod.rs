//! Serving load tests (scenario `serving`): what the harness owns, whichever backend sends
//! the requests.
//!
//! - [`config`]: the `[serving]` suite table (server URL, endpoint, workload, SLOs, search).
//! - [`arrivals`]: seeded arrival schedules (constant, Poisson, Gamma burstiness, ramp-up).
//! - [`record`]: one request's outcome ([`record::RequestRecord`]), error kinds, SLOs.
//! - [`aggregate`]: folds records into metrics in bounded memory (HDR histograms, capped
//!   raw samples): latencies, throughput, goodput, failures by kind, arrival lateness.
//! - [`search`]: the MLPerf-style bisection for the highest rate meeting the SLOs.

pub mod aggregate;
pub mod arrivals;
pub mod config;
pub mod record;
pub mod search;

pub use aggregate::{Aggregate, Summary};
pub use arrivals::{Arrival, Ramp, Schedule, ScheduleSpec};
pub use config::{Endpoint, SearchConfig, ServingConfig};
pub use record::{ErrorKind, Failure, RequestRecord, Slo, TokenCounts};
