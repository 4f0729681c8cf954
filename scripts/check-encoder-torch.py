#!/usr/bin/env python3
"""Checks the PyTorch worker's encoder path against effbench's stored float64 reference
vectors (backends/tests/fixtures/minilm_reference.json): the same token ids through
transformers.AutoModel with the worker's own pooling, on cuda:0 when torch sees a GPU, else
the CPU, in f32. Prints one line per text with the cosine; exits 1 below 1 - 1e-4.

Usage: python3 scripts/check-encoder-torch.py MODEL_DIR
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "backends", "workers"))
import torch  # noqa: E402
import transformers  # noqa: E402
import torch_worker  # noqa: E402  (read_pooling, pool)

model_dir = sys.argv[1]
fixture = json.load(open(os.path.join(os.path.dirname(__file__), "..", "backends", "tests",
                                      "fixtures", "minilm_reference.json")))
device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
model = transformers.AutoModel.from_pretrained(model_dir, add_pooling_layer=False).to(device).eval()
modes, normalize = torch_worker.read_pooling(model_dir)
worst = 1.0
with torch.inference_mode():
    for v in fixture["vectors"]:
        ids = torch.tensor([v["ids"]], device=device)
        mask = torch.ones_like(ids)
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        got = torch_worker.pool(h, mask, modes, normalize)[0].double().cpu().tolist()
        want = v["embedding"]
        dot = sum(a * b for a, b in zip(got, want))
        cos = dot / math.sqrt(sum(a * a for a in got) * sum(b * b for b in want))
        worst = min(worst, cos)
        print("%-70r cosine %.9f (%s)" % (v["text"], cos, device))
print("worst cosine %.9f; threshold 1 - 1e-4: %s" % (worst, "ok" if worst >= 1 - 1e-4 else "FAIL"))
sys.exit(0 if worst >= 1 - 1e-4 else 1)
