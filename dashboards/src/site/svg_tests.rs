//! Tests of svg.rs: escaping, scales and the three chart kinds.

use super::*;

fn ax<'a>(t: &'a str, u: &'a str) -> AxisSpec<'a> {
    AxisSpec {
        title: t,
        unit: u,
        allow_log: true,
    }
}

#[test]
fn numbers_are_short() {
    let mut s = String::new();
    for v in [0.0, 1.25, -0.04, -0.06, 12.0, 3.96] {
        num(&mut s, v);
        s.push(',');
    }
    assert_eq!(s, "0,1.3,0,-0.1,12,4,");
}

#[test]
fn scatter_escapes_and_marks_front() {
    let pts = vec![
        Point {
            x: 1.0,
            y: 10.0,
            front: true,
        },
        Point {
            x: 2.0,
            y: 5.0,
            front: false,
        },
        Point {
            x: 0.5,
            y: 4.0,
            front: true,
        },
    ];
    let describe = |i: usize| match i {
        0 => (
            "<script>alert(1)</script>".to_string(),
            "a\".html".to_string(),
        ),
        _ => ("b".to_string(), format!("{i}.html")),
    };
    let svg = scatter(
        &pts,
        &describe,
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
            front: i == 99,
        })
        .collect();
    let describe = |i: usize| (format!("run {i}"), format!("r{i}.html"));
    let svg = scatter(
        &pts,
        &describe,
        &ax("x (ms)", "ms"),
        &ax("y (tok/s)", "tok/s"),
        "big",
    );
    assert!(svg.len() < 200_000, "{} bytes", svg.len());
    assert!(svg.contains("log scale"));
}

#[test]
fn sample_charts() {
    let s: Vec<f64> = (1..=100).map(|i| i as f64).collect();
    let h = distribution(&s, "itl (ms)", "ms");
    assert!(h.contains("n = 100, 10 bins") && h.contains("p99") && h.contains("100%"));
    let one = distribution(&[3.0], "x", "ms");
    assert!(one.contains("n = 1,"));
    let l = line(
        &[[0.0, 1.0], [1.0, 2.0]],
        &ax("t (s)", "s"),
        &ax("rss (bytes)", "bytes"),
        "rss",
    );
    assert!(l.contains("2 points"));
}
