#!/usr/bin/env python3
"""Fault-injection worker for effbench's tests (protocol v1, standard library only).

Usage: fault_worker.py FAULT[:TAG]   (the tests pass the run's `model` value, so one suite
can hold one fault per run; TAG only makes run names distinct).

It behaves correctly except for FAULT:
  ok               speak the protocol: "generate" tokens (previous id + 1) with real
                   timestamps and tiny sleeps; train steps report a real unigram
                   cross-entropy of the batch
  crash-load       die (exit 3) during `load`, after a traceback on stderr
  error-load       reply to `load` with a structured error
  crash-run        die (exit 3) in the 3rd `run` request (mid-run), traceback on stderr
  hang-run         never answer the 2nd `run`
  grandchild-hang  start a grandchild process, then never answer the 2nd `run`
  garbage-run      print a progress bar on stdout instead of the 2nd `run` reply
  huge-line        answer the 2nd `run` with a 2 MiB line
  wrong-version    claim protocol version 2 in `describe`
  slow-shutdown    never answer `shutdown` (the run itself is fine)
  bad-probe        report a memory-bandwidth probe of -1 bytes/s in `load`
  bad-roofline     report a model roofline with -1 block FLOPs per token in `load`
The `ok` worker's `load` reply also carries a model roofline and the two probes, declared
(not measured: a test fixture, labelled so in their `method`) so that the tests can check
that effbench records them and derives MBU and MFU from them.
If FAULT_PID_DIR is set, the worker (and its grandchild) create a file named by their pid
there, so tests can check that none of them outlives effbench.
"""

import json
import math
import os
import subprocess
import sys
import time

FAULT = (sys.argv[1] if len(sys.argv) > 1 else "ok").split(":")[0]
OUT = sys.stdout


def note_pid(pid):
    d = os.environ.get("FAULT_PID_DIR")
    if d:
        open(os.path.join(d, str(pid)), "w").close()


def send(obj):
    OUT.write(json.dumps(obj) + "\n")
    OUT.flush()


def die(where):
    sys.stderr.write("Traceback (most recent call last):\n")
    sys.stderr.write('  File "fault_worker.py", in %s\n' % where)
    sys.stderr.write("RuntimeError: injected crash in %s\n" % where)
    sys.stderr.flush()
    os._exit(3)


def hang():
    while True:
        time.sleep(3600)


def main():
    note_pid(os.getpid())
    sys.stderr.write("fault worker starting with fault %s\n" % FAULT)
    runs = 0
    counts = {}
    vocab = 512
    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        t0 = time.perf_counter_ns()
        req = json.loads(line)
        op, rid = req["op"], req["id"]
        if op == "describe":
            send({"id": rid, "ok": True, "protocol": 2 if FAULT == "wrong-version" else 1,
                  "worker": {"name": "fault", "version": "1"},
                  "scenarios": ["inference", "training"], "dtypes": ["f32", "f16", "bf16"],
                  "devices": ["cpu"], "clock": "time.perf_counter_ns"})
        elif op == "load":
            if FAULT == "crash-load":
                die("load")
            if FAULT == "error-load":
                send({"id": rid, "error": {"kind": "unsupported",
                                           "message": "dtype %s is not supported here" % req["dtype"]}})
                continue
            reply = {"id": rid, "ok": True, "vocab_size": vocab, "special_ids": [0, 1, 2, 3],
                     "model": {"name": "fault-" + FAULT, "arch": "none", "dtype": req["dtype"],
                               "params_total": 0, "details": {"fault": FAULT}}}
            if FAULT in ("ok", "bad-probe", "bad-roofline"):
                declared = "declared by the fault worker (a test fixture, not measured)"
                reply["model"]["roofline"] = {
                    "weight_bytes_per_step": 1000000, "kv_bytes_per_position": 1000,
                    "block_flops_per_token": -1.0 if FAULT == "bad-roofline" else 2000000.0,
                    "head_flops_per_token": 1000.0,
                    "attention_flops_per_position": 100.0}
                reply["peak_flops"] = {"device": "cpu", "dtype": req["dtype"], "flops_per_s": 1e9,
                                       "threads": 1, "method": declared}
                reply["peak_bandwidth"] = {"device": "cpu", "bytes_per_s": -1.0 if FAULT == "bad-probe" else 1e9,
                                           "threads": 1, "method": declared}
            send(reply)
        elif op == "run":
            runs += 1
            if FAULT == "crash-run" and runs == 3:
                die("run")
            if FAULT == "hang-run" and runs == 2:
                sys.stderr.write("about to hang\n")
                hang()
            if FAULT == "grandchild-hang" and runs == 2:
                child = subprocess.Popen([sys.executable, __file__, "ok"], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL)
                note_pid(child.pid)
                hang()
            if FAULT == "garbage-run" and runs == 2:
                OUT.write("Loading checkpoint shards: 100%|##########| 2/2\n")
                OUT.flush()
                hang()
            if FAULT == "huge-line" and runs == 2:
                OUT.write('{"id": %d, "ok": true, "pad": "%s"}\n' % (rid, "x" * (2 << 20)))
                OUT.flush()
                hang()
            inputs = req["inputs"]
            out, emissions = [], []
            seqs = [[p[-1]] for p in inputs["prompt_ids"]]
            for _ in range(inputs["gen_len"]):
                time.sleep(0.0002)
                for s in seqs:
                    s.append((s[-1] + 1) % vocab)
                emissions.append({"t_ns": time.perf_counter_ns() - t0, "tokens": 1})
            out = [s[1:] for s in seqs]
            send({"id": rid, "ok": True, "outputs": {"token_ids": out}, "emissions": emissions,
                  "op_ns": time.perf_counter_ns() - t0,
                  "memory": {"max_allocated_bytes": 1000 * runs, "source": "fault worker"}})
        elif op == "train":
            steps = []
            for batch in req["inputs"]["batches"]:
                s0 = time.perf_counter_ns()
                toks = [t for w in batch for t in w[1:]]
                total = sum(counts.values()) + vocab
                loss = -sum(math.log((counts.get(t, 0) + 1) / total) for t in toks) / len(toks)
                for t in toks:
                    counts[t] = counts.get(t, 0) + 1
                steps.append({"loss": loss, "step_ns": max(1, time.perf_counter_ns() - s0)})
            send({"id": rid, "ok": True, "steps": steps, "op_ns": time.perf_counter_ns() - t0})
        elif op == "shutdown":
            if FAULT == "slow-shutdown":
                hang()
            send({"id": rid, "ok": True})
            return 0
        else:
            send({"id": rid, "error": {"kind": "bad_request", "message": "unknown op " + op}})


if __name__ == "__main__":
    sys.exit(main())
