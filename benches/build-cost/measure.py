#!/usr/bin/env python3
"""Times `touch src/lib.rs && cargo <build --release | build | check>` of each generated crate.

Usage: measure.py [--reps N] [--modes release,debug,check] [--out results.json] [variant ...]
       measure.py --report results.json
Env (set by run.sh): BUILD_COST_DIR (scratch dir; crates in $BUILD_COST_DIR/crates, cargo output
in $BUILD_COST_DIR/target), AD_PATH (the `ad` workspace the crates depend on).

- Dependencies are built once per mode (untimed) before the timed runs; before every timed run an
  untimed `cargo` call brings them up to date again (the `ad` path dependency may be edited while
  this runs if it is not a snapshot). A timed run in which cargo compiled anything but the
  variant crate is discarded and repeated (at most 3 times), and a hash of the `ad` sources is
  recorded before and after.
- Repetitions are interleaved (rep loop outside, variants inside, order rotated each rep), so slow
  periods of a shared machine are spread over all variants.
- Per run: wall clock and CPU time (user + sys of all child processes) of the whole cargo
  command, and wall clock and CPU time of the variant's rustc process alone (from the
  RUSTC_WRAPPER rustc-timer.sh). CPU time is less disturbed by other jobs on the machine.
- CARGO_INCREMENTAL=0 in all modes (release has it off anyway), so each run compiles the crate
  from scratch.
"""
import argparse
import hashlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRATCH = os.path.abspath(os.environ.get("BUILD_COST_DIR") or os.path.join(REPO, "target", "build-cost"))
CRATES = os.path.join(SCRATCH, "crates")
AD_PATH = os.path.abspath(os.environ.get("AD_PATH") or REPO)
TARGET = os.path.join(SCRATCH, "target")
WRAPPER = os.path.join(HERE, "rustc-timer.sh")
CMDS = {
    "release": ["cargo", "build", "--release", "--offline"],
    "debug": ["cargo", "build", "--offline"],
    "check": ["cargo", "check", "--offline"],
}


def all_variants():
    """The crates gen.py wrote, in its order: with_ad, without_ad, only_<fn>..."""
    return json.load(open(os.path.join(CRATES, "variants.json")))["variants"]


def macro_hash():
    h = hashlib.sha256()
    for sub in ("ad-macro/src", "ad-runtime/src", "src"):
        d = os.path.join(AD_PATH, sub)
        for f in sorted(os.listdir(d)):
            p = os.path.join(d, f)
            if os.path.isfile(p):
                h.update(f.encode())
                h.update(open(p, "rb").read())
    return h.hexdigest()[:12]


def env(log=None):
    e = dict(os.environ, CARGO_TARGET_DIR=TARGET, RUSTC_WRAPPER=WRAPPER, CARGO_TERM_COLOR="never",
             # Full recompilation of the crate in every mode: with the dev profile's incremental
             # cache a `touch` alone would recompile nothing.
             CARGO_INCREMENTAL="0")
    for k in ("BUILDCOST_LOG", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS",
              "CARGO_BUILD_RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER"):
        e.pop(k, None)
    if log:
        e["BUILDCOST_LOG"] = log
    return e


def cargo(variant, mode, log=None):
    return subprocess.run(CMDS[mode], cwd=os.path.join(CRATES, variant), env=env(log),
                          capture_output=True, text=True)


def secs(t):
    """Seconds of a time as bash's `times` prints it: 0m0.412s (or 0m0,412s)."""
    m = re.fullmatch(r"(\d+)m([\d.,]+)s", t)
    return 60 * int(m.group(1)) + float(m.group(2).replace(",", "."))


def timed(variant, mode):
    d = os.path.join(CRATES, variant)
    log = os.path.join(SCRATCH, f".timer-{os.getpid()}.log")
    for _attempt in range(3):
        r = cargo(variant, mode)  # bring dependencies up to date, untimed
        if r.returncode != 0:
            sys.exit(f"{variant} {mode} failed:\n{r.stderr}")
        if os.path.exists(log):
            os.remove(log)
        os.utime(os.path.join(d, "src", "lib.rs"))
        load = os.getloadavg()[0]
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        r = cargo(variant, mode, log)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        if r.returncode != 0:
            sys.exit(f"{variant} {mode} failed:\n{r.stderr}")
        compiled = [l.split()[1] for l in r.stderr.splitlines()
                    if l.strip().startswith(("Compiling", "Checking"))]
        rustc = [(int(l.split()[1]) / 1e6, secs(l.split()[2]) + secs(l.split()[3]))
                 for l in open(log) if l.split()[0] == variant]
        os.remove(log)
        if compiled == [variant] and len(rustc) == 1:
            return {"wall": wall, "cpu": cpu, "rustc": rustc[0][0], "rustc_cpu": rustc[0][1],
                    "load1": load}
        print(f"  discarded ({variant} {mode}): cargo compiled {compiled}", file=sys.stderr)
    sys.exit("could not get a clean timed run")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--modes", default="release,debug,check")
    ap.add_argument("--out", default=os.path.join(SCRATCH, "measure.json"))
    ap.add_argument("variants", nargs="*")
    a = ap.parse_args()
    variants = a.variants or all_variants()
    modes = a.modes.split(",")
    res = {"ad_path": AD_PATH, "reps": a.reps, "samples": {}, "rustc": subprocess.run(
        ["rustc", "-V"], capture_output=True, text=True).stdout.strip(), "nproc": os.cpu_count()}
    res["ad_git"] = subprocess.run(["git", "-C", AD_PATH, "describe", "--always", "--dirty"],
                                   capture_output=True, text=True).stdout.strip()
    snap = os.path.join(AD_PATH, "SNAPSHOT.txt")
    if os.path.exists(snap):
        res["ad_git"] = "snapshot of " + open(snap).readline().strip()
    res["macro_hash_before"] = macro_hash()
    for mode in modes:
        for v in variants:  # warm-up: dependencies and the crate itself, untimed
            r = cargo(v, mode)
            if r.returncode != 0:
                sys.exit(f"{v} {mode} failed:\n{r.stderr}")
            if "warning" in r.stderr:
                print(f"{v} {mode}: warnings:\n{r.stderr}", file=sys.stderr)
        for rep in range(a.reps):
            order = variants[rep % len(variants):] + variants[:rep % len(variants)]
            for v in order:
                res["samples"].setdefault(mode, {}).setdefault(v, []).append(timed(v, mode))
            print(f"{mode} rep {rep + 1}/{a.reps} done", file=sys.stderr)
    res["macro_hash_after"] = macro_hash()
    json.dump(res, open(a.out, "w"), indent=1)
    report(res)


def report(res):
    print(f"rustc: {res['rustc']}; ad: {res['ad_path']} @ {res['ad_git']}; "
          f"source hash {res['macro_hash_before']} -> {res['macro_hash_after']}; "
          f"{res['reps']} reps, median (min) in seconds; Δ = difference of medians vs without_ad")
    for mode, by_v in res["samples"].items():
        print(f"\n## {mode}\n")
        print("| variant | cargo wall | Δ | cargo CPU | Δ | rustc wall | Δ | rustc CPU | Δ | load1 |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        base = by_v.get("without_ad")
        med = lambda xs, k: statistics.median(x[k] for x in xs)
        mn = lambda xs, k: min(x[k] for x in xs)
        for v, xs in by_v.items():
            row = [v]
            for k in ("wall", "cpu", "rustc", "rustc_cpu"):
                row.append(f"{med(xs, k):.3f} ({mn(xs, k):.3f})")
                row.append(f"{med(xs, k) - med(base, k):+.3f}"
                           if base else "")
            row.append(f"{med(xs, 'load1'):.1f}")
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--report":
        report(json.load(open(sys.argv[2] if len(sys.argv) > 2 else os.path.join(SCRATCH, "measure.json"))))
    else:
        main()
