//! Hostile input through the real CLI (issue 14, docs/reliability.md): names that would
//! become paths outside `results/`, numbers that would panic or exhaust memory at run time,
//! a matrix too large to build, a closed stdout. Each case ends in one clear line and the
//! documented exit code, never a panic, an abort or a hang.

mod common;
use common::*;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn a_suite_named_dot_dot_is_refused() {
    let w = Work::new();
    for name in ["..", ".", ".hidden"] {
        w.write("s.toml", &tiny_suite(name, "", QUICK));
        let line = assert_clean_error(&w.run(&["run", "s.toml"]), 2);
        assert!(
            line.contains("name") && line.contains("starts with '.'"),
            "{line}"
        );
    }
    assert!(!w.path().join("results").exists(), "nothing written");
}

#[test]
fn numbers_past_their_range_are_refused_at_validate_naming_the_key() {
    let w = Work::new();
    let cases: [(&str, String, &str); 6] = [
        (
            "idle_baseline_s",
            tiny_suite("s", "", QUICK) + "[meters]\nidle_baseline_s = 1e20\n",
            "idle_baseline_s = 1e20 is out of range",
        ),
        (
            "period_ms",
            tiny_suite("s", "", QUICK) + "[meters]\nperiod_ms = 1e300\n",
            "period_ms = 1e300 is out of range",
        ),
        (
            "max_duration_s",
            tiny_suite("s", "", &QUICK.replace("5.0", "1e300")),
            "max_duration_s = 1e300 is out of range",
        ),
        (
            "batch",
            tiny_suite(
                "s",
                "batch = 1000000000\nprompt_len = 8\ngen_len = 2",
                QUICK,
            ),
            "axis 'batch' = 1000000000 is out of range: allowed 1 to 65536",
        ),
        (
            "tokens per iteration",
            tiny_suite("s", "batch = 65536\nprompt_len = 1024\ngen_len = 1", QUICK),
            "tokens per iteration, more than the maximum",
        ),
        (
            "max_iters",
            tiny_suite("s", "", &format!("{QUICK}\nmax_iters = 1000000000000")),
            "max_iters = 1000000000000 is out of range",
        ),
    ];
    for (what, suite, expect) in cases {
        w.write("s.toml", &suite);
        let line = assert_clean_error(&w.run(&["validate", "s.toml"]), 2);
        assert!(line.contains(expect), "{what}: {line}");
    }
}

#[test]
fn a_matrix_too_large_is_refused_before_it_is_built() {
    let w = Work::new();
    // 1000 x 1000 x 1000 = 10^9 combinations: on main this ran out of memory.
    let axis = |n: usize| {
        (1..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let m = format!(
        "batch = [{}]\nprompt_len = [{}]\ngen_len = [{}]",
        axis(1000),
        axis(1000),
        axis(1000)
    );
    w.write("s.toml", &tiny_suite("s", &m, QUICK));
    let t = Instant::now();
    let line = assert_clean_error(&w.run(&["validate", "s.toml"]), 2);
    assert!(line.contains("more than the maximum 100000"), "{line}");
    assert!(line.contains("docs/reliability.md"), "{line}");
    // Not a timing assertion on effbench's speed: only that it did not build the matrix.
    assert!(t.elapsed() < Duration::from_secs(120));
}

#[test]
fn float_seconds_and_counts_from_flags_are_range_checked() {
    let w = Work::new();
    w.write("s.toml", &tiny_suite("s", "", QUICK));
    for (args, expect) in [
        (
            vec!["meters", "--probe-s", "1e300"],
            "--probe-s = 1e300 is out of range",
        ),
        (
            vec!["serve", "--model", "seeded", "--grace-s", "1e20"],
            "--grace-s = 1e20 is out of range",
        ),
        (
            vec!["plan", "s.toml", "--shards", "1000000000000"],
            "shard count = 1000000000000 is out of range",
        ),
        (
            vec![
                "loadgen",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--model",
                "m",
                "--request-rate",
                "1e-30",
                "--out",
                "lg",
            ],
            "request_rate",
        ),
    ] {
        let line = assert_clean_error(&w.run(&args), 2);
        assert!(line.contains(expect), "{args:?}: {line}");
    }
}

#[test]
fn credentials_in_a_base_url_are_refused_and_never_written() {
    let w = Work::new();
    let o = w.run(&[
        "loadgen",
        "--base-url",
        "http://user:s3cretKEY99@127.0.0.1:9/v1",
        "--model",
        "m",
        "--out",
        "lg",
    ]);
    let line = assert_clean_error(&o, 2);
    assert!(
        !line.contains("s3cretKEY99") && line.contains("api-key-env"),
        "{line}"
    );
    assert!(!w.path().join("lg").exists(), "nothing written");
}

#[test]
fn a_closed_stdout_ends_effbench_quietly() {
    let w = Work::new();
    // `effbench list | head -0`: the reader is gone before anything is printed.
    let mut child = w
        .cmd(&["list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
}
