use super::*;
use crate::preset;

fn smol() -> LlamaConfig {
    preset::find("smollm2-135m").unwrap().config().unwrap()
}

#[test]
fn inference_estimate_by_hand() {
    let c = smol();
    let plan = Plan {
        config: &c,
        weights: Weights::Dense { bytes_per_param: 4 },
        act_bytes: 4,
        work: Work::Inference {
            batch: 1,
            prompt: 32,
            gen: 32,
        },
        load_transient: 0,
    };
    let e = estimate(&plan);
    assert_eq!(e.weights, 134_515_008 * 4);
    // 2 (k and v) x 30 layers x 1 sequence x 3 kv heads x 64 dims x 64 positions x 4 bytes.
    assert_eq!(e.kv_cache, 2 * 30 * 3 * 64 * 64 * 4);
    // Rotary tables: 8192 positions x 64 x (4 + 4) bytes.
    assert_eq!(e.other, 8192 * 64 * 8);
    // Prefill of 32 tokens: 32 x (6 x 576 + 2 x (9 + 6) x 64 + 3 x 1536) x 4 bytes, scores
    // 9 heads x 32 x 32 x (2 x 4 + 8) bytes, logits 49152 x (4 + 4) bytes.
    let want = 32 * (6 * 576 + 2 * 15 * 64 + 3 * 1536) * 4 + 9 * 32 * 32 * 16 + 49152 * 8;
    assert_eq!(e.activations, want);
    assert_eq!(e.total(), e.weights + e.kv_cache + e.activations + e.other);
    assert_eq!(params(&c), 134_515_008);
}

#[test]
fn hostile_sizes_are_refused_with_the_numbers_not_overflowed() {
    let c = smol();
    let plan = Plan {
        config: &c,
        weights: Weights::Dense { bytes_per_param: 2 },
        act_bytes: 2,
        work: Work::Inference {
            batch: 1_000_000_000,
            prompt: 32,
            gen: 32,
        },
        load_transient: 0,
    };
    let e = estimate(&plan);
    assert!(e.kv_cache > 1 << 50, "{e:?}");
    let avail = Available {
        bytes: 20 << 30,
        source: "test".into(),
    };
    let err = refuse_if_short("model x, batch 1000000000", &e, &avail, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch 1000000000") && err.contains("KV cache") && err.contains("20.0 GiB"),
        "{err}"
    );
    // A config claiming a 10^12-token context: the rotary tables alone are refused.
    let mut huge = c.clone();
    huge.max_position_embeddings = 1_000_000_000_000;
    let plan = Plan {
        config: &huge,
        work: Work::Inference {
            batch: 1,
            prompt: 8,
            gen: 8,
        },
        ..plan
    };
    let e = estimate(&plan);
    assert!(refuse_if_short("huge", &e, &avail, Device::Cpu).is_err());
    // Saturating, never wrapping.
    let plan = Plan {
        work: Work::Inference {
            batch: u64::MAX,
            prompt: u64::MAX,
            gen: 1,
        },
        ..plan
    };
    assert_eq!(estimate(&plan).total(), u64::MAX);
    // A run that fits passes.
    let ok = Plan {
        config: &c,
        work: Work::Inference {
            batch: 1,
            prompt: 8,
            gen: 8,
        },
        ..plan
    };
    refuse_if_short("fits", &estimate(&ok), &avail, Device::Cpu).unwrap();
}

#[test]
fn training_counts_master_weights_gradients_and_adam() {
    let c = smol();
    let plan = Plan {
        config: &c,
        weights: Weights::Dense { bytes_per_param: 2 },
        act_bytes: 2,
        work: Work::Training { batch: 1, seq: 16 },
        load_transient: 0,
    };
    let e = estimate(&plan);
    assert_eq!(e.weights, 134_515_008 * (16 + 2));
    assert_eq!(e.kv_cache, 0);
    assert!(e.activations > 30 * 16 * 576 * 2);
}

#[test]
fn free_memory_is_read_on_this_machine() {
    let a = available(Device::Cpu).expect("/proc/meminfo");
    assert!(a.bytes > 0 && a.source.contains("MemAvailable"));
}
