//! End-to-end tests of the meters through the CLI: `effbench meters` explains the machine,
//! runs carry energy (measured or labelled estimate), carbon and cost with the settings
//! recorded, `show` prints them, and RAPL is read from an injected powercap tree.

mod common;
use common::*;
use std::path::Path;

/// A powercap tree with one package and one dram zone whose counters do not move.
fn fake_powercap(root: &Path) {
    for (dir, name) in [
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0/intel-rapl:0:0", "dram"),
    ] {
        let d = root.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(d.join("energy_uj"), "123456\n").unwrap();
        std::fs::write(d.join("max_energy_range_uj"), "262143328850\n").unwrap();
    }
}

fn result_json(w: &Work, dir: &str) -> serde_json::Value {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.path().join(dir).join("manifest.json")).unwrap(),
    )
    .unwrap();
    let file = manifest["runs"][0]["file"].as_str().unwrap();
    serde_json::from_str(&std::fs::read_to_string(w.path().join(dir).join(file)).unwrap()).unwrap()
}

fn metric<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {}", r["metrics"]))
}

#[test]
fn meters_command_explains_this_machine() {
    let w = Work::new();
    let o = w.run(&["meters", "--powercap-root", "no/powercap"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for line in [
        "memory",
        "gpu (nvml)",
        "cpu/dram (rapl)",
        "estimate-tdp",
        "carbon:",
        "cost:",
    ] {
        assert!(out.contains(line), "missing {line}:\n{out}");
    }
    assert!(out.contains("RAPL: no/powercap does not exist"), "{out}");
    assert!(
        out.contains("NVML: ") || out.contains("GPU(s)"),
        "NVML either works or says why: {out}"
    );
    fake_powercap(&w.path().join("pc"));
    let out = stdout(&w.run(&["meters", "--powercap-root", "pc"]));
    assert!(
        out.contains("cpu/dram (rapl)  works") && out.contains("package-0"),
        "{out}"
    );
    assert!(
        out.contains("energy here: measured by CPU/DRAM (RAPL)"),
        "{out}"
    );
    let o = w.run(&[
        "meters",
        "--probe-s",
        "0.2",
        "--powercap-root",
        "pc",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(metric(&j, "energy_cpu")["source"], "rapl");
    assert!(j["window_s"].as_f64().unwrap() >= 0.2);
}

#[test]
fn runs_carry_energy_carbon_and_cost_and_show_prints_them() {
    let w = Work::new();
    w.write(
        "s.toml",
        &tiny_suite("tiny", "prompt_len = 8\ngen_len = 4", QUICK),
    );
    let o = w.run(&[
        "run",
        "s.toml",
        "--out",
        "out",
        "--powercap-root",
        "no/powercap",
        "--price-per-hour",
        "3.6",
        "--grid-intensity",
        "100",
        "--grid-intensity-source",
        "test grid",
        "--idle-baseline-s",
        "0.2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = result_json(&w, "out");
    let e = metric(&r, "energy");
    assert_eq!(
        e["source"], "estimate-tdp",
        "no counter here: a labelled estimate"
    );
    let joules = e["value"].as_f64().unwrap();
    let carbon = metric(&r, "carbon")["value"].as_f64().unwrap();
    assert!((carbon - joules / 3.6e6 * 100.0).abs() <= 1e-12 * carbon.max(1e-12));
    let cost = metric(&r, "cost_run")["value"].as_f64().unwrap();
    let measured_s = r["measured_s"].as_f64().unwrap();
    assert!((cost - 3.6 * measured_s / 3600.0).abs() < 1e-15);
    metric(&r, "cost_per_1m_output_tokens");
    metric(&r, "energy_per_output_token");
    metric(&r, "peak_rss");
    metric(&r, "energy_net");
    assert!(r["series"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "rss"));
    assert!(r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["kind"] == "estimated"));
    let m = &r["config"]["meters"];
    assert_eq!(m["grid_intensity"], 100.0);
    assert_eq!(
        m["sources"]["grid_intensity"],
        "--grid-intensity: test grid"
    );
    assert_eq!(
        m["sources"]["pue"].as_str().unwrap().split(':').next(),
        Some("default")
    );
    assert_eq!(m["price_per_hour"], 3.6);
    assert!(r["log"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().starts_with("idle baseline over")));

    // the summary fits 120 columns and names the keys of any column it left out
    let out = stdout(&w.run(&["show", "out"]));
    let hint = out
        .lines()
        .find(|l| l.starts_with("more columns:"))
        .unwrap_or("");
    assert!(
        out.contains("energy_per_output_token (J/token)")
            || hint.contains("energy_per_output_token"),
        "{out}"
    );
    let cols = "run,energy,source:energy,energy_per_output_token,carbon,cost_per_1m_output_tokens,peak_rss";
    let out = stdout(&w.run(&["show", "out", "--columns", cols]));
    for col in [
        "energy (J)",
        "energy source",
        "energy_per_output_token (J/token)",
        "carbon (gCO2e)",
        "cost_per_1m_output_tokens ($/1M tokens)",
        "peak_rss",
    ] {
        assert!(out.contains(col), "missing {col}:\n{out}");
    }
    assert!(
        !out.contains("(bytes)"),
        "cells show MiB, not bytes:\n{out}"
    );
    assert!(out.contains("~ estimate (estimate-tdp"), "{out}");
    let out = stdout(&w.run(&["show", "out", "--measured-only"]));
    assert!(!out.contains("~ estimate"), "{out}");
    let out = stdout(&w.run(&["show", "out", "--measured-only", "--columns", "run,energy"]));
    assert!(out.contains("measured energy (J)"), "{out}");
    assert!(!out.contains("~ estimate"), "{out}");
}

#[test]
fn rapl_from_an_injected_powercap_tree_is_measured_energy() {
    let w = Work::new();
    fake_powercap(&w.path().join("pc"));
    w.write(
        "s.toml",
        &format!(
            "{}[meters]\npowercap_root = \"pc\"\nperiod_ms = 20\n",
            tiny_suite("tiny", "prompt_len = 8\ngen_len = 2", QUICK)
        ),
    );
    let o = w.run(&["run", "s.toml", "--out", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = result_json(&w, "out");
    // the fake counters stand still: 0 J, measured, from RAPL
    let e = metric(&r, "energy");
    assert_eq!(
        (e["value"].as_f64(), e["source"].as_str()),
        (Some(0.0), Some("rapl"))
    );
    assert_eq!(metric(&r, "energy_dram")["source"], "rapl");
    assert_eq!(metric(&r, "energy_cpu")["sampling"]["period_ms"], 20.0);
    assert_eq!(r["config"]["meters"]["powercap_root"], "pc");
    // `warnings` is left out of the JSON when there are none
    assert!(!r["warnings"]
        .as_array()
        .is_some_and(|ws| ws.iter().any(|w| w["kind"] == "estimated")));
}

#[test]
fn bad_meter_settings_are_one_line_errors() {
    let w = Work::new();
    w.write("s.toml", &tiny_suite("tiny", "gen_len = 2", QUICK));
    let line = assert_clean_error(&w.run(&["run", "s.toml", "--pue", "0.5"]), 2);
    assert_eq!(
        line,
        "error: --pue 0.5 must be >= 1 (facility energy / IT energy)"
    );
    w.write(
        "m.toml",
        &format!(
            "{}[meters]\ngpus = \"most\"\n",
            tiny_suite("tiny", "gen_len = 2", QUICK)
        ),
    );
    let line = assert_clean_error(&w.run(&["run", "m.toml"]), 2);
    assert!(
        line.contains("m.toml:") && line.contains("\"auto\""),
        "{line}"
    );
    let line = assert_clean_error(&w.run(&["meters", "--json"]), 2);
    assert!(line.contains("--probe-cmd"), "{line}");
}

#[test]
fn a_probe_command_s_output_stays_out_of_the_json() {
    let w = Work::new();
    let o = w.run(&[
        "meters",
        "--probe-cmd",
        "echo probe-says-hello",
        "--json",
        "--gpus",
        "none",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(&o)));
    assert!(j["window_s"].as_f64().unwrap() > 0.0);
    assert!(stderr(&o).contains("probe-says-hello"));
}
