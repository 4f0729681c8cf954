//! Scale-out through the real CLI: `run --shard`, `plan`, `merge`, `status`, the Slurm
//! scripts and the Kubernetes manifests (validated against vendored batch/v1 Job and v1
//! ConfigMap schemas after an independent YAML parser reads them back).

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const MATRIX: &str = "dtype = [\"f32\", \"bf16\"]\nbatch = [1, 2]\nprompt_len = 8\ngen_len = 2";
const FAST: &str = "warmup_iters = 0\nmin_iters = 2\nmin_duration_s = 0.0\nmax_duration_s = 2.0";

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn ids(manifest: &Value) -> BTreeSet<String> {
    manifest["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn ok(o: &std::process::Output) {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
}

/// Runs the 4-run suite locally and as three shards into `j/shard-<i>`.
fn sharded(w: &Work) {
    w.write("s.toml", &tiny_suite("tiny", MATRIX, FAST));
    ok(&w.run(&["run", "s.toml", "--out", "local"]));
    for i in 0..3 {
        let shard = format!("{i}/3");
        let out = format!("j/shard-{i}");
        ok(&w.run(&["run", "s.toml", "--shard", &shard, "--out", &out]));
    }
}

#[test]
fn shards_merge_into_exactly_the_local_run() {
    let w = Work::new();
    sharded(&w);
    let o = w.run(&["plan", "s.toml", "--shards", "3", "--json"]);
    ok(&o);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = plan["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(plan["shard_estimated_s"].as_array().unwrap().len(), 3);
    let text = stdout(&w.run(&["plan", "s.toml", "--shards", "3"]));
    assert!(text.contains("4 run(s) in 3 shard(s)"), "{text}");

    // Each shard ran what the plan gave it, labelled over the whole suite's axes.
    for i in 0..3 {
        let m = json_file(&w.path().join(format!("j/shard-{i}/manifest.json")));
        let planned: BTreeSet<String> = runs
            .iter()
            .filter(|r| r["shard"] == i)
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids(&m), planned, "shard {i}");
        assert_eq!(m["shard"]["index"], i);
        assert_eq!(m["shard"]["plan"].as_array().unwrap().len(), 4);
    }
    let o = w.run(&["merge", "j", "--out", "j/merged"]);
    ok(&o);
    assert!(
        stderr(&o).contains("merged 4 run(s) from 3 directories"),
        "{}",
        stderr(&o)
    );
    let local = json_file(&w.path().join("local/manifest.json"));
    let merged = json_file(&w.path().join("j/merged/manifest.json"));
    assert_eq!(merged["planned"], local["planned"], "same runs, same order");
    assert_eq!(ids(&merged), ids(&local));
    assert_eq!(merged["merged_from"].as_array().unwrap().len(), 3);
    for r in merged["runs"].as_array().unwrap() {
        assert_eq!(r["state"], "ok");
        let file = r["file"].as_str().unwrap();
        let got = std::fs::read(w.path().join("j/merged").join(file)).unwrap();
        let found = (0..3).any(|i| {
            std::fs::read(w.path().join(format!("j/shard-{i}/{file}"))).ok() == Some(got.clone())
        });
        assert!(found, "{file} is a byte copy of a shard result");
        let res: Value = serde_json::from_slice(&got).unwrap();
        let local_res = json_file(&w.path().join("local").join(file));
        assert_eq!(
            res["suite"], local_res["suite"],
            "suite facts as one machine"
        );
        assert_eq!(res["config"], local_res["config"]);
    }
    // `show` reads the merged set; `status` sees every shard finished and the merge.
    ok(&w.run(&["show", "j/merged"]));
    let o = w.run(&["status", "j"]);
    ok(&o);
    let s = stdout(&o);
    assert!(
        s.contains("3 of 3 shard(s) finished, 4 of 4 run(s) done"),
        "{s}"
    );
    assert!(s.contains("merged: 4 of 4 run(s)"), "{s}");
    // Merging again into the earlier merge's output replaces it.
    ok(&w.run(&[
        "merge",
        "j/shard-0",
        "j/shard-1",
        "j/shard-2",
        "--out",
        "j/merged",
    ]));
}

#[test]
fn merge_names_missing_duplicate_and_conflicting_runs() {
    let w = Work::new();
    sharded(&w);
    // Partial: shard 2 missing -> its runs listed, nothing written, exit 1.
    let o = w.run(&["merge", "j/shard-0", "j/shard-1", "--out", "partial"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let m2 = json_file(&w.path().join("j/shard-2/manifest.json"));
    for id in ids(&m2) {
        assert!(err.contains(&format!("missing: {id}")), "{err}");
    }
    assert!(
        err.contains("shard 2") && err.contains("--allow-partial"),
        "{err}"
    );
    assert!(!w.path().join("partial").exists());
    let o = w.run(&[
        "merge",
        "j/shard-0",
        "j/shard-1",
        "--out",
        "partial",
        "--allow-partial",
    ]);
    ok(&o);
    let pm = json_file(&w.path().join("partial/manifest.json"));
    assert_eq!(pm["planned"].as_array().unwrap().len(), 4);
    assert_eq!(ids(&pm).len(), 4 - ids(&m2).len());
    // status of an incomplete set: shard 2 not started, exit 1.
    let o = w.run(&["status", "j/shard-0", "j/shard-1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("not started"), "{}", stdout(&o));

    // Duplicate: shard 0 copied elsewhere -> reported, one kept.
    copy_dir(&w.path().join("j/shard-0"), &w.path().join("dup"));
    let o = w.run(&[
        "merge",
        "j/shard-0",
        "j/shard-1",
        "j/shard-2",
        "dup",
        "--out",
        "m1",
    ]);
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("duplicate: ") && err.contains("same config"),
        "{err}"
    );
    assert!(err.contains("shard 0 appears 2 times"), "{err}");
    assert_eq!(ids(&json_file(&w.path().join("m1/manifest.json"))).len(), 4);

    // Conflict: same id, different measurement settings (or schema) -> refused, exit 2.
    copy_dir(&w.path().join("j/shard-0"), &w.path().join("conf"));
    let m0 = json_file(&w.path().join("conf/manifest.json"));
    let victim = m0["runs"][0]["file"].as_str().unwrap().to_string();
    let vid = m0["runs"][0]["id"].as_str().unwrap().to_string();
    let mut r = json_file(&w.path().join("conf").join(&victim));
    r["config"]["measure"]["min_iters"] = 7.into();
    std::fs::write(w.path().join("conf").join(&victim), r.to_string()).unwrap();
    let o = w.run(&["merge", "j", "conf", "--out", "m2"]);
    let line = assert_clean_error(&o, 2);
    assert!(
        line.contains("1 conflicting run(s)") && line.contains(&vid),
        "{line}"
    );
    assert!(line.contains("config.measure.min_iters 2 vs 7"), "{line}");
    r["config"]["measure"]["min_iters"] = 2.into();
    r["schema_version"] = 2.into();
    std::fs::write(w.path().join("conf").join(&victim), r.to_string()).unwrap();
    let line = assert_clean_error(&w.run(&["merge", "j", "conf", "--out", "m2"]), 2);
    assert!(line.contains("schema_version 1 vs 2"), "{line}");
    assert!(!w.path().join("m2").exists());

    // Different suite -> refused unless --force.
    w.write(
        "other.toml",
        &tiny_suite("other", "prompt_len = 8\ngen_len = 3", FAST),
    );
    ok(&w.run(&["run", "other.toml", "--out", "other"]));
    let line = assert_clean_error(&w.run(&["merge", "j", "other", "--out", "m3"]), 2);
    assert!(
        line.contains("different suites") && line.contains("--force"),
        "{line}"
    );
    let o = w.run(&["merge", "j", "other", "--out", "m3", "--force"]);
    ok(&o);
    assert!(
        stderr(&o).contains("merged because of --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ids(&json_file(&w.path().join("m3/manifest.json"))).len(), 5);

    // Shards of another split of the same suite -> refused unless --force.
    ok(&w.run(&["run", "s.toml", "--shard", "0/2", "--out", "two/shard-0"]));
    let line = assert_clean_error(&w.run(&["merge", "j", "two", "--out", "m4"]), 2);
    assert!(line.contains("planned differently"), "{line}");

    // Inputs that are not shard outputs.
    let line = assert_clean_error(&w.run(&["merge", "nowhere", "--out", "m5"]), 2);
    assert!(line.contains("'nowhere' does not exist"), "{line}");
    std::fs::create_dir_all(w.path().join("empty")).unwrap();
    let line = assert_clean_error(&w.run(&["merge", "empty", "--out", "m5"]), 2);
    assert!(line.contains("no manifest.json"), "{line}");
    let line = assert_clean_error(&w.run(&["merge", "j/shard-0", "--out", "local"]), 2);
    assert!(line.contains("not empty"), "{line}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn bad_shards_are_one_line_errors() {
    let w = Work::new();
    w.write("s.toml", &tiny_suite("tiny", MATRIX, FAST));
    for (arg, want) in [
        ("3/3", "index must be below the shard count (0..=2)"),
        ("0/0", "shard count must be at least 1"),
        ("a/3", "index 'a' is not a whole number"),
        ("1/b", "shard count 'b' is not a whole number"),
        ("2", "not of the form I/N"),
        ("-1/3", "not a whole number"),
    ] {
        let line = assert_clean_error(&w.run(&["run", "s.toml", "--shard", arg]), 2);
        assert!(line.contains(want), "{arg}: {line}");
    }
    let line = assert_clean_error(&w.run(&["plan", "s.toml", "--shards", "0"]), 2);
    assert!(line.contains("at least 1"), "{line}");
    assert!(!w.path().join("results").exists(), "nothing ran");
    // More shards than runs: the extra shard is empty but still leaves a manifest.
    let o = w.run(&["run", "s.toml", "--shard", "5/6", "--out", "e"]);
    ok(&o);
    let m = json_file(&w.path().join("e/manifest.json"));
    assert_eq!(m["runs"].as_array().unwrap().len(), 0);
    assert!(m["finished_at"].is_string());
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
