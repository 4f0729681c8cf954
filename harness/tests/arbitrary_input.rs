//! Property tests over everything effbench reads from outside (issue 14, docs/reliability.md):
//! arbitrary suites, result and manifest JSON, CSV tables for `pareto`/`dynascore` and merge
//! inputs — random bytes and random mutations of valid documents, from a fixed seed so a
//! failure reproduces — give a clear error or success, never a panic or an abort.
//! (A seeded generator instead of proptest: no extra dependency, the same guarantee.)

use effbench_harness::analysis::table::read_csv;
use effbench_harness::cluster::merge::{merge, MergeOptions};
use effbench_harness::fixtures;
use effbench_harness::result::{read_manifest, read_result, write_json};
use effbench_harness::Suite;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};

const CASES: usize = 300;

/// Pieces that tend to break parsers: huge and odd numbers, separators, non-ASCII, quotes.
const NASTY: &[&str] = &[
    "1e300",
    "-1e300",
    "1e-30",
    "nan",
    "inf",
    "-0",
    "18446744073709551615",
    "9223372036854775808",
    "-9223372036854775809",
    "0",
    "..",
    "../../x",
    "/etc/passwd",
    "é",
    "😀",
    "\u{0}",
    "\n",
    "\r\n",
    "\"",
    "'",
    "\\",
    "=",
    ",",
    "[",
    "]",
    "{",
    "}",
    "[[",
    "#",
    "$(id)",
    "`id`",
    "=cmd()",
    "|",
    "<script>",
    "\u{202e}",
    "\u{feff}",
    " ",
];

/// `text` with a few random edits: a byte range deleted, a nasty piece inserted, a number
/// replaced, a char duplicated.
fn mutate(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..rng.random_range(1..5) {
        let at = if s.is_empty() {
            0
        } else {
            rng.random_range(0..=s.len())
        };
        match rng.random_range(0..4) {
            0 if !s.is_empty() => {
                let end = (at + rng.random_range(1..8)).min(s.len());
                s.drain(at.min(end)..end);
            }
            1 | 0 => {
                let piece = NASTY[rng.random_range(0..NASTY.len())];
                s.splice(at..at, piece.chars());
            }
            2 => {
                // replace the next run of digits by a nasty number
                let start = s[at..]
                    .iter()
                    .position(|c| c.is_ascii_digit())
                    .map(|p| p + at);
                if let Some(st) = start {
                    let mut end = st;
                    while end < s.len() && (s[end].is_ascii_digit() || s[end] == '.') {
                        end += 1;
                    }
                    let piece = NASTY[rng.random_range(0..12)];
                    s.splice(st..end, piece.chars());
                }
            }
            _ => {
                if let Some(&c) = s.get(at) {
                    s.insert(at, c);
                }
            }
        }
    }
    s.into_iter().collect()
}

fn random_bytes(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let n = rng.random_range(0..200);
    (0..n).map(|_| rng.random()).collect()
}

/// Runs `f`, failing the test (with the input) if it panics.
fn no_panic<T>(what: &str, input: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => panic!("{what} panicked on input:\n{input:?}"),
    }
}

const SUITE: &str = r#"name = "s"
scenario = "inference"
backend = "candle"
model = "seeded"
[matrix]
batch = [1, 2]
prompt_len = 8
gen_len = [2, 4]
dtype = ["f32"]
[measure]
warmup_iters = 1
min_iters = 3
min_duration_s = 0.0
max_duration_s = 5.0
[meters]
period_ms = 100
"#;

#[test]
fn arbitrary_suites_parse_or_fail_cleanly() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    for _ in 0..CASES {
        let text = if rng.random_bool(0.2) {
            String::from_utf8_lossy(&random_bytes(&mut rng)).into_owned()
        } else {
            mutate(&mut rng, SUITE)
        };
        if let Err(e) = no_panic("Suite::parse", &text, || Suite::parse(&text, "s.toml")) {
            let msg = format!("{e:#}");
            assert!(!msg.is_empty() && msg.contains("s.toml"), "{msg}");
        }
    }
}

#[test]
fn arbitrary_result_and_manifest_files_read_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let r = fixtures::result("s", 1, "candle", &[]);
    let rpath = dir.path().join("r.json");
    write_json(&rpath, &r).unwrap();
    let valid = std::fs::read_to_string(&rpath).unwrap();
    let mpath = dir.path().join("manifest.json");
    let mut rng = ChaCha8Rng::seed_from_u64(1414);
    for _ in 0..CASES {
        let text = mutate(&mut rng, &valid);
        std::fs::write(&rpath, &text).unwrap();
        let _ = no_panic("read_result", &text, || read_result(&rpath));
        std::fs::write(&mpath, &text).unwrap();
        let _ = no_panic("read_manifest", &text, || read_manifest(&mpath));
    }
}

#[test]
fn arbitrary_csv_tables_read_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    let valid = "name,latency_ms,energy_j\na,1.5,3\nb,2,1e3\n\"c, d\",0.5,7\n";
    let cols = vec!["latency_ms".to_string(), "energy_j".to_string()];
    let mut rng = ChaCha8Rng::seed_from_u64(141414);
    for _ in 0..CASES {
        let bytes = if rng.random_bool(0.2) {
            random_bytes(&mut rng)
        } else {
            mutate(&mut rng, valid).into_bytes()
        };
        std::fs::write(&path, &bytes).unwrap();
        let shown = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(t) = no_panic("read_csv", &shown, || read_csv(&path, None, &cols)) {
            let _ = no_panic("check_rankable", &shown, || t.check_rankable("t.csv"));
        }
    }
}

#[test]
fn arbitrary_merge_inputs_merge_or_fail_cleanly() {
    let mut rng = ChaCha8Rng::seed_from_u64(14_0014);
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("inner");
    let shard = base.join("shard");
    std::fs::create_dir_all(&shard).unwrap();
    let r = fixtures::result("s", 1, "candle", &[]);
    write_json(&shard.join("r.json"), &r).unwrap();
    let manifest = format!(
        r#"{{"schema_version": 1, "suite": {{"name": "s", "description": "", "varying_axes": []}},
"effbench_version": "x", "command": [], "started_at": "2026-01-01T00:00:00Z",
"planned": ["{id}"], "runs": [{{"id": "{id}", "label": "l", "state": "ok", "file": "r.json"}}]}}"#,
        id = r.id
    );
    let opts = MergeOptions {
        force: true,
        allow_partial: true,
        command: vec![],
    };
    for i in 0..CASES / 3 {
        let text = mutate(&mut rng, &manifest);
        std::fs::write(shard.join("manifest.json"), &text).unwrap();
        let out = base.join(format!("out{i}"));
        let _ = no_panic("merge", &text, || {
            merge(std::slice::from_ref(&shard), &out, &opts)
        });
        // Nothing lands outside the base directory whatever the manifest says.
        let outside: Vec<_> = std::fs::read_dir(root.path()).unwrap().flatten().collect();
        assert_eq!(outside.len(), 1, "{outside:?} after merging:\n{text}");
    }
}
