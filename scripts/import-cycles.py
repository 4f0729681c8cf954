#!/usr/bin/env python3
"""Import cycles between the top-level modules of a crate (issue 18's "no import cycle").

Reads every .rs file under SRC (default harness/src), maps each file to its top-level module
(`runner.rs` -> runner, `cluster/merge.rs` -> cluster; `*_tests.rs`, code after the first
`#[cfg(test)]` and comments are left out), collects `crate::x` references in code, and prints each strongly
connected component of more than one module with its internal edges. Exit 1 when there is a
cycle, so it can become a check once the harness has none.

    scripts/import-cycles.py [SRC]
"""
import os
import re
import sys
from collections import defaultdict


def modules(root):
    mods = defaultdict(list)
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            top = os.path.relpath(path, root).split(os.sep)[0].removesuffix(".rs")
            if top.endswith("_tests") or top in ("lib", "main"):
                continue
            mods[top].append(path)
    return mods


def edges(mods):
    out = defaultdict(set)
    for m, files in mods.items():
        for path in files:
            src = open(path, encoding="utf-8").read()
            cut = src.find("#[cfg(test)]")
            if cut >= 0:
                src = src[:cut]
            # Comments (doc links included) name modules without depending on them.
            src = re.sub(r"//[^\n]*", "", src)
            names = set(re.findall(r"crate::([a-z_0-9]+)", src))
            for group in re.findall(r"use crate::\{([^}]*)\}", src, re.S):
                names.update(re.findall(r"(?:^|,)\s*([a-z_0-9]+)", group))
            out[m].update(n for n in names if n != m and n in mods)
    return out


def components(nodes, out):
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in out[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return [c for c in comps if len(c) > 1]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "harness/src"
    mods = modules(root)
    out = edges(mods)
    cycles = components(mods, out)
    if not cycles:
        print(f"{root}: no import cycle between its {len(mods)} top-level modules")
        return 0
    for c in sorted(cycles, key=len, reverse=True):
        print(f"{root}: cycle of {len(c)} modules: {', '.join(c)}")
        for m in c:
            print(f"  {m} -> {', '.join(sorted(x for x in out[m] if x in c))}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
