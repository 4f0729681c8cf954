//! Reference values: scipy 1.17.1 (`scipy.special`, `scipy.stats.t/norm`,
//! `ttest_ind(equal_var=False)`, `mannwhitneyu(alternative="two-sided")`) and hand-worked cases.
use super::*;

fn close(got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs().max(1e-300),
        "got {got}, want {want} (rel tol {rel})"
    );
}

#[test]
fn special_functions_match_scipy() {
    close(ln_gamma(0.5), 0.5723649429247001, 1e-13);
    close(ln_gamma(10.0), 12.801827480081469, 1e-13);
    close(ln_gamma(0.1), 2.252712651734206, 1e-13);
    close(ln_gamma(123.4), 469.3360974421906, 1e-13);
    close(beta_inc(2.5, 0.5, 0.3), 0.018927124071945658, 1e-11);
    close(beta_inc(50.0, 0.5, 0.9), 0.001204149832559813, 1e-10);
    close(normal_sf(1.959963984540054), 0.025, 1e-12);
    close(normal_sf(0.5), 0.3085375387259869, 1e-12);
    close(normal_sf(-1.0), 0.8413447460685429, 1e-12);
    close(normal_sf(5.0), 2.866515718791933e-07, 1e-10);
}

#[test]
fn student_t_tails_match_tables() {
    // t_{0.975, 10} = 2.228138851986522 (every t table): two-sided p = 0.05.
    close(student_t_two_sided(2.228138851986522, 10.0), 0.05, 1e-10);
    // df = 1 is the Cauchy distribution: P(|T| > 1) = 1/2 by hand.
    close(student_t_two_sided(1.0, 1.0), 0.5, 1e-12);
    close(student_t_two_sided(1.5, 3.7), 0.2135981692020135, 1e-10);
    close(student_t_two_sided(3.0, 200.0), 0.003043047113905905, 1e-9);
    assert_eq!(student_t_two_sided(0.0, 5.0), 1.0);
}

#[test]
fn student_t_quantiles_match_tables() {
    // Tables: t_{0.995, 8} = 3.355387, t_{0.8, 10} = 0.879058. By hand: df = 2 has
    // t = (2p - 1) / sqrt(2p(1 - p)), df = 1 (Cauchy) t = tan(pi (p - 1/2)).
    close(student_t_quantile(0.995, 8.0), 3.355387331, 1e-8);
    close(student_t_quantile(0.8, 10.0), 0.879057829, 1e-8);
    close(student_t_quantile(0.975, 2.0), 4.302652729749462, 1e-10);
    close(student_t_quantile(0.995, 1.0), 63.6567411628717, 1e-10);
    close(student_t_quantile(0.025, 2.0), -4.302652729749462, 1e-10);
    close(student_t_quantile(0.975, 1e9), 1.959963984540054, 1e-8);
    assert_eq!(student_t_quantile(0.5, 3.0), 0.0);
    assert!(student_t_quantile(1.0, 3.0).is_nan() && student_t_quantile(0.9, 0.0).is_nan());
}

#[test]
fn welch_matches_scipy() {
    let r = welch_t_test(&[1., 2., 3., 4., 5.], &[2., 4., 6., 8., 10., 12.]).unwrap();
    // Hand: means 3 and 7, variances 2.5 and 14; se² = 0.5 + 14/6 = 17/6;
    // t = 4 / sqrt(17/6) = 2.3763541; scipy reports x - y, we report y - x.
    close(r.statistic, 2.3763541031440183, 1e-12);
    close(r.df.unwrap(), 6.972255729794934, 1e-12);
    close(r.p_value, 0.04928433820673053, 1e-10);
    let x = [10.1, 9.8, 10.3, 10.0, 9.9, 10.2, 10.4, 9.7];
    let y = [10.9, 11.2, 10.8, 11.5, 11.0, 10.7];
    let r = welch_t_test(&x, &y).unwrap();
    close(r.statistic, 6.5504322960630725, 1e-11);
    close(r.df.unwrap(), 9.717345898949901, 1e-11);
    close(r.p_value, 7.390971266540271e-05, 1e-8);
}

#[test]
fn welch_degenerate_cases() {
    assert!(welch_t_test(&[1.0], &[1.0, 2.0]).is_none());
    assert_eq!(welch_t_test(&[3.0; 4], &[3.0; 5]).unwrap().p_value, 1.0);
    let r = welch_t_test(&[3.0; 4], &[4.0; 5]).unwrap();
    assert_eq!((r.p_value, r.statistic), (0.0, f64::INFINITY));
}

#[test]
fn mann_whitney_exact_small_by_hand() {
    // Every y above every x: U_x = 0; of the C(6,3) = 20 equally likely rank sets exactly one
    // gives U = 0, so P(U <= 0) = 1/20 and the two-sided p = 2/20 = 0.1 (scipy agrees).
    let r = mann_whitney_u(&[1.1, 2.3, 3.5], &[4.2, 5.0, 6.1]).unwrap();
    assert_eq!(r.method, "exact");
    assert_eq!(r.statistic, 0.0);
    close(r.p_value, 0.1, 1e-12);
    // Interleaved x < y < x < y: U_x = 1 (the x at 3 beats the y at 2); P(U <= 1) = 2/6,
    // so p = 2 * 2/6 = 2/3.
    let r = mann_whitney_u(&[1.0, 3.0], &[2.0, 4.0]).unwrap();
    assert_eq!(r.statistic, 1.0);
    close(r.p_value, 2.0 / 3.0, 1e-12);
    // Identical positions: p capped at 1.
    assert_eq!(
        mann_whitney_u(&[1.0, 4.0], &[2.0, 3.0]).unwrap().p_value,
        1.0
    );
}

#[test]
fn mann_whitney_matches_scipy() {
    let x = [10.1, 9.8, 10.3, 10.0, 9.9, 10.2, 10.4, 9.7];
    let y = [10.9, 11.2, 10.8, 11.5, 11.0, 10.7];
    close(
        mann_whitney_u(&x, &y).unwrap().p_value,
        0.000666000666000666,
        1e-12,
    );
    let a: Vec<f64> = (0..20).map(|i| i as f64 + 0.37 * (i % 3) as f64).collect();
    let b: Vec<f64> = (0..20)
        .map(|i| i as f64 + 4.25 + 0.11 * (i % 4) as f64)
        .collect();
    let r = mann_whitney_u(&a, &b).unwrap();
    assert_eq!((r.method, r.statistic), ("exact", 128.0));
    close(r.p_value, 0.05239952187284972, 1e-11);
    // With ties: normal approximation with tie and continuity corrections.
    let r = mann_whitney_u(
        &[1., 2., 2., 3., 4., 4., 4., 5.],
        &[3., 4., 5., 5., 6., 6., 7.],
    )
    .unwrap();
    assert_eq!((r.method, r.statistic), ("normal approximation", 8.0));
    close(r.p_value, 0.021920655864769517, 1e-10);
}

#[test]
fn mann_whitney_large_uses_normal_approximation() {
    let a = [
        10.346, 10.822, 10.33, 8.697, 10.905, 10.446, 9.463, 10.581, 10.365, 10.294, 10.028,
        10.547, 9.264, 9.837, 9.518, 10.599, 10.04, 9.708, 9.218, 9.743, 10.008, 9.724, 11.294,
        11.007, 7.289, 8.111, 9.825, 9.578, 10.214, 10.217,
    ];
    let b = [
        12.918, 9.688, 10.422, 12.843, 11.447, 11.463, 10.286, 9.152, 10.967, 10.909, 9.573,
        10.117, 10.728, 9.855, 10.702, 10.895, 10.836, 10.294, 11.394, 11.691, 11.121, 9.982,
        11.532, 10.299, 11.679,
    ];
    let r = mann_whitney_u(&a, &b).unwrap();
    assert_eq!(r.statistic, 181.5, "one tie (10.294) gives a half");
    close(r.p_value, 0.001104909667243219, 1e-10);
    // All values equal: no evidence at all.
    assert_eq!(mann_whitney_u(&[2.0; 40], &[2.0; 40]).unwrap().p_value, 1.0);
}
