#!/usr/bin/env python3
"""Lines and bytes of each function's expansion, as macro-harness printed them (SIZE lines in
<results>/expansions/sizes.txt; the expansions themselves, formatted by prettyplease like ad-macro's
`show` test, are <results>/expansions/<fn>.rs). Parts: the echoed original function, `<fn>_grad`
and the hidden companion.

Usage: expansions.py RESULTS_DIR
"""
import os
import sys

PARTS = ("original", "grad", "companion")


def read_sizes(results):
    """{short name: {part: (lines, bytes)}} in file order."""
    sizes = {}
    for line in open(os.path.join(results, "expansions", "sizes.txt")):
        w = line.split()
        if len(w) == 5 and w[0] == "SIZE":
            sizes.setdefault(w[1], {})[w[2]] = (int(w[3]), int(w[4]))
    return sizes


def table(sizes, order):
    print("| function | original fn lines / bytes | `_grad` | companion | whole expansion "
          "| generated (grad + companion) / original, lines |")
    print("|---|---|---|---|---|---|")
    tot = {p: [0, 0] for p in PARTS}
    for f in order:
        s = sizes[f]
        for p in PARTS:
            tot[p][0] += s[p][0]
            tot[p][1] += s[p][1]
    for f, s in [(f, sizes[f]) for f in order] + [("total", tot)]:
        whole = [sum(s[p][i] for p in PARTS) for i in (0, 1)]
        ratio = (s["grad"][0] + s["companion"][0]) / s["original"][0]
        print(f"| {f} | " + " | ".join(f"{s[p][0]} / {s[p][1]}" for p in PARTS)
              + f" | {whole[0]} / {whole[1]} | {ratio:.1f}× |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sizes = read_sizes(sys.argv[1])
    table(sizes, list(sizes))
