//! Packaging: an installed binary finds the shipped suites from any directory (and those of
//! `$EFFBENCH_SUITES`), shell completions and the man page come from the CLI's own
//! definitions, and the Dockerfile is a multi-stage build that ships the suites (there is no
//! container daemon here, so it is checked as text, not built).

mod common;

use common::Work;
use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn shipped_suites_are_found_outside_the_checkout() {
    let w = Work::new(); // an empty directory: no suites/ here
    for name in ["quickstart", "quickstart.toml", "suites/quickstart.toml"] {
        let o = w
            .cmd(&["validate", name])
            .env_remove("EFFBENCH_SUITES")
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("quickstart.toml: ok, 13 run(s)"),
            "{}",
            stdout(&o)
        );
    }
    let o = w
        .cmd(&["list", "suites"])
        .env_remove("EFFBENCH_SUITES")
        .output()
        .unwrap();
    assert!(stdout(&o).contains("quickstart.toml") && stdout(&o).contains("train-tiny.toml"));
    // $EFFBENCH_SUITES comes first; a name found nowhere is the usual one-line error
    let mine = w.write(
        "elsewhere/mine.toml",
        "name = \"mine\"\nscenario = \"inference\"\nbackend = \"candle\"\nmodel = \"seeded\"\n",
    );
    let dir = mine.parent().unwrap();
    let o = w
        .cmd(&["validate", "mine"])
        .env("EFFBENCH_SUITES", dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("mine.toml: ok, 1 run(s)"),
        "{}",
        stdout(&o)
    );
    let o = w
        .cmd(&["list", "suites"])
        .env("EFFBENCH_SUITES", dir)
        .output()
        .unwrap();
    assert!(stdout(&o).contains("mine.toml"), "{}", stdout(&o));
    let o = w.run(&["validate", "no-such-suite"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("'no-such-suite'"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn completions_and_man_page_cover_every_command() {
    let w = Work::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = w.run(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let s = stdout(&o);
        for cmd in ["run", "show", "report", "gate", "completions"] {
            assert!(s.contains(cmd), "{shell} completions lack {cmd}");
        }
    }
    // bash: the script parses
    let o = w.run(&["completions", "bash"]);
    let script = w.write("effbench.bash", &stdout(&o));
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    assert_eq!(w.run(&["completions", "tcsh"]).status.code(), Some(2));

    let o = w.run(&["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = stdout(&o);
    assert!(
        page.contains(".TH effbench"),
        "{}",
        &page[..page.len().min(300)]
    );
    assert!(page.contains("completions") && page.contains("dynascore"));
    let o = w.run(&["man", "--out", "man1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["effbench.1", "effbench-run.1", "effbench-show.1"] {
        let p = w.path().join("man1").join(f);
        assert!(p.is_file(), "{} missing", p.display());
    }
}

#[test]
fn dockerfile_is_multi_stage_and_ships_the_suites() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    // the build stage uses the workspace's rust-version, with the locked dependencies
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let msrv = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap();
    assert!(froms[0].starts_with(&format!("FROM rust:{msrv}-")) && froms[0].ends_with(" AS build"));
    assert!(lines
        .iter()
        .any(|l| l.contains("cargo build --release --locked")));
    // the runtime stage: slim, the binary and the suites from the build stage, found by
    // $EFFBENCH_SUITES; `effbench` on PATH, as `effbench k8s --command` expects
    assert!(froms[1].contains("-slim"), "{}", froms[1]);
    let copies: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("COPY --from=build"))
        .collect();
    assert!(
        copies
            .iter()
            .any(|l| l.ends_with(" /usr/local/bin/effbench")),
        "{copies:?}"
    );
    let suites = copies
        .iter()
        .find(|l| l.contains("/src/suites "))
        .and_then(|l| l.split(' ').next_back())
        .unwrap();
    assert!(
        lines.contains(&format!("ENV EFFBENCH_SUITES={suites}").as_str()),
        "{suites}"
    );
    assert!(lines.contains(&"ENTRYPOINT [\"effbench\"]"));
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    assert!(
        ignore.lines().any(|l| l == "target"),
        "the build context must leave out target/"
    );
}
