//! `effbench k8s SUITE --shards N --image IMG`: an Indexed Job (one pod per shard) and a merge
//! Job for Kubernetes.

use anyhow::{bail, Context, Result};
use effbench_harness::cluster::{k8s, yaml};
use effbench_harness::invocation::default_out_dir;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write Kubernetes manifests that run a suite as an Indexed Job of N shards, plus a merge Job.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench k8s suites/quickstart.toml --shards 8 --image registry.example.com/effbench:0.1 --pvc bench-results\n  \
effbench k8s suites/quickstart.toml --shards 4 --image IMG --gpus 1 --memory 16Gi --namespace ml\n\n\
Writes shards.yaml (ConfigMap with the suite + Indexed Job), merge.yaml and submit.sh into --out. \
Results land on the PersistentVolumeClaim under /results/<name>/shard-<i>, merged into /results/<name>/merged."
)]
pub struct Args {
    /// Suite file (TOML), or the name of a shipped one (`quickstart`); shipped to the pods in a ConfigMap.
    #[arg(value_parser = super::suites::find)]
    pub suite: PathBuf,
    /// Number of shards (completions of the Indexed Job).
    #[arg(long)]
    pub shards: usize,
    /// Container image with effbench installed.
    #[arg(long)]
    pub image: String,
    /// Job name [default: effbench-<suite>].
    #[arg(long)]
    pub name: Option<String>,
    /// Namespace of the Jobs.
    #[arg(long)]
    pub namespace: Option<String>,
    /// PersistentVolumeClaim mounted at /results (ReadWriteMany when pods span nodes).
    #[arg(long, default_value = "effbench-results")]
    pub pvc: String,
    /// Pods at once [default: all shards].
    #[arg(long)]
    pub parallelism: Option<usize>,
    /// CPU request per pod (e.g. 4, 500m).
    #[arg(long)]
    pub cpu: Option<String>,
    /// Memory request and limit per pod (e.g. 16Gi).
    #[arg(long)]
    pub memory: Option<String>,
    /// NVIDIA GPUs per pod (nvidia.com/gpu limit).
    #[arg(long)]
    pub gpus: Option<u32>,
    /// Pod retries for the whole Job (node loss; bad input fails at once).
    #[arg(long, default_value_t = 1)]
    pub backoff_limit: u32,
    /// effbench inside the image.
    #[arg(long, default_value = "effbench")]
    pub command: String,
    /// Only runs whose axis has this value (as in `run`).
    #[arg(long, value_name = "AXIS=VALUE")]
    pub filter: Vec<String>,
    /// Where the manifests go [default: results/<suite>/<UTC timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.shards == 0 {
        bail!("--shards must be at least 1");
    }
    let registry = effbench_backends::registry();
    let (suite, specs) = super::plan(&args.suite, &registry, &args.filter)?;
    let text = std::fs::read_to_string(&args.suite)
        .with_context(|| format!("cannot read suite file '{}'", args.suite.display()))?;
    if text.len() > 900_000 {
        bail!(
            "suite file '{}' is over 900 kB; a ConfigMap holds at most 1 MiB",
            args.suite.display()
        );
    }
    let file = args
        .suite
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .filter(|f| {
            f.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        })
        .unwrap_or_else(|| "suite.toml".into());
    let opts = k8s::K8sOptions {
        shards: args.shards,
        image: args.image.clone(),
        name: args
            .name
            .clone()
            .unwrap_or_else(|| k8s::default_name(&suite.name)),
        namespace: args.namespace.clone(),
        pvc: args.pvc.clone(),
        parallelism: args.parallelism,
        cpu: args.cpu.clone(),
        memory: args.memory.clone(),
        gpus: args.gpus,
        command: args.command.clone(),
        suite_file: file,
        suite_text: text,
        filters: args.filter.clone(),
        backoff_limit: args.backoff_limit,
    };
    let m = k8s::manifests(&opts, specs.len())?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(Path::new("results"), &suite.name));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create '{}'", out.display()))?;
    let write = |name: &str, text: &str| -> Result<()> {
        super::slurm::write_script(&out.join(name), text)
    };
    write(k8s::SHARDS_FILE, &yaml::documents(&m.shards))?;
    write(k8s::MERGE_FILE, &m.merge.to_yaml())?;
    write(k8s::SUBMIT_FILE, &m.submit)?;
    for s in &specs {
        let model = s.model().reference;
        if model != "default" {
            eprintln!(
                "note: model '{model}' must exist at that path inside the image or on a mounted volume"
            );
            break;
        }
    }
    eprintln!(
        "effbench: suite '{}' ({} runs) as an Indexed Job '{}' of {} shards; results on PVC '{}' under {}/{}",
        suite.name,
        specs.len(),
        opts.name,
        args.shards,
        opts.pvc,
        k8s::RESULTS_MOUNT,
        opts.name
    );
    println!(
        "wrote {}/{{{}, {}, {}}}; run with: sh {}",
        out.display(),
        k8s::SHARDS_FILE,
        k8s::MERGE_FILE,
        k8s::SUBMIT_FILE,
        out.join(k8s::SUBMIT_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}
