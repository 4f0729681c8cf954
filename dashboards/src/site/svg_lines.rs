//! Several series on one line chart (scaling curves: a metric against the swept axis, one
//! line per configuration), each point marked and titled, a legend naming the series.

use super::{axes, esc, num, open, scales, xy, AxisSpec, LEFT, TOP};
use std::fmt::Write;

/// One line: its name and (x, y) points (drawn in x order).
pub struct Series {
    pub name: String,
    pub points: Vec<[f64; 2]>,
}

/// Stroke colours of the series, in order (then repeated).
const COLOURS: [&str; 6] = [
    "#1f5fa8", "#e8590c", "#2b8a3e", "#862e9c", "#c92a2a", "#5c940d",
];

/// A line chart of `series` (non-finite points left out).
pub fn lines(series: &[Series], x: &AxisSpec, y: &AxisSpec, caption: &str) -> String {
    let clean: Vec<(&str, Vec<[f64; 2]>)> = series
        .iter()
        .map(|s| {
            let mut p: Vec<[f64; 2]> = s
                .points
                .iter()
                .copied()
                .filter(|p| p[0].is_finite() && p[1].is_finite())
                .collect();
            p.sort_by(|a, b| a[0].total_cmp(&b[0]));
            (s.name.as_str(), p)
        })
        .collect();
    let xv: Vec<f64> = clean
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p[0]))
        .collect();
    let yv: Vec<f64> = clean
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p[1]))
        .collect();
    let (xs, ys) = scales(&xv, &yv, x, y);
    let mut out = String::with_capacity(4096);
    open(&mut out, caption);
    axes(&mut out, &xs, &ys, x, y);
    for (k, (name, pts)) in clean.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let _ = write!(out, "<path class=\"line\" stroke=\"{colour}\" d=\"");
        for (i, p) in pts.iter().enumerate() {
            out.push(if i == 0 { 'M' } else { 'L' });
            xy(&mut out, xs.px(p[0]), ys.px(p[1]));
        }
        out.push_str("\"/>");
        for p in pts {
            out.push_str("<circle r=\"3\" fill=\"");
            out.push_str(colour);
            out.push_str("\" cx=\"");
            num(&mut out, xs.px(p[0]));
            out.push_str("\" cy=\"");
            num(&mut out, ys.px(p[1]));
            let _ = write!(
                out,
                "\"><title>{}: {} = {}, {} = {}</title></circle>",
                esc(name),
                esc(x.title),
                crate::format::value(p[0], x.unit),
                esc(y.title),
                crate::format::value(p[1], y.unit)
            );
        }
    }
    out.push_str("<g class=\"legend\">");
    for (k, (name, _)) in clean.iter().enumerate().take(6) {
        let (lx, ly) = (
            LEFT + 6.0 + 150.0 * (k % 3) as f64,
            TOP - 14.0 + 11.0 * (k / 3) as f64,
        );
        let _ = write!(
            out,
            "<circle cx=\"{lx}\" cy=\"{}\" r=\"3\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            ly - 3.5,
            COLOURS[k % COLOURS.len()],
            lx + 7.0,
            ly,
            esc(name)
        );
    }
    out.push_str("</g></svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_series_escape_their_names() {
        let s = vec![
            Series {
                name: "dtype=f32".into(),
                points: vec![[512.0, 9.0], [128.0, 2.0], [f64::NAN, 1.0]],
            },
            Series {
                name: "<b>".into(),
                points: vec![[128.0, 3.0]],
            },
        ];
        let ax = |t| AxisSpec {
            title: t,
            unit: "ms",
            allow_log: false,
        };
        let svg = lines(&s, &ax("prompt_len"), &ax("ttft"), "ttft vs prompt_len");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(
            svg.matches("<circle r=").count(),
            3,
            "the NaN point is left out"
        );
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
        assert!(
            svg.contains("dtype=f32: prompt_len = 128, ttft = 2.00"),
            "{svg}"
        );
    }
}
