use super::options::ProcessOptions;
use super::*;
use effbench_harness::protocol::{EmissionMsg, Op, RunOutputs, RunReply};
use serde_json::json;
use std::time::Duration;

fn opts(v: serde_json::Value) -> Result<ProcessOptions, String> {
    ProcessOptions::parse(v.as_object().unwrap())
}

fn spec() -> RunSpec {
    let mut params = std::collections::BTreeMap::new();
    params.insert("dtype".to_string(), AxisValue::from("bf16"));
    params.insert("batch".to_string(), AxisValue::Int(4));
    RunSpec {
        id: "x".into(),
        ..RunSpec::new("s", Scenario::Inference, "process", params, 1)
    }
}

#[test]
fn options_parse_with_defaults_and_named_errors() {
    let o = opts(json!({"cmd": ["python3", "w.py"], "timeouts": {"run": 2.5}})).unwrap();
    assert_eq!(o.cmd, ["python3", "w.py"]);
    assert_eq!(o.timeout(Op::Run), Duration::from_millis(2500));
    assert_eq!(o.timeout(Op::Load), Op::Load.default_timeout());
    assert_eq!((o.lr, o.weight_decay), (1e-3, 0.0));
    let e = |v| opts(v).unwrap_err();
    assert!(e(json!({})).contains("needs options.cmd"));
    assert!(e(json!({"cmd": []})).contains("non-empty list"));
    assert!(e(json!({"cmd": ["a", 1]})).contains("list of strings"));
    assert!(e(json!({"cmd": ["a"], "comand": 1})).contains("options.comand is not a setting"));
    assert!(e(json!({"cmd": ["a"], "timeouts": {"runn": 1}}))
        .contains("options.timeouts.runn: unknown op"));
    assert!(e(json!({"cmd": ["a"], "timeouts": {"run": 0}})).contains("seconds > 0"));
    assert!(e(json!({"cmd": ["a"], "lr": -1})).contains("options.lr"));
    assert!(e(json!({"cmd": ["a"], "env": {"A": 1}})).contains("options.env"));
}

#[test]
fn placeholders_take_run_values() {
    let o = opts(json!({"cmd": ["w", "--dtype={dtype}", "{model}", "{{literal}}", "b{batch}x"]}))
        .unwrap();
    assert_eq!(
        o.argv(&spec(), "/m").unwrap(),
        ["w", "--dtype=bf16", "/m", "{literal}", "b4x"]
    );
    let o = opts(json!({"cmd": ["w", "{dtpe}"]})).unwrap();
    let e = o.argv(&spec(), "/m").unwrap_err();
    assert!(
        e.contains("unknown placeholder {dtpe}") && e.contains("available: batch, dtype"),
        "{e}"
    );
    let o = opts(json!({"cmd": ["w", "{dtype"]})).unwrap();
    assert!(o
        .argv(&spec(), "/m")
        .unwrap_err()
        .contains("unbalanced brace"));
}

#[test]
fn scenario_axes_split_inference_and_training() {
    let b = ProcessBackend;
    let names = |s| -> Vec<&str> {
        let mut v: Vec<&str> = b.scenario_axes(s).into_iter().map(|(a, _)| a).collect();
        v.sort_unstable();
        v
    };
    let sorted = |a: &[&'static str]| {
        let mut v = a.to_vec();
        v.sort_unstable();
        v
    };
    assert_eq!(names(Scenario::Inference), sorted(INFERENCE_AXES));
    assert_eq!(names(Scenario::Training), sorted(TRAINING_AXES));
    assert_eq!(names(Scenario::Embedding), sorted(EMBEDDING_AXES));
}

#[test]
fn corpus_batches_are_windows_of_the_train_stream() {
    let mut b = CorpusBatches::new(2, 8, 3);
    let first = b.next_batch();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|w| w.len() == 9));
    let stream = Corpus::standard().train_tokens(9 * 6);
    assert_eq!(first[1], stream[9..18]);
    b.next_batch();
    b.next_batch();
    // three steps x two windows fill the pool: the fourth step wraps around
    assert_eq!(b.next_batch()[0], first[0]);
}

#[test]
fn run_replies_are_checked_against_the_request() {
    let reply = |ids: Vec<Vec<u32>>, em: Vec<(u64, u32)>| RunReply {
        outputs: RunOutputs { token_ids: ids },
        emissions: em
            .into_iter()
            .map(|(t_ns, tokens)| EmissionMsg { t_ns, tokens })
            .collect(),
        op_ns: None,
        memory: None,
    };
    use super::infer::check_run;
    assert!(check_run(&reply(vec![vec![1, 2]], vec![(5, 1), (9, 1)]), 1, 2).is_ok());
    assert!(check_run(&reply(vec![vec![1, 2]], vec![(5, 2)]), 1, 2).is_ok());
    let e = |r, b, g| check_run(&r, b, g).unwrap_err();
    assert!(e(reply(vec![vec![1, 2]], vec![(5, 1), (9, 1)]), 2, 2).contains("1 sequences"));
    assert!(e(reply(vec![vec![1]], vec![(5, 1), (9, 1)]), 1, 2).contains("1 generated tokens"));
    assert!(e(reply(vec![vec![1, 2]], vec![(5, 1)]), 1, 2).contains("carry 1 tokens"));
    assert!(e(reply(vec![vec![1, 2]], vec![(9, 1), (5, 1)]), 1, 2).contains("backwards"));
}

#[test]
fn overhead_is_round_trip_minus_worker_time() {
    let rtt = Duration::from_micros(1500);
    assert_eq!(
        session::Connection::overhead_ms(rtt, Some(1_000_000)),
        Some(0.5)
    );
    assert_eq!(session::Connection::overhead_ms(rtt, Some(2_000_000)), None);
    assert_eq!(session::Connection::overhead_ms(rtt, None), None);
}

#[test]
fn local_vocab_matches_the_candle_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = crate::default_model::ensure_seeded_model_in(tmp.path()).unwrap();
    let (vocab, special) = local_vocab(&dir).unwrap();
    let loaded =
        crate::loader::load_hf(&dir, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    assert_eq!(vocab, loaded.model.config.vocab_size);
    assert_eq!(special, loaded.special_ids);
}

#[test]
fn worker_secrets_travel_by_name_only() {
    // A token in options.env would be stored in every result and hashed into the run id.
    let e = opts(json!({"cmd": ["w"], "env": {"HF_TOKEN": "hf_abcdefghijklmnop"}})).unwrap_err();
    assert!(
        e.contains("options.env_from = { HF_TOKEN = \"HF_TOKEN\" }"),
        "{e}"
    );
    assert!(!e.contains("hf_abcdefghijklmnop"), "{e}");
    let e = opts(json!({"cmd": ["w"], "env": {"X": "sk-0123456789abcdefghijkl"}})).unwrap_err();
    assert!(e.contains("env_from"), "{e}");
    // By name: only the name is in the options (and so in the results and the id).
    let o =
        opts(json!({"cmd": ["w"], "env_from": {"HF_TOKEN": "EFFBENCH_TEST_TOKEN_14"}})).unwrap();
    assert_eq!(
        o.env_from,
        [("HF_TOKEN".to_string(), "EFFBENCH_TEST_TOKEN_14".to_string())]
    );
    let e = o.worker_env().unwrap_err();
    assert!(e.contains("EFFBENCH_TEST_TOKEN_14 is not set"), "{e}");
    let e =
        opts(json!({"cmd": ["w"], "env_from": {"HF_TOKEN": "hf_abcdefghijklmnop"}})).unwrap_err();
    assert!(
        e.contains("looks like a key") && !e.contains("hf_abcdefghijklmnop"),
        "{e}"
    );
    // Bounds named by key.
    let e = opts(json!({"cmd": ["w"], "timeouts": {"run": 1e300}})).unwrap_err();
    assert!(
        e.contains("options.timeouts.run") && e.contains("allowed"),
        "{e}"
    );
    let e = opts(json!({"cmd": ["w"], "max_line_bytes": 1u64 << 40})).unwrap_err();
    assert!(
        e.contains("options.max_line_bytes") && e.contains("allowed"),
        "{e}"
    );
}
