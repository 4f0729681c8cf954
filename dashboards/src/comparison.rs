//! Renders a [`Comparison`] (compare / gate): an aligned terminal table and GitHub-flavoured
//! markdown for a PR comment (changed metrics first, every comparison in a `<details>` block).
//! JSON is the serde form of the comparison itself.

use crate::export::markdown_escape as esc;
use crate::format;
use crate::terminal::Table;
use effbench_harness::analysis::verdict::{Unit, Verdict};
use effbench_harness::comparison::{Comparison, MetricComparison, RunComparison};

/// `5.33 ± 0.25`: mean and the larger distance to its 95 % CI bounds.
fn mean_ci(mean: f64, ci: [f64; 2], unit: &str) -> String {
    let half = (mean - ci[0]).max(ci[1] - mean).max(0.0);
    format!(
        "{} ± {}",
        format::value(mean, unit),
        format::value(half, unit)
    )
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.1} %")
    } else {
        "-".into()
    }
}

fn p_text(p: Option<f64>) -> String {
    match p {
        None => "-".into(),
        Some(p) if p < 1e-4 => "<1e-4".into(),
        Some(p) if p < 0.01 => format!("{p:.1e}"),
        Some(p) => format!("{p:.2}"),
    }
}

/// The cells of one comparison row (without the verdict).
fn cells(run: &RunComparison, m: &MetricComparison) -> Vec<String> {
    let r = &m.result;
    vec![
        run.label.clone(),
        format!("{} ({})", m.metric, m.unit),
        mean_ci(r.base.mean, r.base.ci95, &m.unit),
        mean_ci(r.new.mean, r.new.ci95, &m.unit),
        pct(r.change_pct),
        // The level per row: iteration rows carry the two-sided 1 - alpha interval, invocation
        // rows the 1 - 2 alpha one whose edges are the one-sided bounds (docs/gates.md).
        format!(
            "{:.0}% [{}, {}]",
            r.confidence * 100.0,
            pct(r.change_ci_pct[0]),
            pct(r.change_ci_pct[1])
        ),
        match r.unit {
            Unit::Invocation if r.p_value.is_some() => {
                format!("{} (1-sided)", p_text(r.p_value))
            }
            _ => p_text(r.p_value),
        },
        format!(
            "{}+{} {}",
            r.base.n,
            r.new.n,
            match r.unit {
                Unit::Invocation => "inv",
                Unit::Iteration => "it",
            }
        ),
        match r.mde_pct {
            Some(v) if v.is_finite() => format!("{v:.1} %"),
            _ => "unknown".into(),
        },
    ]
}

fn headers(c: &Comparison) -> Vec<String> {
    vec![
        "run".into(),
        "metric".into(),
        format!("{} (mean ± 95% CI)", c.base.name),
        format!("{} (mean ± 95% CI)", c.new.name),
        "change".into(),
        "CI of change".into(),
        "p".into(),
        "n".into(),
        "MDE".into(),
        "verdict".into(),
    ]
}

fn rows(c: &Comparison) -> impl Iterator<Item = (&RunComparison, &MetricComparison)> {
    c.runs
        .iter()
        .flat_map(|r| r.metrics.iter().map(move |m| (r, m)))
}

fn commits(s: &effbench_harness::comparison::SideInfo) -> String {
    s.git_commits.join(", ")
}

fn settings_line(c: &Comparison) -> String {
    format!(
        "α = {}, noise band ±{} %; n: invocations (inv: the unit of replication, t-test on their \
         values) or, with one invocation a side, iterations (it: {}, band ±{} %); MDE: smallest \
         regression caught with 80 % power",
        c.settings.alpha,
        c.settings.noise_band_pct,
        c.settings.test.describe(),
        c.settings
            .unreplicated_band_pct
            .max(c.settings.noise_band_pct)
    )
}

/// Counts as `2 regressed, 1 improved, 40 unchanged, 3 inconclusive`.
pub fn summary_line(c: &Comparison) -> String {
    let s = &c.summary;
    format!(
        "{} regressed, {} improved, {} unchanged, {} inconclusive ({} metrics in {} runs)",
        s.regressed, s.improved, s.unchanged, s.inconclusive, s.metrics_compared, s.runs_compared
    )
}

/// Aligned text for the terminal.
pub fn table(c: &Comparison) -> String {
    let mut out = format!(
        "{}: {} (commit {}, {} results)\n{}: {} (commit {}, {} results)\n{}\n\n",
        c.base.name,
        c.base.path,
        commits(&c.base),
        c.base.results,
        c.new.name,
        c.new.path,
        commits(&c.new),
        c.new.results,
        settings_line(c)
    );
    let mut t = Table {
        headers: headers(c),
        rows: Vec::new(),
    };
    for (run, m) in rows(c) {
        let mut row: Vec<(String, bool)> = cells(run, m)
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, i >= 2))
            .collect();
        row.push((m.result.verdict.to_string(), false));
        t.rows.push(row);
    }
    out.push_str(&t.render());
    out.push_str(&format!("\nsummary: {}\n", summary_line(c)));
    for (run, m) in rows(c).filter(|(_, m)| m.result.verdict != Verdict::Unchanged) {
        out.push_str(&format!(
            "  {} {}: {}: {}\n",
            run.label, m.metric, m.result.verdict, m.result.reason
        ));
    }
    out.push_str(&lists(c, false));
    out
}

fn md_table(c: &Comparison, only_changed: bool) -> String {
    let h = headers(c);
    let mut out = format!("| {} |\n", h.join(" | "));
    out.push_str("|:--|:--|--:|--:|--:|:--|--:|--:|--:|:--|\n");
    for (run, m) in rows(c) {
        if only_changed && m.result.verdict == Verdict::Unchanged {
            continue;
        }
        let verdict = match m.result.verdict {
            Verdict::Regressed if m.gated => "**regressed**".to_string(),
            Verdict::Regressed => "regressed (not gated)".to_string(),
            v => v.to_string(),
        };
        let mut cs: Vec<String> = cells(run, m).iter().map(|s| esc(s)).collect();
        cs[0] = crate::export::markdown_code(&run.label);
        cs.push(verdict);
        out.push_str(&format!("| {} |\n", cs.join(" | ")));
    }
    out
}

fn lists(c: &Comparison, md: bool) -> String {
    let mut out = String::new();
    let item = |s: &str| {
        if md {
            format!("- {}\n", esc(s))
        } else {
            format!("  {s}\n")
        }
    };
    let mut section = |title: &str, items: Vec<String>| {
        if items.is_empty() {
            return;
        }
        out.push_str(&if md {
            format!("\n**{title}**\n\n")
        } else {
            format!("{title}:\n")
        });
        for i in items {
            out.push_str(&item(&i));
        }
    };
    if let Some(g) = &c.gate {
        section("Gate failures", g.failures.clone());
    }
    let refs = |v: &[effbench_harness::comparison::RunRef]| -> Vec<String> {
        v.iter()
            .map(|r| {
                let mut s = format!("{} ({})", r.label, r.id);
                if !r.side.is_empty() {
                    s.push_str(&format!(" in {}", r.side));
                }
                if let Some(why) = &r.reason {
                    s.push_str(&format!(": {why}"));
                }
                s
            })
            .collect()
    };
    section(
        &format!("Missing from {} (in {} only)", c.new.name, c.base.name),
        refs(&c.missing),
    );
    section(
        &format!("Extra in {} (not in {})", c.new.name, c.base.name),
        refs(&c.extra),
    );
    section("Not ok on one side", refs(&c.not_ok));
    section("Notes", c.notes.clone());
    out
}

/// Markdown for a PR comment. `title` names the tool line (e.g. `effbench gate`).
pub fn markdown(c: &Comparison, title: &str) -> String {
    let headline = match &c.gate {
        Some(g) if g.passed => format!("✅ {title}: passed"),
        Some(g) => format!(
            "❌ {title}: failed ({} reason{})",
            g.failures.len(),
            if g.failures.len() == 1 { "" } else { "s" }
        ),
        None => title.to_string(),
    };
    let mut out = format!("### {headline}\n\n");
    out.push_str(&format!(
        "**{}** `{}` (commit `{}`) → **{}** `{}` (commit `{}`) · {}\n\n",
        c.base.name,
        esc(&c.base.path),
        commits(&c.base),
        c.new.name,
        esc(&c.new.path),
        commits(&c.new),
        settings_line(c)
    ));
    out.push_str(&format!("{}\n\n", summary_line(c)));
    let changed = rows(c).any(|(_, m)| m.result.verdict != Verdict::Unchanged);
    if changed {
        out.push_str(&md_table(c, true));
    } else if c.summary.metrics_compared > 0 {
        out.push_str("No metric changed beyond its noise band.\n");
    }
    if c.summary.metrics_compared > 0 {
        out.push_str(&format!(
            "\n<details><summary>All {} comparisons</summary>\n\n{}\n</details>\n",
            c.summary.metrics_compared,
            md_table(c, false)
        ));
    }
    out.push_str(&lists(c, true));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use effbench_harness::comparison::{compare, Input};
    use effbench_harness::fixtures::{result, ripple};
    use effbench_harness::gate::GateConfig;
    use effbench_harness::MetricId;
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

    fn comparison(slow: f64) -> Comparison {
        let mk = |ttft: f64, label_batch: i64| {
            result(
                "s",
                label_batch,
                "abc",
                &[
                    (MetricId::Ttft, ripple(30, ttft, 3.0)),
                    (MetricId::OutputThroughput, ripple(30, 100.0 / ttft, 3.0)),
                ],
            )
        };
        let base = vec![mk(10.0, 1), mk(10.0, 2)];
        let new = vec![mk(10.0 * slow, 1), mk(10.0, 2)];
        let cfg = GateConfig::default();
        let input = |name, rs| Input {
            name,
            path: "results/x|y",
            results: rs,
        };
        let mut c = compare(&input("baseline", &base), &input("current", &new), &cfg).unwrap();
        c.gate = Some(c.gate_outcome(&cfg));
        c
    }

    /// Parses markdown as GitHub does (tables on) and returns the tables' rows as cell texts.
    fn tables(md: &str) -> Vec<Vec<Vec<String>>> {
        let mut out = Vec::new();
        let (mut table, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
        for ev in Parser::new_ext(md, Options::ENABLE_TABLES) {
            match ev {
                Event::Start(Tag::Table(_)) => table = Vec::new(),
                Event::End(TagEnd::Table) => out.push(std::mem::take(&mut table)),
                Event::End(TagEnd::TableHead) | Event::End(TagEnd::TableRow) => {
                    table.push(std::mem::take(&mut row))
                }
                Event::End(TagEnd::TableCell) => row.push(std::mem::take(&mut cell)),
                Event::Text(t) | Event::Code(t) => cell.push_str(&t),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn markdown_renders_tables_for_a_failed_gate() {
        let c = comparison(1.25);
        let md = markdown(&c, "effbench gate");
        assert!(
            md.starts_with("### ❌ effbench gate: failed (2 reasons)"),
            "{md}"
        );
        let t = tables(&md);
        assert_eq!(
            t.len(),
            2,
            "changed rows + the full table in <details>:\n{md}"
        );
        for table in &t {
            assert!(table.iter().all(|r| r.len() == 10), "{table:?}");
        }
        assert_eq!(t[0].len(), 3, "header + the two regressed metrics");
        assert_eq!(t[1].len(), 5, "header + all four comparisons");
        assert_eq!(t[0][1][0], "batch=1");
        assert_eq!(t[0][1][9], "regressed");
        assert_eq!(t[0][1][7], "30+30 it", "one invocation a side: iterations");
        assert_eq!(t[0][1][8], "unknown");
        assert!(t[0][1][4].starts_with("+25.0 %"), "{:?}", t[0][1]);
        assert!(md.contains("**Gate failures**"));
        assert!(md.contains("`results/x\\|y`"), "pipes escaped");
    }

    #[test]
    fn markdown_and_table_for_a_passing_gate() {
        let c = comparison(1.0);
        let md = markdown(&c, "effbench gate");
        assert!(md.starts_with("### ✅ effbench gate: passed"), "{md}");
        assert!(md.contains("No metric changed beyond its noise band."));
        assert_eq!(tables(&md).len(), 1);
        let t = table(&c);
        assert!(
            t.contains("summary: 0 regressed, 0 improved, 4 unchanged"),
            "{t}"
        );
        assert!(t.contains("CI of change"), "{t}");
        // Iteration rows print their two-sided 99 % interval with its level.
        assert!(t.contains("99% ["), "{t}");
    }
}
