use super::*;

/// `n` normal samples with mean `mean` and standard deviation `sd` (Box-Muller, seeded).
fn normal(n: usize, mean: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random();
            mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect()
}

/// Verdicts of 100 seeded trials: base ~ N(100, noise), new ~ N(100 (1 + shift), noise).
fn trials(shift: f64, noise_pct: f64, better: Better) -> Vec<Verdict> {
    (0..100u64)
        .map(|t| {
            let base = normal(50, 100.0, noise_pct, 1000 + 2 * t);
            let new = normal(50, 100.0 * (1.0 + shift), noise_pct, 1001 + 2 * t);
            let rule = Rule {
                seed: t,
                ..Rule::default()
            };
            compare_samples(&base, &new, better, &rule).unwrap().verdict
        })
        .collect()
}

fn count(v: &[Verdict], which: Verdict) -> usize {
    v.iter().filter(|x| **x == which).count()
}

#[test]
fn identical_distributions_are_unchanged() {
    let v = trials(0.0, 3.0, Better::Lower);
    assert!(count(&v, Verdict::Unchanged) >= 99, "{v:?}");
    assert_eq!(count(&v, Verdict::Regressed), 0);
}

#[test]
fn ten_percent_slower_with_three_percent_noise_is_a_regression() {
    let v = trials(0.10, 3.0, Better::Lower);
    assert!(count(&v, Verdict::Regressed) >= 95, "{v:?}");
    // The same shift of a higher-is-better metric is an improvement.
    let v = trials(0.10, 3.0, Better::Higher);
    assert!(count(&v, Verdict::Improved) >= 95, "{v:?}");
    let v = trials(-0.10, 3.0, Better::Higher);
    assert!(count(&v, Verdict::Regressed) >= 95, "{v:?}");
}

#[test]
fn one_percent_inside_the_band_is_never_a_regression() {
    for better in [Better::Lower, Better::Higher] {
        for shift in [0.01, -0.01] {
            let v = trials(shift, 3.0, better);
            assert_eq!(
                count(&v, Verdict::Regressed),
                0,
                "{better:?} {shift}: {v:?}"
            );
            assert_eq!(count(&v, Verdict::Improved), 0, "{better:?} {shift}: {v:?}");
        }
    }
}

#[test]
fn thresholds_widen_the_worse_side_only() {
    let base = normal(50, 100.0, 1.0, 1);
    let new = normal(50, 106.0, 1.0, 2);
    let rule = |pct: Option<f64>, abs: Option<f64>| Rule {
        max_regression_pct: pct,
        max_regression_abs: abs,
        ..Rule::default()
    };
    let c = compare_samples(&base, &new, Better::Lower, &rule(None, None)).unwrap();
    assert_eq!(c.verdict, Verdict::Regressed, "{}", c.reason);
    assert_eq!(c.band_pct, [-2.0, 2.0]);
    // 10 % allowed: a 6 % slowdown is tolerated (the CI lies inside [-2, 10]).
    let c = compare_samples(&base, &new, Better::Lower, &rule(Some(10.0), None)).unwrap();
    assert_eq!(c.verdict, Verdict::Unchanged, "{}", c.reason);
    assert_eq!(c.band_pct, [-2.0, 10.0]);
    // An absolute 10 units on a base of ~100 is the same 10 %.
    let c = compare_samples(&base, &new, Better::Lower, &rule(None, Some(10.0))).unwrap();
    assert_eq!(c.verdict, Verdict::Unchanged, "{}", c.reason);
    assert!((c.band_pct[1] - 10.0).abs() < 0.1, "{:?}", c.band_pct);
    // Higher-is-better: the worse side is the negative one.
    let c = compare_samples(&new, &base, Better::Higher, &rule(Some(10.0), None)).unwrap();
    assert_eq!(c.band_pct, [-10.0, 2.0]);
    assert_eq!(c.verdict, Verdict::Unchanged, "{}", c.reason);
}

#[test]
fn significant_but_inside_the_band_is_not_a_change() {
    // 1 % shift with 0.2 % noise: clearly significant, clearly smaller than the band.
    let c = compare_samples(
        &normal(50, 100.0, 0.2, 3),
        &normal(50, 101.0, 0.2, 4),
        Better::Lower,
        &Rule::default(),
    )
    .unwrap();
    assert!(c.significant);
    assert_eq!(c.verdict, Verdict::Unchanged, "{}", c.reason);
}

#[test]
fn too_few_or_noisy_samples_are_inconclusive() {
    let c = compare_samples(&[10.0], &[20.0], Better::Lower, &Rule::default()).unwrap();
    assert_eq!(c.verdict, Verdict::Inconclusive);
    assert!(c.reason.contains("too few samples"), "{}", c.reason);
    // 20 % shift in 40 % noise with 5 samples: outside the band, not significant.
    let c = compare_samples(
        &normal(5, 100.0, 40.0, 5),
        &normal(5, 120.0, 40.0, 6),
        Better::Lower,
        &Rule::default(),
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Inconclusive, "{}", c.reason);
    assert!(c.reason.contains("measure longer"), "{}", c.reason);
}

#[test]
fn hand_checked_numbers_and_determinism() {
    let base = [10.0, 10.2, 9.8, 10.1, 9.9];
    let new = [11.0, 11.2, 10.8, 11.1, 10.9];
    let c = compare_samples(&base, &new, Better::Lower, &Rule::default()).unwrap();
    // Means 10 and 11: +1 unit, +10 %.
    assert!((c.abs_change - 1.0).abs() < 1e-12);
    assert!((c.change_pct - 10.0).abs() < 1e-12);
    assert!(c.change_ci_pct[0] < 10.0 && c.change_ci_pct[1] > 10.0);
    assert_eq!(c.confidence, 0.99);
    // Every new sample exceeds every base sample: exact Mann-Whitney p = 2 / C(10,5) = 2/252.
    assert!((c.p_mann_whitney.unwrap() - 2.0 / 252.0).abs() < 1e-12);
    assert_eq!(c.verdict, Verdict::Regressed, "{}", c.reason);
    let again = compare_samples(&base, &new, Better::Lower, &Rule::default()).unwrap();
    assert_eq!(c, again, "seeded bootstrap: same input, same output");
}

#[test]
fn bad_input_is_an_error() {
    assert!(compare_samples(&[], &[1.0], Better::Lower, &Rule::default()).is_err());
    let e = compare_samples(&[1.0, f64::NAN], &[1.0], Better::Lower, &Rule::default());
    assert!(e.unwrap_err().contains("finite"));
    let rule = Rule {
        alpha: 1.5,
        ..Rule::default()
    };
    assert!(compare_samples(&[1.0, 2.0], &[1.0, 2.0], Better::Lower, &rule).is_err());
}
