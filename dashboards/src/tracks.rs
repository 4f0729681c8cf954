//! Budget tracks in reports and on the site: which tracks apply to which results (a suite's
//! own `[[tracks]]` rank that suite's runs; tracks from `report --tracks FILE` rank every
//! loaded run) and their rendering as text and markdown. The ranking itself is
//! `effbench_harness::analysis::tracks::rank`.

use crate::format;
use effbench_harness::analysis::tracks::{rank, tracks_of, TrackRanking};
use effbench_harness::records::TrackConfig;
use effbench_harness::RunResult;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A ranking and the suite it covers (`None`: every loaded run).
#[derive(Debug, Clone)]
pub struct Scoped {
    pub suite: Option<String>,
    pub ranking: TrackRanking,
}

/// Rankings of the suites' own tracks and of `extra` over all `results`.
pub fn rankings(results: &[RunResult], extra: &[TrackConfig]) -> Result<Vec<Scoped>, String> {
    let mut by_suite: BTreeMap<&str, Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        by_suite.entry(r.suite.name.as_str()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (suite, runs) in &by_suite {
        let owned: Vec<RunResult> = runs.iter().map(|r| (*r).clone()).collect();
        for t in tracks_of(&owned) {
            out.push(Scoped {
                suite: Some(suite.to_string()),
                ranking: rank(&t, runs, &|r: &RunResult| r.label())?,
            });
        }
    }
    if !extra.is_empty() {
        let all: Vec<&RunResult> = results.iter().collect();
        let label = |r: &RunResult| format!("{}: {}", r.suite.name, r.label());
        for t in extra {
            out.push(Scoped {
                suite: None,
                ranking: rank(t, &all, &label)?,
            });
        }
    }
    Ok(out)
}

fn title(s: &Scoped) -> String {
    let r = &s.ranking;
    let scope = s
        .suite
        .as_deref()
        .map_or("all results".to_string(), |n| format!("suite {n}"));
    let budgets = if r.budgets.is_empty() {
        "no budget".to_string()
    } else {
        r.budgets.join(", ")
    };
    format!(
        "track {} ({scope}): {} within {budgets}",
        r.name, r.objective
    )
}

/// Plain text, one block per track.
pub fn text(tracks: &[Scoped]) -> String {
    let mut out = String::new();
    for s in tracks {
        let r = &s.ranking;
        let _ = writeln!(out, "\n{}", title(s));
        if !r.description.is_empty() {
            let _ = writeln!(out, "  {}", r.description);
        }
        if r.ranked.is_empty() {
            let _ = writeln!(out, "  no run is within the budgets");
        }
        for x in &r.ranked {
            let _ = writeln!(
                out,
                "  {:>3}. {}  {} {}",
                x.rank,
                x.label,
                format::value(x.value, &r.unit),
                r.unit
            );
        }
        for o in &r.out {
            let _ = writeln!(out, "  out: {}  ({})", o.label, o.reasons.join("; "));
        }
    }
    out
}

/// Markdown, one section per track.
pub fn markdown(tracks: &[Scoped]) -> String {
    let mut out = String::new();
    for s in tracks {
        let r = &s.ranking;
        let _ = writeln!(out, "\n### {}\n", title(s).replace('|', "\\|"));
        if !r.description.is_empty() {
            let _ = writeln!(out, "{}\n", r.description);
        }
        let _ = writeln!(
            out,
            "| rank | run | {} ({}) |\n|---:|---|---:|",
            r.objective, r.unit
        );
        for x in &r.ranked {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                x.rank,
                x.label.replace('|', "\\|"),
                format::value(x.value, &r.unit)
            );
        }
        if !r.out.is_empty() {
            let _ = writeln!(out, "\nOut of budget:\n");
            for o in &r.out {
                let _ = writeln!(out, "- {}: {}", o.label, o.reasons.join("; "));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use effbench_harness::fixtures;
    use effbench_harness::MetricId;

    fn with_track(mut r: RunResult) -> RunResult {
        r.config.tracks = vec![TrackConfig {
            name: "small".into(),
            description: "under 100 MB".into(),
            budgets: vec!["model_bytes <= 100MB".into()],
            objective: "max ndcg_at_10".into(),
        }];
        r
    }

    #[test]
    fn suite_tracks_rank_their_suite_and_file_tracks_everything() {
        let a = with_track(fixtures::result(
            "s1",
            1,
            "c",
            &[
                (MetricId::ModelBytes, vec![90e6]),
                (MetricId::NdcgAt10, vec![0.5]),
            ],
        ));
        let b = with_track(fixtures::result(
            "s1",
            2,
            "c",
            &[
                (MetricId::ModelBytes, vec![200e6]),
                (MetricId::NdcgAt10, vec![0.7]),
            ],
        ));
        let c = fixtures::result(
            "s2",
            1,
            "c",
            &[
                (MetricId::ModelBytes, vec![10e6]),
                (MetricId::NdcgAt10, vec![0.6]),
            ],
        );
        let all = vec![a, b, c];
        let extra = TrackConfig {
            name: "any".into(),
            description: String::new(),
            budgets: vec![],
            objective: "ndcg_at_10".into(),
        };
        let t = rankings(&all, &[extra]).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].suite.as_deref(), Some("s1"));
        assert_eq!(
            t[0].ranking.ranked.len(),
            1,
            "s2's run is not in s1's track"
        );
        assert_eq!(
            t[0].ranking.out[0].reasons[0],
            "model_bytes 200000000 bytes, budget <= 100000000"
        );
        let labels: Vec<&str> = t[1]
            .ranking
            .ranked
            .iter()
            .map(|x| x.label.as_str())
            .collect();
        assert_eq!(labels, vec!["s1: batch=2", "s2: batch=1", "s1: batch=1"]);
        let txt = text(&t);
        assert!(
            txt.contains("track small (suite s1): max ndcg_at_10 within model_bytes <= 100000000"),
            "{txt}"
        );
        assert!(txt.contains("    1. batch=1  0.500 score"), "{txt}");
        assert!(
            txt.contains("  out: batch=2  (model_bytes 200000000 bytes"),
            "{txt}"
        );
        let md = markdown(&t);
        assert!(md.contains("| 1 | s1: batch=2 | 0.700 |"), "{md}");
        assert!(md.contains("Out of budget:"), "{md}");
    }
}
