//! Hand-worked fits, and false alarms / power on synthetic runs that look like a shared
//! machine: each invocation has its own offset (frequency, cache, neighbours), the machine
//! drifts as a random walk from one invocation to the next, and the samples inside an
//! invocation are AR(1)-autocorrelated — not i.i.d. draws.
use super::*;
use crate::analysis::verdict::compare_samples;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn inv(values: &[f64], block: Option<usize>) -> Vec<Invocation> {
    values.iter().map(|v| Invocation::new(*v, block)).collect()
}

#[test]
fn pooled_fit_by_hand() {
    // Unblocked: the pooled two-sample t-test on ln values.
    let base = inv(&[100.0, 110.0], None);
    let new = inv(&[121.0], None);
    let f = fit(&base, &new).unwrap();
    let (a, b) = (100f64.ln(), 110f64.ln());
    let m = (a + b) / 2.0;
    assert!((f.delta - (121f64.ln() - m)).abs() < 1e-12);
    assert!((f.ss - ((a - m).powi(2) + (b - m).powi(2))).abs() < 1e-12);
    assert_eq!((f.df, f.paired_blocks), (1.0, 1));
    assert!((f.weight - 2.0 / 3.0).abs() < 1e-12);
    assert!(f.log);
}

#[test]
fn abba_blocks_remove_drift() {
    // Two ABBA blocks; the machine is 10 % slower in the second; B is 5 % slower than A
    // everywhere. Block effects absorb the drift exactly: δ = ln 1.05, no residual.
    let mut base = inv(&[100.0, 100.0], Some(0));
    base.extend(inv(&[110.0, 110.0], Some(1)));
    let mut new = inv(&[105.0, 105.0], Some(0));
    new.extend(inv(&[115.5, 115.5], Some(1)));
    let f = fit(&base, &new).unwrap();
    assert!((f.delta - 1.05f64.ln()).abs() < 1e-12, "{f:?}");
    assert!(f.ss < 1e-20);
    // 4 cells of 2 (1 df each) + 2 paired blocks - 1.
    assert_eq!(f.df, 5.0);
    assert_eq!(f.weight, 2.0);
    let c = compare_invocations(&base, &new, Better::Lower, &Rule::default(), None).unwrap();
    assert_eq!(c.verdict, Verdict::Regressed, "{}", c.reason);
    assert!((c.change_pct - 5.0).abs() < 1e-9);
    assert_eq!((c.base.n, c.new.n), (4, 4));
    assert!(c.method.contains("2 ABBA block(s)"), "{}", c.method);
    // Unblocked, the drift is noise and the same data is not a significant change.
    let strip = |v: &[Invocation]| -> Vec<Invocation> {
        v.iter().map(|i| Invocation::new(i.value, None)).collect()
    };
    let c = compare_invocations(
        &strip(&base),
        &strip(&new),
        Better::Lower,
        &Rule::default(),
        None,
    )
    .unwrap();
    assert!(!c.significant, "{}", c.reason);
}

#[test]
fn one_invocation_a_side_needs_a_calibrated_spread() {
    let (base, new) = (inv(&[100.0], None), inv(&[103.0], None));
    assert!(!replicated(&base, &new, None));
    let e = compare_invocations(&base, &new, Better::Lower, &Rule::default(), None);
    assert!(e.unwrap_err().contains("one invocation per side"));
    let prior = Spread {
        sd_pct: 1.0,
        df: 20.0,
    };
    assert!(replicated(&base, &new, Some(prior)));
    let c = compare_invocations(&base, &new, Better::Lower, &Rule::default(), Some(prior)).unwrap();
    // se = 1 % x sqrt(2); t = ln 1.03 / se = 2.09 < t_{0.99, 20} = 2.53: not significant.
    assert_eq!(c.df, Some(20.0));
    assert!(
        !c.significant && c.verdict == Verdict::Inconclusive,
        "{}",
        c.reason
    );
    assert!(c.method.contains("calibrated 1.00 %"), "{}", c.method);
    // The MDE (one-sided test at alpha = 0.01): band 2 % plus (2.528 + 0.860) x 1.414 % on
    // the ln scale.
    let k = (student_t_quantile(0.99, 20.0) + student_t_quantile(0.8, 20.0)) * 0.01 * 2f64.sqrt();
    let want = 100.0 * ((1.02f64).ln() + k).exp_m1();
    assert!((c.mde_pct.unwrap() - want).abs() < 1e-9, "{:?}", c.mde_pct);
}

#[test]
fn each_direction_is_a_one_sided_test_at_alpha() {
    // One invocation a side with a calibrated spread of 1 % (20 df): se = 0.01 x sqrt(2)
    // = 0.014142 on the ln scale. B is 6 % slower: delta = ln 1.06 = 0.058269.
    let prior = Spread {
        sd_pct: 1.0,
        df: 20.0,
    };
    let se = 0.01 * 2f64.sqrt();
    let delta = 1.06f64.ln();
    let c = compare_invocations(
        &inv(&[100.0], None),
        &inv(&[106.0], None),
        Better::Lower,
        &Rule::default(),
        Some(prior),
    )
    .unwrap();
    // The lower one-sided 99 % bound: delta - t_{0.99, 20} se = 0.058269 - 2.527977 x 0.014142
    // = 0.022518 > ln 1.02 = 0.019803, the band's worse edge: regressed. A two-sided 99 %
    // interval (t_{0.995, 20} = 2.845340) would reach 0.018030, into the band.
    let q = student_t_quantile(0.99, 20.0);
    assert!((q - 2.527977).abs() < 1e-6, "{q}");
    assert!(delta - q * se > 1.02f64.ln());
    assert!(delta - student_t_quantile(0.995, 20.0) * se < 1.02f64.ln());
    assert_eq!(c.verdict, Verdict::Regressed, "{}", c.reason);
    assert!((c.confidence - 0.98).abs() < 1e-12);
    let lo = 100.0 * (delta - q * se).exp_m1();
    let hi = 100.0 * (delta + q * se).exp_m1();
    assert!(
        (c.change_ci_pct[0] - lo).abs() < 1e-9,
        "{:?}",
        c.change_ci_pct
    );
    assert!(
        (c.change_ci_pct[1] - hi).abs() < 1e-9,
        "{:?}",
        c.change_ci_pct
    );
    assert!(c.reason.contains("98 % CI"), "{}", c.reason);
    // The p-value is one-sided: half the two-sided tail of t = delta / se = 4.12.
    let p = student_t_two_sided(delta / se, 20.0) / 2.0;
    assert!((c.p_value.unwrap() - p).abs() < 1e-15);
    // The mirror image is improved, by the same one-sided test on the better side.
    let c = compare_invocations(
        &inv(&[106.0], None),
        &inv(&[100.0], None),
        Better::Lower,
        &Rule::default(),
        Some(prior),
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Improved, "{}", c.reason);
    // alpha is per direction, so it must stay below one half.
    let half = Rule {
        alpha: 0.5,
        ..Rule::default()
    };
    let e = compare_invocations(
        &inv(&[1.0], None),
        &inv(&[1.0], None),
        Better::Lower,
        &half,
        Some(prior),
    );
    assert!(e.unwrap_err().contains("alpha = 0.5"));
}

#[test]
fn zero_spread_and_the_linear_scale() {
    // Identical values: unchanged; a constant shift with no noise: a certain change.
    let c = compare_invocations(
        &inv(&[5.0, 5.0], None),
        &inv(&[5.0, 5.0], None),
        Better::Lower,
        &Rule::default(),
        None,
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Unchanged);
    let c = compare_invocations(
        &inv(&[5.0, 5.0], None),
        &inv(&[10.0, 10.0], None),
        Better::Lower,
        &Rule::default(),
        None,
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Regressed, "{}", c.reason);
    assert!((c.change_pct - 100.0).abs() < 1e-9);
    // A zero among the values: the linear scale, change relative to the base mean.
    let c = compare_invocations(
        &inv(&[0.0, 2.0], None),
        &inv(&[3.0, 5.0], None),
        Better::Lower,
        &Rule::default(),
        None,
    )
    .unwrap();
    assert!((c.change_pct - 300.0).abs() < 1e-9, "{}", c.change_pct);
    assert!(c.method.contains("t-test on the values"), "{}", c.method);
    let c = compare_invocations(
        &inv(&[0.0, 0.0], None),
        &inv(&[1.0, 0.0], None),
        Better::Lower,
        &Rule::default(),
        None,
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Inconclusive, "{}", c.reason);
}

/// A shared machine: the level of invocation k is drift_k + offset_k (ln units), drift a
/// random walk over invocations; its `iters` samples are AR(1) (φ = 0.8) around that level.
struct Machine {
    rng: ChaCha8Rng,
    drift: f64,
    walk_sd: f64,
    offset_sd: f64,
    iter_sd: f64,
}

impl Machine {
    fn new(seed: u64) -> Machine {
        Machine {
            rng: ChaCha8Rng::seed_from_u64(seed),
            drift: 0.0,
            walk_sd: 0.01,
            offset_sd: 0.03,
            iter_sd: 0.03,
        }
    }

    fn normal(&mut self) -> f64 {
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// One invocation's samples of a latency-like metric around 10 ms, slowed by `slow`.
    fn invocation(&mut self, iters: usize, slow: f64) -> Vec<f64> {
        self.drift += self.walk_sd * self.normal();
        let level = self.drift + self.offset_sd * self.normal();
        let phi: f64 = 0.8;
        let mut e = self.iter_sd * self.normal();
        (0..iters)
            .map(|_| {
                e = phi * e + self.iter_sd * (1.0 - phi * phi).sqrt() * self.normal();
                10.0 * (1.0 + slow) * (level + e).exp()
            })
            .collect()
    }
}

/// One ABBA trial: the invocations of A and B, and the raw samples of the first block.
fn abba(seed: u64, blocks: usize, slow: f64) -> (Vec<Invocation>, Vec<Invocation>, [Vec<f64>; 2]) {
    let mut m = Machine::new(seed);
    let (mut a, mut b, mut raw) = (vec![], vec![], [vec![], vec![]]);
    for block in 0..blocks {
        for is_b in [false, true, true, false] {
            let s = m.invocation(40, if is_b { slow } else { 0.0 });
            let i = Invocation {
                value: crate::stats::mean(&s),
                block: Some(block),
                samples: s.len(),
            };
            if block == 0 {
                raw[is_b as usize].extend_from_slice(&s);
            }
            if is_b {
                b.push(i)
            } else {
                a.push(i)
            }
        }
    }
    (a, b, raw)
}

fn rule(seed: u64) -> Rule {
    Rule {
        seed,
        ..Rule::default()
    }
}

/// Trials regressed (and the median MDE the comparisons reported).
fn abba_trials(trials: u64, blocks: usize, slow: f64) -> (usize, f64) {
    let mut hits = 0;
    let mut mdes = Vec::new();
    for t in 0..trials {
        let (a, b, _) = abba(7000 + t, blocks, slow);
        let c = compare_invocations(&a, &b, Better::Lower, &rule(t), None).unwrap();
        hits += (c.verdict == Verdict::Regressed) as usize;
        mdes.push(c.mde_pct.unwrap());
    }
    mdes.sort_by(f64::total_cmp);
    (hits, mdes[mdes.len() / 2])
}

#[test]
fn abba_a_a_trials_on_drifting_autocorrelated_runs_stay_quiet() {
    let (hits, _) = abba_trials(200, 3, 0.0);
    assert!(hits <= 2, "invocation-level false alarms: {hits} of 200");
    // The old way on the same machine: one block's raw samples pooled as if independent
    // draws. It cries wolf, as the real runs did: the reason for all of this.
    let pooled = (0..200u64)
        .filter(|t| {
            let (_, _, [x, y]) = abba(7000 + t, 1, 0.0);
            compare_samples(&x, &y, Better::Lower, &rule(*t))
                .unwrap()
                .verdict
                == Verdict::Regressed
        })
        .count();
    eprintln!("POOLED {pooled} hits {hits}");
    assert!(
        pooled >= 30,
        "pooled iteration-level false alarms: {pooled} of 200"
    );
}

#[test]
fn abba_power_matches_the_reported_minimum_detectable_effect() {
    // The MDE is stated at 80 % power: a slowdown of that size is caught about that often,
    // a larger one nearly always.
    let (_, mde) = abba_trials(100, 3, 0.0);
    assert!(mde > 2.0 && mde < 30.0, "{mde}");
    let (at_mde, _) = abba_trials(200, 3, mde / 100.0);
    eprintln!("ATMDE {at_mde} mde {mde}");
    assert!(
        (130..=185).contains(&at_mde),
        "caught {at_mde} of 200 at the MDE {mde:.1} %"
    );
    let (bigger, _) = abba_trials(100, 3, 1.5 * mde / 100.0);
    eprintln!("BIGGER {bigger}");
    assert!(
        bigger >= 97,
        "caught {bigger} of 100 at 1.5 x the MDE {mde:.1} %"
    );
}

#[test]
fn history_prediction_test_on_a_drifting_series_stays_quiet() {
    // One run per commit on a drifting machine; each new run is judged against the previous
    // 10 runs (the history window), as `gate --history` does.
    let (mut alarms, mut trials) = (0, 0);
    let (mut mdes, mut series) = (Vec::new(), Vec::new());
    for k in 0..20u64 {
        let mut m = Machine::new(9000 + k);
        m.walk_sd = 0.004;
        let runs: Vec<f64> = (0..25)
            .map(|_| crate::stats::mean(&m.invocation(40, 0.0)))
            .collect();
        for k in 10..25 {
            let hist = inv(&runs[k - 10..k], None);
            let same =
                compare_invocations(&hist, &inv(&[runs[k]], None), Better::Lower, &rule(0), None)
                    .unwrap();
            alarms += (same.verdict == Verdict::Regressed) as usize;
            mdes.push(same.mde_pct.unwrap());
            trials += 1;
        }
        series.push(runs);
    }
    assert!(
        alarms * 100 <= trials * 2,
        "{alarms} false alarms in {trials}"
    );
    mdes.sort_by(f64::total_cmp);
    let mde = 1.5 * mdes[mdes.len() / 2] / 100.0;
    let caught: usize = series
        .iter()
        .flat_map(|runs| {
            (10..25).map(move |k| {
                let hist = inv(&runs[k - 10..k], None);
                let slow = inv(&[runs[k] * (1.0 + mde)], None);
                let c = compare_invocations(&hist, &slow, Better::Lower, &rule(0), None).unwrap();
                (c.verdict == Verdict::Regressed) as usize
            })
        })
        .sum();
    eprintln!("HIST alarms {alarms} caught {caught} of {trials} mde {mde}");
    assert!(
        caught * 100 >= trials * 95,
        "1.5 x MDE caught in {caught} of {trials}"
    );
}

#[test]
fn fast_decile_by_hand() {
    // 1..=11: the 10th percentile sits at position 1 (value 2), the 90th at 9 (value 10).
    let xs: Vec<f64> = (1..=11).map(f64::from).collect();
    assert_eq!(fast_decile(&xs, Better::Lower), Some(2.0));
    assert_eq!(fast_decile(&xs, Better::Higher), Some(10.0));
    // 0..10 (ten samples): positions 0.9 and 8.1, interpolated.
    let ys: Vec<f64> = (0..10).map(f64::from).collect();
    assert!((fast_decile(&ys, Better::Lower).unwrap() - 0.9).abs() < 1e-12);
    assert!((fast_decile(&ys, Better::Higher).unwrap() - 8.1).abs() < 1e-12);
    // Order does not matter; too few samples or a non-finite one: none.
    let mut rev = ys.clone();
    rev.reverse();
    assert_eq!(
        fast_decile(&rev, Better::Lower),
        fast_decile(&ys, Better::Lower)
    );
    assert_eq!(fast_decile(&ys[..9], Better::Lower), None);
    let mut bad = ys.clone();
    bad[3] = f64::NAN;
    assert_eq!(fast_decile(&bad, Better::Higher), None);
}

/// One invocation on a VM whose interference is one-sided: the invocation runs in a regime
/// where a random share (up to half) of its iterations is stalled by a random factor (up to
/// 1.6x); the code's own time (10 ms x (1 + slow), 1 % jitter) is the same in all.
fn vm_invocation(rng: &mut ChaCha8Rng, slow: f64) -> Vec<f64> {
    let mut normal = || {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let jitter: Vec<f64> = (0..100).map(|_| 0.01 * normal()).collect();
    let share = 0.5 * rng.random::<f64>();
    let stall = 1.0 + 0.6 * rng.random::<f64>();
    jitter
        .into_iter()
        .map(|j| {
            let t = 10.0 * (1.0 + slow) * (1.0 + j);
            if rng.random::<f64>() < share {
                t * stall
            } else {
                t
            }
        })
        .collect()
}

/// ABBA trials (3 blocks) on such a VM, each invocation summarised by its mean (headline) or
/// its fast decile; returns how many trials regressed for each.
fn vm_trials(trials: u64, slow: f64) -> (usize, usize) {
    let (mut mean_hits, mut fast_hits) = (0, 0);
    for t in 0..trials {
        let mut rng = ChaCha8Rng::seed_from_u64(9000 + t);
        let (mut a, mut b) = ((vec![], vec![]), (vec![], vec![]));
        for block in 0..3 {
            for is_b in [false, true, true, false] {
                let s = vm_invocation(&mut rng, if is_b { slow } else { 0.0 });
                let mean = Invocation::new(crate::stats::mean(&s), Some(block));
                let fast = Invocation::new(fast_decile(&s, Better::Lower).unwrap(), Some(block));
                let side = if is_b { &mut b } else { &mut a };
                side.0.push(mean);
                side.1.push(fast);
            }
        }
        let regressed = |x: &[Invocation], y: &[Invocation]| {
            compare_invocations(x, y, Better::Lower, &rule(t), None)
                .unwrap()
                .verdict
                == Verdict::Regressed
        };
        mean_hits += regressed(&a.0, &b.0) as usize;
        fast_hits += regressed(&a.1, &b.1) as usize;
    }
    (mean_hits, fast_hits)
}

#[test]
fn the_fast_decile_stays_quiet_and_sees_what_the_mean_misses_under_one_sided_noise() {
    let (mean_aa, fast_aa) = vm_trials(200, 0.0);
    assert!(
        fast_aa <= 2,
        "fast-decile A/A false alarms: {fast_aa} of 200"
    );
    assert!(mean_aa <= 2, "headline A/A false alarms: {mean_aa} of 200");
    let (mean_hits, fast_hits) = vm_trials(200, 0.10);
    assert!(
        fast_hits >= 190,
        "fast decile caught {fast_hits} of 200 10 % slowdowns"
    );
    assert!(
        mean_hits < fast_hits,
        "the mean caught {mean_hits}, the fast decile {fast_hits}"
    );
}
