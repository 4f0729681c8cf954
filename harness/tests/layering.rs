//! The layering of the core (issue 18): the data model is a crate of its own
//! (`harness/records`, `effbench-records`) that depends on nothing of effbench's and does no
//! I/O, and in each of the two crates the top-level modules import each other without a cycle,
//! each importing only modules below it.
//!
//! An import is a `crate::x` path (or `super::x` in a file at the crate root) in code: `x` is
//! the module, or, for an item the crate root re-exports (`pub use x::{Item}` in lib.rs), the
//! module it comes from. Comments, string literals, `#[cfg(test)]` items and `*_tests.rs`
//! files do not count. On failure the test prints every cycle with its edges, so the import
//! to cut is visible.

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

/// Source text without comments and with every string and char literal emptied.
fn without_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"') | Some(b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                // Raw string r#"..."#: skip to the quote followed by as many #.
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                while j < b.len() {
                    if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\') => {
                // A char literal ('x', '\n', '\u{..}'); lifetimes ('a) are left alone.
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("' '");
            }
            _ => {
                let ch = text[i..].chars().next().unwrap();
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// Code without comments, strings and `#[cfg(test)]` items (a `mod x;` line, or the item up
/// to its closing brace).
fn code(text: &str) -> String {
    let mut s = without_comments_and_strings(text);
    while let Some(at) = s.find("#[cfg(test)]") {
        let rest = &s[at..];
        let semi = rest.find(';');
        let brace = rest.find('{');
        let end = match (semi, brace) {
            (Some(p), Some(q)) if p < q => at + p + 1,
            (_, Some(q)) => {
                let mut depth = 0;
                let mut end = s.len();
                for (k, ch) in s[at + q..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = at + q + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(p), None) => at + p + 1,
            (None, None) => s.len(),
        };
        s.replace_range(at..end, "");
    }
    s
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// First path segments of a path or `{...}` group: `a::{..}, b, c::d` → a, b, c.
fn group_heads(group: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (j, ch) in group.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                out.push(ident(&group[j..]));
                start = false;
            }
            _ => {}
        }
    }
    out
}

/// First segments after `prefix` (`crate::`, `super::`), groups included.
fn heads_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        if i > 0 && {
            let c = code[..i].chars().next_back().unwrap();
            c.is_ascii_alphanumeric() || c == '_' || c == ':'
        } {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        match rest.strip_prefix('{') {
            Some(group) => out.extend(group_heads(group)),
            None => {
                out.insert(ident(rest));
            }
        }
    }
    out
}

/// Items the crate root re-exports from its own modules: item → module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let lib = code(lib);
    let mut out = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = ident(path);
        let Some(rest) = path[module.len()..].strip_prefix("::") else {
            continue;
        };
        let items = match rest.strip_prefix('{') {
            Some(group) => group_heads(group),
            None => vec![ident(rest)],
        };
        for item in items {
            out.insert(item, module.clone());
        }
    }
    out
}

fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(m) = module_of(src, file) else {
            continue;
        };
        let code = code(&std::fs::read_to_string(file).unwrap());
        let mut heads = heads_after(&code, "crate::");
        if file.parent() == Some(src) {
            heads.extend(heads_after(&code, "super::"));
        }
        let refs = heads
            .into_iter()
            .map(|h| reexports.get(&h).cloned().unwrap_or(h));
        edges.entry(m).or_default().extend(refs);
    }
    let modules: BTreeSet<String> = edges.keys().cloned().collect();
    for (m, refs) in edges.iter_mut() {
        refs.retain(|r| r != m && modules.contains(r));
    }
    edges
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

fn assert_acyclic(src: &Path, min_modules: usize) {
    let edges = import_graph(src);
    assert!(
        edges.len() >= min_modules,
        "{}: found only {} modules",
        src.display(),
        edges.len()
    );
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
    assert!(
        found.is_empty(),
        "import cycles in {}:\n{report}",
        src.display()
    );
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn harness_modules_import_each_other_without_a_cycle() {
    assert_acyclic(&root().join("src"), 20);
}

#[test]
fn records_modules_import_each_other_without_a_cycle() {
    assert_acyclic(&root().join("records/src"), 15);
}

#[test]
fn the_records_crate_depends_on_nothing_of_ours_and_does_no_io() {
    let records = root().join("records");
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(records.join("Cargo.toml")).unwrap()).unwrap();
    let mut deps: Vec<String> = Vec::new();
    let mut collect = |t: &toml::Table| {
        for key in ["dependencies", "build-dependencies"] {
            if let Some(d) = t.get(key).and_then(|d| d.as_table()) {
                deps.extend(d.keys().cloned());
            }
        }
    };
    collect(&manifest);
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        for t in targets.values().filter_map(|t| t.as_table()) {
            collect(t);
        }
    }
    assert!(deps.contains(&"serde".to_string()), "{deps:?}");
    assert!(
        deps.iter().all(|d| !d.starts_with("effbench")),
        "effbench-records depends on: {deps:?}"
    );

    let mut files = Vec::new();
    rust_files(&records.join("src"), &mut files);
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
        // `std::{fs, io}` groups too.
        let mut paths: Vec<String> = heads_after(&code, "std::")
            .into_iter()
            .map(|h| format!("std::{h}"))
            .collect();
        paths.push(code);
        for needle in io {
            if paths.iter().any(|p| p.contains(needle)) {
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
fn the_checks_see_cycles_groups_reexports_and_skip_tests_and_strings() {
    let refs = heads_after(
        "use crate::{a::{b, c}, d, e::f};\nlet x = crate::g::h(); let y = my_crate::z;",
        "crate::",
    );
    assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["a", "d", "e", "g"]);
    let stripped = code(
        "let a = \"crate::s // x\"; // crate::c\n/* crate::b */ let r = r#\"crate::r\"#;\n\
         #[cfg(test)]\nmod tests { use crate::t; }\nuse crate::after;\n#[cfg(test)]\nmod more;\n",
    );
    assert_eq!(
        heads_after(&stripped, "crate::")
            .into_iter()
            .collect::<Vec<_>>(),
        ["after"]
    );
    let re = root_reexports("pub use backend::{Backend, Registry};\npub use records as r;\n");
    assert_eq!(re.get("Registry").map(String::as_str), Some("backend"));
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
