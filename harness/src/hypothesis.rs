//! Two-sample hypothesis tests on raw samples, used by `compare`/`gate` and change-point
//! detection: Welch's unequal-variance t-test and the Mann-Whitney U test (both two-sided),
//! with the distribution functions they need (log-gamma, regularized incomplete beta and
//! gamma, Student t and normal tails). Small pure functions; the tests check them against
//! values from scipy 1.17 and hand-worked cases.
//!
//! - Welch: t = (mean_y - mean_x) / sqrt(s_x²/n_x + s_y²/n_y), Welch–Satterthwaite degrees of
//!   freedom, p = 2·P(T_df > |t|) = I_{df/(df+t²)}(df/2, 1/2).
//! - Mann-Whitney U: U_x = R_x - n_x(n_x+1)/2 from mid-ranks. Without ties and with
//!   n_x + n_y <= [`MWU_EXACT_MAX_N`] the exact null distribution is used (p = 2·P(U <= min U),
//!   capped at 1); otherwise the normal approximation with tie correction and continuity
//!   correction (scipy's `method="asymptotic"`, `use_continuity=True`).

use serde::{Deserialize, Serialize};

/// Largest n_x + n_y for which the exact Mann-Whitney distribution is used (no ties).
pub const MWU_EXACT_MAX_N: usize = 60;

const EPS: f64 = 1e-15;
const FPMIN: f64 = 1e-300;
const MAX_ITER: usize = 100_000;

/// Outcome of a two-sample test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TestResult {
    /// t for Welch, U of the first sample for Mann-Whitney.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Degrees of freedom (Welch) or null (Mann-Whitney).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub df: Option<f64>,
    /// `exact` or `normal approximation` (Mann-Whitney), `t` (Welch).
    pub method: &'static str,
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error about 1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized incomplete beta I_x(a, b), a, b > 0, x in [0, 1] (continued fraction, Lentz).
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

fn tiny(v: f64) -> f64 {
    if v.abs() < FPMIN {
        FPMIN
    } else {
        v
    }
}

fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / tiny(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / tiny(1.0 + aa * d);
        c = tiny(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / tiny(1.0 + aa * d);
        c = tiny(1.0 + aa / c);
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a), a > 0, x >= 0.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let ln_front = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        // Series for P(a, x).
        let (mut ap, mut del) = (a, 1.0 / a);
        let mut sum = del;
        for _ in 0..MAX_ITER {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * EPS {
                break;
            }
        }
        1.0 - sum * ln_front.exp()
    } else {
        // Continued fraction for Q(a, x).
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / FPMIN;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..MAX_ITER {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = 1.0 / tiny(an * d + b);
            c = tiny(b + an / c);
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < EPS {
                break;
            }
        }
        ln_front.exp() * h
    }
}

/// Complementary error function.
pub fn erfc(x: f64) -> f64 {
    if x >= 0.0 {
        gamma_q(0.5, x * x)
    } else {
        2.0 - gamma_q(0.5, x * x)
    }
}

/// Upper tail of the standard normal distribution, P(Z > z).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Two-sided tail of Student's t with `df` degrees of freedom, P(|T| > |t|).
pub fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    if df > 1e7 {
        return 2.0 * normal_sf(t.abs());
    }
    beta_inc(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// Quantile of Student's t with `df` degrees of freedom: the t with P(T <= t) = `p`, for p in
/// (0, 1) (bisection on [`student_t_two_sided`], 1e-12 relative). Infinite df: the normal.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    let tail = 2.0 * p.min(1.0 - p);
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while student_t_two_sided(hi, df) > tail {
        hi *= 2.0;
        if hi > 1e12 {
            break;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_two_sided(mid, df) > tail {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    let t = 0.5 * (lo + hi);
    if p > 0.5 {
        t
    } else {
        -t
    }
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    (crate::stats::mean(xs), crate::stats::stdev(xs).powi(2))
}

/// Welch's t-test of `x` against `y`; `None` with fewer than 2 samples on a side.
/// Both variances 0: p = 1 when the means are equal, else 0 (t = ±∞).
pub fn welch_t_test(x: &[f64], y: &[f64]) -> Option<TestResult> {
    if x.len() < 2 || y.len() < 2 {
        return None;
    }
    let (nx, ny) = (x.len() as f64, y.len() as f64);
    let ((mx, vx), (my, vy)) = (mean_var(x), mean_var(y));
    let (ax, ay) = (vx / nx, vy / ny);
    let se2 = ax + ay;
    if se2 == 0.0 {
        let same = mx == my;
        return Some(TestResult {
            statistic: if same {
                0.0
            } else {
                f64::INFINITY.copysign(my - mx)
            },
            p_value: if same { 1.0 } else { 0.0 },
            df: None,
            method: "t",
        });
    }
    let t = (my - mx) / se2.sqrt();
    let df = se2 * se2 / (ax * ax / (nx - 1.0) + ay * ay / (ny - 1.0));
    Some(TestResult {
        statistic: t,
        p_value: student_t_two_sided(t, df),
        df: Some(df),
        method: "t",
    })
}

/// Mid-ranks (1-based) of `x ++ y` and the tie term Σ(t³ - t) over tie groups.
fn ranks(x: &[f64], y: &[f64]) -> (Vec<f64>, f64) {
    let mut all: Vec<(f64, usize)> = x.iter().chain(y).copied().zip(0..).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut r = vec![0.0; all.len()];
    let mut ties = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0;
        for item in &all[i..j] {
            r[item.1] = mid;
        }
        let t = (j - i) as f64;
        ties += t * t * t - t;
        i = j;
    }
    (r, ties)
}

/// P(U <= u) under the null for sizes (m, n), no ties: counts of m-subsets of 1..=m+n by rank
/// sum, in f64 (exact up to 2^53 and then to 16 digits).
fn mwu_exact_cdf(u: f64, m: usize, n: usize) -> f64 {
    let total = m + n;
    let max_u = m * n;
    // ways[k][s]: k items chosen so far, U contribution s (rank sum minus k(k+1)/2).
    let mut ways = vec![vec![0.0f64; max_u + 1]; m + 1];
    ways[0][0] = 1.0;
    for item in 0..total {
        // Choosing item `item` (0-based) as the k-th chosen adds item - (k-1) to U.
        for k in (1..=m.min(item + 1)).rev() {
            let add = item + 1 - k;
            if add > n {
                continue;
            }
            for s in (add..=max_u).rev() {
                let w = ways[k - 1][s - add];
                if w != 0.0 {
                    ways[k][s] += w;
                }
            }
        }
    }
    let all: f64 = ways[m].iter().sum();
    let upto = u.floor().max(0.0) as usize;
    let below: f64 = ways[m][..=upto.min(max_u)].iter().sum();
    below / all
}

/// Mann-Whitney U test of `x` against `y` (two-sided); `None` when a side is empty.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<TestResult> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let (nx, ny) = (x.len(), y.len());
    let (r, ties) = ranks(x, y);
    let rx: f64 = r[..nx].iter().sum();
    let ux = rx - (nx * (nx + 1)) as f64 / 2.0;
    let nn = (nx * ny) as f64;
    let u_min = ux.min(nn - ux);
    if ties == 0.0 && nx + ny <= MWU_EXACT_MAX_N {
        let p = (2.0 * mwu_exact_cdf(u_min, nx, ny)).min(1.0);
        return Some(TestResult {
            statistic: ux,
            p_value: p,
            df: None,
            method: "exact",
        });
    }
    let n = (nx + ny) as f64;
    let var = nn / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    let p = if var <= 0.0 {
        1.0
    } else {
        let z = (ux.max(nn - ux) - nn / 2.0 - 0.5) / var.sqrt();
        (2.0 * normal_sf(z)).clamp(0.0, 1.0)
    };
    Some(TestResult {
        statistic: ux,
        p_value: p,
        df: None,
        method: "normal approximation",
    })
}

#[cfg(test)]
#[path = "hypothesis_tests.rs"]
mod tests;
