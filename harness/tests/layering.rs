//! The layering of the core (issue 18): the data model is a crate of its own
//! (`harness/records`, `effbench-records`) that depends on nothing of effbench's and does no
//! I/O; the harness's top-level modules import each other without a cycle, each stage
//! importing only modules below it. A `crate::x` reference in code counts as an import of
//! `x`; comments, `*_tests.rs` files and code after the first `#[cfg(test)]` do not. On failure
//! the test prints every cycle with its edges, so the import to cut is visible.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module of a file (`runner.rs` → runner, `cluster/merge.rs` → cluster); `None`
/// for the crate root and test files.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?;
    let top = first.strip_suffix(".rs").unwrap_or(first);
    let name = file.file_stem()?.to_str()?;
    (top != "lib" && !top.ends_with("_tests") && !name.ends_with("_tests")).then(|| top.into())
}

/// The code of a file without its tests and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module names a piece of code references as `crate::NAME` or inside `use crate::{...}`.
fn referenced(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: `a::{..}, b, c::d` → a, b, c.
            let mut depth = 0;
            let mut start = true;
            for (j, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        out.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in &s.edges[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.found.push(comp);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        if let Some(m) = module_of(src, file) {
            let refs = referenced(&code(&std::fs::read_to_string(file).unwrap()));
            edges.entry(m.clone()).or_default().extend(refs);
        }
    }
    let modules: BTreeSet<String> = edges.keys().cloned().collect();
    for (m, refs) in edges.iter_mut() {
        refs.retain(|r| r != m && modules.contains(r));
    }
    edges
}

#[test]
fn harness_modules_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = import_graph(&src);
    assert!(edges.len() > 20, "found only {} modules", edges.len());
    let found = cycles(&edges);
    let mut report = String::new();
    for comp in &found {
        report.push_str(&format!("cycle of {} modules:\n", comp.len()));
        for m in comp {
            let inside: Vec<&str> = edges[m]
                .iter()
                .filter(|x| comp.contains(x))
                .map(String::as_str)
                .collect();
            report.push_str(&format!("  {m} -> {}\n", inside.join(", ")));
        }
    }
    assert!(found.is_empty(), "import cycles in harness/src:\n{report}");
}

#[test]
fn the_records_crate_depends_on_nothing_of_ours_and_does_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("records");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap();
    assert!(
        !deps.contains("effbench"),
        "effbench-records depends on: {deps}"
    );
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 10, "{files:?}");
    // The ways a function reads files, the environment, the clock, processes, the network or
    // the hardware. Tests may use them.
    let io = [
        "std::fs",
        "std::env",
        "std::process",
        "std::net",
        "std::io",
        "Instant::now",
        "SystemTime",
        "std::thread",
        "sysinfo",
        "nvml_wrapper",
        "libc",
        "File::",
        "Command::",
    ];
    let mut found = Vec::new();
    for file in &files {
        let code = code(&std::fs::read_to_string(file).unwrap());
        for needle in io {
            if code.contains(needle) {
                found.push(format!("{}: {needle}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O in effbench-records:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_a_cycle_and_group_imports() {
    let refs = referenced("use crate::{a::{b, c}, d, e::f};\nlet x = crate::g::h();");
    assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["a", "d", "e", "g"]);
    assert_eq!(
        code("let a = 1; // crate::x\n#[cfg(test)]\nuse crate::y;"),
        "let a = 1; "
    );
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"][..]),
        ("c", &["a"][..]),
        ("d", &["a"][..]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
    .collect();
    assert_eq!(cycles(&edges), vec![vec!["a", "b", "c"]]);
}
