#!/usr/bin/env python3
"""One table per results directory: what each #[ad::gradient] function adds to the build.

Usage: summary.py RESULTS_DIR   (reads measure.json, timepasses.json, macro_time.txt,
variants.json and expansions/sizes.txt there)
"""
import json
import os
import re
import statistics
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from expansions import read_sizes  # noqa: E402

if len(sys.argv) != 2:
    sys.exit(__doc__)
R = sys.argv[1]
m = json.load(open(os.path.join(R, "measure.json")))
tp = json.load(open(os.path.join(R, "timepasses.json")))
FNS = [short for short, _fn in json.load(open(os.path.join(R, "variants.json")))["functions"]]
ALL = f"all {len(FNS)}"
ROWS = [(ALL, "with_ad")] + [(f, f"only_{f}") for f in FNS]

mt, prof = {}, None
mt_path = os.path.join(R, "macro_time.txt")
for line in open(mt_path) if os.path.exists(mt_path) else []:
    if line.startswith("harness"):
        prof = "opt0" if "opt-level 0" in line else "release"
    x = re.match(r"TIME (\w+) min_ms=([0-9.]+)", line)
    if x and prof:
        mt.setdefault(prof, {})[x.group(1)] = float(x.group(2))


def med(mode, v, k):
    return statistics.median(s[k] for s in m["samples"][mode][v])


def d(mode, v, k):
    return med(mode, v, k) - med(mode, "without_ad", k)


def tpd(mode, v, phase):
    if mode not in tp:
        return float("nan")
    xs = lambda var: statistics.median(t.get(phase, 0.0) for t in tp[mode][var])
    return xs(v) - xs("without_ad")


es = read_sizes(R)
sizes = {f: (es[f]["original"][0], es[f]["grad"][0] + es[f]["companion"][0],
             es[f]["grad"][1] + es[f]["companion"][1]) for f in FNS}
sizes[ALL] = tuple(sum(sizes[f][i] for f in FNS) for i in range(3))
mt0 = mt.get("opt0", {})
mt0[ALL] = sum(mt0.get(f, float("nan")) for f in FNS)

tp_reps = len(next(iter(next(iter(tp.values())).values()))) if tp else 0
print(f"ad: {m['ad_git']}\n{m['rustc']}, {m['nproc']} cores, {m['reps']} reps (time-passes: "
      f"{tp_reps}), medians; Δ = median(variant) − median(without_ad); wall / CPU in ms\n")
print("| #[gradient] on | fn lines → generated lines (bytes) | macro alone, ms | macro_expand_crate Δ (check) "
      "| `cargo check` Δ wall / CPU | `cargo build` Δ wall / CPU | `cargo build --release` Δ wall / CPU "
      "| release Δ: expand / front end / LLVM (time-passes) |")
print("|---|---|---|---|---|---|---|---|")
for label, v in ROWS:
    o, g, gb = sizes[label]
    cells = [label, f"{o} → {g} ({gb / 1000:.1f} kB)", f"{mt0.get(label, float('nan')):.1f}",
             f"{1000 * tpd('check', v, 'macro_expand_crate'):+.0f}"]
    for mode in ("check", "debug", "release"):
        cells.append(f"{1000 * d(mode, v, 'wall'):+.0f} / {1000 * d(mode, v, 'cpu'):+.0f}")
    fe = sum(tpd("release", v, p) for p in ("type_check_crate", "MIR_borrow_checking", "generate_crate_metadata"))
    cells.append(f"{1000 * tpd('release', v, 'macro_expand_crate'):+.0f} / {1000 * fe:+.0f} / "
                 f"{1000 * tpd('release', v, 'finish_ongoing_codegen'):+.0f}")
    print("| " + " | ".join(cells) + " |")
cells = ["(none: without_ad, absolute)", "", "", ""]
for mode in ("check", "debug", "release"):
    cells.append(f"{1000 * med(mode, 'without_ad', 'wall'):.0f} / {1000 * med(mode, 'without_ad', 'cpu'):.0f}")
cells.append("")
print("| " + " | ".join(cells) + " |")
loads = [s["load1"] for mode in m["samples"].values() for xs in mode.values() for s in xs]
print(f"\nload average during the timed runs: median {statistics.median(loads):.1f} "
      f"(min {min(loads):.1f}, max {max(loads):.1f}) on {m['nproc']} cores")
