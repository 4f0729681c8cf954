use super::*;
use crate::records::spec_id;
use crate::records::{MeasureConfig, Scenario};
use std::collections::BTreeMap;

fn spec(params: &[(&str, AxisValue)], measure: MeasureConfig) -> RunSpec {
    let params = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect::<BTreeMap<_, _>>();
    let mut s = RunSpec {
        measure,
        ..RunSpec::new("t", Scenario::Inference, "candle", params, 42)
    };
    s.id = spec_id(&s);
    s
}

fn fixed(iters: u64) -> MeasureConfig {
    MeasureConfig {
        warmup_iters: 0,
        warmup_s: 0.0,
        min_iters: iters,
        min_duration_s: 0.0,
        max_iters: iters,
        max_duration_s: 1e9,
        target_rel_ci: 0.0,
        inject_delay_ms: 0.0,
        inject_slowdown_pct: 0.0,
    }
}

#[test]
fn parses_shards_and_rejects_bad_ones() {
    assert_eq!(
        ShardSel::parse("2/3").unwrap(),
        ShardSel { index: 2, count: 3 }
    );
    assert_eq!(ShardSel::parse(" 0/1 ").unwrap().to_string(), "0/1");
    let err = |s: &str| ShardSel::parse(s).unwrap_err().to_string();
    assert!(err("3/3").contains("index must be below the shard count (0..=2)"));
    assert!(err("0/0").contains("at least 1"));
    assert!(err("a/2").contains("index 'a' is not a whole number"));
    assert!(err("1/x").contains("shard count 'x'"));
    assert!(err("-1/2").contains("not a whole number"));
    assert!(err("1").contains("I/N"));
    assert!(err("").contains("I/N"));
}

#[test]
fn cost_is_hand_computable() {
    // batch 2, prompt 100, gen 10, f32, 10 fixed iterations, no warm-up:
    // t = 0.25e-3*2*100 + 10*(2e-3 + 0.5e-3*2) = 0.05 + 0.03 = 0.08 s; run = 0.5 + 10*0.08 = 1.3 s
    let s = spec(
        &[
            ("batch", 2i64.into()),
            ("prompt_len", 100i64.into()),
            ("gen_len", 10i64.into()),
            ("dtype", "f32".into()),
        ],
        fixed(10),
    );
    assert!((iteration_cost(&s) - 0.08).abs() < 1e-12);
    assert!((estimate_cost(&s) - 1.3).abs() < 1e-12);
    // bf16 costs 1.3x per iteration.
    let h = spec(
        &[
            ("batch", 2i64.into()),
            ("prompt_len", 100i64.into()),
            ("gen_len", 10i64.into()),
            ("dtype", "bf16".into()),
        ],
        fixed(10),
    );
    assert!((iteration_cost(&h) - 0.104).abs() < 1e-12);
}

#[test]
fn cost_follows_measure_settings() {
    let p = [("gen_len", 10i64.into())]; // t = 10 * (2e-3 + 0.5e-3) = 0.025 s
    let mut m = fixed(5);
    m.min_duration_s = 2.0; // 5 iters = 0.1 s < 2 s: duration wins
    m.max_iters = 1000;
    assert!((estimate_cost(&spec(&p, m.clone())) - 2.5).abs() < 1e-9);
    m.max_duration_s = 1.0; // capped by max_duration_s
    m.min_duration_s = 1.0;
    assert!((estimate_cost(&spec(&p, m.clone())) - 1.5).abs() < 1e-9);
    m.max_iters = 10; // capped by max_iters: 10 * 0.025
    m.min_iters = 10;
    assert!((estimate_cost(&spec(&p, m)) - 0.75).abs() < 1e-9);
}

#[test]
fn lpt_balances_and_is_deterministic() {
    // Costs 0.5 + n*0.02 s for gen_len 1..=9 (one fixed iteration each, t = 0.002 * gen).
    let specs: Vec<RunSpec> = (1..=9)
        .map(|g| spec(&[("gen_len", (g as i64 * 10).into())], fixed(1)))
        .collect();
    let a = assign(&specs, 3);
    assert_eq!(a, assign(&specs, 3), "same input, same plan");
    let varying = vec!["gen_len".to_string()];
    let p = plan(&specs, 3, &varying);
    let loads = shard_loads(&p, 3);
    let max = loads.iter().cloned().fold(0.0, f64::max);
    let min = loads.iter().cloned().fold(f64::INFINITY, f64::min);
    // Greedy list scheduling: the spread never exceeds one job (the last one placed on
    // the fullest shard, which went to the emptiest shard at the time).
    let largest = p.iter().map(|r| r.estimated_s).fold(0.0, f64::max);
    assert!(max - min <= largest + 1e-9, "{loads:?}");
    assert!(
        max - min < 0.2,
        "nine similar jobs over three shards are near even: {loads:?}"
    );
    // Largest job (gen 90) goes to shard 0, the next two to shards 1 and 2.
    assert_eq!(a[8], 0);
    assert_eq!(a[7], 1);
    assert_eq!(a[6], 2);
    // Every run in exactly one shard; selections partition the suite in suite order.
    let mut seen: Vec<String> = Vec::new();
    for i in 0..3 {
        let sel = select(&specs, ShardSel { index: i, count: 3 });
        let pos: Vec<usize> = sel
            .iter()
            .map(|s| specs.iter().position(|x| x.id == s.id).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "suite order kept");
        seen.extend(sel.into_iter().map(|s| s.id));
    }
    seen.sort();
    let mut all: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn ties_break_by_id_and_extra_shards_stay_empty() {
    let specs: Vec<RunSpec> = (0..3)
        .map(|i| spec(&[("seedling", (i as i64).into())], fixed(1)))
        .collect();
    // Equal costs: sorted by id, dealt to shards 0, 1, 2 in that order.
    let a = assign(&specs, 3);
    let mut by_id: Vec<usize> = (0..3).collect();
    by_id.sort_by(|&x, &y| specs[x].id.cmp(&specs[y].id));
    for (shard, &i) in by_id.iter().enumerate() {
        assert_eq!(a[i], shard);
    }
    let a5 = assign(&specs, 5);
    assert!(a5.iter().all(|&s| s < 3), "{a5:?}");
    assert!(select(&specs, ShardSel { index: 4, count: 5 }).is_empty());
    assert_eq!(assign(&specs, 1), vec![0, 0, 0]);
}
