//! SVG charts rendered in Rust (no JavaScript charting, no network): scatter plots with the
//! Pareto front drawn, histograms and CDFs of samples, and line charts of time series.
//! Every piece of text goes through [`esc`]; axes name their metric and unit.

use super::axis::Scale;

const W: f64 = 520.0;
const H: f64 = 330.0;
const LEFT: f64 = 66.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 46.0;
/// Above this many points a scatter draws plain dots (one path, no tooltips) to stay small.
pub const DETAILED_POINTS: usize = 1500;

/// Escapes text for HTML and SVG (element content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An axis: label text (metric and unit), unit for tick labels, and whether log is allowed.
pub struct AxisSpec<'a> {
    pub title: &'a str,
    pub unit: &'a str,
    pub allow_log: bool,
}

fn open(out: &mut String, label: &str) {
    out.push_str(&format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    ));
}

/// Frame, grid, ticks and axis titles.
fn axes(out: &mut String, xs: &Scale, ys: &Scale, x: &AxisSpec, y: &AxisSpec) {
    out.push_str(&format!(
        "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\"/>",
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    ));
    for (v, label) in xs.ticks(x.unit) {
        let px = xs.px(v);
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            H - BOTTOM,
            H - BOTTOM + 14.0,
            esc(&label)
        ));
    }
    for (v, label) in ys.ticks(y.unit) {
        let py = ys.px(v);
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 5.0,
            py + 3.5,
            esc(&label)
        ));
    }
    let log = |s: &Scale| if s.log { ", log scale" } else { "" };
    out.push_str(&format!(
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}{}</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 8.0,
        esc(x.title),
        log(xs)
    ));
    out.push_str(&format!(
        "<text class=\"axis-title\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}{}</text>",
        TOP + (H - TOP - BOTTOM) / 2.0,
        esc(y.title),
        log(ys)
    ));
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
    /// Tooltip text.
    pub title: String,
    /// Link target (a run page), relative.
    pub href: String,
    pub front: bool,
}

/// A scatter plot with the Pareto front's points highlighted and joined in x order.
pub fn scatter(points: &[Point], x: &AxisSpec, y: &AxisSpec, caption: &str) -> String {
    let xv: Vec<f64> = points.iter().map(|p| p.x).collect();
    let yv: Vec<f64> = points.iter().map(|p| p.y).collect();
    let (xs, ys) = scales(&xv, &yv, x, y);
    let mut out = String::with_capacity(2048 + points.len() * 24);
    open(&mut out, caption);
    axes(&mut out, &xs, &ys, x, y);
    let detailed = points.len() <= DETAILED_POINTS;
    let point = |out: &mut String, p: &Point, class: &str, r: f64| {
        out.push_str(&format!(
            "<a href=\"{}\"><circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\"><title>{}</title></circle></a>",
            esc(&p.href),
            xs.px(p.x),
            ys.px(p.y),
            esc(&p.title)
        ))
    };
    if detailed {
        for p in points.iter().filter(|p| !p.front) {
            point(&mut out, p, "pt", 3.5);
        }
    } else {
        // one path of round dots, one per occupied half-pixel
        let mut seen = std::collections::HashSet::new();
        out.push_str("<path class=\"dots\" d=\"");
        for p in points.iter().filter(|p| !p.front) {
            let (px, py) = ((xs.px(p.x) * 2.0).round(), (ys.px(p.y) * 2.0).round());
            if seen.insert((px as i64, py as i64)) {
                out.push_str(&format!("M{} {}h0", px / 2.0, py / 2.0));
            }
        }
        out.push_str("\"/>");
    }
    let mut front: Vec<&Point> = points.iter().filter(|p| p.front).collect();
    front.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    if front.len() > 1 {
        let d: Vec<String> = front
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{}{:.1} {:.1}",
                    if i == 0 { "M" } else { "L" },
                    xs.px(p.x),
                    ys.px(p.y)
                )
            })
            .collect();
        out.push_str(&format!(
            "<path class=\"front-line\" d=\"{}\"/>",
            d.join("")
        ));
    }
    for p in &front {
        point(&mut out, p, "pt front", 4.5);
    }
    out.push_str(&format!(
        "<g class=\"legend\"><circle class=\"pt\" cx=\"{:.1}\" cy=\"14\" r=\"3.5\"/><text x=\"{:.1}\" y=\"17.5\">run ({})</text><circle class=\"pt front\" cx=\"{:.1}\" cy=\"14\" r=\"4.5\"/><text x=\"{:.1}\" y=\"17.5\">Pareto front ({})</text></g>",
        LEFT + 6.0,
        LEFT + 14.0,
        points.len(),
        LEFT + 110.0,
        LEFT + 118.0,
        front.len()
    ));
    out.push_str("</svg>");
    out
}

/// Marks at p50 and p99 drawn on sample charts.
fn marks(out: &mut String, xs: &Scale, sorted: &[f64]) {
    for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
        let v = effbench_harness::stats::percentile_sorted(sorted, q);
        let px = xs.px(v);
        // labels near the right edge go left of their line
        let (lx, anchor) = if px > W - RIGHT - 30.0 {
            (px - 3.0, "end")
        } else {
            (px + 3.0, "start")
        };
        let ly = TOP + if name == "p50" { 10.0 } else { 22.0 };
        out.push_str(&format!(
            "<line class=\"mark\" x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{:.1}\"/><text class=\"mark-label\" x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"{anchor}\">{name}</text>",
            H - BOTTOM
        ));
    }
}

/// Histogram of samples (√n bins, 5 to 40) with p50 and p99 marked.
pub fn histogram(samples: &[f64], title: &str, unit: &str) -> String {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mut out = String::new();
    open(&mut out, &format!("histogram of {title}"));
    if sorted.is_empty() {
        out.push_str("</svg>");
        return out;
    }
    let bins = ((sorted.len() as f64).sqrt().ceil() as usize).clamp(5, 40);
    let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
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
    let x = AxisSpec {
        title,
        unit,
        allow_log: false,
    };
    let y = AxisSpec {
        title: "samples (count)",
        unit: "count",
        allow_log: false,
    };
    axes(&mut out, &xs, &ys, &x, &y);
    let mut d = String::new();
    for (i, c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let (a, b) = if hi > lo {
            (
                xs.px(lo + i as f64 * width),
                xs.px(lo + (i + 1) as f64 * width),
            )
        } else {
            (xs.px(lo) - 6.0, xs.px(lo) + 6.0)
        };
        d.push_str(&format!(
            "M{a:.1} {:.1}H{b:.1}V{:.1}H{a:.1}Z",
            ys.px(0.0),
            ys.px(*c as f64)
        ));
    }
    out.push_str(&format!("<path class=\"bars\" d=\"{d}\"/>"));
    marks(&mut out, &xs, &sorted);
    out.push_str(&format!(
        "<text class=\"caption\" x=\"{LEFT}\" y=\"16\">n = {}, {bins} bins</text></svg>",
        sorted.len()
    ));
    out
}

/// Empirical CDF of samples (at most 400 steps drawn) with p50 and p99 marked.
pub fn cdf(samples: &[f64], title: &str, unit: &str) -> String {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mut out = String::new();
    open(&mut out, &format!("CDF of {title}"));
    if sorted.is_empty() {
        out.push_str("</svg>");
        return out;
    }
    let n = sorted.len();
    let xs = Scale::fit(&sorted, true, LEFT, W - RIGHT);
    let ys = Scale::linear(0.0, 100.0, H - BOTTOM, TOP);
    axes(
        &mut out,
        &xs,
        &ys,
        &AxisSpec {
            title,
            unit,
            allow_log: true,
        },
        &AxisSpec {
            title: "fraction of samples ≤ x (%)",
            unit: "%",
            allow_log: false,
        },
    );
    let step = n.div_ceil(400).max(1);
    let mut d = format!("M{:.1} {:.1}", xs.px(sorted[0]), ys.px(0.0));
    let mut i = 0;
    while i < n {
        let j = (i + step).min(n) - 1;
        d.push_str(&format!(
            "H{:.1}V{:.1}",
            xs.px(sorted[j]),
            ys.px(100.0 * (j + 1) as f64 / n as f64)
        ));
        i = j + 1;
    }
    out.push_str(&format!("<path class=\"line\" d=\"{d}\"/>"));
    marks(&mut out, &xs, &sorted);
    out.push_str(&format!(
        "<text class=\"caption\" x=\"{LEFT}\" y=\"16\">n = {n}</text></svg>"
    ));
    out
}

/// A time series as a line (bucketed to at most ~800 points, keeping each bucket's min and max).
pub fn line(points: &[[f64; 2]], x: &AxisSpec, y: &AxisSpec, caption: &str) -> String {
    let pts: Vec<[f64; 2]> = points
        .iter()
        .copied()
        .filter(|p| p[0].is_finite() && p[1].is_finite())
        .collect();
    let mut out = String::new();
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
    let d: String = keep
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { "L" },
                xs.px(p[0]),
                ys.px(p[1])
            )
        })
        .collect();
    out.push_str(&format!("<path class=\"line\" d=\"{d}\"/>"));
    out.push_str(&format!(
        "<text class=\"caption\" x=\"{LEFT}\" y=\"16\">{} points</text></svg>",
        points.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ax<'a>(t: &'a str, u: &'a str) -> AxisSpec<'a> {
        AxisSpec {
            title: t,
            unit: u,
            allow_log: true,
        }
    }

    #[test]
    fn scatter_escapes_and_marks_front() {
        let pts = vec![
            Point {
                x: 1.0,
                y: 10.0,
                title: "<script>alert(1)</script>".into(),
                href: "a\".html".into(),
                front: true,
            },
            Point {
                x: 2.0,
                y: 5.0,
                title: "b".into(),
                href: "b.html".into(),
                front: false,
            },
            Point {
                x: 0.5,
                y: 4.0,
                title: "c".into(),
                href: "c.html".into(),
                front: true,
            },
        ];
        let svg = scatter(
            &pts,
            &ax("ttft (ms)", "ms"),
            &ax("throughput (tok/s)", "tok/s"),
            "t",
        );
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a&quot;.html"));
        assert!(svg.contains("front-line"));
        assert!(svg.contains("ttft (ms)") && svg.contains("throughput (tok/s)"));
        assert_eq!(svg.matches("class=\"pt front\"").count(), 3); // 2 points + legend
    }

    #[test]
    fn big_scatter_is_compact() {
        let pts: Vec<Point> = (0..10_000)
            .map(|i| Point {
                x: 1.0 + (i % 100) as f64,
                y: 1.0 + (i / 100) as f64,
                title: format!("run {i}"),
                href: format!("r{i}.html"),
                front: i == 99,
            })
            .collect();
        let svg = scatter(&pts, &ax("x (ms)", "ms"), &ax("y (tok/s)", "tok/s"), "big");
        assert!(svg.len() < 200_000, "{} bytes", svg.len());
        assert!(svg.contains("log scale"));
    }

    #[test]
    fn sample_charts() {
        let s: Vec<f64> = (1..=100).map(|i| i as f64).collect();
        let h = histogram(&s, "itl (ms)", "ms");
        assert!(h.contains("n = 100, 10 bins") && h.contains("p99"));
        let c = cdf(&s, "itl (ms)", "ms");
        assert!(c.contains("fraction of samples"));
        let one = histogram(&[3.0], "x", "ms");
        assert!(one.contains("n = 1"));
        let l = line(
            &[[0.0, 1.0], [1.0, 2.0]],
            &ax("t (s)", "s"),
            &ax("rss (bytes)", "bytes"),
            "rss",
        );
        assert!(l.contains("2 points"));
    }
}
