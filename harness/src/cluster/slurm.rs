//! `effbench slurm`: sbatch scripts for a suite split into a job array (one task per shard,
//! each `effbench run --shard $SLURM_ARRAY_TASK_ID/N` into its own directory) and a merge job
//! that starts only when every task succeeded (`--dependency=afterok`), plus `submit.sh`.
//! Submitting calls the real `sbatch`.

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything the scripts need; paths are absolute (jobs start elsewhere).
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub shards: usize,
    pub partition: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    pub time: Option<String>,
    /// Array throttle `%K`; default all shards at once.
    pub max_parallel: Option<usize>,
    pub account: Option<String>,
    /// Extra `#SBATCH` options for both jobs (e.g. `--qos=high`).
    pub extra: Vec<String>,
    pub effbench: PathBuf,
    pub suite: PathBuf,
    pub out: PathBuf,
    /// Working directory of the jobs (where `results/models` lives).
    pub workdir: PathBuf,
    pub filters: Vec<String>,
    pub job_name: String,
}

#[derive(Debug)]
pub struct SlurmScripts {
    pub shards: String,
    pub merge: String,
    pub submit: String,
}

pub const SHARDS_SCRIPT: &str = "shards.sbatch";
/// Seconds before the time limit at which Slurm sends effbench SIGTERM (`--signal`).
pub const SIGNAL_BEFORE_LIMIT_S: u32 = 120;
pub const MERGE_SCRIPT: &str = "merge.sbatch";
pub const SUBMIT_SCRIPT: &str = "submit.sh";

/// Quotes for POSIX shells ([`crate::escape::shell`]).
pub fn shell_quote(s: &str) -> String {
    crate::escape::shell(s)
}

/// A value that goes into an `#SBATCH` line: no whitespace, quotes or control characters.
pub fn check_token(option: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "'\"`$\\;".contains(c))
    {
        bail!("{option} '{value}': expected a single word without spaces, quotes or '$'");
    }
    Ok(())
}

/// Slurm time limits: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`, or `UNLIMITED`.
pub fn check_time(t: &str) -> Result<()> {
    let bad = || {
        anyhow!(
            "--time '{t}': expected a Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM \
             or D-HH:MM:SS (e.g. 2:00:00 for two hours)"
        )
    };
    if matches!(t, "UNLIMITED" | "INFINITE" | "unlimited" | "infinite") {
        return Ok(());
    }
    let num = |s: &str| !s.is_empty() && s.len() <= 6 && s.chars().all(|c| c.is_ascii_digit());
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, t),
    };
    if days.is_some_and(|d| !num(d)) {
        return Err(bad());
    }
    let parts: Vec<&str> = rest.split(':').collect();
    if !(1..=3).contains(&parts.len()) || !parts.iter().all(|p| num(p)) {
        return Err(bad());
    }
    if parts
        .iter()
        .skip(1)
        .any(|p| p.parse::<u32>().unwrap_or(99) >= 60)
    {
        return Err(bad());
    }
    Ok(())
}

fn header(lines: &mut Vec<String>, o: &SlurmOptions) {
    if let Some(p) = &o.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    if let Some(a) = &o.account {
        lines.push(format!("#SBATCH --account={a}"));
    }
    if let Some(t) = &o.time {
        lines.push(format!("#SBATCH --time={t}"));
    }
    // SIGTERM to the batch shell (effbench, which the script execs) this long before the time
    // limit: effbench saves the run in progress and finishes its manifest (docs/cluster.md).
    lines.push(format!("#SBATCH --signal=B:TERM@{SIGNAL_BEFORE_LIMIT_S}"));
    lines.push(format!("#SBATCH --chdir={}", o.workdir.display()));
    for e in &o.extra {
        lines.push(format!("#SBATCH {e}"));
    }
}

/// The three scripts for `plan`-sized arrays. Validates every value written into them.
pub fn scripts(o: &SlurmOptions, runs: usize) -> Result<SlurmScripts> {
    super::check_shard_count(o.shards, runs)?;
    super::check_count("--max-parallel", o.max_parallel.map(|v| v as u64), "")?;
    super::check_count(
        "--gpus-per-task",
        o.gpus_per_task.map(u64::from),
        " (leave it out for CPU-only tasks)",
    )?;
    super::check_count("--cpus-per-task", o.cpus_per_task.map(u64::from), "")?;
    for (opt, v) in [
        ("--partition", &o.partition),
        ("--account", &o.account),
        ("--mem", &o.mem),
    ] {
        if let Some(v) = v {
            check_token(opt, v)?;
        }
    }
    if let Some(t) = &o.time {
        check_time(t)?;
    }
    for e in &o.extra {
        if !e.starts_with("--") || e.contains('\n') || e.contains('\r') {
            bail!("--sbatch-option '{e}': expected one sbatch option like --qos=high");
        }
    }
    for p in [&o.effbench, &o.suite, &o.out, &o.workdir] {
        let s = p.to_string_lossy();
        if s.contains('\n') || s.contains('\r') || !p.is_absolute() {
            bail!("path '{s}' must be absolute and on one line");
        }
    }
    // #SBATCH lines are split at whitespace and read by sbatch, not a shell: the paths
    // written into them can hold neither whitespace nor quotes, `$` or backslashes.
    for (what, p) in [("--out", &o.out), ("the working directory", &o.workdir)] {
        let text = p.to_string_lossy();
        if text.chars().any(char::is_whitespace) {
            bail!(
                "{what} '{}' contains whitespace, which #SBATCH --output/--chdir cannot hold; \
                 use a path without spaces",
                p.display()
            );
        }
        if text
            .chars()
            .any(|c| c.is_control() || "'\"`$\\%".contains(c))
        {
            bail!(
                "{what} {} contains a quote, '$', '%', a backslash or a control character, \
                 which an #SBATCH line cannot hold; use a plainer path",
                crate::escape::quoted(&text)
            );
        }
    }
    check_token("job name", &o.job_name)?;
    let n = o.shards;
    let k = o.max_parallel.unwrap_or(n).min(n);
    let q = |p: &Path| shell_quote(&p.to_string_lossy());
    let logs = o.out.join("logs");
    let filters: String = o
        .filters
        .iter()
        .map(|f| format!(" --filter {}", shell_quote(f)))
        .collect();

    let mut s = vec![
        "#!/bin/bash".to_string(),
        format!(
            "# effbench: suite {} in {n} shards (one array task each).",
            q(&o.suite)
        ),
        format!(
            "# Generated by `effbench slurm`; submit with {SUBMIT_SCRIPT} (adds the merge job)."
        ),
        format!("#SBATCH --job-name={}", o.job_name),
        format!("#SBATCH --array=0-{}%{k}", n - 1),
        "#SBATCH --ntasks=1".into(),
    ];
    if let Some(c) = o.cpus_per_task {
        s.push(format!("#SBATCH --cpus-per-task={c}"));
    }
    if let Some(g) = o.gpus_per_task {
        s.push(format!("#SBATCH --gpus-per-task={g}"));
    }
    if let Some(m) = &o.mem {
        s.push(format!("#SBATCH --mem={m}"));
    }
    header(&mut s, o);
    s.push(format!("#SBATCH --output={}/shard-%a.out", logs.display()));
    s.extend([
        "set -euo pipefail".into(),
        "shard=\"${SLURM_ARRAY_TASK_ID:?submit this script with sbatch: it is a job array}\""
            .into(),
        format!(
            "exec {} run {} --shard \"$shard/{n}\" --out {}/shard-\"$shard\"{filters}",
            q(&o.effbench),
            q(&o.suite),
            q(&o.out)
        ),
    ]);

    let mut m = vec![
        "#!/bin/bash".to_string(),
        format!("# effbench: merges the {n} shards of {} once every array task succeeded.", q(&o.suite)),
        format!("# Submit after the array job: sbatch --dependency=afterok:<array job id> {MERGE_SCRIPT}"),
        format!("#SBATCH --job-name={}-merge", o.job_name),
        "#SBATCH --ntasks=1".into(),
        "#SBATCH --kill-on-invalid-dep=yes".into(),
    ];
    header(&mut m, o);
    m.push(format!("#SBATCH --output={}/merge.out", logs.display()));
    let dirs: String = (0..n)
        .map(|i| format!(" {}", q(&o.out.join(super::shard_dir_name(i)))))
        .collect();
    m.extend([
        "set -euo pipefail".into(),
        format!(
            "exec {} merge{dirs} --out {}",
            q(&o.effbench),
            q(&o.out.join(super::MERGED_DIR))
        ),
    ]);

    let submit = [
        "#!/bin/sh".to_string(),
        "# Submits the shard array, then the merge job that waits for all of it (afterok).".into(),
        "set -eu".into(),
        "cd \"$(dirname \"$0\")\"".into(),
        format!("array=$(sbatch --parsable {SHARDS_SCRIPT})"),
        "array=${array%%;*}".into(),
        format!("merge=$(sbatch --parsable --dependency=afterok:\"$array\" {MERGE_SCRIPT})"),
        "merge=${merge%%;*}".into(),
        format!("echo \"submitted array job $array ({n} tasks) and merge job $merge\""),
        format!(
            "echo 'watch it with:' {} status {}",
            q(&o.effbench),
            q(&o.out)
        ),
    ];
    let join = |v: Vec<String>| v.join("\n") + "\n";
    Ok(SlurmScripts {
        shards: join(s),
        merge: join(m),
        submit: join(submit.to_vec()),
    })
}

/// An executable on PATH.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// How to get `sbatch`, for the error when it is missing.
pub const SBATCH_MISSING: &str = "sbatch not found on PATH: --submit needs Slurm's client \
commands (run on a login node of the cluster, or install them: Debian/Ubuntu `apt-get install \
slurm-client`, RHEL/Rocky `dnf install slurm`, with the cluster's slurm.conf and munge key)";

/// Submits the array job, then the merge job depending on it; returns both job ids.
pub fn submit(dir: &Path) -> Result<(String, String)> {
    let sbatch = find_in_path("sbatch").ok_or_else(|| {
        anyhow!(
            "{SBATCH_MISSING}; the scripts are written, submit them later with `sh {}`",
            dir.join(SUBMIT_SCRIPT).display()
        )
    })?;
    let run = |args: &[&str]| -> Result<String> {
        let out = Command::new(&sbatch)
            .args(args)
            .current_dir(dir)
            .output()
            .with_context(|| format!("cannot start '{}'", sbatch.display()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            bail!(
                "sbatch {} failed ({}): {}",
                args.join(" "),
                out.status,
                err.lines().next().unwrap_or("").trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let id = text
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            bail!("sbatch printed no job id (got '{}')", text.trim());
        }
        Ok(id)
    };
    let array = run(&["--parsable", SHARDS_SCRIPT])?;
    let dep = format!("--dependency=afterok:{array}");
    let merge = run(&["--parsable", &dep, MERGE_SCRIPT])?;
    Ok((array, merge))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SlurmOptions {
        SlurmOptions {
            shards: 4,
            partition: Some("gpu".into()),
            gpus_per_task: Some(1),
            cpus_per_task: None,
            mem: None,
            time: Some("1:30:00".into()),
            max_parallel: Some(2),
            account: None,
            extra: vec!["--qos=high".into()],
            effbench: "/opt/effbench".into(),
            suite: "/home/me/my suite.toml".into(),
            out: "/scratch/out".into(),
            workdir: "/home/me".into(),
            filters: vec!["dtype=f32".into()],
            job_name: "effbench-s".into(),
        }
    }

    #[test]
    fn array_job_and_dependent_merge() {
        let s = scripts(&opts(), 10).unwrap();
        assert!(s.shards.contains("#SBATCH --array=0-3%2\n"), "{}", s.shards);
        assert!(s.shards.contains("#SBATCH --partition=gpu\n"));
        assert!(s.shards.contains("#SBATCH --gpus-per-task=1\n"));
        assert!(s.shards.contains("#SBATCH --time=1:30:00\n"));
        assert!(s.shards.contains("#SBATCH --qos=high\n"));
        assert!(s.shards.contains(
            "exec /opt/effbench run '/home/me/my suite.toml' --shard \"$shard/4\" --out /scratch/out/shard-\"$shard\" --filter dtype=f32\n"
        ), "{}", s.shards);
        assert!(!s.merge.contains("gpus"), "the merge job needs no GPU");
        assert!(s.merge.contains("--kill-on-invalid-dep=yes"));
        assert!(s.merge.contains(
            "merge /scratch/out/shard-0 /scratch/out/shard-1 /scratch/out/shard-2 /scratch/out/shard-3 --out /scratch/out/merged\n"
        ), "{}", s.merge);
        assert!(s
            .submit
            .contains("--dependency=afterok:\"$array\" merge.sbatch"));
        let mut o = opts();
        o.max_parallel = None;
        assert!(scripts(&o, 4).unwrap().shards.contains("--array=0-3%4\n"));
    }

    #[test]
    fn bad_values_are_named() {
        let err = |f: &dyn Fn(&mut SlurmOptions)| {
            let mut o = opts();
            f(&mut o);
            scripts(&o, 10).unwrap_err().to_string()
        };
        assert!(err(&|o| o.shards = 11).contains("more than the suite's 10"));
        assert!(err(&|o| o.max_parallel = Some(0)).contains("--max-parallel"));
        assert!(err(&|o| o.partition = Some("a b".into())).contains("--partition 'a b'"));
        assert!(err(&|o| o.time = Some("1h".into())).contains("--time '1h'"));
        assert!(err(&|o| o.extra = vec!["qos".into()]).contains("--sbatch-option"));
        assert!(err(&|o| o.out = "/scratch/my out".into()).contains("whitespace"));
        for ok in [
            "30",
            "30:00",
            "1:00:00",
            "2-0",
            "2-12:00",
            "1-00:00:00",
            "UNLIMITED",
        ] {
            check_time(ok).unwrap();
        }
        for bad in ["", "1:2:3:4", "x", "1:60", "-1", "1-", "1.5"] {
            assert!(check_time(bad).is_err(), "{bad}");
        }
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert!(err(&|o| o.out = "/scratch/$(id)".into()).contains("'$'"));
    }

    #[test]
    fn the_time_limit_warns_effbench_first() {
        let s = scripts(&opts(), 10).unwrap();
        assert!(
            s.shards.contains("#SBATCH --signal=B:TERM@120\n"),
            "{}",
            s.shards
        );
        assert!(
            s.merge.contains("#SBATCH --signal=B:TERM@120\n"),
            "{}",
            s.merge
        );
    }

    /// Hostile paths and filters run through a real shell: the scripts hand them to effbench
    /// byte for byte and nothing in them is executed.
    #[test]
    fn hostile_values_reach_effbench_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fake = d.join("fake-effbench");
        std::fs::write(
            &fake,
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$ARGS_OUT\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let hostile = "it's $(touch pwned1) `touch pwned2` ${HOME} \"q\" ;|&<>*?!";
        let mut o = opts();
        o.effbench = fake.clone();
        o.suite = d.join(format!("{hostile}.toml"));
        o.out = d.join("out");
        o.workdir = d.to_path_buf();
        o.filters = vec![format!("model={hostile}")];
        let s = scripts(&o, 10).unwrap();
        std::fs::write(d.join("shards.sbatch"), &s.shards).unwrap();
        let status = Command::new("bash")
            .arg(d.join("shards.sbatch"))
            .current_dir(d)
            .env("SLURM_ARRAY_TASK_ID", "2")
            .env("ARGS_OUT", d.join("args"))
            .status()
            .unwrap();
        assert!(status.success());
        let args = std::fs::read_to_string(d.join("args")).unwrap();
        let want = format!(
            "run\n{}\n--shard\n2/4\n--out\n{}/shard-2\n--filter\nmodel={hostile}\n",
            o.suite.display(),
            o.out.display()
        );
        assert_eq!(args, want);
        assert!(!d.join("pwned1").exists() && !d.join("pwned2").exists());
        // submit.sh with a stand-in sbatch: its messages echo the paths, unexpanded.
        std::fs::write(d.join("sbatch"), "#!/bin/sh\necho 42\n").unwrap();
        std::fs::set_permissions(d.join("sbatch"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join("submit.sh"), &s.submit).unwrap();
        let path = format!(
            "{}:{}",
            d.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("sh")
            .arg(d.join("submit.sh"))
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("status {}", o.out.display())),
            "{text}"
        );
        assert!(!d.join("pwned1").exists() && !d.join("pwned2").exists());
    }
}
