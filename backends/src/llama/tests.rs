//! Model-level checks on a tiny random llama: cached decode equals recomputation, the
//! all-position and last-position heads agree, the GGUF path matches the dense path, and the
//! dense path is differentiable.

use super::*;
use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{VarBuilder, VarMap};
use std::collections::HashMap;

fn tiny_config(tie: bool) -> LlamaConfig {
    LlamaConfig {
        hidden_size: 64,
        intermediate_size: 96,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        head_dim: None,
        vocab_size: 128,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: 64,
        tie_word_embeddings: tie,
        bos_token_id: Some(1),
        eos_token_id: Some(2),
        hidden_act: None,
        model_type: None,
        rope_scaling: None,
    }
}

/// A seeded random model (weights 10x the usual init so logits are far from uniform, which
/// makes the comparisons sensitive) and its tensors.
fn tiny(tie: bool) -> (Llama, HashMap<String, Tensor>) {
    let cfg = tiny_config(tie);
    let tensors: HashMap<String, Tensor> = crate::default_model::seeded_tensors(&cfg, 3)
        .into_iter()
        .map(|t| {
            let scale = if t.name.contains("norm") { 1.0 } else { 10.0 };
            let data: Vec<f32> = t.data.iter().map(|x| x * scale).collect();
            let tensor = Tensor::from_vec(data, t.shape, &Device::Cpu).unwrap();
            (t.name, tensor)
        })
        .collect();
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
    (Llama::from_varbuilder(&cfg, vb).unwrap(), tensors)
}

fn ids(rows: &[&[u32]]) -> Tensor {
    let t = rows[0].len();
    let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

const SEQ_A: [u32; 9] = [5, 17, 99, 3, 64, 12, 127, 8, 40];
const SEQ_B: [u32; 9] = [77, 2, 31, 31, 90, 6, 100, 45, 1];

#[test]
fn last_logits_equal_last_row_of_all_logits() {
    let (m, _) = tiny(true);
    let x = ids(&[&SEQ_A, &SEQ_B]);
    let all = m.forward(&x, None, Logits::All).unwrap();
    assert_eq!(all.dims(), &[2, 9, 128]);
    let last = m.forward(&x, None, Logits::Last).unwrap();
    assert_eq!(last.dims(), &[2, 128]);
    let row = all.narrow(1, 8, 1).unwrap().squeeze(1).unwrap();
    assert!(max_abs_diff(&row, &last) < 1e-5);
}

#[test]
fn cached_decode_equals_full_recompute() {
    for tie in [true, false] {
        let (m, _) = tiny(tie);
        let mut cache = m.new_cache(4); // smaller than needed: the cache must grow
                                        // prefill 4, then a chunk of 2 (masked with an offset), then single tokens
        let steps = [(0, 4), (4, 6), (6, 7), (7, 8), (8, 9)];
        for (from, to) in steps {
            let x = ids(&[&SEQ_A[from..to], &SEQ_B[from..to]]);
            let got = m.forward(&x, Some(&mut cache), Logits::Last).unwrap();
            let full = ids(&[&SEQ_A[..to], &SEQ_B[..to]]);
            let want = m.forward(&full, None, Logits::Last).unwrap();
            let d = max_abs_diff(&got, &want);
            assert!(d < 1e-4, "tie={tie} step {from}..{to}: diff {d}");
            assert_eq!(cache.len(), to);
        }
        cache.reset();
        assert!(cache.is_empty());
        let again = m
            .forward(
                &ids(&[&SEQ_A[..3], &SEQ_B[..3]]),
                Some(&mut cache),
                Logits::Last,
            )
            .unwrap();
        let want = m
            .forward(&ids(&[&SEQ_A[..3], &SEQ_B[..3]]), None, Logits::Last)
            .unwrap();
        assert!(max_abs_diff(&again, &want) < 1e-4);
    }
}

#[test]
fn batch_rows_are_independent() {
    let (m, _) = tiny(true);
    let both = m
        .forward(&ids(&[&SEQ_A, &SEQ_B]), None, Logits::All)
        .unwrap();
    let alone = m.forward(&ids(&[&SEQ_B]), None, Logits::All).unwrap();
    assert!(max_abs_diff(&both.narrow(0, 1, 1).unwrap(), &alone) < 1e-4);
}

#[test]
fn half_precision_tracks_f32() {
    let (m, tensors) = tiny(true);
    let x = ids(&[&SEQ_A]);
    let want = m.forward(&x, None, Logits::All).unwrap();
    let scale = want
        .abs()
        .unwrap()
        .max_keepdim(D::Minus1)
        .unwrap()
        .mean_all()
        .unwrap();
    let scale = scale.to_scalar::<f32>().unwrap();
    for dtype in [DType::F16, DType::BF16] {
        let vb = VarBuilder::from_tensors(tensors.clone(), dtype, &Device::Cpu);
        let mh = Llama::from_varbuilder(&m.config, vb).unwrap();
        let got = mh.forward(&x, None, Logits::All).unwrap();
        assert_eq!(got.dtype(), DType::F32);
        let d = max_abs_diff(&got, &want);
        assert!(d < 0.1 * scale, "{dtype:?}: diff {d} vs scale {scale}");
        let mut cache = mh.new_cache(16);
        let step = mh.forward(&x, Some(&mut cache), Logits::Last).unwrap();
        assert_eq!(step.dims(), &[1, 128]);
    }
}

fn gguf_roundtrip(tie: bool, qtype: GgmlDType) -> (Llama, Llama) {
    let (m, tensors) = tiny(tie);
    let mut buf = std::io::Cursor::new(Vec::new());
    write_gguf(&mut buf, &m.config, &tensors, qtype, &[]).unwrap();
    buf.set_position(0);
    let ct = gguf_file::Content::read(&mut buf).unwrap();
    let q = Llama::from_gguf(&ct, &mut buf, &Device::Cpu).unwrap();
    assert_eq!(q.config.tie_word_embeddings, tie);
    assert_eq!(q.rope.layout, RopeLayout::Interleaved);
    (m, q)
}

#[test]
fn gguf_f32_matches_dense_tightly() {
    for tie in [true, false] {
        let (m, q) = gguf_roundtrip(tie, GgmlDType::F32);
        let x = ids(&[&SEQ_A, &SEQ_B]);
        let d = max_abs_diff(
            &m.forward(&x, None, Logits::All).unwrap(),
            &q.forward(&x, None, Logits::All).unwrap(),
        );
        assert!(d < 1e-3, "tie={tie}: diff {d}");
        // cached decode through the GGUF path too
        let mut cache = q.new_cache(16);
        q.forward(&ids(&[&SEQ_A[..8]]), Some(&mut cache), Logits::Last)
            .unwrap();
        let step = q
            .forward(&ids(&[&SEQ_A[8..]]), Some(&mut cache), Logits::Last)
            .unwrap();
        let want = m.forward(&ids(&[&SEQ_A]), None, Logits::Last).unwrap();
        assert!(max_abs_diff(&step, &want) < 1e-3);
    }
}

#[test]
fn gguf_q8_0_stays_close_to_dense() {
    let (m, q) = gguf_roundtrip(true, GgmlDType::Q8_0);
    let x = ids(&[&SEQ_A]);
    let a = m.forward(&x, None, Logits::Last).unwrap();
    let b = q.forward(&x, None, Logits::Last).unwrap();
    let scale = a
        .abs()
        .unwrap()
        .max(D::Minus1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0];
    let d = max_abs_diff(&a, &b);
    assert!(d < 0.05 * scale, "diff {d} scale {scale}");
    assert_eq!(argmax_rows(&a).unwrap(), argmax_rows(&b).unwrap());
    let (total, non_emb) = q.param_counts();
    assert_eq!(total - non_emb, 128 * 64);
    assert!(q.weight_bytes() < m.weight_bytes() / 3);
}

#[test]
fn qk_permutation_round_trips() {
    let w = Tensor::arange(0f32, 8.0 * 3.0, &Device::Cpu)
        .unwrap()
        .reshape((8, 3))
        .unwrap();
    let p = permute_qk_to_interleaved(&w, 2).unwrap();
    // head 0 rows 0..4 = halves [0,1 | 2,3] -> interleaved 0,2,1,3
    let first_col: Vec<f32> = p
        .narrow(1, 0, 1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(first_col, [0.0, 6.0, 3.0, 9.0, 12.0, 18.0, 15.0, 21.0]);
    let back = permute_qk_to_half_split(&p, 2).unwrap();
    assert_eq!(max_abs_diff(&back, &w), 0.0);
}

#[test]
fn dense_path_is_differentiable() {
    let cfg = tiny_config(true);
    let vm = VarMap::new();
    let m = Llama::from_varbuilder(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))
        .unwrap();
    let x = ids(&[&SEQ_A[..8]]);
    let targets = Tensor::new(&SEQ_A[1..], &Device::Cpu).unwrap();
    let logits = m
        .forward(&x, None, Logits::All)
        .unwrap()
        .squeeze(0)
        .unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &targets).unwrap();
    let grads = loss.backward().unwrap();
    let data = vm.data().lock().unwrap();
    for name in [
        "model.embed_tokens.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.1.input_layernorm.weight",
        "model.norm.weight",
    ] {
        let g = grads.get(data[name].as_tensor()).expect(name);
        let n = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(n > 0.0 && n.is_finite(), "{name}: grad norm {n}");
    }
}

#[test]
fn gguf_names_map_every_llama_tensor() {
    assert_eq!(
        gguf_tensor_name("model.layers.12.mlp.down_proj.weight").as_deref(),
        Some("blk.12.ffn_down.weight")
    );
    assert_eq!(
        gguf_tensor_name("model.layers.x.mlp.down_proj.weight"),
        None
    );
    assert_eq!(gguf_tensor_name("rotary.inv_freq"), None);
}

#[test]
fn decode_step_matches_one_sequence_at_a_time() {
    // Three sequences at different positions (prefilled 2, 5 and 7 tokens) advance together.
    let (dense, _) = tiny(false);
    let (_, quant) = gguf_roundtrip(true, GgmlDType::Q8_0);
    for m in [dense, quant] {
        let seqs: [&[u32]; 3] = [&SEQ_A[..2], &SEQ_B[..5], &SEQ_A[..7]];
        let mut caches: Vec<Cache> = seqs
            .iter()
            .map(|s| {
                let mut c = m.new_cache(16);
                m.forward(&ids(&[s]), Some(&mut c), Logits::Last).unwrap();
                c
            })
            .collect();
        let next = [SEQ_A[2], SEQ_B[5], SEQ_A[7]];
        let mut refs: Vec<&mut Cache> = caches.iter_mut().collect();
        let got = m.decode_step(&next, &mut refs).unwrap();
        assert_eq!(got.dims(), &[3, 128]);
        for (i, s) in seqs.iter().enumerate() {
            let mut full = s.to_vec();
            full.push(next[i]);
            let want = m.forward(&ids(&[&full]), None, Logits::Last).unwrap();
            let d = max_abs_diff(&got.narrow(0, i, 1).unwrap(), &want);
            assert!(d < 1e-3, "sequence {i}: diff {d}");
            assert_eq!(caches[i].len(), full.len());
        }
    }
}

#[test]
fn mixed_segments_match_one_sequence_at_a_time() {
    // One pass: a first prompt chunk (no logits wanted), a decode token, and the last chunk
    // of a prompt whose first 3 tokens were prefilled earlier.
    let (dense, _) = tiny(false);
    let (_, quant) = gguf_roundtrip(true, GgmlDType::Q8_0);
    for m in [dense, quant] {
        let mut fresh = m.new_cache(16);
        let mut decoding = m.new_cache(16);
        m.forward(&ids(&[&SEQ_B[..5]]), Some(&mut decoding), Logits::Last)
            .unwrap();
        let mut chunked = m.new_cache(16);
        m.forward(&ids(&[&SEQ_A[..3]]), Some(&mut chunked), Logits::Last)
            .unwrap();
        let mut segs = [
            Segment {
                ids: &SEQ_A[..4],
                cache: &mut fresh,
                logits: false,
            },
            Segment {
                ids: &SEQ_B[5..6],
                cache: &mut decoding,
                logits: true,
            },
            Segment {
                ids: &SEQ_A[3..8],
                cache: &mut chunked,
                logits: true,
            },
        ];
        let got = m.forward_segments(&mut segs).unwrap();
        assert_eq!(got.dims(), &[2, 128]);
        for (row, full) in [(0, &SEQ_B[..6]), (1, &SEQ_A[..8])] {
            let want = m.forward(&ids(&[full]), None, Logits::Last).unwrap();
            let d = max_abs_diff(&got.narrow(0, row, 1).unwrap(), &want);
            assert!(d < 1e-3, "row {row}: diff {d}");
        }
        assert_eq!((fresh.len(), decoding.len(), chunked.len()), (4, 6, 8));
        // The rest of the first prompt continues its cache as if it had come in one piece.
        let mut segs = [Segment {
            ids: &SEQ_A[4..8],
            cache: &mut fresh,
            logits: true,
        }];
        let got = m.forward_segments(&mut segs).unwrap();
        let want = m.forward(&ids(&[&SEQ_A[..8]]), None, Logits::Last).unwrap();
        assert!(max_abs_diff(&got, &want) < 1e-3);
        // No logits wanted: an empty (0, vocab) tensor, the caches still advance.
        let mut c = m.new_cache(4);
        let mut segs = [Segment {
            ids: &SEQ_B[..2],
            cache: &mut c,
            logits: false,
        }];
        assert_eq!(m.forward_segments(&mut segs).unwrap().dims(), &[0, 128]);
        assert_eq!(c.len(), 2);
    }
}

/// Largest absolute logit, averaged over rows (the scale for relative tolerances).
fn logit_scale(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_keepdim(D::Minus1)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn fused_decode_matches_the_tensor_path() {
    // Every repacked format the tiny model's 64-wide rows allow, tied and untied heads; a
    // batched cache that starts too small (it must grow) and two rows decoded together.
    for (tie, qtype) in [
        (true, GgmlDType::Q8_0),
        (false, GgmlDType::Q4_1),
        (true, GgmlDType::Q4_0),
    ] {
        let (_, q) = gguf_roundtrip(tie, qtype);
        assert!(
            q.fused_decode(),
            "{qtype:?}: every matrix should be repacked"
        );
        let (mut fused, mut tensors) = (q.new_cache(5), q.new_cache(5));
        let prompt = ids(&[&SEQ_A[..4], &SEQ_B[..4]]);
        q.forward(&prompt, Some(&mut fused), Logits::Last).unwrap();
        q.forward_tensors(&prompt, Some(&mut tensors), Logits::Last)
            .unwrap();
        for at in 4..9 {
            let x = ids(&[&SEQ_A[at..at + 1], &SEQ_B[at..at + 1]]);
            let got = q.forward(&x, Some(&mut fused), Logits::Last).unwrap();
            let want = q
                .forward_tensors(&x, Some(&mut tensors), Logits::Last)
                .unwrap();
            assert_eq!(got.dims(), &[2, 128]);
            let (d, scale) = (max_abs_diff(&got, &want), logit_scale(&want));
            assert!(
                d < 1e-3 * scale,
                "{qtype:?} token {at}: diff {d}, scale {scale}"
            );
            assert_eq!(argmax_rows(&got).unwrap(), argmax_rows(&want).unwrap());
            assert_eq!((fused.len(), tensors.len()), (at + 1, at + 1));
        }
        // All-position logits of a one-token step keep their (batch, 1, vocab) shape.
        let x = ids(&[&SEQ_A[..1], &SEQ_B[..1]]);
        let all = q.forward(&x, Some(&mut fused), Logits::All).unwrap();
        assert_eq!(all.dims(), &[2, 1, 128]);
    }
}

#[test]
fn fused_decode_steps_match_the_tensor_path_per_sequence() {
    // Sequences at positions 2, 5 and 7, one without logits (a prompt's last token whose
    // logits nobody needs is never the case in serve, but the head must be skipped exactly).
    let (_, q) = gguf_roundtrip(true, GgmlDType::Q8_0);
    let seqs: [&[u32]; 3] = [&SEQ_A[..2], &SEQ_B[..5], &SEQ_A[..7]];
    let prefill = |s: &[u32]| {
        let mut c = q.new_cache(16);
        q.forward(&ids(&[s]), Some(&mut c), Logits::Last).unwrap();
        c
    };
    let mut a: Vec<Cache> = seqs.iter().map(|s| prefill(s)).collect();
    let mut b: Vec<Cache> = seqs.iter().map(|s| prefill(s)).collect();
    let next = [SEQ_A[2], SEQ_B[5], SEQ_A[7]];
    fn step<'a>(caches: &'a mut [Cache], next: &'a [u32; 3]) -> Vec<Segment<'a>> {
        caches
            .iter_mut()
            .zip(next)
            .enumerate()
            .map(|(i, (c, id))| Segment {
                ids: std::slice::from_ref(id),
                cache: c,
                logits: i != 1,
            })
            .collect()
    }
    let got = q.forward_segments(&mut step(&mut a, &next)).unwrap();
    let want = q.segments_tensors(&mut step(&mut b, &next)).unwrap();
    assert_eq!(got.dims(), &[2, 128]);
    let (d, scale) = (max_abs_diff(&got, &want), logit_scale(&want));
    assert!(d < 1e-3 * scale, "diff {d}, scale {scale}");
    assert_eq!(a.iter().map(Cache::len).collect::<Vec<_>>(), vec![3, 6, 8]);
}

#[test]
fn fused_decode_refuses_positions_beyond_the_context() {
    let (_, q) = gguf_roundtrip(true, GgmlDType::Q8_0);
    let mut cache = q.new_cache(64);
    let full: Vec<u32> = (0..64).map(|i| (i * 7 % 128) as u32).collect();
    q.forward(&ids(&[&full]), Some(&mut cache), Logits::Last)
        .unwrap();
    let err = q
        .forward(&ids(&[&[3]]), Some(&mut cache), Logits::Last)
        .unwrap_err()
        .to_string();
    assert!(err.contains("beyond the model context 64"), "{err}");
}

#[test]
fn blocked_attention_equals_one_block() {
    // 150 new queries after 7 cached positions, GQA 6 heads over 2: blocks of 64 (and of 1,
    // and a block size that does not divide) against one block with the full mask.
    let dev = Device::Cpu;
    let (t, offset, d) = (150, 7, 16);
    let q = (Tensor::randn(0f32, 1.0, (1, 6, t, d), &dev).unwrap() * 0.5).unwrap();
    let k = Tensor::randn(0f32, 1.0, (1, 2, offset + t, d), &dev).unwrap();
    let v = Tensor::randn(0f32, 1.0, (1, 2, offset + t, d), &dev).unwrap();
    let one = attention::attention_in_blocks(&q, &k, &v, offset, DType::F32, usize::MAX).unwrap();
    assert_eq!(one.dims(), &[1, 6, t, d]);
    for block in [64, 1, 37] {
        let got = attention::attention_in_blocks(&q, &k, &v, offset, DType::F32, block).unwrap();
        let diff = max_abs_diff(&got, &one);
        assert!(diff < 1e-5, "block {block}: diff {diff}");
    }
    let inference = attention::causal_attention(&q, &k, &v, offset, DType::F32).unwrap();
    assert!(max_abs_diff(&inference, &one) < 1e-5);
    let short = k.narrow(2, 0, offset + t - 1).unwrap();
    assert!(attention::causal_attention(&q, &short, &v, offset, DType::F32).is_err());
}

#[test]
fn pool_attention_equals_the_tensor_path() {
    // Two sequences, GQA 6 heads over 2, 150 new queries (three blocks, the last short)
    // after 7 cached positions, keys and values read as views of a larger cache buffer
    // (strided like KvCache's), the output in (b, t, heads * d).
    let dev = Device::Cpu;
    let (b, t, offset, d, cap) = (2, 150, 7, 16, 200);
    let q = (Tensor::randn(0f32, 1.0, (b, 6, t, d), &dev).unwrap() * 0.5).unwrap();
    let kbuf = Tensor::randn(0f32, 1.0, (b, 2, cap, d), &dev).unwrap();
    let vbuf = Tensor::randn(0f32, 1.0, (b, 2, cap, d), &dev).unwrap();
    let (k, v) = (
        kbuf.narrow(2, 0, offset + t).unwrap(),
        vbuf.narrow(2, 0, offset + t).unwrap(),
    );
    assert!(!k.is_contiguous());
    let want = attention::attention_in_blocks(&q, &k, &v, offset, DType::F32, usize::MAX)
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .reshape((b, t, 6 * d))
        .unwrap();
    let got = attention::pool_attention(&q, &k, &v, offset)
        .unwrap()
        .expect("f32 on the CPU");
    assert_eq!(got.dims(), &[b, t, 6 * d]);
    let diff = max_abs_diff(&got, &want);
    assert!(diff < 1e-5, "diff {diff}");
    // A single query row, and no cached positions.
    for (tq, off) in [(1, 9), (5, 0)] {
        let q1 = q.narrow(2, 0, tq).unwrap().contiguous().unwrap();
        let (k1, v1) = (
            kbuf.narrow(2, 0, off + tq).unwrap(),
            vbuf.narrow(2, 0, off + tq).unwrap(),
        );
        let want = attention::causal_attention(&q1, &k1, &v1, off, DType::F32)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((b, tq, 6 * d))
            .unwrap();
        let got = attention::pool_attention(&q1, &k1, &v1, off)
            .unwrap()
            .unwrap();
        assert!(max_abs_diff(&got, &want) < 1e-5);
    }
    // Mismatched key count and a dtype it does not take.
    let short = k.narrow(2, 0, offset + t - 1).unwrap();
    assert!(attention::pool_attention(&q, &short, &short, offset).is_err());
    let half = q.to_dtype(DType::F16).unwrap();
    assert!(attention::pool_attention(&half, &k, &v, offset)
        .unwrap()
        .is_none());
}
