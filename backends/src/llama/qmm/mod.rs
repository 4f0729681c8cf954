//! Fast CPU matrix products for quantized GGUF weights (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K),
//! replacing candle's `QMatMul` in the llama model's linear layers.
//!
//! - Weights are decoded at load time ([`format`]) and repacked ([`pack`]) into tiles of 16
//!   interleaved rows per 32-value block, the layout integer dot-product instructions want
//!   (as llama.cpp's CPU "repack" buffers do).
//! - Activations are quantized per 32-value block to 8 bits ([`act`]), once per input even
//!   when several matrices share it (q/k/v, gate/up).
//! - Kernels are chosen at run time ([`Isa`]): AVX-512 F/BW/VNNI, AVX2/FMA/F16C, or portable
//!   scalar code. The binary stays portable (AVX-512 code is compiled per function with
//!   `#[target_feature]` and only called when the CPU reports the features). All three give
//!   bit-identical results. `EFFBENCH_QMM_ISA=avx2|scalar` caps the choice (tests, A/B).
//! - Each weight tile is unpacked once per group of up to [`TILE_T`] activation rows, so
//!   prefill is a register-blocked GEMM rather than repeated matrix-vector products.
//! - Work is split over row groups (of all matrices sharing an input) on candle's persistent
//!   barrier pool (`candle_core::utils::barrier_pool`, spinning workers, no spawn per product;
//!   the same pool candle's own CPU kernels use, so the two never compete for cores).

pub mod act;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod format;
pub mod pack;
mod scalar;

use act::{XBlock, QK};
use candle_core::quantized::QTensor;
use candle_core::{DType, Result, Tensor};
pub use format::Format;
use pack::{Line, ROWS};

/// Activation rows one weight tile is unpacked for (prefill register blocking).
pub const TILE_T: usize = 4;

/// A kernel family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust.
    Scalar,
    /// AVX2 + FMA + F16C (x86-64-v3).
    Avx2,
    /// AVX-512 F + BW + VNNI.
    Avx512Vnni,
}

impl Isa {
    /// Every kernel family, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni];

    /// Name in results and test output.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }

    /// True when this CPU can run the family.
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The family used by default: the best this CPU supports, capped by `EFFBENCH_QMM_ISA`
    /// (`scalar`, `avx2`, `avx512vnni`; a cap above what the CPU supports has no effect).
    pub fn active() -> Isa {
        use std::sync::OnceLock;
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let cap = std::env::var("EFFBENCH_QMM_ISA")
                .ok()
                .and_then(|v| Isa::ALL.into_iter().find(|i| i.name() == v.trim()))
                .unwrap_or(Isa::Avx512Vnni);
            Isa::ALL
                .into_iter()
                .filter(|i| *i <= cap && i.supported())
                .max()
                .unwrap_or(Isa::Scalar)
        })
    }
}

/// A quantized weight matrix `(n, k)` repacked for the kernels.
pub struct QMatrix {
    fmt: Format,
    n: usize,
    k: usize,
    isa: Isa,
    /// `groups x (k / 32)` tiles, group-major.
    data: Vec<Line>,
}

impl std::fmt::Debug for QMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QMatrix({}, {}x{}, {})",
            self.fmt.name(),
            self.n,
            self.k,
            self.isa.name()
        )
    }
}

impl QMatrix {
    /// Repacks a CPU `QTensor` `(n, k)`; `None` when its type has no fast kernel (or it is
    /// not a 2-D CPU tensor).
    pub fn from_qtensor(q: &QTensor) -> Result<Option<QMatrix>> {
        let Some(fmt) = Format::from_ggml(q.dtype()) else {
            return Ok(None);
        };
        let Ok((n, k)) = q.shape().dims2() else {
            return Ok(None);
        };
        if !q.device().is_cpu() || k % fmt.block_values() != 0 || n == 0 {
            return Ok(None);
        }
        QMatrix::from_bytes(fmt, n, k, &q.data()?).map(Some)
    }

    /// Repacks `n` rows of `k` values stored in GGUF blocks of `fmt`.
    pub fn from_bytes(fmt: Format, n: usize, k: usize, data: &[u8]) -> Result<QMatrix> {
        let row_bytes = k / fmt.block_values() * fmt.block_bytes();
        if !k.is_multiple_of(fmt.block_values()) || data.len() != n * row_bytes {
            candle_core::bail!(
                "{} matrix {n}x{k}: {} bytes of data, expected {}",
                fmt.name(),
                data.len(),
                n * row_bytes
            );
        }
        let nb = k / QK;
        let tile = fmt.layout().bytes;
        let groups = n.div_ceil(ROWS);
        let mut data_out = vec![Line([0; 64]); (groups * nb * tile).div_ceil(64)];
        let bytes = as_bytes_mut(&mut data_out);
        let mut rows: Vec<Vec<format::UBlock>> =
            (0..ROWS).map(|_| Vec::with_capacity(nb)).collect();
        for g in 0..groups {
            for (j, row) in rows.iter_mut().enumerate() {
                row.clear();
                let r = g * ROWS + j;
                if r < n {
                    fmt.decode_row(&data[r * row_bytes..(r + 1) * row_bytes], row);
                }
            }
            for b in 0..nb {
                let blocks: [Option<&format::UBlock>; ROWS] =
                    std::array::from_fn(|j| rows[j].get(b));
                let at = (g * nb + b) * tile;
                pack::write_tile(fmt, &blocks, &mut bytes[at..at + tile]);
            }
        }
        Ok(QMatrix {
            fmt,
            n,
            k,
            isa: Isa::active(),
            data: data_out,
        })
    }

    /// The same weights run by another kernel family (tests, benchmarks).
    pub fn with_isa(mut self, isa: Isa) -> Result<QMatrix> {
        if !isa.supported() {
            candle_core::bail!("this CPU cannot run the {} kernels", isa.name());
        }
        self.isa = isa;
        Ok(self)
    }

    /// `(n, k)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// The weight format.
    pub fn format(&self) -> Format {
        self.fmt
    }

    /// The kernel family in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Bytes held (what one full product reads).
    pub fn bytes(&self) -> usize {
        self.data.len() * 64
    }

    fn group_tiles(&self, g: usize) -> &[u8] {
        let per = self.k / QK * self.fmt.layout().bytes;
        &as_bytes(&self.data)[g * per..(g + 1) * per]
    }

    /// Row `r` dequantized (embedding lookups).
    pub fn row(&self, r: usize, out: &mut [f32]) {
        let tiles = self.group_tiles(r / ROWS);
        let tile = self.fmt.layout().bytes;
        for (b, out) in out.chunks_exact_mut(QK).enumerate() {
            let u = pack::read_tile(self.fmt, &tiles[b * tile..(b + 1) * tile], r % ROWS);
            for (i, o) in out.iter_mut().enumerate() {
                *o = self.fmt.value(&u, i);
            }
        }
    }

    /// `x (..., k)` f32 → `x W^T (..., n)` f32.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = QMatrix::forward_many(&[self], x)?;
        out.pop()
            .ok_or_else(|| candle_core::Error::Msg("quantized matmul produced no output".into()))
    }

    /// Several matrices applied to the same input (q/k/v, gate/up): the input is quantized
    /// once and all products run in one parallel region. All must have the same `k`.
    pub fn forward_many(mats: &[&QMatrix], x: &Tensor) -> Result<Vec<Tensor>> {
        let dims = x.dims().to_vec();
        let Some((&k, lead)) = dims.split_last() else {
            candle_core::bail!("quantized matmul needs at least one dimension");
        };
        if let Some(bad) = mats.iter().find(|w| w.k != k) {
            candle_core::bail!(
                "quantized matmul: input has {k} columns, weight has {}",
                bad.k
            );
        }
        let m: usize = lead.iter().product();
        let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut xq = Vec::new();
        act::quantize_rows(&xs, &mut xq);
        let outs = matmul_many(mats, &xq, m);
        outs.into_iter()
            .zip(mats)
            .map(|(o, w)| {
                let mut out_dims = lead.to_vec();
                out_dims.push(w.n);
                Tensor::from_vec(o, out_dims, x.device())
            })
            .collect()
    }
}

fn as_bytes(lines: &[Line]) -> &[u8] {
    // SAFETY: Line is 64 plain bytes with no padding.
    unsafe { std::slice::from_raw_parts(lines.as_ptr() as *const u8, lines.len() * 64) }
}

fn as_bytes_mut(lines: &mut [Line]) -> &mut [u8] {
    // SAFETY: as above; the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr() as *mut u8, lines.len() * 64) }
}

/// Output pointer shared by the worker threads, each writing disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);
// SAFETY: only used for writes to disjoint indices while the buffer is alive.
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}

impl SharedOut {
    /// The address of element `i` (a method, so closures capture the whole `Sync` wrapper
    /// rather than its raw pointer field).
    pub(crate) fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

/// `m` quantized activation rows times each matrix: one `Vec` `(m, n)` per matrix.
pub fn matmul_many(mats: &[&QMatrix], xq: &[XBlock], m: usize) -> Vec<Vec<f32>> {
    let mut outs: Vec<Vec<f32>> = mats.iter().map(|w| vec![0f32; m * w.n]).collect();
    let mut dsts: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
    matmul_into(mats, xq, m, &mut dsts);
    outs
}

/// The same into caller buffers: `outs[i]` holds `(m, n_i)` values of matrix `i`
/// (allocation-free decode steps).
///
/// # Panics
/// When `outs` does not match `mats` in number, or a buffer is shorter than `m * n`, or
/// `xq` holds fewer than `m * k / 32` blocks.
pub fn matmul_into(mats: &[&QMatrix], xq: &[XBlock], m: usize, outs: &mut [&mut [f32]]) {
    assert_eq!(mats.len(), outs.len(), "one output buffer per matrix");
    for (w, o) in mats.iter().zip(outs.iter()) {
        w.check_product(xq, m, o.len());
    }
    let dsts: Vec<SharedOut> = outs.iter_mut().map(|o| SharedOut(o.as_mut_ptr())).collect();
    // Work items are row groups numbered across all matrices.
    let mut first = Vec::with_capacity(mats.len() + 1);
    first.push(0);
    for w in mats {
        first.push(first.last().copied().unwrap_or(0) + w.n.div_ceil(ROWS));
    }
    let total = first.last().copied().unwrap_or(0);
    let work = |items: std::ops::Range<usize>| {
        for item in items {
            let which = first.partition_point(|&f| f <= item) - 1;
            let (w, dst, g) = (mats[which], dsts[which], item - first[which]);
            let rows = ROWS.min(w.n - g * ROWS);
            w.group_rows(g, xq, m, |i, vals| {
                // SAFETY: (matrix, i, row) pairs are written by exactly one work item (groups
                // are partitioned between threads); `outs` outlives the parallel region.
                unsafe {
                    std::ptr::copy_nonoverlapping(vals.as_ptr(), dst.at(i * w.n + g * ROWS), rows)
                };
            });
        }
    };
    let macs: usize = mats.iter().map(|w| m * w.n * w.k).sum();
    share(total, m, macs, work);
}

/// True on one of candle's barrier-pool workers, where handing the pool more work would
/// wait for itself.
pub(crate) fn in_barrier_pool() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("candle-bp-"))
}

/// Runs `work` over `0..items` row groups on candle's pool. With few activation rows (decode:
/// the products only stream weights), each thread takes one contiguous range, so it reads one
/// sequential stream the hardware prefetcher follows; the pool's shared cursor hands out
/// interleaved chunks instead, and cost 7-20 % of decode speed here (SmolLM2 Q8_0 and Q4_1,
/// `examples/decode_speed`, 2 threads, alternating runs, docs/performance.md). Prefill
/// products are compute-bound and keep the cursor, which evens out a straggling thread.
///
/// Products under 2^16 multiply-adds run on the calling thread (waking the pool costs more).
fn share(items: usize, m: usize, macs: usize, work: impl Fn(std::ops::Range<usize>) + Sync) {
    // Inside one of the pool's own workers `execute` would wait for itself: run inline
    // (what `execute_chunked` does there too).
    if in_barrier_pool() || macs < 1 << 16 {
        return work(0..items);
    }
    let pool = candle_core::utils::barrier_pool();
    if m <= 2 * TILE_T {
        let per = items.div_ceil(pool.n_workers() + 1);
        pool.execute(|tid| work((tid * per).min(items)..((tid + 1) * per).min(items)));
    } else {
        pool.execute_chunked(items, work);
    }
}

/// The gated MLP's first half in one pass: `out (m, n) = silu(x gate^T) * (x up^T)`, each
/// row group of both matrices computed by one work item, which applies SiLU and the product
/// to its own outputs (no serial element-wise pass afterwards).
///
/// # Panics
/// When `gate` and `up` differ in shape, `out` is shorter than `m * n`, or `xq` holds fewer
/// than `m * k / 32` blocks.
pub fn matmul_swiglu(gate: &QMatrix, up: &QMatrix, xq: &[XBlock], m: usize, out: &mut [f32]) {
    assert_eq!(gate.dims(), up.dims(), "gate and up shapes");
    gate.check_product(xq, m, out.len());
    let n = gate.n;
    let dst = SharedOut(out.as_mut_ptr());
    let groups = n.div_ceil(ROWS);
    let work = |items: std::ops::Range<usize>| {
        let mut g_vals = vec![[0f32; ROWS]; m];
        for g in items {
            let rows = ROWS.min(n - g * ROWS);
            gate.group_rows(g, xq, m, |i, v| g_vals[i] = *v);
            up.group_rows(g, xq, m, |i, u| {
                let mut h = [0f32; ROWS];
                for ((h, &a), &b) in h.iter_mut().zip(&g_vals[i]).zip(u) {
                    *h = a / (1.0 + (-a).exp()) * b;
                }
                // SAFETY: row group g of row i is written by this work item only; `out`
                // outlives the parallel region.
                unsafe {
                    std::ptr::copy_nonoverlapping(h.as_ptr(), dst.at(i * n + g * ROWS), rows)
                };
            });
        }
    };
    share(groups, m, 2 * m * n * gate.k, work);
}

impl QMatrix {
    /// Panics unless `xq` holds `m` activation rows for this matrix and an output buffer of
    /// `out_len` values holds `m` rows of its products.
    fn check_product(&self, xq: &[XBlock], m: usize, out_len: usize) {
        assert!(
            out_len >= m * self.n,
            "output buffer of {out_len} for {m}x{}",
            self.n
        );
        assert!(
            xq.len() >= m * (self.k / QK),
            "{} activation blocks for {m}x{}",
            xq.len(),
            self.k
        );
    }

    /// Row group `g` times each of the `m` activation rows of `xq`, handed to `put(row,
    /// values)` (register-blocked by [`TILE_T`] rows).
    fn group_rows(
        &self,
        g: usize,
        xq: &[XBlock],
        m: usize,
        mut put: impl FnMut(usize, &[f32; ROWS]),
    ) {
        let nb = self.k / QK;
        let tiles = self.group_tiles(g);
        let mut i = 0;
        while i + TILE_T <= m {
            let xs: [&[XBlock]; TILE_T] =
                std::array::from_fn(|t| &xq[(i + t) * nb..(i + t + 1) * nb]);
            for (t, v) in group(self.isa, self.fmt, tiles, xs).iter().enumerate() {
                put(i + t, v);
            }
            i += TILE_T;
        }
        for i in i..m {
            let [v] = group(self.isa, self.fmt, tiles, [&xq[i * nb..(i + 1) * nb]]);
            put(i, &v);
        }
    }
}

/// One group's products with the chosen kernel family.
#[inline]
fn group<const T: usize>(
    isa: Isa,
    fmt: Format,
    tiles: &[u8],
    xs: [&[XBlock]; T],
) -> [[f32; ROWS]; T] {
    match isa {
        // SAFETY: a QMatrix only holds an Isa that `supported()` confirmed (active() and
        // with_isa() check), and `tiles`/`xs` come from the same matrix and input row.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => unsafe { avx512::group(fmt, tiles, xs) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::group(fmt, tiles, xs) },
        _ => scalar::group(fmt, tiles, xs),
    }
}

#[cfg(test)]
mod tests;
