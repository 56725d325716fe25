#!/usr/bin/env python3
"""Per-phase rustc times of each variant crate from `-Z time-passes`.

Measurement only: -Z flags are nightly-only; on the stable toolchain they are unlocked with
RUSTC_BOOTSTRAP=1 (an escape hatch meant for building the compiler itself, fine for a measurement
of throw-away crates in the scratch dir, never for a real build). Uses its own target dirs
($BUILD_COST_DIR/target-tp, target-tp-bo3) so the main measurement's artifacts are not touched.

Usage: timepasses.py [--reps N] [--modes release,debug,check,debug_bo3] [--out F] [variant ...]
       timepasses.py --report timepasses.json
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import CRATES, SCRATCH, all_variants, macro_hash  # noqa: E402

TARGET = os.path.join(SCRATCH, "target-tp")
PROFILE = {"release": ["--release"], "debug": [], "check": ["--profile=check"],
           # Debug build, but the proc macro (and its dependencies) compiled with opt-level 3
           # (`[profile.dev.build-override] opt-level = 3`); own target dir.
           "debug_bo3": []}
# Top-level-ish phases worth reporting (time-passes nests some of them).
PHASES = ["macro_expand_crate", "type_check_crate", "MIR_borrow_checking", "generate_crate_metadata",
          "codegen_crate", "LLVM_passes", "LLVM_thinlto", "finish_ongoing_codegen", "link", "total"]
LINE = re.compile(r"^time:\s+([0-9.]+);.*\t(\S+)$")


def run(variant, mode, passes):
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET, RUSTC_BOOTSTRAP="1", CARGO_INCREMENTAL="0",
               CARGO_TERM_COLOR="never")
    if mode == "debug_bo3":
        env["CARGO_TARGET_DIR"] = TARGET + "-bo3"
        env["CARGO_PROFILE_DEV_BUILD_OVERRIDE_OPT_LEVEL"] = "3"
    for k in ("RUSTC_WRAPPER", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS",
              "CARGO_BUILD_RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER"):
        env.pop(k, None)
    cmd = ["cargo", "rustc", "--offline"] + PROFILE[mode]
    if passes:
        cmd += ["--", "-Z", "time-passes"]
    d = os.path.join(CRATES, variant)
    if passes:
        os.utime(os.path.join(d, "src", "lib.rs"))
    r = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{variant} {mode}: {r.stderr}")
    compiled = [l.split()[1] for l in r.stderr.splitlines()
                if l.strip().startswith(("Compiling", "Checking"))]
    times = {}
    for l in r.stderr.splitlines():
        m = LINE.match(l)
        if m:
            times[m.group(2)] = times.get(m.group(2), 0.0) + float(m.group(1))
    return compiled, times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--modes", default="release,debug,check,debug_bo3")
    ap.add_argument("--out", default=os.path.join(SCRATCH, "timepasses.json"))
    ap.add_argument("variants", nargs="*")
    a = ap.parse_args()
    variants = a.variants or all_variants()
    res = {}
    h0 = macro_hash()
    for mode in a.modes.split(","):
        for v in variants:
            run(v, mode, False)  # dependencies, untimed
        for rep in range(a.reps):
            order = variants[rep % len(variants):] + variants[:rep % len(variants)]
            for v in order:
                for _ in range(3):
                    run(v, mode, False)
                    compiled, times = run(v, mode, True)
                    if compiled == [v]:
                        break
                    print(f"  discarded {v} {mode}: compiled {compiled}", file=sys.stderr)
                res.setdefault(mode, {}).setdefault(v, []).append(times)
            print(f"{mode} rep {rep + 1}/{a.reps}", file=sys.stderr)
    h1 = macro_hash()
    json.dump(res, open(a.out, "w"), indent=1)
    print(f"ad source hash {h0} -> {h1}" + ("" if h0 == h1 else "  (CHANGED during the run)"))
    report(res)


def report(res):
    print("rustc -Z time-passes (RUSTC_BOOTSTRAP=1), median seconds per phase; "
          "Δ = with_ad − without_ad")
    for mode, by_v in res.items():
        print(f"\n## {mode}\n")
        phases = [p for p in PHASES if any(p in t for xs in by_v.values() for t in xs)]
        print("| variant | " + " | ".join(phases) + " |")
        print("|---" * (len(phases) + 1) + "|")
        med = {v: {p: statistics.median(t.get(p, 0.0) for t in xs) for p in phases}
               for v, xs in by_v.items()}
        for v in by_v:
            print(f"| {v} | " + " | ".join(f"{med[v][p]:.3f}" for p in phases) + " |")
        if "without_ad" in med:
            for v in by_v:
                if v != "without_ad":
                    print(f"| Δ {v} | " + " | ".join(
                        f"{med[v][p] - med['without_ad'][p]:+.3f}" for p in phases) + " |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--report":
        report(json.load(open(sys.argv[2] if len(sys.argv) > 2 else os.path.join(SCRATCH, "timepasses.json"))))
    else:
        main()
