use super::*;
use crate::loader::load_results;
use crate::metric::{Metric, MetricId};
use crate::records::RunSpec;
use crate::records::Scenario;
use crate::records::{
    Manifest, ManifestEntry, ModelInfo, RunResult, RunState, Series, StatsMethod, Status,
    SuiteInfo, SCHEMA_VERSION,
};
use crate::warnings::{Warning, WarningKind};

fn sample() -> RunResult {
    let mut params = std::collections::BTreeMap::new();
    params.insert("dtype".to_string(), "bf16".into());
    params.insert("batch".to_string(), 4i64.into());
    RunResult {
        schema_version: SCHEMA_VERSION,
        id: "00112233445566aa".into(),
        suite: SuiteInfo {
            name: "quickstart".into(),
            description: "<b>desc</b>".into(),
            file: Some("suites/quickstart.toml".into()),
            sha256: Some("ab".repeat(32)),
            varying_axes: vec!["dtype".into(), "batch".into()],
            analysis: None,
        },
        config: RunSpec {
            id: "00112233445566aa".into(),
            ..RunSpec::new("quickstart", Scenario::Inference, "candle", params, 42)
        },
        status: Status {
            state: RunState::Ok,
            reason: None,
        },
        started_at: "2026-11-26T12:00:00.000Z".into(),
        finished_at: "2026-11-26T12:00:01.000Z".into(),
        iterations: 3,
        measured_s: 1.25,
        model: Some(ModelInfo {
            name: "default".into(),
            params_total: 10,
            ..Default::default()
        }),
        metrics: vec![
            Metric::sampled(MetricId::Ttft, vec![1.5, 2.0, 2.5], "wall-clock", 1),
            Metric::scalar(MetricId::PeakRss, 1e8, "procfs VmHWM"),
        ],
        series: vec![Series {
            name: "rss".into(),
            x_unit: "s".into(),
            y_unit: "bytes".into(),
            source: "procfs".into(),
            period_ms: Some(100.0),
            points: vec![[0.0, 1.0], [0.1, 2.0]],
        }],
        warnings: vec![Warning {
            kind: WarningKind::HighVariance,
            message: "m".into(),
            hint: "h".into(),
        }],
        stats_method: StatsMethod::current(42),
        env: crate::probe::environment(&[]),
        log: vec!["note".into()],
    }
}

fn schema_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema")
}

#[test]
fn committed_schemas_match_the_types() {
    for (file, gen) in crate::schema::FILES {
        let path = schema_dir().join(file);
        let generated = serde_json::to_string_pretty(&gen()).unwrap() + "\n";
        if std::env::var_os("EFFBENCH_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date: run EFFBENCH_UPDATE_SCHEMA=1 cargo test -p effbench-harness schema \
             (and bump SCHEMA_VERSION if the change is not backwards compatible)",
            path.display()
        );
    }
}

#[test]
fn result_round_trips_and_validates_against_the_schema() {
    let r = sample();
    let json = serde_json::to_value(&r).unwrap();
    let validator = jsonschema::validator_for(&crate::schema::run_result()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let back: RunResult = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn schema_rejects_a_broken_result() {
    let mut json = serde_json::to_value(sample()).unwrap();
    json["metrics"][0]["better"] = "sideways".into();
    let validator = jsonschema::validator_for(&crate::schema::run_result()).unwrap();
    assert!(!validator.is_valid(&json));
}

#[test]
fn atomic_write_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("r.json");
    write_json(&path, &sample()).unwrap();
    assert_eq!(read_result(&path).unwrap(), sample());
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["r.json"], "no temp file left behind");
}

#[test]
fn wrong_schema_version_and_non_results_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.json");
    let mut json = serde_json::to_value(sample()).unwrap();
    json["schema_version"] = 7.into();
    std::fs::write(&p, json.to_string()).unwrap();
    let e = read_result(&p).unwrap_err().to_string();
    assert!(
        e.contains("schema_version 7") && e.contains("version 1"),
        "{e}"
    );
    std::fs::write(&p, "{\"a\": 1}").unwrap();
    assert!(read_result(&p)
        .unwrap_err()
        .to_string()
        .contains("not an effbench result"));
    std::fs::write(&p, "{").unwrap();
    assert!(read_result(&p)
        .unwrap_err()
        .to_string()
        .contains("is not JSON"));
}

#[test]
fn result_files_resolve_manifests_and_newest_invocation() {
    let root = tempfile::tempdir().unwrap();
    for (stamp, id) in [
        ("2026-01-01T00-00-00Z", "aaaa"),
        ("2026-02-01T00-00-00Z", "bbbb"),
    ] {
        let dir = root.path().join(stamp);
        let mut r = sample();
        r.id = id.into();
        write_json(&dir.join(format!("{id}.json")), &r).unwrap();
        let m = Manifest {
            shard: None,
            scheduler: None,
            merged_from: Vec::new(),
            skipped: Vec::new(),
            schema_version: 1,
            suite: r.suite.clone(),
            effbench_version: "0".into(),
            command: vec![],
            started_at: String::new(),
            finished_at: None,
            planned: vec![id.into()],
            runs: vec![ManifestEntry {
                id: id.into(),
                label: String::new(),
                state: RunState::Ok,
                file: format!("{id}.json"),
            }],
        };
        write_json(&dir.join(MANIFEST_FILE), &m).unwrap();
    }
    let newest = load_results(root.path()).unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].id, "bbbb");
    let one = load_results(&root.path().join("2026-01-01T00-00-00Z")).unwrap();
    assert_eq!(one[0].id, "aaaa");
    assert!(load_results(&root.path().join("nope"))
        .unwrap_err()
        .to_string()
        .contains("does not exist"));
}
