use super::*;
use crate::meters::{ESTIMATE_TDP, NVML_COUNTER, RAPL};

fn settings(price: Option<f64>) -> MeterSettings {
    MeterSettings {
        pue: 1.5,
        grid_intensity: 400.0,
        price_per_hour: price,
        ..Default::default()
    }
}

fn work(input: u64, output: u64, requests: u64) -> Work {
    Work {
        input_tokens: input,
        output_tokens: output,
        requests,
    }
}

fn get(r: &Reading, id: MetricId) -> Option<&Metric> {
    r.metrics.iter().find(|m| m.name == id)
}

fn v(r: &Reading, id: MetricId) -> f64 {
    get(r, id).unwrap_or_else(|| panic!("no {id}")).value
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

fn measured() -> Vec<Metric> {
    vec![
        Metric::scalar(MetricId::EnergyCpu, 120.0, RAPL),
        Metric::scalar(MetricId::EnergyDram, 30.0, RAPL),
        Metric::scalar(MetricId::EnergyGpu, 850.0, NVML_COUNTER),
    ]
}

#[test]
fn energy_per_work_carbon_and_cost_by_hand() {
    let s = settings(Some(3.6));
    let m = measured();
    let r = derive(&Inputs {
        metrics: &m,
        window_s: 10.0,
        work: work(64, 500, 10),
        scenario: Scenario::Inference,
        params: Some(1_000_000),
        settings: &s,
        idle: None,
    });
    // 120 + 30 + 850 = 1000 J over 10 s
    assert_eq!(v(&r, MetricId::Energy), 1000.0);
    assert_eq!(
        get(&r, MetricId::Energy).unwrap().source,
        "rapl + nvml-energy-counter"
    );
    assert_eq!(v(&r, MetricId::PowerAvg), 100.0);
    assert_eq!(v(&r, MetricId::EnergyPerOutputToken), 2.0);
    assert_eq!(v(&r, MetricId::EnergyPerRequest), 100.0);
    assert!(
        get(&r, MetricId::EnergyPerTrainingToken).is_none(),
        "inference"
    );
    // 1000 J = 1/3600 kWh; x 1.5 x 400 g/kWh = 0.1667 g
    assert!(close(v(&r, MetricId::Carbon), 1000.0 / 3.6e6 * 1.5 * 400.0));
    assert!(close(v(&r, MetricId::Carbon), 1.0 / 6.0));
    // $3.60/h for 10 s = $0.01; / 500 tokens x 1e6 = $20 per 1M tokens
    assert!(close(v(&r, MetricId::CostRun), 0.01));
    assert!(close(v(&r, MetricId::CostPer1mOutputTokens), 20.0));
    assert!(get(&r, MetricId::CostPerParam).is_none(), "training only");
    assert!(r.warnings.is_empty());
    assert!(get(&r, MetricId::EnergyNet).is_none(), "no idle baseline");
}

#[test]
fn training_uses_processed_tokens_and_dollars_per_parameter() {
    let s = settings(Some(7.2));
    let m = measured();
    let r = derive(&Inputs {
        metrics: &m,
        window_s: 100.0,
        work: work(4000, 0, 0),
        scenario: Scenario::Training,
        params: Some(2_000_000),
        settings: &s,
        idle: None,
    });
    assert_eq!(v(&r, MetricId::EnergyPerTrainingToken), 0.25);
    // $7.20/h x 100 s = $0.20; / 2M parameters = 1e-7 $/param
    assert!(close(v(&r, MetricId::CostRun), 0.2));
    assert!(close(v(&r, MetricId::CostPerParam), 1e-7));
    assert!(get(&r, MetricId::EnergyPerOutputToken).is_none());
}

#[test]
fn estimates_stay_labelled_and_out_of_measured_totals() {
    let s = settings(None);
    let only_est = vec![Metric::scalar(MetricId::EnergyCpu, 36.0, ESTIMATE_TDP)];
    let r = derive(&Inputs {
        metrics: &only_est,
        window_s: 2.0,
        work: work(0, 100, 1),
        scenario: Scenario::Inference,
        params: None,
        settings: &s,
        idle: None,
    });
    let e = get(&r, MetricId::Energy).unwrap();
    assert_eq!((e.value, e.source.as_str()), (36.0, ESTIMATE_TDP));
    for id in [
        MetricId::Carbon,
        MetricId::EnergyPerOutputToken,
        MetricId::PowerAvg,
    ] {
        assert!(
            get(&r, id).unwrap().is_estimate(),
            "{id} derived from an estimate"
        );
    }
    assert_eq!(r.warnings[0].kind, WarningKind::Estimated);
    assert!(get(&r, MetricId::CostRun).is_none(), "no price, no cost");

    let mut mixed = vec![Metric::scalar(MetricId::EnergyGpu, 500.0, NVML_COUNTER)];
    mixed.extend(only_est);
    let r = derive(&Inputs {
        metrics: &mixed,
        window_s: 2.0,
        work: work(0, 100, 1),
        scenario: Scenario::Inference,
        params: None,
        settings: &s,
        idle: None,
    });
    let e = get(&r, MetricId::Energy).unwrap();
    assert_eq!((e.value, e.source.as_str()), (500.0, NVML_COUNTER));
    assert!(r.warnings.is_empty());
    assert!(r.notes[0].contains("estimate-tdp estimate of energy_cpu is reported but not added"));
}

#[test]
fn idle_baseline_gives_net_energy() {
    let s = settings(None);
    let m = measured();
    let mut idle = IdleBaseline {
        seconds: 5.0,
        ..Default::default()
    };
    for (id, w) in [
        (MetricId::EnergyCpu, 20.0),
        (MetricId::EnergyDram, 5.0),
        (MetricId::EnergyGpu, 60.0),
    ] {
        idle.power_w.insert(id, (w, "x".into()));
    }
    fn inputs<'a>(m: &'a [Metric], s: &'a MeterSettings, idle: &'a IdleBaseline) -> Inputs<'a> {
        Inputs {
            metrics: m,
            window_s: 10.0,
            work: work(0, 0, 0),
            scenario: Scenario::Inference,
            params: None,
            settings: s,
            idle: Some(idle),
        }
    }
    let r = derive(&inputs(&m, &s, &idle));
    // 1000 J gross - 85 W x 10 s = 150 J net
    assert_eq!(v(&r, MetricId::IdlePower), 85.0);
    assert_eq!(v(&r, MetricId::EnergyNet), 150.0);
    assert!(get(&r, MetricId::IdlePower)
        .unwrap()
        .source
        .starts_with("idle baseline 5.0 s"));
    idle.power_w.remove(&MetricId::EnergyGpu);
    let r = derive(&inputs(&m, &s, &idle));
    assert!(get(&r, MetricId::EnergyNet).is_none());
    assert!(r.notes.iter().any(|n| n.contains("no energy_gpu figure")));
}

#[test]
fn carbon_and_cost_helpers() {
    // 3.6 MJ = 1 kWh at PUE 1.2 and 250 g/kWh
    assert!(close(carbon_g(3.6e6, 1.2, 250.0), 300.0));
    assert!(close(cost(1800.0, 2.5), 1.25));
}

#[test]
fn embedding_and_retrieval_figures_are_per_thousand_items() {
    let s = settings(Some(3.6));
    let m = measured();
    let inputs = |scenario| Inputs {
        metrics: &m,
        window_s: 10.0,
        // 400 embedded sequences (or answered queries) of 32 tokens
        work: work(12_800, 0, 400),
        scenario,
        params: None,
        settings: &s,
        idle: None,
    };
    let e = derive(&inputs(Scenario::Embedding));
    // 1000 J / 400 embeddings x 1000 = 2500 J per 1k
    assert!(close(v(&e, MetricId::EnergyPer1kEmbeddings), 2500.0));
    assert!(get(&e, MetricId::EnergyPerRequest).is_none());
    assert!(get(&e, MetricId::CostPer1kQueries).is_none());
    let r = derive(&inputs(Scenario::Retrieval));
    assert!(close(v(&r, MetricId::EnergyPer1kQueries), 2500.0));
    // $3.6/h x 10 s = $0.01; / 400 queries x 1000 = $0.025 per 1k
    assert!(close(v(&r, MetricId::CostPer1kQueries), 0.025));
    assert!(get(&r, MetricId::EnergyPer1kEmbeddings).is_none());
}
