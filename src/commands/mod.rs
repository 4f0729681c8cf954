//! One module per subcommand. Exit codes: 0 success, 1 some runs failed (or, for `gate`, a
//! regression), 2 bad input or usage, 130 interrupted (Ctrl-C).

pub mod ab;
pub mod compare;
pub mod completions;
pub mod dynascore;
pub mod export;
pub mod gate;
pub mod history;
pub mod k8s;
pub mod list;
pub mod loadgen;
pub mod loadgen_vllm;
pub mod merge;
pub mod meters;
pub mod pareto;
pub mod plan;
pub mod report;
pub mod run;
pub mod serve;
pub mod show;
pub mod site;
pub mod slurm;
pub mod status;
pub mod suites;
pub mod table_input;
pub mod trained_default;
pub mod validate;

use anyhow::Result;
use effbench_harness::{matrix, Registry, RunSpec, Suite};
use std::path::Path;

pub const EXIT_RUN_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

/// Cargo features compiled into this binary (recorded in every result).
pub fn features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut f = Vec::new();
    #[cfg(feature = "cuda")]
    f.push("cuda");
    f
}

/// Keeps freed tensor buffers in the process heap for reuse. glibc's default serves large
/// allocations (> 128 KiB, adapting upwards) with mmap and gives memory back to the OS as soon
/// as it is freed, so candle's per-op output buffers page-fault freshly zeroed memory on every
/// op: about 15 % of a CPU training step, measured. Applied once at start so every backend and
/// every run of a process sees the same allocator. No-op off glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20); // glibc's maximum
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// A training process: one heap arena for every thread. Data-parallel training threads each
/// got their own glibc arena, and each arena kept its freed activation buffers (see
/// [`tune_allocator`]): peak RSS of suites/train-tiny.toml 586 MB with per-thread arenas,
/// 391 MB with one, at the same tokens/s (measured; the allocations are few and large, so one
/// arena's lock is not contended). Not for other commands: the load generator's many small
/// allocations on many threads want their arenas. Call before starting threads.
pub fn tune_allocator_for_training() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; only the Ctrl-C thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns the heap memory [`tune_allocator`] keeps for reuse to the OS, so the next run's
/// memory baseline (and its `peak_rss`) does not include what an earlier run left behind.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The child effbench process this one waits for (0: none); it runs in its own process
/// group, so a terminal's Ctrl-C reaches it only through [`install_interrupt_handler`].
static CHILD_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Forward every Ctrl-C to child `pid` from now on (`None`: stop forwarding).
pub fn forward_interrupts_to(pid: Option<u32>) {
    CHILD_PID.store(pid.unwrap_or(0), std::sync::atomic::Ordering::SeqCst);
}

/// First Ctrl-C: stop at the next safe point and save; second: leave at once. Each one is
/// passed on to a child effbench (which does the same).
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        let child = CHILD_PID.load(std::sync::atomic::Ordering::SeqCst);
        #[cfg(unix)]
        if child != 0 {
            // SAFETY: kill only sends a signal; the pid is our own unreaped child.
            unsafe {
                libc::kill(child as libc::pid_t, libc::SIGINT);
            }
        }
        if effbench_harness::interrupt::requested() {
            eprintln!("\nsecond Ctrl-C: exiting now");
            std::process::exit(EXIT_INTERRUPTED as i32);
        }
        eprintln!("\nCtrl-C: stopping after the current step and saving results (Ctrl-C again to quit now)");
        effbench_harness::interrupt::request();
    });
}

/// Reads a suite and expands it into validated run specs; prints the backends' warnings
/// about them (e.g. an unreachable target) on stderr.
pub fn plan(path: &Path, registry: &Registry, filters: &[String]) -> Result<(Suite, Vec<RunSpec>)> {
    plan_with(path, registry, filters, None)
}

/// [`plan`], with `--eval-text` turning on quality evaluation on that file.
pub fn plan_with(
    path: &Path,
    registry: &Registry,
    filters: &[String],
    eval_text: Option<&Path>,
) -> Result<(Suite, Vec<RunSpec>)> {
    let mut suite = Suite::load(path)?;
    if let Some(text) = eval_text {
        let bytes = std::fs::read(text)
            .map_err(|e| anyhow::anyhow!("--eval-text '{}': {e}", text.display()))?;
        if let Err(e) = std::str::from_utf8(&bytes) {
            anyhow::bail!(
                "--eval-text '{}' is not UTF-8 text (invalid byte at offset {})",
                text.display(),
                e.valid_up_to()
            );
        }
        let a = suite.analysis.get_or_insert_with(Default::default);
        a.eval_text = Some(text.display().to_string());
        a.quality = true;
    }
    let specs = matrix::expand_filtered(&suite, registry, filters)?;
    let axes = matrix::varying_axes(&specs);
    for spec in &specs {
        if let Ok(backend) = registry.get(&spec.backend) {
            for w in backend.warnings(spec) {
                let label = spec.label(&axes);
                let label = if label.is_empty() {
                    spec.id.clone()
                } else {
                    label
                };
                eprintln!("warning: {}: run {label}: {w}", path.display());
            }
        }
    }
    Ok((suite, specs))
}

/// The backends of the runs, for messages: `candle` or `candle, process`.
pub fn backends_of(specs: &[RunSpec]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for s in specs {
        if !names.contains(&s.backend.as_str()) {
            names.push(&s.backend);
        }
    }
    names.join(", ")
}
