//! Interleaved A/B runs (`effbench run --ab BIN_A BIN_B SUITE`): two effbench builds run the
//! same suite in one invocation, alternating per run in ABBA order (A B B A, repeated per
//! block), so slow drift of the machine (thermals, other load) hits both sides equally.
//! Each slot is a child process `BIN run SUITE --out DIR --filter axis=value ...` (one spec),
//! so each binary measures with its own code and records its own environment.
//!
//! The invocation is the unit of replication: a comparison needs several slots per side to see
//! the noise between processes, so the default is [`DEFAULT_BLOCKS`] blocks, and each slot's
//! block is recorded so compare/gate remove the drift between blocks ([`side_blocks`]).
//!
//! Adaptive blocks ([`Adaptive`], `--ab-target-mde`): after the first blocks of a spec, more
//! are added while the gate's minimum detectable regression of the target metric is above the
//! target, up to a cap. The decision reads only the spread between invocations (the residual
//! of the block-and-side fit), never the A/B difference, so it is a sample-size re-estimation
//! on the variance: the t-test keeps its level (docs/gates.md).
//!
//! Layout (what `effbench compare DIR` reads directly as A vs B):
//! ```text
//! <out>/ab.json            the plan and what ran: binaries (path, --version, SHA-256), order,
//!                          every slot with side, run id, exit code and state
//! <out>/a/manifest.json    side A: lists every A slot's result; compare pools them by run id
//! <out>/a/<NN>/            slot NN as written by BIN_A itself (its manifest and result)
//! <out>/b/...              the same for BIN_B
//! ```

use crate::interrupt;
use crate::metric::MetricId;
use crate::records::RunSpec;
use crate::records::{Manifest, ManifestEntry, RunState, SuiteInfo, SCHEMA_VERSION};
use crate::result::{read_manifest, write_json, MANIFEST_FILE};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const AB_FILE: &str = "ab.json";

/// ABBA blocks per spec unless `--ab-blocks` says otherwise: 3 blocks are 6 invocations a side
/// and leave 8 degrees of freedom for the noise between invocations (block effects and the
/// A/B difference removed), so a change of about the band plus 2.5 standard deviations of
/// that noise is caught with 80 % power at α = 0.01. One block leaves 2 degrees of freedom.
pub const DEFAULT_BLOCKS: usize = 3;

/// Most ABBA blocks per spec that `--ab-max-blocks` may ask for.
pub const MAX_BLOCKS_LIMIT: usize = 1000;

/// Default cap of adaptive blocks per spec (`--ab-max-blocks`): 40 invocations, which bring
/// a 5 % spread between invocations (a noisy hour on a 2-vCPU VM) to a minimum detectable
/// regression of about 7.5 %.
pub const DEFAULT_MAX_BLOCKS: usize = 10;

/// Degrees of freedom for the noise between invocations that `blocks` ABBA blocks leave.
pub fn noise_df(blocks: usize) -> usize {
    (3 * blocks).saturating_sub(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn dir(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }
}

/// One of the two builds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Binary {
    /// As given on the command line.
    pub path: String,
    /// Its `--version` output.
    pub version: String,
    /// SHA-256 of the executable file (identifies the build exactly).
    pub sha256: String,
}

/// One child run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Slot {
    /// 1-based position in the whole sequence.
    pub index: usize,
    pub side: Side,
    /// The run id planned by this effbench and the one the child reported.
    pub planned_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub label: String,
    /// Relative to the A/B directory.
    pub dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
    /// 0-based ABBA block of this slot within its spec (absent in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<usize>,
    pub started_at: String,
    pub finished_at: String,
}

/// `ab.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AbRecord {
    /// Always `effbench-ab`.
    pub kind: String,
    pub version: u32,
    pub suite: SuiteInfo,
    pub a: Binary,
    pub b: Binary,
    /// `ABBA` per block, per run.
    pub order: String,
    pub blocks: usize,
    /// Arguments passed to both children besides the suite, out dir and filters.
    pub child_args: Vec<String>,
    /// Arguments passed to B's children only (`--ab-inject-slowdown`: a test knob).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub b_args: Vec<String>,
    pub command: Vec<String>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Adaptive blocks (`--ab-target-mde`): `blocks` is then the first blocks of each spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<Adaptive>,
    /// Per spec whose blocks ended (not one cut short by an interrupt), with adaptive blocks:
    /// how many blocks ran and why it stopped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stops: Vec<BlockStop>,
    pub slots: Vec<Slot>,
}

/// Adaptive blocks: keep adding ABBA blocks to a spec while the minimum detectable
/// regression (80 % power, the gate's one-sided test) of the target metric is above
/// `target_mde_pct`, up to `max_blocks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Adaptive {
    /// Stop once the minimum detectable regression is at most this many % of the base.
    pub target_mde_pct: f64,
    /// Never more blocks than this per spec.
    pub max_blocks: usize,
    /// The metric(s) judged: the first of these that the run has (every one given with
    /// `--ab-target-metric`, else the run's throughput).
    pub metrics: Vec<MetricId>,
    /// The gate settings the minimum detectable regression was computed with (a file, or
    /// `default`).
    pub gate_config: String,
}

/// Where the blocks of one spec stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BlockStop {
    pub id: String,
    pub label: String,
    /// ABBA blocks that ran.
    pub blocks: usize,
    /// The metric judged, when the comparison had one of the targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricId>,
    /// Its minimum detectable regression after the last block (% of the base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mde_pct: Option<f64>,
    /// `target reached`, `max blocks reached`, or why no minimum detectable regression was known.
    pub reason: String,
}

/// What the A/B so far tells about one spec's target metric: the metric and its minimum
/// detectable regression, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct Precision {
    pub metric: Option<MetricId>,
    pub mde_pct: Option<f64>,
    pub why_none: String,
}

/// Whether to add another block after `done` blocks: only while the minimum detectable
/// regression is known, above the target, and the cap leaves room.
pub fn wants_more(adaptive: &Adaptive, done: usize, p: &Precision) -> bool {
    done < adaptive.max_blocks && p.mde_pct.is_some_and(|m| m > adaptive.target_mde_pct)
}

/// Why the blocks of a run stop after `done` blocks (when [`wants_more`] says no).
pub fn stop_reason(adaptive: &Adaptive, done: usize, p: &Precision) -> String {
    match p.mde_pct {
        None => p.why_none.clone(),
        Some(m) if m <= adaptive.target_mde_pct => "target reached".into(),
        Some(_) if done >= adaptive.max_blocks => "max blocks reached".into(),
        Some(_) => "stopped".into(),
    }
}

/// The sides in order for `blocks` ABBA blocks.
pub fn order(blocks: usize) -> Vec<Side> {
    (0..blocks)
        .flat_map(|_| [Side::A, Side::B, Side::B, Side::A])
        .collect()
}

/// `(a, b)` result directories when `dir` is an A/B directory.
pub fn sides(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    dir.join(AB_FILE)
        .is_file()
        .then(|| (dir.join("a"), dir.join("b")))
}

pub fn read_record(dir: &Path) -> Result<AbRecord> {
    let p = dir.join(AB_FILE);
    let text =
        std::fs::read_to_string(&p).with_context(|| format!("cannot read '{}'", p.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("'{}' is not a valid A/B record", p.display()))
}

/// What to run.
pub struct Options {
    pub bin_a: PathBuf,
    pub bin_b: PathBuf,
    pub suite_file: PathBuf,
    pub out: PathBuf,
    pub blocks: usize,
    /// More blocks while the target metric's minimum detectable regression is too large.
    pub adaptive: Option<Adaptive>,
    pub child_args: Vec<String>,
    /// Extra arguments for B's children only.
    pub b_args: Vec<String>,
    pub command: Vec<String>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Checks that `bin` runs and identifies it.
pub fn probe(bin: &Path, what: &str) -> Result<Binary> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| anyhow!("{what} '{}' cannot be started: {e}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{what} '{}' --version failed ({}); is it an effbench binary?",
            bin.display(),
            out.status
        );
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let sha256 = resolve(bin)
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| crate::invocation::hex(&Sha256::digest(&b)))
        .unwrap_or_default();
    Ok(Binary {
        path: bin.display().to_string(),
        version,
        sha256,
    })
}

/// The file a command name refers to (a path, or the first match on PATH).
fn resolve(bin: &Path) -> Option<PathBuf> {
    if bin.components().count() > 1 || bin.is_file() {
        return Some(bin.to_path_buf());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

fn side_manifest(suite: &SuiteInfo, command: &[String], version: &str) -> Manifest {
    Manifest {
        schema_version: SCHEMA_VERSION,
        suite: suite.clone(),
        effbench_version: version.to_string(),
        command: crate::secrets::redact_command(command),
        started_at: now(),
        finished_at: None,
        planned: Vec::new(),
        runs: Vec::new(),
        shard: None,
        scheduler: None,
        merged_from: Vec::new(),
        skipped: Vec::new(),
    }
}

/// Checks the block counts of `opts` (one-line errors naming the flag).
pub fn check_options(opts: &Options) -> Result<()> {
    check_blocks(opts.blocks, opts.adaptive.as_ref())
}

/// Checks `--ab-blocks` and the adaptive settings (one-line errors naming the flag).
pub fn check_blocks(blocks: usize, adaptive: Option<&Adaptive>) -> Result<()> {
    crate::limits::check_int("--ab-blocks", blocks as i128, 1, MAX_BLOCKS_LIMIT as i128)
        .map_err(anyhow::Error::msg)?;
    if let Some(a) = adaptive {
        crate::limits::check_int(
            "--ab-max-blocks",
            a.max_blocks as i128,
            blocks as i128,
            MAX_BLOCKS_LIMIT as i128,
        )
        .map_err(|e| anyhow!("{e} (it caps the adaptive blocks; --ab-blocks is the first ones)"))?;
        if !(a.target_mde_pct.is_finite() && a.target_mde_pct > 0.0) {
            bail!(
                "--ab-target-mde must be a positive percentage, not {}",
                a.target_mde_pct
            );
        }
    }
    Ok(())
}

/// Runs every spec in ABBA order; `on_slot` sees each slot when it ends (with the number
/// done and the total planned so far). With [`Options::adaptive`], `precision` is asked after
/// each block from the first `blocks` on (the slots so far are on disk) and more blocks are
/// added while [`wants_more`]. Completed slots are on disk whatever happens next.
pub fn run(
    suite: &SuiteInfo,
    specs: &[RunSpec],
    opts: &Options,
    on_slot: &mut dyn FnMut(&Slot, usize, usize),
    precision: &mut dyn FnMut(&RunSpec, usize) -> Result<Precision>,
) -> Result<AbRecord> {
    check_options(opts)?;
    let a = probe(&opts.bin_a, "BIN_A")?;
    let b = probe(&opts.bin_b, "BIN_B")?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create output directory '{}'", opts.out.display()))?;
    let mut rec = AbRecord {
        kind: "effbench-ab".into(),
        version: 1,
        suite: suite.clone(),
        a,
        b,
        order: "ABBA".into(),
        blocks: opts.blocks,
        child_args: opts.child_args.clone(),
        b_args: opts.b_args.clone(),
        command: crate::secrets::redact_command(&opts.command),
        started_at: now(),
        finished_at: None,
        adaptive: opts.adaptive.clone(),
        stops: Vec::new(),
        slots: Vec::new(),
    };
    let mut manifests = [
        side_manifest(suite, &opts.command, &rec.a.version),
        side_manifest(suite, &opts.command, &rec.b.version),
    ];
    let block = order(1);
    let plan = |ms: &mut [Manifest; 2], spec: &RunSpec, blocks: usize| {
        for (m, side) in ms.iter_mut().zip([Side::A, Side::B]) {
            let per_block = block.iter().filter(|x| **x == side).count();
            m.planned
                .extend(std::iter::repeat_n(spec.id.clone(), per_block * blocks));
        }
    };
    for spec in specs {
        plan(&mut manifests, spec, opts.blocks);
    }
    write_json(&opts.out.join(AB_FILE), &rec)?;
    let max_blocks = opts.adaptive.as_ref().map_or(opts.blocks, |a| a.max_blocks);
    let width = (specs.len() * block.len() * max_blocks)
        .to_string()
        .len()
        .max(2);
    let mut total = specs.len() * block.len() * opts.blocks;
    'outer: for spec in specs {
        let label = spec.label(&suite.varying_axes);
        let mut done = 0;
        loop {
            for side in &block {
                if interrupt::requested() {
                    break 'outer;
                }
                let index = rec.slots.len() + 1;
                let rel = format!("{}/{index:0width$}", side.dir());
                let mut slot = run_slot(spec, &label, *side, index, &rel, opts)?;
                slot.block = Some(done);
                let stop = interrupt::is_interrupt_exit(slot.exit_code) || interrupt::requested();
                let m = &mut manifests[(*side == Side::B) as usize];
                if let (Some(id), Some(state)) = (&slot.run_id, slot.state) {
                    m.runs.push(ManifestEntry {
                        id: id.clone(),
                        label: label.clone(),
                        state,
                        file: format!("{index:0width$}/{id}.json"),
                    });
                }
                write_json(&opts.out.join(side.dir()).join(MANIFEST_FILE), m)?;
                rec.slots.push(slot);
                write_json(&opts.out.join(AB_FILE), &rec)?;
                on_slot(rec.slots.last().expect("just pushed"), index, total);
                if stop {
                    break 'outer;
                }
            }
            done += 1;
            if done < opts.blocks {
                continue;
            }
            let Some(adaptive) = &opts.adaptive else {
                break;
            };
            let p = precision(spec, done)?;
            if wants_more(adaptive, done, &p) {
                plan(&mut manifests, spec, 1);
                total += block.len();
                continue;
            }
            rec.stops.push(BlockStop {
                id: spec.id.clone(),
                label: label.clone(),
                blocks: done,
                metric: p.metric,
                mde_pct: p.mde_pct,
                reason: stop_reason(adaptive, done, &p),
            });
            write_json(&opts.out.join(AB_FILE), &rec)?;
            break;
        }
    }
    rec.finished_at = Some(now());
    for (m, side) in manifests.iter_mut().zip([Side::A, Side::B]) {
        m.finished_at = rec.finished_at.clone();
        write_json(&opts.out.join(side.dir()).join(MANIFEST_FILE), m)?;
    }
    write_json(&opts.out.join(AB_FILE), &rec)?;
    Ok(rec)
}

fn run_slot(
    spec: &RunSpec,
    label: &str,
    side: Side,
    index: usize,
    rel: &str,
    opts: &Options,
) -> Result<Slot> {
    let bin = match side {
        Side::A => &opts.bin_a,
        Side::B => &opts.bin_b,
    };
    let dir = opts.out.join(rel);
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg(&opts.suite_file)
        .arg("--out")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (axis, v) in &spec.params {
        cmd.arg("--filter").arg(format!("{axis}={v}"));
    }
    cmd.args(&opts.child_args);
    if side == Side::B {
        cmd.args(&opts.b_args);
    }
    // Its own process group (Ctrl-C reaches it once, forwarded) that dies with this one.
    crate::guard::prepare(&mut cmd, libc::SIGTERM);
    cmd.stderr(Stdio::piped());
    let started_at = now();
    let child = cmd
        .spawn()
        .map_err(|e| anyhow!("cannot start '{}': {e}", bin.display()))?;
    let forwarding = interrupt::forward_to(child.id());
    let out = child.wait_with_output();
    drop(forwarding);
    let out = out.map_err(|e| anyhow!("waiting for '{}': {e}", bin.display()))?;
    let code = out.status.code();
    let mut slot = Slot {
        index,
        side,
        planned_id: spec.id.clone(),
        run_id: None,
        label: label.to_string(),
        dir: rel.to_string(),
        exit_code: code,
        state: None,
        block: None,
        started_at,
        finished_at: now(),
    };
    if code == Some(2) || code.is_none() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!(
            "{} '{}' ({}) stopped on {}: {}",
            if side == Side::A { "BIN_A" } else { "BIN_B" },
            bin.display(),
            code.map_or("killed by a signal".to_string(), |c| format!("exit {c}")),
            if label.is_empty() { &spec.id } else { label },
            last.trim_start_matches("error: ")
        );
    }
    if let Ok(m) = read_manifest(&dir.join(MANIFEST_FILE)) {
        if let Some(e) = m.runs.first() {
            slot.run_id = Some(e.id.clone());
            slot.state = Some(e.state);
        }
    }
    Ok(slot)
}

/// The ABBA block of every result of `side` of the A/B directory `dir`, in the order
/// [`crate::loader::load_results`] reads that side (its manifest's runs whose file exists).
pub fn side_blocks(dir: &Path, side: Side) -> Result<Vec<usize>> {
    let rec = read_record(dir)?;
    let side_dir = dir.join(side.dir());
    let m = read_manifest(&side_dir.join(MANIFEST_FILE))?;
    let per_spec = 4 * rec.blocks.max(1);
    let mut out = Vec::new();
    for e in &m.runs {
        if !side_dir.join(&e.file).is_file() {
            continue;
        }
        let index: usize = e
            .file
            .split('/')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow!("{}: run file '{}' names no slot", dir.display(), e.file))?;
        let slot = rec.slots.iter().find(|s| s.index == index);
        out.push(
            slot.and_then(|s| s.block)
                .unwrap_or((index.saturating_sub(1) % per_spec) / 4),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abba_order() {
        use Side::*;
        assert_eq!(order(1), vec![A, B, B, A]);
        assert_eq!(order(2), vec![A, B, B, A, A, B, B, A]);
    }

    #[test]
    fn adaptive_blocks_stop_at_the_target_the_cap_or_an_unknown_precision() {
        let a = Adaptive {
            target_mde_pct: 8.0,
            max_blocks: 6,
            metrics: vec![MetricId::OutputThroughput],
            gate_config: "default".into(),
        };
        let p = |mde: Option<f64>| Precision {
            metric: mde.map(|_| MetricId::OutputThroughput),
            mde_pct: mde,
            why_none: "no comparison".into(),
        };
        assert!(wants_more(&a, 3, &p(Some(12.2))));
        assert!(wants_more(&a, 5, &p(Some(8.01))));
        assert!(!wants_more(&a, 3, &p(Some(8.0))), "at the target is enough");
        assert_eq!(stop_reason(&a, 3, &p(Some(8.0))), "target reached");
        assert!(!wants_more(&a, 6, &p(Some(12.2))), "the cap");
        assert_eq!(stop_reason(&a, 6, &p(Some(12.2))), "max blocks reached");
        assert!(
            !wants_more(&a, 3, &p(None)),
            "no estimate: adding blocks blindly"
        );
        assert_eq!(stop_reason(&a, 3, &p(None)), "no comparison");
    }

    #[test]
    fn bad_block_counts_name_the_flag() {
        let mut o = Options {
            bin_a: "a".into(),
            bin_b: "b".into(),
            suite_file: "s.toml".into(),
            out: "o".into(),
            blocks: 0,
            adaptive: None,
            child_args: vec![],
            b_args: vec![],
            command: vec![],
        };
        let e = check_options(&o).unwrap_err().to_string();
        assert!(e.starts_with("--ab-blocks = 0 is out of range"), "{e}");
        o.blocks = 3;
        o.adaptive = Some(Adaptive {
            target_mde_pct: 5.0,
            max_blocks: 2,
            metrics: vec![],
            gate_config: "default".into(),
        });
        let e = check_options(&o).unwrap_err().to_string();
        assert!(
            e.starts_with("--ab-max-blocks = 2 is out of range: allowed 3"),
            "{e}"
        );
        o.adaptive.as_mut().unwrap().max_blocks = 3;
        o.adaptive.as_mut().unwrap().target_mde_pct = f64::NAN;
        let e = check_options(&o).unwrap_err().to_string();
        assert!(e.starts_with("--ab-target-mde must be a positive"), "{e}");
        o.adaptive.as_mut().unwrap().target_mde_pct = 5.0;
        assert!(check_options(&o).is_ok());
    }

    #[test]
    fn probing_a_missing_binary_is_a_clear_error() {
        let e = probe(Path::new("/nonexistent/effbench"), "BIN_A").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("BIN_A '/nonexistent/effbench' cannot be started"));
    }
}
