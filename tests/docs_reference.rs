//! The docs agree with the code: the generated metric reference is current, every relative
//! link in README.md and docs/ (and every `docs/FILE.md#anchor` a source file, suite, script
//! or help text cites) points at a file and heading that exist, and nothing points at README
//! sections any more (the reference lives in docs/).

mod common;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn metric_reference_is_generated_from_the_metric_table() {
    use effbench_dashboards::metric_reference::{FILE, REGENERATE};
    let o = std::process::Command::new(common::bin())
        .args(["list", "metrics", "--format", "markdown"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let generated = String::from_utf8(o.stdout).unwrap();
    let path = root().join(FILE);
    if std::env::var_os("EFFBENCH_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = read(&path);
    assert!(
        committed == generated,
        "{FILE} is out of date with the metric table: run `{REGENERATE}` \
         (or EFFBENCH_UPDATE_DOCS=1 cargo test --test docs_reference)"
    );
    for m in effbench_harness::MetricId::ALL {
        let row = format!("| `{}` | ", m.name());
        assert!(
            committed.contains(&row),
            "{FILE} has no row for {}",
            m.name()
        );
    }
    // the text form lists the same metrics, one a line
    let o = std::process::Command::new(common::bin())
        .args(["list", "metrics"])
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), effbench_harness::MetricId::ALL.len());
    assert!(text.starts_with("ttft "), "{text}");
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    (heading.trim().to_lowercase().chars())
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// Whether `target` (`file.md`, `file.md#anchor`, `#anchor`), relative to `dir`, exists.
fn resolves(dir: &Path, from: &Path, target: &str) -> Result<(), String> {
    let (file, frag) = match target.split_once('#') {
        Some((f, a)) => (f, Some(a)),
        None => (target, None),
    };
    let path = if file.is_empty() {
        from.to_path_buf()
    } else {
        dir.join(file)
    };
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    if let (Some(a), true) = (frag, path.extension().is_some_and(|e| e == "md")) {
        if !anchors(&read(&path)).iter().any(|h| h == a) {
            return Err(format!("{} has no heading #{a}", path.display()));
        }
    }
    Ok(())
}

#[test]
fn links_in_readme_and_docs_resolve() {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut bad = Vec::new();
    for f in &files {
        let text = read(f);
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            // the developers' contract lives outside the repository
            if target.contains("shared/design.md") {
                continue;
            }
            if let Err(e) = resolves(f.parent().unwrap(), f, target) {
                bad.push(format!("{}: ({target}): {e}", f.display()));
            }
        }
    }
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | "results" | ".git" | "node_modules"
            ) {
                sources(&p, out);
            }
        } else if [
            ".rs",
            ".toml",
            ".sh",
            ".py",
            ".html",
            ".js",
            ".yml",
            "Dockerfile",
        ]
        .iter()
        .any(|ext| name.ends_with(ext))
        {
            out.push(p);
        }
    }
}

#[test]
fn code_points_at_docs_files_that_exist_not_at_readme_sections() {
    let mut files = Vec::new();
    for d in [
        "src",
        "harness",
        "backends",
        "dashboards",
        "suites",
        "scripts",
        "benches",
        ".github",
        ".ci",
    ] {
        sources(&root().join(d), &mut files);
    }
    files.push(root().join("Cargo.toml"));
    files.retain(|f| !f.ends_with("tests/docs_reference.rs"));
    let mut bad = Vec::new();
    for f in &files {
        let text = read(f);
        for needle in ["README#", "README.md#", "README \"", "README ("] {
            if text.contains(needle) {
                bad.push(format!(
                    "{}: points at a README section ({needle}...)",
                    f.display()
                ));
            }
        }
        // every docs/NAME.md[#anchor] it cites exists
        for (i, _) in text.match_indices("docs/") {
            let rest = &text[i + 5..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.#".contains(c)))
                .unwrap_or(rest.len());
            let target = rest[..end].trim_end_matches('.');
            if !target.contains(".md") {
                continue;
            }
            if let Err(e) = resolves(&root().join("docs"), &root().join("docs"), target) {
                bad.push(format!("{}: docs/{target}: {e}", f.display()));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
