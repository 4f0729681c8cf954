//! Cluster job generators through the real CLI: the Slurm scripts (and a missing sbatch), and
//! the Kubernetes manifests, read back by an independent YAML parser and validated against
//! the vendored batch/v1 Job and v1 ConfigMap schemas in tests/k8s/, then run as written.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

const MATRIX: &str = "dtype = [\"f32\", \"bf16\"]\nbatch = [1, 2]\nprompt_len = 8\ngen_len = 2";
const FAST: &str = "warmup_iters = 0\nmin_iters = 2\nmin_duration_s = 0.0\nmax_duration_s = 2.0";

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn ok(o: &std::process::Output) {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
}

#[test]
fn slurm_scripts_and_a_missing_sbatch() {
    let w = Work::new();
    w.write("s.toml", &tiny_suite("tiny", MATRIX, FAST));
    let o = w.run(&[
        "slurm",
        "s.toml",
        "--shards",
        "3",
        "--out",
        "job",
        "--partition",
        "cpu",
        "--time",
        "0:30:00",
        "--max-parallel",
        "2",
        "--gpus-per-task",
        "1",
        "--sbatch-option=--qos=low",
    ]);
    ok(&o);
    let job = w.path().join("job");
    let shards = std::fs::read_to_string(job.join("shards.sbatch")).unwrap();
    assert!(shards.contains("#SBATCH --array=0-2%2\n"), "{shards}");
    assert!(
        shards.contains("#SBATCH --partition=cpu\n#SBATCH --time=0:30:00\n"),
        "{shards}"
    );
    assert!(shards.contains("--shard \"$shard/3\""), "{shards}");
    assert!(shards.contains("#SBATCH --qos=low\n"), "{shards}");
    let merge = std::fs::read_to_string(job.join("merge.sbatch")).unwrap();
    assert!(merge.contains("--kill-on-invalid-dep=yes"), "{merge}");
    let submit = std::fs::read_to_string(job.join("submit.sh")).unwrap();
    assert!(submit.contains("--dependency=afterok:"), "{submit}");
    assert!(job.join("logs").is_dir());
    let plan = json_file(&job.join("plan.json"));
    assert_eq!(plan["shards"], 3);
    // status before anything ran: three shards not started.
    let o = w.run(&["status", "job"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o).matches("not started").count(),
        3,
        "{}",
        stdout(&o)
    );

    // --submit without sbatch on PATH: explains how to get it, scripts stay.
    let empty = w.path().join("no-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = w.cmd(&[
        "slurm", "s.toml", "--shards", "2", "--out", "job2", "--submit",
    ]);
    cmd.env("PATH", &empty);
    let line = assert_clean_error(&cmd.output().unwrap(), 2);
    assert!(line.contains("sbatch not found on PATH"), "{line}");
    assert!(line.contains("apt-get install slurm-client"), "{line}");
    assert!(w.path().join("job2/submit.sh").is_file());

    for (args, want) in [
        (vec!["--shards", "5"], "more than the suite's 4 run(s)"),
        (vec!["--shards", "0"], "at least 1"),
        (vec!["--shards", "2", "--time", "2h"], "--time '2h'"),
        (
            vec!["--shards", "2", "--partition", "a b"],
            "--partition 'a b'",
        ),
        (
            vec!["--shards", "2", "--max-parallel", "0"],
            "--max-parallel",
        ),
        (vec!["--shards", "2", "--out", "job"], "already holds a job"),
    ] {
        let mut a = vec!["slurm", "s.toml"];
        a.extend(args);
        let line = assert_clean_error(&w.run(&a), 2);
        assert!(line.contains(want), "{a:?}: {line}");
    }
}

fn yaml_to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => Value::from(r.parse::<f64>().unwrap()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Null => Value::Null,
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().expect("string keys").to_string(),
                        yaml_to_json(v),
                    )
                })
                .collect(),
        ),
        other => panic!("unexpected YAML node {other:?}"),
    }
}

fn validator(file: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/k8s")
        .join(file);
    jsonschema::validator_for(&json_file(&path)).unwrap()
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

fn load_yaml(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap();
    yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", p.display()))
        .iter()
        .map(yaml_to_json)
        .collect()
}

#[test]
fn k8s_manifests_pass_the_job_schema_and_run_as_written() {
    let w = Work::new();
    let suite_text = tiny_suite("tiny", MATRIX, FAST) + "# it's a \"quoted\" comment: yes\n";
    w.write("s.toml", &suite_text);
    let o = w.run(&[
        "k8s",
        "s.toml",
        "--shards",
        "3",
        "--image",
        "registry.example.com/effbench:0.1",
        "--out",
        "k",
        "--namespace",
        "bench",
        "--pvc",
        "bench-results",
        "--cpu",
        "2",
        "--memory",
        "4Gi",
        "--gpus",
        "1",
        "--parallelism",
        "2",
    ]);
    ok(&o);
    let (job_v, cm_v) = (
        validator("job.batch-v1.schema.json"),
        validator("configmap.v1.schema.json"),
    );
    // The schemas are strict enough to catch mistakes.
    let mut bad = serde_json::json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
        "spec": {"completionMode": "Indexed", "template": {"spec": {"restartPolicy": "Always",
        "containers": [{"name": "c", "image": "i", "argz": []}]}}}});
    assert!(
        job_v.iter_errors(&bad).count() >= 3,
        "missing completions, restartPolicy, argz"
    );
    bad["spec"] = serde_json::json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}});
    assert_valid(&job_v, &bad, "minimal job");

    let docs = load_yaml(&w.path().join("k/shards.yaml"));
    assert_eq!(docs.len(), 2);
    let (cm, job) = (&docs[0], &docs[1]);
    assert_valid(&cm_v, cm, "ConfigMap");
    assert_valid(&job_v, job, "Indexed Job");
    assert_eq!(
        cm["data"]["s.toml"],
        suite_text.as_str(),
        "suite bytes survive YAML"
    );
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 3);
    assert_eq!(spec["parallelism"], 2);
    let pod = &spec["template"]["spec"];
    let c = &pod["containers"][0];
    let env: Vec<&Value> = c["env"].as_array().unwrap().iter().collect();
    assert!(env.iter().any(|e| e["name"] == "JOB_COMPLETION_INDEX"
        && e["valueFrom"]["fieldRef"]["fieldPath"]
            == "metadata.annotations['batch.kubernetes.io/job-completion-index']"));
    assert!(env.iter().any(|e| e["name"] == "EFFBENCH_NODE_NAME"
        && e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"));
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], 1);
    // podFailurePolicy needs restartPolicy Never; every mount names a declared volume.
    assert_eq!(pod["restartPolicy"], "Never");
    let volumes: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for m in c["volumeMounts"].as_array().unwrap() {
        assert!(volumes.contains(&m["name"].as_str().unwrap()), "{m}");
    }
    let pvc = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "results")
        .unwrap();
    assert_eq!(pvc["persistentVolumeClaim"]["claimName"], "bench-results");
    let cmv = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "suite")
        .unwrap();
    assert_eq!(cmv["configMap"]["name"], cm["metadata"]["name"]);

    let merge = load_yaml(&w.path().join("k/merge.yaml"));
    assert_eq!(merge.len(), 1);
    assert_valid(&job_v, &merge[0], "merge Job");
    let margs: Vec<String> = merge[0]["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let submit = std::fs::read_to_string(w.path().join("k/submit.sh")).unwrap();
    assert!(
        submit.contains("kubectl -n bench apply -f shards.yaml"),
        "{submit}"
    );

    // Play the pods here: the container's args with the kubelet's $(VAR) expansion and the
    // mounts mapped to local directories; then the merge Job's args.
    let results = w.path().join("pvc");
    let map_path = |a: &str| {
        a.replace("/etc/effbench", w.path().to_str().unwrap())
            .replace("/results", results.to_str().unwrap())
    };
    for i in 0..3 {
        let args: Vec<String> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                map_path(
                    &a.as_str()
                        .unwrap()
                        .replace("$(JOB_COMPLETION_INDEX)", &i.to_string()),
                )
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = w.cmd(&args);
        cmd.env("JOB_COMPLETION_INDEX", i.to_string())
            .env("KUBERNETES_SERVICE_HOST", "10.0.0.1")
            .env("EFFBENCH_JOB_NAME", "effbench-tiny")
            .env("EFFBENCH_NODE_NAME", format!("node-{i}"));
        ok(&cmd.output().unwrap());
    }
    let margs: Vec<String> = margs.iter().map(|a| map_path(a)).collect();
    let margs: Vec<&str> = margs.iter().map(String::as_str).collect();
    ok(&w.run(&margs));
    let merged = json_file(&results.join("effbench-tiny/merged/manifest.json"));
    assert_eq!(merged["runs"].as_array().unwrap().len(), 4);
    let first = merged["runs"][0]["file"].as_str().unwrap();
    let r = json_file(&results.join("effbench-tiny/merged").join(first));
    assert_eq!(r["env"]["scheduler"]["name"], "kubernetes");
    assert_eq!(r["env"]["scheduler"]["job_id"], "effbench-tiny");
    assert!(r["env"]["scheduler"]["node_name"]
        .as_str()
        .unwrap()
        .starts_with("node-"));

    for (args, want) in [
        (vec!["--shards", "3", "--image", ""], "--image"),
        (
            vec!["--shards", "3", "--image", "i", "--name", "Bad_Name"],
            "--name 'Bad_Name'",
        ),
        (
            vec!["--shards", "3", "--image", "i", "--memory", "4GB"],
            "--memory '4GB'",
        ),
        (
            vec!["--shards", "9", "--image", "i"],
            "more than the suite's 4",
        ),
    ] {
        let mut a = vec!["k8s", "s.toml"];
        a.extend(args);
        let line = assert_clean_error(&w.run(&a), 2);
        assert!(line.contains(want), "{a:?}: {line}");
    }
}
