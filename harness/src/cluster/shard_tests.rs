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
    let a = assign(&specs, &generic_costs(&specs), 3);
    assert_eq!(
        a,
        assign(&specs, &generic_costs(&specs), 3),
        "same input, same plan"
    );
    let varying = vec!["gen_len".to_string()];
    let p = plan(&specs, &generic_costs(&specs), 3, &varying);
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
        let sel = select(
            &specs,
            &generic_costs(&specs),
            ShardSel { index: i, count: 3 },
        );
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
    let a = assign(&specs, &generic_costs(&specs), 3);
    let mut by_id: Vec<usize> = (0..3).collect();
    by_id.sort_by(|&x, &y| specs[x].id.cmp(&specs[y].id));
    for (shard, &i) in by_id.iter().enumerate() {
        assert_eq!(a[i], shard);
    }
    let a5 = assign(&specs, &generic_costs(&specs), 5);
    assert!(a5.iter().all(|&s| s < 3), "{a5:?}");
    assert!(select(
        &specs,
        &generic_costs(&specs),
        ShardSel { index: 4, count: 5 }
    )
    .is_empty());
    assert_eq!(assign(&specs, &generic_costs(&specs), 1), vec![0, 0, 0]);
}

fn serving_spec(rate: Option<f64>, concurrency: Option<i64>, search_steps: Option<u32>) -> RunSpec {
    let mut params: BTreeMap<String, AxisValue> = [
        ("prompt_len".to_string(), 32i64.into()),
        ("gen_len".to_string(), 16i64.into()),
        ("batch".to_string(), 8i64.into()),
    ]
    .into_iter()
    .collect();
    if let Some(r) = rate {
        params.insert("request_rate".into(), r.into());
    }
    if let Some(c) = concurrency {
        params.insert("max_concurrency".into(), c.into());
    }
    let mut serving = crate::records::ServingConfig::new("http://127.0.0.1:8000/v1");
    serving.num_prompts = 100;
    serving.warmup_requests = 2;
    serving.search = search_steps.map(|n| crate::records::SearchConfig {
        low: 1.0,
        high: 8.0,
        max_steps: n,
        tolerance: 0.05,
    });
    RunSpec {
        serving: Some(serving),
        ..RunSpec::new("t", Scenario::Serving, "openai-http", params, 42)
    }
}

#[test]
fn serving_runs_are_costed_by_their_requests() {
    // One request (batch ignored): 0.25e-3 * 32 + 16 * (2e-3 + 0.5e-3) = 0.048 s.
    // 102 requests at 4 req/s: 25.5 s + the last request 0.048 + load 0.5 = 26.048 s.
    let at_rate = serving_spec(Some(4.0), None, None);
    assert!((estimate_cost(&at_rate) - 26.048).abs() < 1e-9);
    // Infinite rate, 10 at a time: ceil(102 / 10) = 11 waves of 0.048 s, + 0.5 = 1.028 s.
    let waves = serving_spec(None, Some(10), None);
    assert!((estimate_cost(&waves) - 1.028).abs() < 1e-9);
    // All at once: one wave.
    let burst = serving_spec(None, None, None);
    assert!((estimate_cost(&burst) - 0.548).abs() < 1e-9);
    // A server search runs up to 8 windows: 0.5 + 8 * 25.548 = 204.884 s.
    let search = serving_spec(Some(4.0), None, Some(8));
    assert!((estimate_cost(&search) - 204.884).abs() < 1e-9);
    // Not a serving run: the inference model.
    assert_eq!(serving_cost(&spec(&[], fixed(1))), None);
}

struct Priced(Option<f64>);
impl crate::backend::Backend for Priced {
    fn describe(&self) -> crate::backend::Capabilities {
        crate::backend::Capabilities {
            name: "priced",
            description: "test backend with its own cost estimate",
            scenarios: vec![Scenario::Inference],
            dtypes: vec!["f32"],
            devices: vec!["cpu"],
            formats: vec![],
            axes: vec![],
        }
    }
    fn load(&self, _: &RunSpec) -> anyhow::Result<Box<dyn crate::backend::Session>> {
        anyhow::bail!("not loadable")
    }
    fn estimated_run_s(&self, _: &RunSpec) -> Option<f64> {
        self.0
    }
}

#[test]
fn a_backend_s_own_estimate_is_used_where_it_gives_a_sane_one() {
    let generic = spec(&[("gen_len", 10i64.into())], fixed(1));
    let ours = |backend: &str| RunSpec {
        backend: backend.into(),
        ..generic.clone()
    };
    let mut registry = Registry::new();
    registry.register(Box::new(Priced(Some(42.0))));
    let specs = vec![ours("priced"), generic.clone(), ours("unknown")];
    let c = costs(&specs, &registry);
    assert_eq!(c[0], 42.0);
    assert_eq!(c[1], estimate_cost(&generic));
    assert_eq!(c[2], estimate_cost(&generic), "unknown backend: generic");
    // A backend's NaN or negative estimate is not trusted.
    let mut bad = Registry::new();
    bad.register(Box::new(Priced(Some(f64::NAN))));
    assert_eq!(costs(&[ours("priced")], &bad)[0], estimate_cost(&generic));
    // The plan records the costs it balanced.
    let p = plan(&specs, &c, 2, &[]);
    assert_eq!(p[0].estimated_s, 42.0);
    assert_eq!(p[0].shard, 0, "the largest run goes first, to shard 0");
}
