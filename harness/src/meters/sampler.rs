//! Background sampling for meters: a thread that calls a read function right away, then
//! every `period` (on a fixed schedule, so slow reads do not make it drift), and once more
//! when stopped. Timestamps are seconds since the sampler started, taken at the middle of
//! each read. Also the integration helpers used on the samples.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `(seconds since start, value)` pairs.
pub type Samples<T> = Vec<(f64, T)>;

/// A running sampler; [`Sampler::stop`] returns what it read.
pub struct Sampler<T> {
    stop: mpsc::Sender<()>,
    handle: Option<JoinHandle<Samples<T>>>,
}

/// Most samples a sampler keeps; past it the older ones are thinned out (see `start`).
pub const MAX_SAMPLES: usize = 1 << 20;

impl<T: Send + 'static> Sampler<T> {
    /// Starts sampling `read` every `period` on a background thread.
    pub fn start(period: Duration, mut read: impl FnMut() -> T + Send + 'static) -> Sampler<T> {
        let (tx, rx) = mpsc::channel::<()>();
        let t0 = Instant::now();
        let period = period.max(Duration::from_millis(1));
        let handle = std::thread::Builder::new()
            .name("effbench-meter".into())
            .spawn(move || {
                let mut out = Vec::new();
                let mut sample = |out: &mut Samples<T>| {
                    let a = t0.elapsed().as_secs_f64();
                    let v = read();
                    let b = t0.elapsed().as_secs_f64();
                    out.push(((a + b) / 2.0, v));
                };
                let mut k: u64 = 0;
                let mut period = period;
                loop {
                    sample(&mut out);
                    if out.len() >= MAX_SAMPLES {
                        // Memory stays bounded in a window of any length: every other sample
                        // goes, and the schedule halves (samples keep their own timestamps).
                        let mut i = 0;
                        out.retain(|_| {
                            i += 1;
                            i % 2 == 1
                        });
                        period = period.saturating_mul(2);
                        k /= 2;
                    }
                    // next slot on the fixed schedule that is still ahead
                    let behind = (t0.elapsed().as_secs_f64() / period.as_secs_f64()) as u64;
                    k = (k + 1).max(behind.saturating_add(1));
                    let at = u32::try_from(k)
                        .ok()
                        .and_then(|k| period.checked_mul(k))
                        .and_then(|d| t0.checked_add(d));
                    let wait = at.map_or(period, |at| at.saturating_duration_since(Instant::now()));
                    match rx.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        // stop asked, or the sampler was dropped: one last sample
                        _ => {
                            sample(&mut out);
                            break;
                        }
                    }
                }
                out
            })
            .ok();
        Sampler { stop: tx, handle }
    }

    /// Stops the thread (after one final sample) and returns every sample. Empty when the
    /// thread could not be started or panicked.
    pub fn stop(mut self) -> Samples<T> {
        let _ = self.stop.send(());
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

/// Trapezoid integral of `(t, y)` points (t ascending): Σ (t[i+1] - t[i]) (y[i] + y[i+1]) / 2.
pub fn trapezoid(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum()
}

/// Energy (J) over a window of `window_s` from power samples (W): the trapezoid mean power
/// over the sampled span times the window; with one sample (or no span), power x time.
pub fn energy_from_power(points: &[(f64, f64)], window_s: f64) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    let span = last.0 - first.0;
    if points.len() < 2 || span <= 0.0 {
        let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
        return Some(mean * window_s);
    }
    Some(trapezoid(points) / span * window_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoid_matches_hand_worked_numbers() {
        // 0..1 s at 100 -> 200 W: 150 J; 1..3 s at 200 -> 100 W: 300 J
        let p = [(0.0, 100.0), (1.0, 200.0), (3.0, 100.0)];
        assert_eq!(trapezoid(&p), 450.0);
        // a constant 50 W over 0.25 s
        assert_eq!(trapezoid(&[(0.0, 50.0), (0.1, 50.0), (0.25, 50.0)]), 12.5);
        assert_eq!(trapezoid(&[(0.0, 50.0)]), 0.0);
        // samples cover 0..3 s of a 3 s window: 450 J; of a 6 s window: mean 150 W x 6 s
        assert_eq!(energy_from_power(&p, 3.0), Some(450.0));
        assert_eq!(energy_from_power(&p, 6.0), Some(900.0));
        // one sample: power x time
        assert_eq!(energy_from_power(&[(0.0, 80.0)], 0.05), Some(4.0));
        assert_eq!(energy_from_power(&[], 1.0), None);
    }

    #[test]
    fn samples_at_start_on_period_and_at_stop() {
        let s = Sampler::start(Duration::from_millis(20), || 7u32);
        std::thread::sleep(Duration::from_millis(110));
        let v = s.stop();
        // one at 0, about five on the 20 ms schedule, one at stop (a loaded machine may skip)
        assert!(v.len() >= 3 && v.len() <= 8, "{} samples", v.len());
        assert!(v[0].0 < 0.02, "first sample right away: {}", v[0].0);
        assert!(v.last().unwrap().0 >= 0.1, "last at stop");
        assert!(v.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(v.iter().all(|x| x.1 == 7));
    }

    #[test]
    fn an_immediate_stop_still_has_two_samples() {
        let s = Sampler::start(Duration::from_secs(10), || 1u8);
        let v = s.stop();
        assert_eq!(v.len(), 2);
    }
}
