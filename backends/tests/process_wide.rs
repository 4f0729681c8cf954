//! Checks that touch process-wide state (the interrupt flag, EFFBENCH_MODELS_DIR), kept in
//! one test so nothing else in this binary runs beside them.

mod common;

use common::{i, s, spec};
use effbench_backends::candle_infer::CandleBackend;
use effbench_harness::backend::IterationCtx;
use effbench_harness::{interrupt, Backend};

#[test]
fn default_model_from_env_dir_and_interrupts() {
    let tmp = tempfile::tempdir().unwrap();
    // Set before anything reads it; this binary has no other test.
    std::env::set_var(effbench_backends::default_model::MODELS_DIR_ENV, tmp.path());
    // `default` is the trained model: absent here, it is refused with a hint (validation
    // passes, the architecture is known without it).
    let sp = spec(&[("model", s("default")), ("gen_len", i(3))]);
    CandleBackend.validate(&sp).unwrap();
    let e = match CandleBackend.load(&sp) {
        Ok(_) => panic!("no trained default exists"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("train-tiny") && e.contains("seeded"), "{e}");
    // `seeded` is created on first use.
    let sp = spec(&[("model", s("seeded")), ("gen_len", i(3))]);
    CandleBackend.validate(&sp).unwrap();
    let mut session = CandleBackend.load(&sp).unwrap();
    assert_eq!(session.model_info().name, "seeded");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(tmp.path().join("seeded").join(f).is_file(), "{f}");
    }
    let ctx = IterationCtx {
        index: 0,
        warmup: false,
    };
    session.iteration(ctx).unwrap();

    interrupt::request();
    let e = session.iteration(ctx).unwrap_err();
    interrupt::reset();
    assert!(e.is::<interrupt::Interrupted>(), "{e:#}");
    session.iteration(ctx).unwrap();
}
