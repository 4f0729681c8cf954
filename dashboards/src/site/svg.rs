//! SVG charts rendered in Rust (no JavaScript charting, no network): scatter plots with the
//! Pareto front drawn, sample distributions (histogram with the CDF over it) and line charts
//! of time series. Every piece of text goes through [`esc`]; axes name their metric and
//! unit. Charts are written compactly (one path for the grid, coordinates to 0.1 px) because
//! a big site holds tens of thousands of them.

use super::axis::Scale;
use std::fmt::Write;

#[path = "svg_lines.rs"]
mod lines;
pub use lines::{lines, Series};

pub(super) const W: f64 = 520.0;
pub(super) const H: f64 = 330.0;
pub(super) const LEFT: f64 = 66.0;
pub(super) const RIGHT: f64 = 40.0;
pub(super) const TOP: f64 = 26.0;
pub(super) const BOTTOM: f64 = 46.0;
/// Above this many points a scatter draws plain dots (one path, no tooltips) to stay small.
pub const DETAILED_POINTS: usize = 1500;

/// Escapes text for HTML and SVG ([`effbench_harness::escape::html`]).
pub fn esc(s: &str) -> String {
    effbench_harness::escape::html(s)
}

/// Appends `v` rounded to 0.1 (integer formatting only: much faster than `{:.1}`).
pub(super) fn num(out: &mut String, v: f64) {
    let t = (v * 10.0).round();
    if !t.is_finite() || t.abs() > 1e15 {
        out.push('0');
        return;
    }
    let t = t as i64;
    if t < 0 {
        out.push('-');
    }
    let a = t.unsigned_abs();
    let _ = write!(out, "{}", a / 10);
    if !a.is_multiple_of(10) {
        let _ = write!(out, ".{}", a % 10);
    }
}

/// `x y` of a point.
pub(super) fn xy(out: &mut String, x: f64, y: f64) {
    num(out, x);
    out.push(' ');
    num(out, y);
}

/// An axis: label text (metric and unit), unit for tick labels, and whether log is allowed.
pub struct AxisSpec<'a> {
    pub title: &'a str,
    pub unit: &'a str,
    pub allow_log: bool,
}

pub(super) fn open(out: &mut String, label: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
}

/// Frame, grid, ticks and axis titles.
pub(super) fn axes(out: &mut String, xs: &Scale, ys: &Scale, x: &AxisSpec, y: &AxisSpec) {
    let (r, b) = (W - RIGHT, H - BOTTOM);
    let _ = write!(
        out,
        "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\"/>",
        r - LEFT,
        b - TOP
    );
    let xt = xs.ticks(x.unit);
    let yt = ys.ticks(y.unit);
    out.push_str("<path class=\"grid\" d=\"");
    for (v, _) in &xt {
        out.push('M');
        xy(out, xs.px(*v), TOP);
        out.push('V');
        num(out, b);
    }
    for (v, _) in &yt {
        out.push('M');
        xy(out, LEFT, ys.px(*v));
        out.push('H');
        num(out, r);
    }
    out.push_str("\"/><g class=\"tick\" text-anchor=\"middle\">");
    for (v, label) in &xt {
        out.push_str("<text x=\"");
        num(out, xs.px(*v));
        let _ = write!(out, "\" y=\"{}\">{}</text>", b + 14.0, esc(label));
    }
    out.push_str("</g><g class=\"tick\" text-anchor=\"end\">");
    for (v, label) in &yt {
        let _ = write!(out, "<text x=\"{}\" y=\"", LEFT - 5.0);
        num(out, ys.px(*v) + 3.5);
        let _ = write!(out, "\">{}</text>", esc(label));
    }
    out.push_str("</g>");
    let log = |s: &Scale| if s.log { ", log scale" } else { "" };
    let _ = write!(
        out,
        "<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}{}</text><text class=\"axis-title\" transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}{}</text>",
        LEFT + (r - LEFT) / 2.0,
        H - 8.0,
        esc(x.title),
        log(xs),
        TOP + (b - TOP) / 2.0,
        esc(y.title),
        log(ys)
    );
}

fn scales(xv: &[f64], yv: &[f64], x: &AxisSpec, y: &AxisSpec) -> (Scale, Scale) {
    (
        Scale::fit(xv, x.allow_log, LEFT, W - RIGHT),
        Scale::fit(yv, y.allow_log, H - BOTTOM, TOP),
    )
}

/// One point of a scatter plot.
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub front: bool,
}

/// A scatter plot with the Pareto front's points highlighted and joined in x order.
/// `describe(i)` gives point i's tooltip and link; it is only called for points drawn with
/// one (all of them up to [`DETAILED_POINTS`], else the front).
pub fn scatter(
    points: &[Point],
    describe: &dyn Fn(usize) -> (String, String),
    x: &AxisSpec,
    y: &AxisSpec,
    caption: &str,
) -> String {
    let xv: Vec<f64> = points.iter().map(|p| p.x).collect();
    let yv: Vec<f64> = points.iter().map(|p| p.y).collect();
    let (xs, ys) = scales(&xv, &yv, x, y);
    let mut out = String::with_capacity(4096 + points.len().min(DETAILED_POINTS) * 120);
    open(&mut out, caption);
    axes(&mut out, &xs, &ys, x, y);
    let point = |out: &mut String, i: usize, class: &str, r: f64| {
        let (title, href) = describe(i);
        let _ = write!(
            out,
            "<a href=\"{}\"><circle class=\"{class}\" cx=\"",
            esc(&href)
        );
        num(out, xs.px(points[i].x));
        out.push_str("\" cy=\"");
        num(out, ys.px(points[i].y));
        let _ = write!(
            out,
            "\" r=\"{r}\"><title>{}</title></circle></a>",
            esc(&title)
        );
    };
    if points.len() <= DETAILED_POINTS {
        for i in (0..points.len()).filter(|&i| !points[i].front) {
            point(&mut out, i, "pt", 3.5);
        }
    } else {
        // one path of round dots, one per occupied half-pixel
        let mut seen = std::collections::HashSet::new();
        out.push_str("<path class=\"dots\" d=\"");
        for p in points.iter().filter(|p| !p.front) {
            let (px, py) = ((xs.px(p.x) * 2.0).round(), (ys.px(p.y) * 2.0).round());
            if seen.insert((px as i64, py as i64)) {
                out.push('M');
                xy(&mut out, px / 2.0, py / 2.0);
                out.push_str("h0");
            }
        }
        out.push_str("\"/>");
    }
    let mut front: Vec<usize> = (0..points.len()).filter(|&i| points[i].front).collect();
    front.sort_by(|&a, &b| {
        let (a, b) = (&points[a], &points[b]);
        a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y))
    });
    if front.len() > 1 {
        out.push_str("<path class=\"front-line\" d=\"");
        for (k, &i) in front.iter().enumerate() {
            out.push(if k == 0 { 'M' } else { 'L' });
            xy(&mut out, xs.px(points[i].x), ys.px(points[i].y));
        }
        out.push_str("\"/>");
    }
    for &i in &front {
        point(&mut out, i, "pt front", 4.5);
    }
    let _ = write!(
        out,
        "<g class=\"legend\"><circle class=\"pt\" cx=\"{}\" cy=\"14\" r=\"3.5\"/><text x=\"{}\" y=\"17.5\">run ({})</text><circle class=\"pt front\" cx=\"{}\" cy=\"14\" r=\"4.5\"/><text x=\"{}\" y=\"17.5\">Pareto front ({})</text></g></svg>",
        LEFT + 6.0,
        LEFT + 14.0,
        points.len(),
        LEFT + 110.0,
        LEFT + 118.0,
        front.len()
    );
    out
}

/// A sample distribution: histogram bars (√n bins, 5 to 40; left axis: count), the empirical
/// CDF drawn over them (right axis: %), p50 and p99 marked.
pub fn distribution(samples: &[f64], title: &str, unit: &str) -> String {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mut out = String::with_capacity(4096);
    open(&mut out, &format!("distribution of {title}"));
    if sorted.is_empty() {
        out.push_str("</svg>");
        return out;
    }
    let n = sorted.len();
    let bins = ((n as f64).sqrt().ceil() as usize).clamp(5, 40);
    let (lo, hi) = (sorted[0], sorted[n - 1]);
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let mut counts = vec![0usize; bins];
    for v in &sorted {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let top = *counts.iter().max().unwrap_or(&1) as f64;
    let xs = if hi > lo {
        Scale::linear(lo, hi, LEFT, W - RIGHT)
    } else {
        Scale::fit(&[lo], false, LEFT, W - RIGHT)
    };
    let ys = Scale::linear(0.0, top * 1.08, H - BOTTOM, TOP);
    let pct = Scale::linear(0.0, 100.0, H - BOTTOM, TOP);
    axes(
        &mut out,
        &xs,
        &ys,
        &AxisSpec {
            title,
            unit,
            allow_log: false,
        },
        &AxisSpec {
            title: "samples (count)",
            unit: "count",
            allow_log: false,
        },
    );
    out.push_str("<path class=\"bars\" d=\"");
    for (i, c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let (a, b) = if hi > lo {
            (
                xs.px(lo + i as f64 * width),
                xs.px(lo + (i + 1) as f64 * width),
            )
        } else {
            (xs.px(lo) - 6.0, xs.px(lo) + 6.0)
        };
        out.push('M');
        xy(&mut out, a, ys.px(0.0));
        out.push('H');
        num(&mut out, b);
        out.push('V');
        num(&mut out, ys.px(*c as f64));
        out.push('H');
        num(&mut out, a);
        out.push('Z');
    }
    // the CDF: at most 400 steps
    out.push_str("\"/><path class=\"line\" d=\"M");
    xy(&mut out, xs.px(sorted[0]), pct.px(0.0));
    let step = n.div_ceil(400).max(1);
    let mut i = 0;
    while i < n {
        let j = (i + step).min(n) - 1;
        out.push('H');
        num(&mut out, xs.px(sorted[j]));
        out.push('V');
        num(&mut out, pct.px(100.0 * (j + 1) as f64 / n as f64));
        i = j + 1;
    }
    out.push_str("\"/><g class=\"tick cdf\">");
    for p in [0.0, 50.0, 100.0] {
        let _ = write!(out, "<text x=\"{}\" y=\"", W - RIGHT + 4.0);
        num(&mut out, pct.px(p) + 3.5);
        let _ = write!(out, "\">{p}%</text>");
    }
    out.push_str("</g>");
    for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
        let px = xs.px(effbench_harness::stats::percentile_sorted(&sorted, q));
        // labels near the right edge go left of their line
        let (lx, anchor) = if px > W - RIGHT - 30.0 {
            (px - 3.0, "end")
        } else {
            (px + 3.0, "start")
        };
        out.push_str("<path class=\"mark\" d=\"M");
        xy(&mut out, px, TOP);
        let _ = write!(out, "V{}\"/><text class=\"mark-label\" x=\"", H - BOTTOM);
        num(&mut out, lx);
        let _ = write!(
            out,
            "\" y=\"{}\" text-anchor=\"{anchor}\">{name}</text>",
            TOP + if name == "p50" { 10.0 } else { 22.0 }
        );
    }
    let _ = write!(
        out,
        "<text class=\"caption\" x=\"{LEFT}\" y=\"16\">n = {n}, {bins} bins; line: cumulative % (right axis)</text></svg>"
    );
    out
}

/// A time series as a line (bucketed to at most ~800 points, keeping each bucket's min and max).
pub fn line(points: &[[f64; 2]], x: &AxisSpec, y: &AxisSpec, caption: &str) -> String {
    let pts: Vec<[f64; 2]> = points
        .iter()
        .copied()
        .filter(|p| p[0].is_finite() && p[1].is_finite())
        .collect();
    let mut out = String::with_capacity(4096);
    open(&mut out, caption);
    let xv: Vec<f64> = pts.iter().map(|p| p[0]).collect();
    let yv: Vec<f64> = pts.iter().map(|p| p[1]).collect();
    let (xs, ys) = scales(&xv, &yv, x, y);
    axes(&mut out, &xs, &ys, x, y);
    let keep: Vec<[f64; 2]> = if pts.len() <= 800 {
        pts
    } else {
        pts.chunks(pts.len().div_ceil(400))
            .flat_map(|c| {
                let lo = c.iter().min_by(|a, b| a[1].total_cmp(&b[1])).copied();
                let hi = c.iter().max_by(|a, b| a[1].total_cmp(&b[1])).copied();
                let (lo, hi) = (lo.unwrap_or(c[0]), hi.unwrap_or(c[0]));
                if lo[0] <= hi[0] {
                    [lo, hi]
                } else {
                    [hi, lo]
                }
            })
            .collect()
    };
    out.push_str("<path class=\"line\" d=\"");
    for (i, p) in keep.iter().enumerate() {
        out.push(if i == 0 { 'M' } else { 'L' });
        xy(&mut out, xs.px(p[0]), ys.px(p[1]));
    }
    let _ = write!(
        out,
        "\"/><text class=\"caption\" x=\"{LEFT}\" y=\"16\">{} points</text></svg>",
        points.len()
    );
    out
}

#[cfg(test)]
#[path = "svg_tests.rs"]
mod tests;
