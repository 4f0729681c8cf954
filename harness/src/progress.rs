//! Progress display: a bar over runs (with ETA) and one over the current run's iterations.
//! Drawn on stderr only when it is a terminal; silent otherwise (CI logs stay clean).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Hooks the runner calls; the default methods do nothing.
pub trait Progress {
    /// A new phase of the current run (`loading`, `warm-up`, `measuring` ...).
    fn phase(&self, _name: &str) {}
    /// After each measured iteration.
    fn iteration(&self, _done: u64, _min_iters: u64, _elapsed_s: f64, _min_duration_s: f64) {}
}

/// No output.
pub struct NoProgress;
impl Progress for NoProgress {}

/// indicatif bars on stderr.
pub struct TerminalProgress {
    _multi: MultiProgress,
    runs: ProgressBar,
    iters: ProgressBar,
}

impl TerminalProgress {
    /// `total_runs` bars; hidden automatically when stderr is not a terminal.
    pub fn new(total_runs: u64) -> TerminalProgress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let runs = multi.add(ProgressBar::new(total_runs));
        runs.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {pos}/{len} runs, ETA {eta} {msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        runs.set_prefix("suite");
        let iters = multi.add(ProgressBar::new(1));
        iters.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        iters.set_prefix("run");
        TerminalProgress {
            _multi: multi,
            runs,
            iters,
        }
    }

    /// Starts run `index` (1-based) of `total`, named by its label. Without a terminal the
    /// bars are hidden, so a plain `[i/n] label` line tells logs (and tests) what runs now.
    pub fn start_run(&self, index: usize, total: usize, label: &str) {
        if self.runs.is_hidden() {
            eprintln!("[{index}/{total}] {label}");
        }
        self.runs.set_message(label.to_string());
        self.iters.reset();
        self.iters.set_length(1000);
        self.iters.set_position(0);
    }

    pub fn finish_run(&self) {
        self.runs.inc(1);
    }

    /// Prints a line above the bars (or plainly when hidden).
    pub fn println(&self, line: &str) {
        if self.runs.is_hidden() {
            eprintln!("{line}");
        } else {
            self.runs.println(line);
        }
    }

    pub fn finish(&self) {
        self.iters.finish_and_clear();
        self.runs.finish_and_clear();
    }
}

impl Progress for TerminalProgress {
    fn phase(&self, name: &str) {
        self.iters.set_message(name.to_string());
    }
    fn iteration(&self, done: u64, min_iters: u64, elapsed_s: f64, min_duration_s: f64) {
        // Progress towards both minimums; the slower one decides.
        let by_iters = done as f64 / min_iters.max(1) as f64;
        let by_time = if min_duration_s > 0.0 {
            elapsed_s / min_duration_s
        } else {
            1.0
        };
        let frac = by_iters.min(by_time).min(1.0);
        self.iters.set_position((frac * 1000.0) as u64);
        self.iters
            .set_message(format!("measuring: {done} iterations, {elapsed_s:.1} s"));
    }
}
