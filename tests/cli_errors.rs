//! Bad input through the real CLI: each case gives a one-line cause naming the file or
//! field, a non-zero exit, and runs nothing.

mod common;
use common::*;

#[test]
fn malformed_toml_reports_line_and_column() {
    let w = Work::new();
    w.write(
        "bad.toml",
        "name = \"x\"\nscenario = \"inference\"\nbackend = [\n",
    );
    let line = assert_clean_error(&w.run(&["validate", "bad.toml"]), 2);
    assert!(line.contains("bad.toml:3:"), "{line}");
}

#[test]
fn unknown_key_is_named_with_allowed_ones() {
    let w = Work::new();
    w.write(
        "s.toml",
        &format!("{}colour = \"red\"\n", tiny_suite("s", "", QUICK))
            .replace("[matrix]", "colour = 1\n[matrix]"),
    );
    let line = assert_clean_error(&w.run(&["validate", "s.toml"]), 2);
    assert!(
        line.contains("unknown field `colour`") && line.contains("`backend`"),
        "{line}"
    );
}

#[test]
fn unknown_backend_lists_available() {
    let w = Work::new();
    w.write(
        "s.toml",
        &tiny_suite("s", "", QUICK).replace("\"candle\"", "\"tensorrt\""),
    );
    let line = assert_clean_error(&w.run(&["run", "s.toml"]), 2);
    assert!(
        line.contains("unknown backend 'tensorrt'") && line.contains("available: candle"),
        "{line}"
    );
    assert!(!w.path().join("results").exists(), "nothing ran");
}

#[test]
fn missing_model_file_is_named() {
    let w = Work::new();
    w.write(
        "s.toml",
        &tiny_suite("s", "", QUICK).replace("\"seeded\"", "\"models/nope.gguf\""),
    );
    let line = assert_clean_error(&w.run(&["run", "s.toml"]), 2);
    assert!(line.contains("models/nope.gguf"), "{line}");
}

#[test]
fn corrupt_model_file_is_named() {
    let w = Work::new();
    w.write("models/broken.gguf", "this is not a gguf file");
    w.write(
        "s.toml",
        &tiny_suite("s", "", QUICK).replace("\"seeded\"", "\"models/broken.gguf\""),
    );
    let line = assert_clean_error(&w.run(&["run", "s.toml", "--out", "out"]), 2);
    assert!(
        line.contains("models/broken.gguf") && line.contains("not a valid GGUF"),
        "{line}"
    );
    // a corrupt HF directory is caught when the run loads it: the run fails, naming the file
    w.write("models/hf/config.json", "{ not json");
    w.write(
        "h.toml",
        &tiny_suite("h", "", QUICK).replace("\"seeded\"", "\"models/hf\""),
    );
    let o = w.run(&["run", "h.toml", "--out", "out2"]);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("models/hf"), "{err}");
    assert_ne!(o.status.code(), Some(0), "{err}");
}

#[test]
fn impossible_combination_is_rejected_before_running() {
    let w = Work::new();
    w.write("models/m.gguf", "x");
    let s = tiny_suite(
        "s",
        "model = [\"seeded\", \"models/m.gguf\"]\ndtype = [\"f32\", \"bf16\"]",
        QUICK,
    );
    w.write("s.toml", &s);
    for cmd in ["validate", "run"] {
        let line = assert_clean_error(&w.run(&[cmd, "s.toml"]), 2);
        assert!(
            line.contains("impossible combination")
                && line.contains("model=models/m.gguf dtype=bf16"),
            "{line}"
        );
    }
    assert!(!w.path().join("results/s").exists(), "no run started");
}

#[test]
fn bad_filters_and_missing_suite() {
    let w = Work::new();
    w.write("s.toml", &tiny_suite("s", "batch = [1, 2]", QUICK));
    let line = assert_clean_error(&w.run(&["run", "s.toml", "--filter", "batch"]), 2);
    assert!(line.contains("axis=value"), "{line}");
    let line = assert_clean_error(&w.run(&["run", "s.toml", "--filter", "batch=3"]), 2);
    assert!(line.contains("no run matches"), "{line}");
    let line = assert_clean_error(&w.run(&["validate", "nope.toml"]), 2);
    assert!(line.contains("nope.toml"), "{line}");
    let line = assert_clean_error(&w.run(&["show", "nowhere"]), 2);
    assert!(line.contains("nowhere"), "{line}");
}

#[test]
fn garbage_suites_never_panic() {
    let w = Work::new();
    let cases = [
        "",
        "\u{0}\u{1}binary",
        "name = 3",
        "name = \"../../etc\"\nscenario = \"inference\"\nbackend = \"candle\"",
        "name = \"x\"\nscenario = \"training\"\nbackend = \"candle\"",
        "name = \"x\"\nscenario = \"inference\"\nbackend = \"candle\"\n[matrix]\nbatch = []",
        "name = \"x\"\nscenario = \"inference\"\nbackend = \"candle\"\n[matrix]\nbatch = [-1]",
        "name = \"x\"\nscenario = \"inference\"\nbackend = \"candle\"\n[matrix]\nbatch = [{a = 1}]",
        "name = \"x\"\nscenario = \"inference\"\nbackend = \"candle\"\n[matrix]\ndevice = \"cuda:0\"",
        "name = \"x\"\nscenario = \"inference\"\nbackend = \"candle\"\n[matrix]\nprompt_len = 100000",
        "name = \"x\"\nscenario = \"inference\"\nbackend = \"candle\"\n[measure]\nmin_iters = 0",
        "name = \"x\"\nscenario = \"inference\"\nbackend = \"candle\"\n[matrix]\nexclude = [{ batch = 1 }]",
        "name = \"x\"\nscenario = \"inference\"\nbackend = \"candle\"\n[matrix]\nbatch = [1]\nexclude = [{ batch = 1 }]",
    ];
    for (i, text) in cases.iter().enumerate() {
        let f = format!("g{i}.toml");
        w.write(&f, text);
        let o = w.run(&["validate", &f]);
        assert_clean_error(&o, 2);
    }
}
