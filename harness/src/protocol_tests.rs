use super::*;
use serde_json::json;

#[test]
fn request_lines_carry_op_and_id() {
    let body = json!({"inputs": {"gen_len": 4}});
    let line = request_line(Op::Run, 7, body.as_object().unwrap());
    assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["op"], "run");
    assert_eq!(v["id"], 7);
    assert_eq!(v["inputs"]["gen_len"], 4);
}

#[test]
fn ok_reply_is_returned() {
    let m = parse_reply(r#"{"id":3,"ok":true,"x":1}"#, Op::Load, 3).unwrap();
    assert_eq!(m["x"], 1);
}

#[test]
fn every_bad_reply_has_its_fault() {
    let case = |line: &str| parse_reply(line, Op::Run, 2).unwrap_err();
    assert_eq!(case("hello").fault, Fault::Garbage);
    assert_eq!(case("[1,2]").fault, Fault::Garbage);
    assert_eq!(case(r#"{"id":1,"ok":true}"#).fault, Fault::BadReply);
    assert_eq!(case(r#"{"ok":true}"#).fault, Fault::BadReply);
    assert_eq!(case(r#"{"id":2}"#).fault, Fault::BadReply);
    assert_eq!(case(r#"{"id":2,"error":"nope"}"#).fault, Fault::BadReply);
    let e = case(r#"{"id":2,"error":{"kind":"out_of_memory","message":"CUDA OOM"}}"#);
    assert_eq!(e.fault, Fault::Reported);
    assert_eq!(
        e.to_string(),
        "worker error during `run` (out_of_memory): CUDA OOM"
    );
    let msg = case("this is not json").to_string();
    assert!(
        msg.starts_with("worker wrote a line that is not JSON")
            && msg.contains("'this is not json'")
            && msg.ends_with("during `run`"),
        "{msg}"
    );
}

#[test]
fn reason_is_one_line_and_quotes_the_last_stderr_lines() {
    let mut e = WorkerError::new(
        Fault::Crash,
        Op::Run,
        "worker `w` exited with status 3 before replying",
    );
    e.stderr_tail = vec![
        "a".into(),
        "Traceback".into(),
        "  x".into(),
        "".into(),
        "Boom".into(),
    ];
    let s = e.to_string();
    assert_eq!(
        s,
        "worker `w` exited with status 3 before replying during `run`; worker stderr: Traceback | x | Boom"
    );
    assert_eq!(e.log_lines().len(), 5);
    assert!(e.log_lines()[4].starts_with("worker stderr: "));
}

#[test]
fn versions_are_negotiated() {
    let d = |v: u32| DescribeReply {
        protocol: v,
        worker: WorkerId::default(),
        scenarios: vec![],
        dtypes: vec![],
        devices: vec![],
        clock: None,
        runtime: Map::new(),
    };
    assert!(check_version(&d(1)).is_ok());
    let e = check_version(&d(2)).unwrap_err();
    assert_eq!(e.fault, Fault::Version);
    assert!(
        e.to_string()
            .contains("protocol version 2, effbench speaks 1"),
        "{e}"
    );
}

#[test]
fn replies_decode_into_typed_messages() {
    let m = parse_reply(
        r#"{"id":0,"ok":true,"outputs":{"token_ids":[[5,6]]},"emissions":[{"t_ns":10,"tokens":1},{"t_ns":20,"tokens":1}],"op_ns":25,"memory":{"max_allocated_bytes":100}}"#,
        Op::Run,
        0,
    )
    .unwrap();
    let r: RunReply = decode(m, Op::Run).unwrap();
    assert_eq!(r.outputs.token_ids, vec![vec![5, 6]]);
    assert_eq!(
        r.emissions[1],
        EmissionMsg {
            t_ns: 20,
            tokens: 1
        }
    );
    assert_eq!(r.memory.unwrap().max_allocated_bytes, Some(100));
    let m = parse_reply(r#"{"id":0,"ok":true,"emissions":[]}"#, Op::Run, 0).unwrap();
    let e = decode::<RunReply>(m, Op::Run).unwrap_err();
    assert_eq!(e.fault, Fault::BadReply);
    assert!(e.to_string().contains("outputs"), "{e}");
}

#[test]
fn snippets_are_short() {
    let long = "x".repeat(500);
    assert_eq!(snippet(&long).chars().count(), 121);
    assert_eq!(snippet("  ab \n"), "ab");
}
