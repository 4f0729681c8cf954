//! Ctrl-C handling shared by the runner and backends: the first Ctrl-C asks everything to
//! stop at the next safe point (the current run is saved as `interrupted`); the CLI installs
//! the signal handler and exits with 130.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks running work to stop.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// True once an interrupt was requested. Cheap: poll it in inner loops.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Clears the flag (tests, or a fresh suite in the same process).
pub fn reset() {
    REQUESTED.store(false, Ordering::SeqCst);
}

/// Error returned by work that stopped because of an interrupt.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by the user (Ctrl-C)")]
pub struct Interrupted;
