use super::*;

fn opts() -> K8sOptions {
    K8sOptions {
        shards: 3,
        image: "ghcr.io/x/effbench:1".into(),
        name: "effbench-s".into(),
        namespace: Some("bench".into()),
        pvc: "effbench-results".into(),
        parallelism: None,
        cpu: Some("2".into()),
        memory: Some("4Gi".into()),
        gpus: Some(1),
        command: "effbench".into(),
        suite_file: "s.toml".into(),
        suite_text: "name = \"s\"\n".into(),
        filters: vec![],
        backoff_limit: 1,
    }
}

#[test]
fn indexed_job_reads_the_shard_from_the_completion_index() {
    let m = manifests(&opts(), 5).unwrap();
    let job = m.shards[1].to_json();
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 3);
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"][2], "--shard=$(JOB_COMPLETION_INDEX)/3");
    assert_eq!(
        c["args"][3],
        "--out=/results/effbench-s/shard-$(JOB_COMPLETION_INDEX)"
    );
    assert_eq!(c["env"][0]["name"], "JOB_COMPLETION_INDEX");
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], 1);
    let merge = m.merge.to_json();
    let margs = &merge["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(margs[3], "/results/effbench-s/shard-2");
    assert_eq!(margs[4], "--out=/results/effbench-s/merged");
    assert!(m.submit.contains("kubectl -n bench apply -f merge.yaml"));
}

#[test]
fn bad_values_are_named() {
    let err = |f: &dyn Fn(&mut K8sOptions)| {
        let mut o = opts();
        f(&mut o);
        manifests(&o, 5).unwrap_err().to_string()
    };
    assert!(err(&|o| o.name = "Bad_Name".into()).contains("--name 'Bad_Name'"));
    assert!(err(&|o| o.image = "".into()).contains("--image"));
    assert!(err(&|o| o.memory = Some("4GB".into())).contains("--memory '4GB'"));
    assert!(err(&|o| o.shards = 6).contains("more than the suite's 5"));
    assert_eq!(default_name("Quick_Start v2"), "effbench-quick-start-v2");
}

#[test]
fn user_text_is_not_expanded_by_the_kubelet() {
    let mut o = opts();
    o.filters = vec!["model=$(SECRET) $$x".into()];
    o.command = "/opt/$(HOME)/effbench".into();
    let m = manifests(&o, 5).unwrap();
    let job = m.shards[1].to_json();
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"][4], "--filter=model=$$(SECRET) $$$$x");
    assert_eq!(
        c["args"][2], "--shard=$(JOB_COMPLETION_INDEX)/3",
        "ours stays live"
    );
    assert_eq!(c["command"][0], "/opt/$$(HOME)/effbench");
    assert_eq!(
        job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        TERMINATION_GRACE_S
    );
}
