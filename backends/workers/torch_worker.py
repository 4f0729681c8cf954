#!/usr/bin/env python3
"""effbench protocol v1 reference worker for PyTorch + Hugging Face transformers.

Needs only the standard library, torch and transformers. Loads an HF-format model directory
(effbench's default model loads unchanged), or builds an effbench preset (`format: "preset"`:
the architecture's config.json comes in the `load` request; `from_config`, seeded random
weights made on the device in the run's dtype), on `cuda:N` when available, else `cpu`, in
f32/f16/bf16, and serves:
  * run:   greedy decoding with a KV cache (one forward per token, no sampling, no early
           stop). Each token's timestamp is taken with time.perf_counter_ns() right after
           torch.cuda.synchronize(), relative to the request start inside this process.
  * train: one AdamW step per given batch (windows of seq_len + 1 token ids: inputs and
           shifted targets), mean next-token cross-entropy; f16/bf16 train with fp32 master
           weights under torch.autocast (f16 on CUDA with a GradScaler).
  * embed: (scenario "embedding") an encoder (transformers.AutoModel, e.g. BERT/MiniLM)
           over the given token ids, pooled as the directory's sentence-transformers
           modules.json / 1_Pooling/config.json say (cls, max, mean, mean_sqrt_len;
           Normalize), timed from inputs on the device to vectors read back.
Peak memory: torch.cuda.max_memory_allocated / max_memory_reserved, reset when effbench
starts the measured window (`reset_peak_memory`).

Worker options (suite `[options.worker]`): attn_implementation (default "sdpa"; the `attn`
axis, when not "auto", overrides it), matmul_precision ("highest" default; "high" allows TF32).

Usage: python3 torch_worker.py   (protocol on stdin/stdout, logs on stderr)
"""

import json
import math
import os
import sys
import time

# The protocol owns fd 1; anything else printed (by us, transformers or a C library) goes to
# stderr.
_PROTO = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

PROTOCOL = 1
import torch  # noqa: E402  (after the fd swap on purpose)
import transformers  # noqa: E402

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def dtype_bytes(dtype):
    return torch.empty((), dtype=dtype).element_size()


def last_level_cache_bytes():
    """Bytes of the largest CPU cache sysfs lists, 0 when unknown."""
    best = 0
    for i in range(8):
        try:
            text = open("/sys/devices/system/cpu/cpu0/cache/index%d/size" % i).read().strip()
        except OSError:
            break
        mult = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
        try:
            best = max(best, int(text.rstrip("KM")) * mult)
        except ValueError:
            pass
    return best


class WorkerError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def send(obj):
    _PROTO.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
    _PROTO.flush()


class Worker:
    def __init__(self):
        self.model = None
        self.device = None
        self.dtype = None
        self.opt = None
        self.scaler = None
        self.logits_to_keep = False
        self.pooling = None

    def sync(self):
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self, req):
        if PROTOCOL not in req.get("protocol", [PROTOCOL]):
            raise WorkerError("unsupported_version", "this worker speaks protocol %d only" % PROTOCOL)
        cuda = torch.cuda.is_available()
        runtime = {"python": sys.version.split()[0], "torch": torch.__version__,
                   "transformers": transformers.__version__,
                   "torch_cuda": torch.version.cuda, "cpu_threads": torch.get_num_threads()}
        if cuda:
            runtime["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return {"protocol": PROTOCOL, "worker": {"name": "torch", "version": "1"},
                "scenarios": ["inference", "training", "embedding"], "dtypes": list(DTYPES),
                "devices": ["cpu"] + (["cuda"] if cuda else []),
                "clock": "time.perf_counter_ns after torch.cuda.synchronize" if cuda
                else "time.perf_counter_ns",
                "runtime": runtime}

    def build(self, m, load_dtype, kwargs):
        """The model: from an HF directory, or a preset's config with random weights."""
        if m.get("format") == "preset":
            cfg = dict(m["config"])
            cfg.pop("effbench", None)
            config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
            # Made directly on the device (no CPU copy), in the load dtype.
            with torch.device(self.device):
                try:
                    return transformers.AutoModelForCausalLM.from_config(config, dtype=load_dtype, **kwargs)
                except TypeError:  # transformers < 4.56 calls it torch_dtype
                    return transformers.AutoModelForCausalLM.from_config(config, torch_dtype=load_dtype, **kwargs)
        path = m["path"]
        if m.get("format") != "hf" or not os.path.isdir(path):
            raise WorkerError("unsupported", "need an HF model directory or a preset, got %r (format %s)"
                              % (path, m.get("format")))
        try:
            model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=load_dtype, **kwargs)
        except TypeError:  # transformers < 4.56 calls it torch_dtype
            model = transformers.AutoModelForCausalLM.from_pretrained(path, torch_dtype=load_dtype, **kwargs)
        return model

    def load(self, req):
        m = req["model"]
        dev = req["device"]
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise WorkerError("unsupported", "device %s: torch sees no CUDA device" % dev)
        self.device = torch.device(dev)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        opts = req.get("options") or {}
        torch.set_float32_matmul_precision(opts.get("matmul_precision", "highest"))
        torch.manual_seed(req.get("seed", 0))
        self.dtype = DTYPES[req["dtype"]]
        if req.get("scenario") == "embedding":
            return self.load_encoder(m["path"], req, opts)
        training = req.get("scenario") == "training"
        # Training keeps fp32 master weights and autocasts; inference loads in the dtype.
        load_dtype = torch.float32 if training else self.dtype
        attn = (req.get("params") or {}).get("attn", "auto")
        if attn in (None, "auto"):
            attn = opts.get("attn_implementation", "sdpa")
        kwargs = {"attn_implementation": attn}
        model = self.build(m, load_dtype, kwargs)
        model.to(self.device)
        self.model = model
        import inspect
        self.logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters
        if training:
            tr = req.get("train") or {}
            model.train()
            self.opt = torch.optim.AdamW(model.parameters(), lr=tr.get("lr", 1e-3),
                                         betas=tuple(tr.get("betas", (0.9, 0.999))),
                                         eps=tr.get("eps", 1e-8),
                                         weight_decay=tr.get("weight_decay", 0.0))
            if self.dtype == torch.float16 and self.device.type == "cuda":
                self.scaler = torch.amp.GradScaler("cuda")
        else:
            model.eval()
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        params = list(model.parameters())
        total = sum(p.numel() for p in params)
        emb = model.get_input_embeddings().weight
        out = model.get_output_embeddings()
        embedding = emb.numel()
        if out is not None and out.weight.data_ptr() != emb.data_ptr():
            embedding += out.weight.numel()
        cfg = model.config
        special = set()
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            v = getattr(cfg, key, None)
            special.update(v if isinstance(v, list) else [] if v is None else [v])
        preset = m.get("format") == "preset"
        name = m["reference"] if preset else os.path.basename(os.path.normpath(m["path"]))
        # Best effort: a probe or a roofline that cannot be had leaves its field out (effbench
        # then reports no MBU/MFU and says so), it never fails the load.
        peak_flops, peak_bandwidth = None, None
        try:
            peak_flops, peak_bandwidth = self.probes(req["dtype"])
        except Exception as e:  # noqa: BLE001 (out of memory, an unsupported dtype ...)
            sys.stderr.write("roofline probes skipped: %s\n" % e)
        roofline = None
        try:
            roofline = self.roofline(model, total - embedding)
        except Exception as e:  # noqa: BLE001
            sys.stderr.write("model roofline skipped: %s\n" % e)
        return {"peak_flops": peak_flops, "peak_bandwidth": peak_bandwidth,
                "model": {"name": name,
                          "roofline": roofline,
                          "arch": getattr(cfg, "model_type", "unknown"),
                          "dtype": req["dtype"], "params_total": total,
                          "params_non_embedding": total - embedding,
                          "loaded_bytes": sum(p.numel() * p.element_size() for p in params),
                          "details": {"attn_implementation": getattr(cfg, "_attn_implementation", None),
                                      "torch_dtype": str(load_dtype).replace("torch.", ""),
                                      "weights": "random (preset)" if preset else "loaded",
                                      "autocast": training and self.dtype != torch.float32,
                                      "device_name": torch.cuda.get_device_name(self.device)
                                      if self.device.type == "cuda" else "cpu"}},
                "vocab_size": cfg.vocab_size, "special_ids": sorted(int(s) for s in special)}

    def probes(self, dtype_name):
        """This device's two roofs, measured here (never a spec sheet), best of several: a square
        matmul in the run's dtype (2 n^3 FLOPs) and a streaming read of 1 GiB (CPU: a sum over
        it with torch's threads; CUDA: an on-device copy, read + write bytes)."""
        dev, cuda = self.device, self.device.type == "cuda"
        label = "cuda:%d" % (dev.index or 0) if cuda else "cpu"
        threads = 0 if cuda else torch.get_num_threads()

        def best(fn, reps):
            fn()  # warm-up
            t = math.inf
            for _ in range(reps):
                self.sync()
                t0 = time.perf_counter()
                fn()
                self.sync()
                t = min(t, time.perf_counter() - t0)
            return t

        dtype = DTYPES[dtype_name]
        # 1 GiB, or 4x the last-level cache when that is larger (as effbench's own CPU probe);
        # on CUDA at most a quarter of the free memory, since the model is already loaded.
        size = max(1 << 30, 4 * last_level_cache_bytes()) if not cuda else 1 << 30
        if cuda:
            size = min(size, torch.cuda.mem_get_info(dev)[0] // 4) // 4 * 4
        n, reps = (8192, 10) if cuda else (1024, 5)
        if cuda:
            n = min(n, int(math.sqrt(size / 2 / dtype_bytes(dtype))) // 64 * 64)
        a = torch.randn(n, n, device=dev).to(dtype)
        b = torch.randn(n, n, device=dev).to(dtype)
        t = best(lambda: torch.mm(a, b), reps)
        flops = {"device": label, "dtype": dtype_name, "flops_per_s": 2.0 * n ** 3 / t,
                 "threads": threads,
                 "method": "torch.mm %dx%d %s, best of %d (torch %s)" % (n, n, dtype_name, reps, torch.__version__)}
        del a, b
        buf = torch.ones(size // 4, dtype=torch.float32, device=dev)
        mib = size >> 20
        if cuda:
            dst = torch.empty_like(buf)
            t = best(lambda: dst.copy_(buf), 10)
            bandwidth = {"device": label, "bytes_per_s": 2.0 * size / t, "threads": 0,
                         "method": "on-device copy of %d MiB (read + write bytes), best of 10 (torch)" % mib}
            del dst
        else:
            t = best(lambda: buf.sum(), 5)
            bandwidth = {"device": label, "bytes_per_s": size / t, "threads": threads,
                         "method": "torch sum over %d MiB f32 with %d threads, best of 5" % (mib, threads)}
        del buf
        if cuda:
            torch.cuda.empty_cache()
        return flops, bandwidth

    def roofline(self, model, non_embedding):
        """What one token costs this decoder as loaded (effbench's ModelWork): the bytes of every
        matrix a decode step multiplies (the output head included, a tied one once), the KV bytes
        per cached position, and the forward FLOPs of the blocks, the head and attention. Only
        for dense llama-like decoders whose matrices are nn.Linear (llama, mistral, qwen2):
        GPT-2's Conv1D or a mixture of experts would be miscounted, so they get none."""
        cfg = model.config
        if any(getattr(cfg, k, None) for k in ("num_local_experts", "num_experts", "n_routed_experts")):
            raise ValueError("a mixture of experts reads only some experts per token")
        head = model.get_output_embeddings()
        if not isinstance(head, torch.nn.Linear):
            raise ValueError("no nn.Linear output head")
        linears = [mod for mod in model.modules() if isinstance(mod, torch.nn.Linear)]
        block_params = sum(l.weight.numel() for l in linears if l is not head)
        # The blocks' matrices must be (nearly) all of the non-embedding parameters (the rest
        # are norms and biases): else some matrices are not nn.Linear.
        if block_params < 0.95 * non_embedding:
            raise ValueError("only %d of %d non-embedding parameters are nn.Linear weights"
                             % (block_params, non_embedding))
        weight_bytes = sum(l.weight.numel() * l.weight.element_size() for l in linears)
        block_macs = sum(l.in_features * l.out_features for l in linears if l is not head)
        heads = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        layers = cfg.num_hidden_layers
        kv_size = dtype_bytes(self.dtype)
        return {"weight_bytes_per_step": weight_bytes,
                "kv_bytes_per_position": 2 * layers * kv_heads * head_dim * kv_size,
                "block_flops_per_token": 2.0 * block_macs,
                "head_flops_per_token": 2.0 * head.in_features * head.out_features,
                "attention_flops_per_position": 4.0 * layers * heads * head_dim}

    def load_encoder(self, path, req, opts):
        self.pooling = read_pooling(path)
        try:
            model = transformers.AutoModel.from_pretrained(path, dtype=self.dtype, add_pooling_layer=False)
        except TypeError:  # transformers < 4.56 calls it torch_dtype
            model = transformers.AutoModel.from_pretrained(path, torch_dtype=self.dtype, add_pooling_layer=False)
        model.to(self.device).eval()
        self.model = model
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        params = list(model.parameters())
        total = sum(p.numel() for p in params)
        emb = model.get_input_embeddings().weight.numel()
        cfg = model.config
        return {"model": {"name": os.path.basename(os.path.normpath(path)),
                          "arch": getattr(cfg, "model_type", "unknown"),
                          "dtype": req["dtype"], "params_total": total,
                          "params_non_embedding": total - emb,
                          "loaded_bytes": sum(p.numel() * p.element_size() for p in params),
                          "details": {"pooling": "+".join(self.pooling[0])
                                      + (", normalized" if self.pooling[1] else ""),
                                      "implementation": "transformers.AutoModel",
                                      "device_name": torch.cuda.get_device_name(self.device)
                                      if self.device.type == "cuda" else "cpu"}},
                "vocab_size": cfg.vocab_size, "special_ids": [getattr(cfg, "pad_token_id", 0) or 0]}

    def embed(self, req, t0):
        if self.model is None or getattr(self, "pooling", None) is None:
            raise WorkerError("bad_request", "`embed` before an embedding `load`")
        if req.get("reset_peak_memory") and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        ids = req["inputs"]["input_ids"]
        width = max(len(s) for s in ids)
        pad = getattr(self.model.config, "pad_token_id", 0) or 0
        mask = [[1] * len(s) + [0] * (width - len(s)) for s in ids]
        ids = [s + [pad] * (width - len(s)) for s in ids]
        with torch.inference_mode():
            self.sync()
            start = time.perf_counter_ns()
            x = torch.tensor(ids, dtype=torch.long, device=self.device)
            m = torch.tensor(mask, dtype=torch.long, device=self.device)
            h = self.model(input_ids=x, attention_mask=m).last_hidden_state.float()
            out = pool(h, m, *self.pooling)
            vectors = out.cpu().tolist()
            embed_ns = time.perf_counter_ns() - start
        return {"embeddings": vectors, "embed_ns": embed_ns, "memory": self.memory(req)}

    def memory(self, req):
        if self.device.type != "cuda":
            return None
        return {"max_allocated_bytes": torch.cuda.max_memory_allocated(self.device),
                "max_reserved_bytes": torch.cuda.max_memory_reserved(self.device),
                "source": "torch.cuda.max_memory_allocated / max_memory_reserved"}

    def forward_last(self, ids, past):
        kw = {"input_ids": ids, "past_key_values": past, "use_cache": True}
        if self.logits_to_keep:
            kw["logits_to_keep"] = 1
        out = self.model(**kw)
        return out.logits[:, -1, :].argmax(-1), out.past_key_values

    def run(self, req, t0):
        if self.model is None or self.opt is not None:
            raise WorkerError("bad_request", "`run` before an inference `load`")
        inputs = req["inputs"]
        gen_len = int(inputs["gen_len"])
        if req.get("reset_peak_memory") and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        stamps, tokens = [], []
        with torch.inference_mode():
            self.sync()
            start = time.perf_counter_ns()
            ids = torch.tensor(inputs["prompt_ids"], dtype=torch.long, device=self.device)
            nxt, past = self.forward_last(ids, None)
            tokens.append(nxt)
            self.sync()
            stamps.append(time.perf_counter_ns() - start)
            for _ in range(gen_len - 1):
                nxt, past = self.forward_last(nxt[:, None], past)
                tokens.append(nxt)
                self.sync()
                stamps.append(time.perf_counter_ns() - start)
            out = torch.stack(tokens, dim=1).tolist()
        return {"outputs": {"token_ids": out},
                "emissions": [{"t_ns": t, "tokens": 1} for t in stamps],
                "memory": self.memory(req)}

    def train(self, req, t0):
        if self.opt is None:
            raise WorkerError("bad_request", "`train` before a training `load`")
        if req.get("reset_peak_memory") and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        autocast = self.dtype != torch.float32
        steps = []
        for batch in req["inputs"]["batches"]:
            self.sync()
            s0 = time.perf_counter_ns()
            data = torch.tensor(batch, dtype=torch.long, device=self.device)
            x, y = data[:, :-1], data[:, 1:]
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=autocast):
                logits = self.model(input_ids=x, use_cache=False).logits
            loss = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                loss.backward()
                self.opt.step()
            value = loss.item()
            self.sync()
            step_ns = time.perf_counter_ns() - s0
            if not math.isfinite(value):
                raise WorkerError("diverged", "loss is %s at step %d of this request" % (value, len(steps)))
            steps.append({"loss": value, "step_ns": step_ns})
        return {"steps": steps, "memory": self.memory(req)}


def read_pooling(path):
    """(modes, normalize) from sentence-transformers' modules.json and the pooling config;
    mean pooling without normalization when there is no modules.json."""
    modules_path = os.path.join(path, "modules.json")
    if not os.path.isfile(modules_path):
        return (["mean"], False)
    modules = json.load(open(modules_path))
    pooling_dir, normalize = None, False
    for m in modules:
        kind = m.get("type", "").rsplit(".", 1)[-1]
        if kind == "Pooling":
            pooling_dir = m.get("path", "")
        elif kind == "Normalize":
            normalize = True
        elif kind != "Transformer":
            raise WorkerError("unsupported", "module type %r is not supported" % m.get("type"))
    if pooling_dir is None:
        raise WorkerError("unsupported", "modules.json lists no Pooling module")
    cfg = json.load(open(os.path.join(path, pooling_dir, "config.json")))
    order = [("cls", "pooling_mode_cls_token"), ("max", "pooling_mode_max_tokens"),
             ("mean", "pooling_mode_mean_tokens"), ("mean_sqrt_len", "pooling_mode_mean_sqrt_len_tokens")]
    modes = [name for name, key in order if cfg.get(key)]
    if not modes:
        raise WorkerError("unsupported", "the pooling config sets no supported mode")
    return (modes, normalize)


def pool(h, mask, modes, normalize):
    """Pooled vectors of hidden states h (b, t, d) under mask (b, t), sentence-transformers'
    arithmetic (padding excluded; max sets padding to -1e9)."""
    m = mask.unsqueeze(-1).to(h.dtype)
    counts = m.sum(1).clamp(min=1e-9)
    parts = []
    for mode in modes:
        if mode == "cls":
            parts.append(h[:, 0])
        elif mode == "max":
            parts.append(h.masked_fill(m == 0, -1e9).max(1).values)
        elif mode == "mean":
            parts.append((h * m).sum(1) / counts)
        else:
            parts.append((h * m).sum(1) / counts.sqrt())
    out = torch.cat(parts, 1)
    return torch.nn.functional.normalize(out, p=2, dim=1) if normalize else out


def main():
    w = Worker()
    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        t0 = time.perf_counter_ns()
        req_id = op = None
        try:
            req = json.loads(line)
            req_id, op = req.get("id"), req.get("op")
            if op == "shutdown":
                send({"id": req_id, "ok": True})
                return 0
            handler = {"describe": lambda: w.describe(req), "load": lambda: w.load(req),
                       "run": lambda: w.run(req, t0), "train": lambda: w.train(req, t0),
                       "embed": lambda: w.embed(req, t0)}.get(op)
            if handler is None:
                raise WorkerError("bad_request", "unknown op %r" % op)
            reply = handler()
            if reply.get("memory") is None:
                reply.pop("memory", None)
            reply.update({"id": req_id, "ok": True})
            if op in ("run", "train", "embed"):
                reply["op_ns"] = time.perf_counter_ns() - t0
            send(reply)
        except WorkerError as e:
            send({"id": req_id, "error": {"kind": e.kind, "message": str(e)}})
        except torch.cuda.OutOfMemoryError as e:
            send({"id": req_id, "error": {"kind": "out_of_memory", "message": str(e).splitlines()[0]}})
        except Exception as e:  # report and keep serving; effbench decides
            import traceback
            traceback.print_exc()
            kind = "load_failed" if op == "load" else "internal"
            send({"id": req_id, "error": {"kind": kind, "message": "%s: %s" % (type(e).__name__, e)}})


if __name__ == "__main__":
    sys.exit(main())
