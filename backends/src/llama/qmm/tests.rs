//! Exactness of the quantized kernels, per format and per kernel family this CPU runs:
//! decoding equals candle's dequantization bit for bit, tiles read back what was written,
//! products match the dequantized f32 reference within the bound activation rounding allows,
//! and every kernel family gives bit-identical results.

use super::*;
use candle_core::quantized::QTensor;
use candle_core::Device;

/// Deterministic values in about [-1, 1) with some larger outliers.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            if i % 97 == 13 {
                u * 6.0
            } else {
                u
            }
        })
        .collect()
}

/// A quantized `(n, k)` matrix of `fmt` and its dequantized f32 values (candle's reference).
fn matrix(fmt: Format, n: usize, k: usize, seed: u64) -> (QTensor, Vec<f32>) {
    let w = Tensor::from_vec(values(n * k, seed), (n, k), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, fmt.ggml()).unwrap();
    let deq = q
        .dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    (q, deq)
}

/// Row lengths per format: one block, an odd number of blocks, and a longer odd count.
fn widths(fmt: Format) -> [usize; 3] {
    let b = fmt.block_values();
    [b, 3 * b, if b == 32 { 19 * b } else { 5 * b }]
}

/// The kernel families this CPU runs. Names them, and the ones left untested, once per test
/// process straight on stderr: the test harness captures `eprintln!` of passing tests, so
/// the CI log would otherwise never say which dispatch paths it covered.
fn isas() -> Vec<Isa> {
    use std::io::Write;
    let (run, skip): (Vec<Isa>, Vec<Isa>) = Isa::ALL.into_iter().partition(|i| i.supported());
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let names = |v: &[Isa]| v.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ");
        let mut line = format!("qmm: kernel families tested on this CPU: {}", names(&run));
        if !skip.is_empty() {
            line.push_str(&format!(
                "; NOT tested (this CPU lacks them): {}",
                names(&skip)
            ));
        }
        let _ = writeln!(std::io::stderr(), "{line}");
    });
    run
}

#[test]
fn decoding_equals_candle_dequantization() {
    for fmt in Format::ALL {
        for k in widths(fmt) {
            let (q, deq) = matrix(fmt, 3, k, 7);
            let data = q.data().unwrap();
            let row_bytes = k / fmt.block_values() * fmt.block_bytes();
            for r in 0..3 {
                let mut blocks = Vec::new();
                fmt.decode_row(&data[r * row_bytes..(r + 1) * row_bytes], &mut blocks);
                assert_eq!(blocks.len(), k / QK);
                for (b, u) in blocks.iter().enumerate() {
                    for i in 0..QK {
                        let want = deq[r * k + b * QK + i];
                        let got = fmt.value(u, i);
                        assert_eq!(got, want, "{fmt:?} k {k} row {r} value {}", b * QK + i);
                    }
                }
            }
        }
    }
}

#[test]
fn tiles_read_back_what_was_written() {
    for fmt in Format::ALL {
        let k = fmt.block_values();
        let (q, _) = matrix(fmt, 16, k, 3);
        let data = q.data().unwrap();
        let row_bytes = fmt.block_bytes() * (k / fmt.block_values());
        let decoded: Vec<Vec<format::UBlock>> = (0..16)
            .map(|r| {
                let mut v = Vec::new();
                fmt.decode_row(&data[r * row_bytes..(r + 1) * row_bytes], &mut v);
                v
            })
            .collect();
        let mut tile = vec![0u8; fmt.layout().bytes];
        let rows: [Option<&format::UBlock>; ROWS] = std::array::from_fn(|r| decoded[r].first());
        pack::write_tile(fmt, &rows, &mut tile);
        for (r, row) in decoded.iter().enumerate() {
            let back = pack::read_tile(fmt, &tile, r);
            let u = &row[0];
            assert_eq!(back.q, u.q, "{fmt:?} row {r}");
            assert_eq!(back.d, u.d, "{fmt:?} row {r}");
            assert_eq!(back.m, u.m, "{fmt:?} row {r}");
        }
    }
}

/// `x W^T` per kernel family against the f64 product of the dequantized weights with the
/// unquantized activations. Tolerance: activation codes are rounded to the nearest step of
/// their block scale `dx`, so the exact error bound per output is Σ_blocks dx/2 Σ_i |w_i|;
/// float rounding adds at most 1e-5 of Σ |w_i x_i|.
#[test]
fn products_match_the_dequantized_reference_on_every_kernel() {
    let isas = isas();
    for fmt in Format::ALL {
        for k in widths(fmt) {
            // 37 rows: two full groups of 16 and a tail of 5.
            let n = 37;
            let (q, w) = matrix(fmt, n, k, 11 + k as u64);
            // 1..=9 activation rows: every remainder of the TILE_T blocking.
            for m in [1, 2, 3, 4, 5, 9] {
                let x = values(m * k, 5 + m as u64);
                let mut xq = Vec::new();
                act::quantize_rows(&x, &mut xq);
                let mut first: Option<Vec<f32>> = None;
                for &isa in &isas {
                    let mat = QMatrix::from_qtensor(&q)
                        .unwrap()
                        .unwrap()
                        .with_isa(isa)
                        .unwrap();
                    let got = matmul_many(&[&mat], &xq, m).remove(0);
                    assert_eq!(got.len(), m * n);
                    for i in 0..m {
                        for r in 0..n {
                            let (mut want, mut bound, mut mag) = (0f64, 0f64, 0f64);
                            for (b, xb) in xq[i * (k / QK)..(i + 1) * (k / QK)].iter().enumerate() {
                                let mut wsum = 0f64;
                                for j in b * QK..(b + 1) * QK {
                                    let (wv, xv) = (w[r * k + j] as f64, x[i * k + j] as f64);
                                    want += wv * xv;
                                    mag += (wv * xv).abs();
                                    wsum += wv.abs();
                                }
                                bound += xb.d as f64 / 2.0 * wsum;
                            }
                            let got = got[i * n + r] as f64;
                            assert!(
                                (got - want).abs() <= bound * 1.0001 + 1e-5 * mag + 1e-6,
                                "{fmt:?} {} k {k} m {m} [{i},{r}]: {got} vs {want} (bound {bound})",
                                isa.name()
                            );
                        }
                    }
                    match &first {
                        None => first = Some(got),
                        Some(f) => assert!(
                            f.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{fmt:?} k {k} m {m}: {} differs from {}",
                            isa.name(),
                            isas[0].name()
                        ),
                    }
                }
            }
        }
    }
}

#[test]
fn forward_many_equals_separate_products_and_rows_dequantize() {
    let dev = Device::Cpu;
    let mk = |fmt: Format, n: usize, seed: u64| {
        let (q, deq) = matrix(fmt, n, 256, seed);
        (QMatrix::from_qtensor(&q).unwrap().unwrap(), deq)
    };
    let (a, _) = mk(Format::Q4_1, 40, 1);
    let (b, _) = mk(Format::Q4K, 9, 2);
    let (c, c_deq) = mk(Format::Q8_0, 128, 3);
    let x = Tensor::from_vec(values(3 * 256, 9), (1, 3, 256), &dev).unwrap();
    let many = QMatrix::forward_many(&[&a, &b, &c], &x).unwrap();
    for (got, w) in many.iter().zip([&a, &b, &c]) {
        let want = w.forward(&x).unwrap();
        assert_eq!(got.dims(), &[1, 3, w.dims().0]);
        let d = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
    }
    let short = Tensor::zeros((1, 32), DType::F32, &dev).unwrap();
    assert!(QMatrix::forward_many(&[&a], &short).is_err());
    let mut row = vec![0f32; 256];
    c.row(77, &mut row);
    assert_eq!(row, c_deq[77 * 256..78 * 256]);
}

#[test]
fn types_without_a_kernel_are_left_to_candle() {
    let w = Tensor::zeros((32, 64), DType::F32, &Device::Cpu).unwrap();
    for t in [
        candle_core::quantized::GgmlDType::Q5_1,
        candle_core::quantized::GgmlDType::F16,
    ] {
        let q = QTensor::quantize(&w, t).unwrap();
        assert!(QMatrix::from_qtensor(&q).unwrap().is_none(), "{t:?}");
    }
    assert_eq!(Isa::Scalar.name(), "scalar");
    assert!(Isa::active().supported());
}

#[test]
fn swiglu_equals_the_two_products_then_silu_times_up() {
    // 40 rows (a partial last group), 1 to 6 activation rows (with and without a full
    // register block), on every kernel family.
    for isa in isas() {
        let (g, _) = matrix(Format::Q4_1, 40, 256, 11);
        let (u, _) = matrix(Format::Q8_0, 40, 256, 12);
        let gate = QMatrix::from_qtensor(&g)
            .unwrap()
            .unwrap()
            .with_isa(isa)
            .unwrap();
        let up = QMatrix::from_qtensor(&u)
            .unwrap()
            .unwrap()
            .with_isa(isa)
            .unwrap();
        for m in [1, 4, 6] {
            let mut xq = Vec::new();
            act::quantize_rows(&values(m * 256, 13), &mut xq);
            let both = matmul_many(&[&gate, &up], &xq, m);
            let want: Vec<f32> = both[0]
                .iter()
                .zip(&both[1])
                .map(|(&a, &b)| a / (1.0 + (-a).exp()) * b)
                .collect();
            let mut got = vec![0f32; m * 40];
            matmul_swiglu(&gate, &up, &xq, m, &mut got);
            assert_eq!(got, want, "{} m={m}", isa.name());
        }
    }
}
