use super::*;
use crate::backend::{Backend, Session};
use crate::records::canonical_json;
use crate::records::Device;
use crate::records::ModelFormat;

struct Fake;
impl Backend for Fake {
    fn describe(&self) -> Capabilities {
        Capabilities {
            name: "fake",
            description: "test backend",
            scenarios: vec![Scenario::Inference],
            dtypes: vec!["f32", "bf16"],
            devices: vec!["cpu"],
            formats: vec![ModelFormat::Hf, ModelFormat::Gguf],
            axes: vec![
                ("model", "default".into()),
                ("device", "cpu".into()),
                ("dtype", "f32".into()),
                ("batch", 1i64.into()),
                ("prompt_len", 8i64.into()),
            ],
        }
    }
    fn validate(&self, spec: &RunSpec) -> std::result::Result<(), String> {
        if spec.model().format() == ModelFormat::Gguf && spec.str_param("dtype").unwrap() != "f32" {
            return Err("GGUF weights are quantized; dtype must be f32".into());
        }
        Ok(())
    }
    fn load(&self, _: &RunSpec) -> Result<Box<dyn Session>> {
        unreachable!()
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(Box::new(Fake));
    r
}

fn suite(matrix: &str) -> Suite {
    let text = format!(
        "name = \"t\"\nscenario = \"inference\"\nbackend = \"fake\"\nmodel = \"default\"\n[matrix]\n{matrix}"
    );
    Suite::parse(&text, "t.toml").unwrap()
}

fn labels(specs: &[RunSpec]) -> Vec<String> {
    specs
        .iter()
        .map(|s| s.label(&["dtype".into(), "batch".into(), "prompt_len".into()]))
        .collect()
}

#[test]
fn cartesian_product_with_defaults() {
    let specs = expand(
        &suite("dtype = [\"f32\", \"bf16\"]\nbatch = [1, 4]"),
        &registry(),
    )
    .unwrap();
    assert_eq!(
        labels(&specs),
        [
            "dtype=f32 batch=1 prompt_len=8",
            "dtype=f32 batch=4 prompt_len=8",
            "dtype=bf16 batch=1 prompt_len=8",
            "dtype=bf16 batch=4 prompt_len=8"
        ]
    );
    assert!(specs.iter().all(|s| s.device().unwrap() == Device::Cpu));
    assert_eq!(varying_axes(&specs), ["dtype", "batch"]);
}

#[test]
fn exclude_then_include_like_github_actions() {
    let m = "dtype = [\"f32\", \"bf16\"]\nbatch = [1, 4]\n\
             exclude = [{ dtype = \"bf16\", batch = 4 }]\n\
             include = [{ batch = 4, prompt_len = 64 }, { dtype = \"f32\", batch = 2 }]";
    let specs = expand(&suite(m), &registry()).unwrap();
    assert_eq!(
        labels(&specs),
        [
            "dtype=f32 batch=1 prompt_len=8",
            // the first include extends the existing batch=4 combination ...
            "dtype=f32 batch=4 prompt_len=64",
            "dtype=bf16 batch=1 prompt_len=8",
            // ... and the second matches nothing, so it is added
            "dtype=f32 batch=2 prompt_len=8"
        ]
    );
}

#[test]
fn ids_are_stable_and_distinct() {
    let a = expand(&suite("batch = [1, 4]"), &registry()).unwrap();
    let b = expand(&suite("batch = [1, 4]"), &registry()).unwrap();
    assert_eq!(a[0].id, b[0].id);
    assert_ne!(a[0].id, a[1].id);
    assert_eq!(a[0].id.len(), 16);
    // measurement settings do not change what is measured
    let mut s = suite("batch = [1, 4]");
    s.measure.min_iters = 99;
    assert_eq!(expand(&s, &registry()).unwrap()[0].id, a[0].id);
}

#[test]
fn unknown_axis_and_unused_axis() {
    let err = expand(&suite("bach = [1]"), &registry())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown axis 'bach'") && err.contains("batch"),
        "{err}"
    );
    let err = expand(&suite("gen_len = [1]"), &registry())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not use axis 'gen_len'"), "{err}");
    let err = expand(&suite("batch = [0]"), &registry())
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch") && err.contains(">= 1"), "{err}");
}

#[test]
fn impossible_combinations_are_rejected_with_reason() {
    let m = "model = [\"default\", \"m.gguf\"]\ndtype = [\"f32\", \"bf16\"]";
    let err = expand(&suite(m), &registry()).unwrap_err().to_string();
    assert!(err.contains("1 impossible combination"), "{err}");
    assert!(
        err.contains("model=m.gguf dtype=bf16") && err.contains("dtype must be f32"),
        "{err}"
    );
    let err = expand(&suite("device = \"cuda:0\""), &registry())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--features cuda"), "{err}");
}

#[test]
fn unknown_backend_lists_available() {
    let mut s = suite("");
    s.backend = "tensorrt".into();
    let err = expand(&s, &registry()).unwrap_err().to_string();
    assert!(
        err.contains("unknown backend 'tensorrt'; available: fake"),
        "{err}"
    );
}

#[test]
fn filters() {
    let specs = expand(
        &suite("dtype = [\"f32\", \"bf16\"]\nbatch = [1, 4]"),
        &registry(),
    )
    .unwrap();
    let kept = filter(specs.clone(), &["batch=4".into()]).unwrap();
    assert_eq!(kept.len(), 2);
    let kept = filter(specs.clone(), &["batch=4".into(), "dtype=bf16".into()]).unwrap();
    assert_eq!(kept.len(), 1);
    let kept = filter(specs.clone(), &["dtype=f32".into(), "dtype=bf16".into()]).unwrap();
    assert_eq!(kept.len(), 4);
    assert!(filter(specs.clone(), &["batch".into()]).is_err());
    assert!(filter(specs, &["batch=3".into()])
        .unwrap_err()
        .to_string()
        .contains("no run"));
}

#[test]
fn canonical_json_sorts_keys() {
    let v = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": "x"}});
    assert_eq!(
        canonical_json(&v),
        r#"{"a":{"c":"x","d":[1,{"y":1,"z":0}]},"b":1}"#
    );
}

/// A second backend for suites that compare backends: CUDA only, with a `gen_len` axis.
struct Other;
impl Backend for Other {
    fn describe(&self) -> Capabilities {
        Capabilities {
            name: "other",
            description: "second test backend",
            scenarios: vec![Scenario::Inference, Scenario::Training],
            dtypes: vec!["f32", "f16"],
            devices: vec!["cuda"],
            formats: vec![ModelFormat::Hf],
            axes: vec![
                ("model", "default".into()),
                ("device", "cuda:0".into()),
                ("dtype", "f32".into()),
                ("gen_len", 4i64.into()),
                ("steps", 10i64.into()),
            ],
        }
    }
    fn scenario_axes(&self, scenario: Scenario) -> Vec<(&'static str, AxisValue)> {
        let drop = if scenario == Scenario::Training {
            "gen_len"
        } else {
            "steps"
        };
        self.describe()
            .axes
            .into_iter()
            .filter(|(a, _)| *a != drop)
            .collect()
    }
    fn load(&self, _: &RunSpec) -> Result<Box<dyn Session>> {
        unreachable!()
    }
}

fn two_backends() -> Registry {
    let mut r = registry();
    r.register(Box::new(Other));
    r
}

fn compare_suite(matrix: &str) -> Suite {
    let text = format!("name = \"c\"\nscenario = \"inference\"\n[matrix]\n{matrix}");
    Suite::parse(&text, "c.toml").unwrap()
}

#[test]
fn a_backend_axis_compares_backends_in_one_suite() {
    let s = compare_suite(
        "backend = [\"fake\", \"other\"]\ndtype = \"f32\"\nexclude = []\ninclude = [{ backend = \"fake\", batch = 2 }, { backend = \"other\", device = \"cuda:0\", gen_len = 8 }]",
    );
    let specs = expand(&s, &two_backends()).unwrap();
    assert_eq!(specs.len(), 2);
    let fake = specs.iter().find(|s| s.backend == "fake").unwrap();
    let other = specs.iter().find(|s| s.backend == "other").unwrap();
    assert_eq!(fake.params["batch"], AxisValue::Int(2));
    assert_eq!(fake.params["device"], "cpu".into());
    assert!(!fake.params.contains_key("gen_len"));
    assert_eq!(other.params["gen_len"], AxisValue::Int(8));
    // scenario_axes narrows the axes: no training axis on an inference run
    assert!(!other.params.contains_key("steps"));
    assert_eq!(varying_axes(&specs)[0], "backend");
    assert_ne!(fake.id, other.id);
}

#[test]
fn backend_axis_problems_are_named() {
    // an axis only one backend uses, set for all runs
    let s = compare_suite("backend = [\"fake\", \"other\"]\nbatch = 2");
    let err = expand(&s, &two_backends()).unwrap_err().to_string();
    assert!(
        err.contains("run backend=other")
            && err.contains("backend 'other' does not use axis 'batch'"),
        "{err}"
    );
    // an axis no backend uses
    let s = compare_suite("backend = [\"fake\", \"other\"]\nthreads = 2");
    let err = expand(&s, &two_backends()).unwrap_err().to_string();
    assert!(
        err.contains("none of the backends (fake, other) uses axis 'threads'"),
        "{err}"
    );
    // no backend at all
    let s = compare_suite("dtype = \"f32\"");
    let err = expand(&s, &two_backends()).unwrap_err().to_string();
    assert!(err.contains("suite 'c': no backend"), "{err}");
    let s = compare_suite("backend = [\"fake\", \"tensorrt\"]");
    let err = expand(&s, &two_backends()).unwrap_err().to_string();
    assert!(err.contains("unknown backend 'tensorrt'"), "{err}");
}

#[test]
fn filters_apply_before_validation() {
    // 'other' needs CUDA (not in this "build"): the whole suite is rejected ...
    let mut r = Registry::new();
    r.register(Box::new(Fake));
    r.register(Box::new(Other));
    let s2 = compare_suite("backend = [\"fake\", \"other\"]\ndevice = [\"cpu\", \"cuda:0\"]\nexclude = [{ backend = \"other\", device = \"cpu\" }]");
    let err = expand(&s2, &r).unwrap_err().to_string();
    assert!(
        err.contains(
            "run backend=fake device=cuda:0: device 'cuda:0' is not available in backend 'fake'"
        ),
        "{err}"
    );
    // ... unless the filter keeps only what can run here
    let specs = expand_filtered(&s2, &r, &["device=cpu".into()]).unwrap();
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].backend, "fake");
}
