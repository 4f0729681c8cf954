//! One module per subcommand. Exit codes (docs/reliability.md): 0 success, 1 some runs failed
//! (or, for `gate`, a regression), 2 bad input or usage, 3 the machine failed (disk full, an
//! I/O error, out of memory: nothing wrong with the input), 128 + N stopped by signal N (130
//! Ctrl-C, 143 SIGTERM, 129 SIGHUP) after saving what was done.

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
// Stopped by a signal: 128 + it, from [`effbench_harness::interrupt::exit_code`].
/// The machine failed (disk full, I/O error): the input was fine, trying again may work.
pub const EXIT_SYSTEM: u8 = 3;

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

/// First Ctrl-C, SIGTERM or SIGHUP: stop at the next safe point, save, finish the manifest and
/// exit with 128 + the signal; a second one: leave at once. Each one is passed on to child
/// processes registered with [`effbench_harness::interrupt::forward_to`] (a child effbench
/// does the same).
pub fn install_interrupt_handler() {
    let _ = effbench_harness::interrupt::install(|sig, count| {
        use effbench_harness::interrupt::{exit_code, signal_name};
        use std::io::Write;
        let name = signal_name(sig);
        // Never eprintln! here: a closed stderr must not panic this thread.
        let mut err = std::io::stderr();
        if count > 1 {
            let _ = writeln!(err, "\n{name} again: exiting now");
            std::process::exit(exit_code() as i32);
        }
        let _ = writeln!(
            err,
            "\n{name}: stopping after the current step and saving results (a second Ctrl-C or \
             signal quits at once)"
        );
    });
}

/// The exit status of a failed command: [`EXIT_SYSTEM`] when the machine failed (disk full,
/// quota, I/O error, read-only filesystem, out of memory or file descriptors) — nothing was
/// wrong with the input and trying again elsewhere may work —, else [`EXIT_BAD_INPUT`].
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    let system = e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.raw_os_error(),
                Some(
                    libc::ENOSPC
                        | libc::EDQUOT
                        | libc::EIO
                        | libc::EROFS
                        | libc::ENOMEM
                        | libc::EMFILE
                        | libc::ENFILE
                        | libc::EFBIG
                )
            ) || matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::OutOfMemory
            )
        })
    });
    if system {
        EXIT_SYSTEM
    } else {
        EXIT_BAD_INPUT
    }
}

/// `effbench ... | head -1`: once the reader of stdout (or stderr) is gone, effbench leaves
/// quietly with status 0, like ripgrep — no panic message, no error. Everything it had
/// finished is already on disk (results are written before they are printed).
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
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
    let mut suite = effbench_harness::matrix::load_suite(path)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_full_disk_is_a_machine_failure_not_bad_input() {
        // A real ENOSPC: /dev/full refuses every write with it.
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
            eprintln!("skipped: no /dev/full on this machine");
            return;
        };
        let e = f.write_all(b"x").and_then(|_| f.sync_all()).unwrap_err();
        let e = anyhow::Error::new(e).context("cannot write 'results/x.json'");
        assert_eq!(exit_code_of(&e), EXIT_SYSTEM);
        assert_eq!(exit_code_of(&anyhow::anyhow!("bad key")), EXIT_BAD_INPUT);
        let e = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(
            exit_code_of(&e),
            EXIT_BAD_INPUT,
            "a missing file is the input's fault"
        );
    }
}
