#!/usr/bin/env python3
"""effbench protocol v1 reference worker in pure Python (standard library only).

What it computes, for real, with timestamps from time.perf_counter_ns():
  * inference: greedy decoding with a KV cache of a llama-architecture model read from an
    HF directory (config.json + *.safetensors in F32/F16/BF16): RMSNorm, rotary embeddings
    (half-split, as Hugging Face), grouped-query attention, SiLU MLP, tied or separate head,
    all in float64 arithmetic. Same weights and prompts give the same tokens as effbench's
    candle backend in f32. It is slow (about 20 ms per token for the ~0.8 M-parameter
    default model): it exists to test the protocol and the harness end to end on any
    machine, and as a readable example of a worker.
  * training: a bigram language model (a shared unigram bias plus a vocab x vocab table,
    initialised to zero) trained with AdamW on the given batches; only the table rows a
    batch touches are updated (lazy AdamW, like torch.optim.SparseAdam with decoupled weight
    decay), because a pure-Python llama backward would be far too slow. Its loss is real
    and falls towards the corpus's entropy rate; it is not comparable with a llama's.

Usage: python3 reference_worker.py   (speaks protocol v1 on stdin/stdout; logs to stderr)
"""

import array
import json
import math
import os
import struct
import sys
import time

# The protocol owns fd 1; anything else printed (by us or a library) goes to stderr.
_PROTO = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

PROTOCOL = 1


class WorkerError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def send(obj):
    _PROTO.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
    _PROTO.flush()


# ---------------------------------------------------------------- safetensors + config
def read_safetensors(path):
    """{name: (shape, flat list of floats)} for F32/F16/BF16 tensors."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        b, e = meta["data_offsets"]
        raw = data[b:e]
        dt = meta["dtype"]
        if dt == "F32":
            vals = array.array("f")
            vals.frombytes(raw)
        elif dt == "F16":
            vals = struct.unpack("<%de" % (len(raw) // 2), raw)
        elif dt == "BF16":
            halves = array.array("H")
            halves.frombytes(raw)
            vals = array.array("f")
            vals.frombytes(b"".join(struct.pack("<I", h << 16) for h in halves))
        else:
            raise WorkerError("unsupported", "tensor %s has dtype %s (need F32/F16/BF16)" % (name, dt))
        if sys.byteorder != "little" and dt != "F16":
            vals.byteswap()
        out[name] = (meta["shape"], list(vals))
    return out


def rows(shape_vals):
    shape, vals = shape_vals
    n_out, n_in = shape
    return [vals[i * n_in:(i + 1) * n_in] for i in range(n_out)]


def matvec(m, x):
    return [sum(map(float.__mul__, r, x)) for r in m]


def rmsnorm(x, w, eps):
    s = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
    return [v * s * g for v, g in zip(x, w)]


class Llama:
    def __init__(self, path):
        with open(os.path.join(path, "config.json")) as f:
            c = json.load(f)
        if c.get("model_type", "llama") != "llama":
            raise WorkerError("unsupported", "model_type %r: this worker runs llama only" % c.get("model_type"))
        files = sorted(p for p in os.listdir(path) if p.endswith(".safetensors"))
        if not files:
            raise WorkerError("load_failed", "no *.safetensors in %s" % path)
        t = {}
        for p in files:
            t.update(read_safetensors(os.path.join(path, p)))
        self.h = c["hidden_size"]
        self.nh = c["num_attention_heads"]
        self.nkv = c.get("num_key_value_heads") or self.nh
        self.d = c.get("head_dim") or self.h // self.nh
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.vocab = c["vocab_size"]
        self.file_bytes = sum(os.path.getsize(os.path.join(path, p)) for p in files)
        theta = c.get("rope_theta", 10000.0)
        self.inv_freq = [theta ** (-2.0 * i / self.d) for i in range(self.d // 2)]
        g = lambda n: t[n][1]
        self.emb = rows(t["model.embed_tokens.weight"])
        self.head = rows(t["lm_head.weight"]) if "lm_head.weight" in t else self.emb
        self.norm = g("model.norm.weight")
        self.layers = []
        for i in range(c["num_hidden_layers"]):
            p = "model.layers.%d." % i
            self.layers.append({k: (g(p + v + ".weight") if "norm" in v else rows(t[p + v + ".weight"]))
                                for k, v in [("in", "input_layernorm"), ("post", "post_attention_layernorm"),
                                             ("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"),
                                             ("v", "self_attn.v_proj"), ("o", "self_attn.o_proj"),
                                             ("g", "mlp.gate_proj"), ("u", "mlp.up_proj"), ("d", "mlp.down_proj")]})
        self.params = sum(len(v[1]) for v in t.values())
        self.params_embedding = len(t["model.embed_tokens.weight"][1]) + (
            len(t["lm_head.weight"][1]) if "lm_head.weight" in t else 0)
        self.context = c.get("max_position_embeddings", 2048)

    def rope(self, x, pos):
        half = self.d // 2
        out = list(x)
        for h0 in range(0, len(x), self.d):
            for i, f in enumerate(self.inv_freq):
                a = pos * f
                cs, sn = math.cos(a), math.sin(a)
                x1, x2 = x[h0 + i], x[h0 + i + half]
                out[h0 + i] = x1 * cs - x2 * sn
                out[h0 + i + half] = x2 * cs + x1 * sn
        return out

    def step(self, token, cache, want_logits):
        """One position through the model; appends to `cache` (per layer [keys, values])."""
        pos = len(cache[0][0])
        x = list(self.emb[token])
        d, group = self.d, self.nh // self.nkv
        scale = 1.0 / math.sqrt(d)
        for lw, (ks, vs) in zip(self.layers, cache):
            hn = rmsnorm(x, lw["in"], self.eps)
            q = self.rope(matvec(lw["q"], hn), pos)
            ks.append(self.rope(matvec(lw["k"], hn), pos))
            vs.append(matvec(lw["v"], hn))
            att = []
            for hq in range(self.nh):
                kv = (hq // group) * d
                qh = q[hq * d:(hq + 1) * d]
                sc = [sum(map(float.__mul__, qh, k[kv:kv + d])) * scale for k in ks]
                m = max(sc)
                w = [math.exp(s - m) for s in sc]
                z = sum(w)
                att.extend(sum(wj * v[kv + j] for wj, v in zip(w, vs)) / z for j in range(d))
            x = [a + b for a, b in zip(x, matvec(lw["o"], att))]
            hn = rmsnorm(x, lw["post"], self.eps)
            gate, up = matvec(lw["g"], hn), matvec(lw["u"], hn)
            act = [gv / (1.0 + math.exp(-gv)) * uv for gv, uv in zip(gate, up)]
            x = [a + b for a, b in zip(x, matvec(lw["d"], act))]
        if not want_logits:
            return None
        return matvec(self.head, rmsnorm(x, self.norm, self.eps))


def argmax(v):
    return max(range(len(v)), key=v.__getitem__)


# ---------------------------------------------------------------- bigram trainer
class Bigram:
    """logits(next | a) = u + T[a]: a shared unigram bias u (dense AdamW) plus a bigram row
    T[a] (lazy AdamW: only rows the batch touches are updated), all initialised to zero."""

    def __init__(self, vocab, lr, weight_decay, betas, eps):
        self.v = vocab
        self.u = [[0.0] * vocab, [0.0] * vocab, [0.0] * vocab]  # weights, m, v
        self.t = {}  # row -> [weights, m, v] created on first touch
        self.lr, self.wd, (self.b1, self.b2), self.eps = lr, weight_decay, betas, eps
        self.steps = 0

    def row(self, a):
        r = self.t.get(a)
        if r is None:
            r = self.t[a] = [[0.0] * self.v, [0.0] * self.v, [0.0] * self.v]
        return r

    def adamw(self, state, grad, n):
        w, m, v = state
        c1, c2 = 1 - self.b1 ** self.steps, 1 - self.b2 ** self.steps
        for j in range(self.v):
            gj = grad[j] / n
            m[j] = self.b1 * m[j] + (1 - self.b1) * gj
            v[j] = self.b2 * v[j] + (1 - self.b2) * gj * gj
            w[j] -= self.lr * (self.wd * w[j] + (m[j] / c1) / (math.sqrt(v[j] / c2) + self.eps))

    def step(self, batch):
        pairs = [(w[i], w[i + 1]) for w in batch for i in range(len(w) - 1)]
        for a, b in pairs:
            if not (0 <= a < self.v and 0 <= b < self.v):
                raise WorkerError("bad_request", "token id outside the vocabulary of %d" % self.v)
        grads, gu, loss = {}, [0.0] * self.v, 0.0
        u = self.u[0]
        for a, b in pairs:
            logits = [x + y for x, y in zip(u, self.row(a)[0])]
            m = max(logits)
            e = [math.exp(x - m) for x in logits]
            z = sum(e)
            loss += m + math.log(z) - logits[b]
            g = grads.setdefault(a, [0.0] * self.v)
            for j in range(self.v):
                p = e[j] / z
                g[j] += p
                gu[j] += p
            g[b] -= 1.0
            gu[b] -= 1.0
        n = len(pairs)
        self.steps += 1
        self.adamw(self.u, gu, n)
        for a, g in grads.items():
            self.adamw(self.row(a), g, n)
        return loss / n


# ---------------------------------------------------------------- protocol
class Worker:
    def __init__(self):
        self.model = None
        self.trainer = None

    def describe(self, req):
        if PROTOCOL not in req.get("protocol", [PROTOCOL]):
            raise WorkerError("unsupported_version", "this worker speaks protocol %d only" % PROTOCOL)
        return {"protocol": PROTOCOL, "worker": {"name": "reference-python", "version": "1"},
                "scenarios": ["inference", "training"], "dtypes": ["f32"], "devices": ["cpu"],
                "clock": "time.perf_counter_ns",
                "runtime": {"python": sys.version.split()[0], "arithmetic": "float64"}}

    def load(self, req):
        path = req["model"]["path"]
        if req["model"].get("format") != "hf" or not os.path.isdir(path):
            raise WorkerError("unsupported", "need an HF model directory, got %r" % path)
        if req["device"] != "cpu" or req["dtype"] != "f32":
            raise WorkerError("unsupported", "this worker computes on cpu in f32/f64 only")
        self.model = Llama(path)
        m = self.model
        info = {"name": os.path.basename(os.path.normpath(path)), "arch": "llama", "dtype": "f32",
                "params_total": m.params, "params_non_embedding": m.params - m.params_embedding,
                "loaded_bytes": m.params * 8, "file_bytes": m.file_bytes,
                "details": {"layers": len(m.layers), "hidden_size": m.h, "arithmetic": "float64"}}
        if req.get("scenario") == "training":
            tr = req.get("train", {})
            self.trainer = Bigram(m.vocab, tr.get("lr", 1e-3), tr.get("weight_decay", 0.0),
                                  tuple(tr.get("betas", (0.9, 0.999))), tr.get("eps", 1e-8))
            self.model = None
            info.update({"arch": "bigram", "params_total": m.vocab * (m.vocab + 1),
                         "params_non_embedding": 0, "loaded_bytes": 0,
                         "details": {"note": "training runs a bigram LM, not the llama"}})
        return {"model": info, "vocab_size": m.vocab, "special_ids": []}

    def run(self, req, t0):
        if self.model is None:
            raise WorkerError("bad_request", "`run` before an inference `load`")
        prompts, gen_len = req["inputs"]["prompt_ids"], req["inputs"]["gen_len"]
        m = self.model
        if any(len(p) + gen_len > m.context for p in prompts):
            raise WorkerError("bad_request", "prompt + gen_len exceed the context of %d" % m.context)
        caches = [[([], []) for _ in m.layers] for _ in prompts]
        last = []
        for p, cache in zip(prompts, caches):
            for i, tok in enumerate(p):
                logits = m.step(tok, cache, i == len(p) - 1)
            last.append(argmax(logits))
        out = [[t] for t in last]
        emissions = [{"t_ns": time.perf_counter_ns() - t0, "tokens": 1}]
        for _ in range(gen_len - 1):
            for seq, cache in zip(out, caches):
                seq.append(argmax(m.step(seq[-1], cache, True)))
            emissions.append({"t_ns": time.perf_counter_ns() - t0, "tokens": 1})
        return {"outputs": {"token_ids": out}, "emissions": emissions}

    def train(self, req, t0):
        if self.trainer is None:
            raise WorkerError("bad_request", "`train` before a training `load`")
        steps = []
        for batch in req["inputs"]["batches"]:
            s0 = time.perf_counter_ns()
            loss = self.trainer.step(batch)
            steps.append({"loss": loss, "step_ns": time.perf_counter_ns() - s0})
        return {"steps": steps}


def main():
    w = Worker()
    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        t0 = time.perf_counter_ns()
        req_id = None
        try:
            req = json.loads(line)
            req_id, op = req.get("id"), req.get("op")
            if op == "shutdown":
                send({"id": req_id, "ok": True})
                return 0
            if op == "describe":
                reply = w.describe(req)
            elif op == "load":
                reply = w.load(req)
            elif op == "run":
                reply = w.run(req, t0)
            elif op == "train":
                reply = w.train(req, t0)
            else:
                raise WorkerError("bad_request", "unknown op %r" % op)
            reply.update({"id": req_id, "ok": True})
            if op in ("run", "train"):
                reply["op_ns"] = time.perf_counter_ns() - t0
            send(reply)
        except WorkerError as e:
            send({"id": req_id, "error": {"kind": e.kind, "message": str(e)}})
        except Exception as e:  # report, keep serving; the harness decides
            import traceback
            traceback.print_exc()
            send({"id": req_id, "error": {"kind": "internal", "message": "%s: %s" % (type(e).__name__, e)}})


if __name__ == "__main__":
    sys.exit(main())
