//! The roofline chart of an inference run: FLOP/s against arithmetic intensity (FLOPs per
//! byte read, log-log), the device's two measured roofs (memory bandwidth x intensity up to
//! the matmul peak) and where the run's decode and prefill sit under them. Drawn when the
//! result holds the model's work per token and at least one probe.

use super::axis::Scale;
use super::svg::{axes, esc, num, open, xy, AxisSpec, BOTTOM, H, LEFT, RIGHT, TOP, W};
use effbench_harness::roofline::Shape;
use effbench_harness::{MetricId, RunResult};
use std::fmt::Write;

/// One phase of the run placed on the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub phase: &'static str,
    /// FLOPs per byte read.
    pub intensity: f64,
    /// Achieved FLOP/s.
    pub flops: f64,
}

/// Decode and prefill of `r` as (intensity, FLOP/s), from its model work and TTFT/TPOT.
pub fn placed(r: &RunResult) -> Vec<Placed> {
    let Some(w) = r.model.as_ref().and_then(|m| m.roofline.as_ref()) else {
        return Vec::new();
    };
    let p = |k: &str| r.config.params.get(k).and_then(|v| v.as_f64());
    let (Some(batch), Some(prompt_len), Some(gen_len)) =
        (p("batch"), p("prompt_len"), p("gen_len"))
    else {
        return Vec::new();
    };
    let s = Shape {
        batch: batch as usize,
        prompt_len: prompt_len as usize,
        gen_len: gen_len as usize,
    };
    let mut out = Vec::new();
    if let Some(tpot) = r.metric(MetricId::Tpot).map(|m| m.value / 1e3) {
        let positions = s.prompt_len as f64 + s.gen_len as f64 / 2.0;
        let flops = s.batch as f64
            * (w.block_flops_per_token
                + w.head_flops_per_token
                + w.attention_flops_per_position * positions);
        out.push(Placed {
            phase: "decode",
            intensity: flops / w.decode_bytes_per_step(s),
            flops: flops / tpot,
        });
    }
    if let Some(ttft) = r.metric(MetricId::Ttft).map(|m| m.value / 1e3) {
        // Prefill reads the weights once and writes the prompt's keys and values.
        let bytes = w.weight_bytes_per_step as f64
            + (s.batch * s.prompt_len) as f64 * w.kv_bytes_per_position as f64;
        let flops = w.prefill_flops(s);
        out.push(Placed {
            phase: "prefill",
            intensity: flops / bytes,
            flops: flops / ttft,
        });
    }
    out.retain(|p| p.intensity > 0.0 && p.flops > 0.0 && p.flops.is_finite());
    out
}

/// The chart, or `None` when the run cannot be placed under a measured roof.
pub fn chart(r: &RunResult) -> Option<String> {
    let pts = placed(r);
    let bw = r.env.peak_bandwidth.as_ref().map(|b| b.bytes_per_s);
    let peak = r.env.peak_flops.as_ref().map(|p| p.flops_per_s);
    if pts.is_empty() || (bw.is_none() && peak.is_none()) {
        return None;
    }
    let mut xv: Vec<f64> = pts.iter().map(|p| p.intensity).collect();
    let mut yv: Vec<f64> = pts.iter().map(|p| p.flops).collect();
    if let (Some(bw), Some(peak)) = (bw, peak) {
        xv.push(peak / bw); // the ridge point
    }
    let (lo, hi) = xv
        .iter()
        .fold((f64::INFINITY, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let (x0, x1) = (lo / 4.0, hi * 4.0);
    yv.extend(peak);
    yv.extend(bw.map(|b| b * x0));
    let xs = Scale::fit(&[x0, x1], true, LEFT, W - RIGHT);
    let ys = Scale::fit(&yv, true, H - BOTTOM, TOP);
    let xs = Scale { log: true, ..xs };
    let ys = Scale { log: true, ..ys };
    let mut out = String::with_capacity(4096);
    open(&mut out, "roofline");
    axes(
        &mut out,
        &xs,
        &ys,
        &AxisSpec {
            title: "arithmetic intensity (FLOP/byte)",
            unit: "FLOP/byte",
            allow_log: true,
        },
        &AxisSpec {
            title: "achieved (FLOP/s)",
            unit: "FLOP/s",
            allow_log: true,
        },
    );
    // The roof: bandwidth x intensity, capped by the matmul peak.
    out.push_str("<path class=\"front-line\" d=\"");
    let steps = 60;
    for i in 0..=steps {
        let x = x0 * (x1 / x0).powf(i as f64 / steps as f64);
        let y = match (bw, peak) {
            (Some(b), Some(p)) => (b * x).min(p),
            (Some(b), None) => b * x,
            (None, Some(p)) => p,
            (None, None) => return None,
        };
        let y = y.clamp(ys.lo, ys.hi);
        out.push(if i == 0 { 'M' } else { 'L' });
        xy(&mut out, xs.px(x), ys.px(y));
    }
    out.push_str("\"/>");
    for p in &pts {
        out.push_str("<circle class=\"pt front\" cx=\"");
        num(&mut out, xs.px(p.intensity));
        out.push_str("\" cy=\"");
        num(&mut out, ys.px(p.flops));
        let _ = write!(
            out,
            "\" r=\"4.5\"><title>{}: {:.3} FLOP/byte, {:.3e} FLOP/s</title></circle><text class=\"tick\" x=\"",
            p.phase, p.intensity, p.flops
        );
        num(&mut out, xs.px(p.intensity) + 7.0);
        out.push_str("\" y=\"");
        num(&mut out, ys.px(p.flops) - 6.0);
        let _ = write!(out, "\">{}</text>", esc(p.phase));
    }
    let roofs = [
        bw.map(|b| format!("bandwidth {:.1} GB/s", b / 1e9)),
        peak.map(|p| format!("matmul peak {:.1} GFLOP/s", p / 1e9)),
    ];
    let roofs: Vec<String> = roofs.into_iter().flatten().collect();
    let _ = write!(
        out,
        "<text class=\"caption\" x=\"{LEFT}\" y=\"16\">roof: {}</text></svg>",
        esc(&roofs.join(", "))
    );
    Some(out)
}
