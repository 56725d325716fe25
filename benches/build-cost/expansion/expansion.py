#!/usr/bin/env python3
"""The time #[ad::gradient]'s expansion takes inside rustc, on large generated bodies.

Called by run.sh, which sets SCRATCH, CARGO_TARGET_DIR, RESULTS, REPS and SIZES.
Usage: expansion.py REPO

1. Copies REPO to $SCRATCH/snapshot (without .git, fuzz/ and target*/), so that edits made to
   REPO during the run cannot interfere.
2. Writes one workspace $SCRATCH/crates with one crate per shape, size and variant: `ad` (the
   function has the attribute) and `plain` (the same source without it, the control).
3. Release: `touch src/lib.rs && cargo rustc --release -- -Z time-passes`, REPS times per crate
   (the rep loop outside, the crates inside); medians of macro_expand_crate and total.
4. Debug: one `cargo build` per crate; does rustc succeed, crash or report an error?
5. Writes results.md (the table, also printed), results.json and the stderr of failed builds.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

SCRATCH, RESULTS = os.environ["SCRATCH"], os.environ["RESULTS"]
REPS, SIZES = int(os.environ["REPS"]), [int(s) for s in os.environ["SIZES"].split()]
CRATES = os.path.join(SCRATCH, "crates")
TIME_LINE = re.compile(r"^time:\s+([0-9.]+);.*\s(\S+)$", re.M)


# Each shape returns (operations counted, function source). ops // 4 statement pairs, except
# nested ifs: depth ops // 10, four operations per level.
def straight(ops):
    pairs = "".join(f"    let t{i} = s * 1.01 + y.sin(); s += t{i} * 0.5;\n" for i in range(ops // 4))
    return ops, f"pub fn big(x: f64, y: f64) -> f64 {{\n    let mut s = x;\n{pairs}    s\n}}\n"


def in_loop(ops):
    pairs = "".join(f"        let t{i} = s * 1.01 + v[i].sin(); s += t{i} * 0.5;\n" for i in range(ops // 4))
    return ops, ("pub fn big(v: &[f64], x: f64) -> f64 {\n    let mut s = 0.0;\n"
                 f"    for i in 0..v.len() {{\n{pairs}    }}\n    s\n}}\n")


def nested_ifs(ops):
    depth = ops // 10
    opens = "".join(f"    if s > {i}.5 {{ s = s * y + 1.0; s = s.sin() * 2.0;\n" for i in range(depth))
    closes = "}" * depth
    return depth * 4, f"pub fn big(x: f64, y: f64) -> f64 {{\n    let mut s = x;\n{opens}    {closes}\n    s\n}}\n"


SHAPES = {"straight-line": straight, "loop": in_loop, "nested ifs": nested_ifs}


def snapshot(repo, dest):
    def ignore(d, names):
        top = os.path.realpath(d) == repo
        return {n for n in names if re.fullmatch(r"target(-.*)?", n) or (top and n in (".git", "fuzz"))
                or os.path.realpath(os.path.join(d, n)) == dest}
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(repo, dest, symlinks=True, ignore=ignore)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def generate(ad_path):
    """Returns [(shape, size, ops, name of the `ad` crate, name of the `plain` crate)]."""
    shutil.rmtree(CRATES, ignore_errors=True)
    rows, members = [], []
    for shape, gen in SHAPES.items():
        for size in SIZES:
            ops, body = gen(size)
            names = [f"{gen.__name__}_{size}_{v}" for v in ("ad", "plain")]
            for name, attr in zip(names, ("#[ad::gradient]\n", "")):
                write(f"{CRATES}/{name}/Cargo.toml",
                      f'[package]\nname = "{name}"\nversion = "0.0.0"\nedition = "2021"\n'
                      f'publish = false\n\n[dependencies]\nad = {{ path = "{ad_path}" }}\n')
                write(f"{CRATES}/{name}/src/lib.rs", attr + body)
                members.append(name)
            rows.append((shape, size, ops, *names))
    write(f"{CRATES}/Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [\n"
          + "".join(f'    "{m}",\n' for m in members) + "]\n")
    shutil.copy(os.path.join(ad_path, "Cargo.lock"), CRATES)  # the versions the repository uses
    # -Z flags need RUSTC_BOOTSTRAP=1 on stable. A wrapper gives it to the measured crates'
    # rustc only: set for all of cargo, it would also reach proc-macro2's build script, which
    # then turns on the nightly span API, and the macro measured would not be the stable one.
    write(f"{CRATES}/rustc-bootstrap.sh", '#!/bin/sh\nRUSTC_BOOTSTRAP=1 exec "$@"\n')
    os.chmod(f"{CRATES}/rustc-bootstrap.sh", 0o755)
    return rows


ENV = {k: v for k, v in os.environ.items()
       if k not in ("RUSTC_WRAPPER", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTC_BOOTSTRAP")}
ENV.update(RUSTC_WORKSPACE_WRAPPER=f"{CRATES}/rustc-bootstrap.sh", CARGO_INCREMENTAL="0",
           CARGO_TERM_COLOR="never")


def cargo(command, *args):
    return subprocess.run(["cargo", command, "--offline", *args], cwd=CRATES, env=ENV,
                          capture_output=True, text=True)


def keep_stderr(kind, name, r):
    write(f"{RESULTS}/{kind}-{name}.stderr", r.stderr)


def time_passes(name):
    """(macro_expand_crate, total) in seconds of one release build of crate `name`, or None."""
    os.utime(f"{CRATES}/{name}/src/lib.rs")
    r = cargo("rustc", "--release", "-q", "-p", name, "--", "-Z", "time-passes")
    if r.returncode != 0:
        keep_stderr("release", name, r)
        return None
    t = {m[2]: float(m[1]) for m in TIME_LINE.finditer(r.stderr)}
    return t["macro_expand_crate"], t["total"]


def debug_build(name):
    r = cargo("build", "-q", "-p", name)
    if r.returncode == 0:
        return "ok"
    keep_stderr("debug", name, r)
    return "rustc crashed (SIGSEGV)" if "SIGSEGV" in r.stderr else "error"


def med(xs, i):
    xs = [x[i] for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def table(res):
    f = lambda x, fmt: "–" if x is None else format(x, fmt)
    out = ["| shape | operations | macro_expand_crate, with attribute (s) | same, control (s) "
           "| difference (s) | per operation (µs) | total, with attribute (s) | total, control (s) "
           "| debug build | debug build, control |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in res:
        e_ad, e_plain = med(r["release_ad"], 0), med(r["release_plain"], 0)
        d = None if e_ad is None or e_plain is None else e_ad - e_plain
        per_op = None if d is None else d / r["ops"] * 1e6
        ops = f"{r['ops']} (depth {r['size'] // 10})" if r["shape"] == "nested ifs" else r["ops"]
        out.append(f"| {r['shape']} | {ops} | {f(e_ad, '.3f')} | {f(e_plain, '.3f')} | {f(d, '+.3f')} "
                   f"| {f(per_op, '.0f')} | {f(med(r['release_ad'], 1), '.2f')} "
                   f"| {f(med(r['release_plain'], 1), '.2f')} | {r['debug_ad']} | {r['debug_plain']} |")
    return "\n".join(out) + "\n"


def main():
    repo = os.path.realpath(sys.argv[1])
    ad_path = os.path.join(SCRATCH, "snapshot")
    snapshot(repo, ad_path)
    rows = generate(ad_path)
    # Online only if something is missing from cargo's cache; every later call is --offline.
    if cargo("fetch").returncode != 0:
        subprocess.run(["cargo", "fetch"], cwd=CRATES, env=ENV, check=True)
    names = [n for row in rows for n in row[3:]]
    print(f"# {len(names)} crates in {CRATES}, ad = {ad_path}; reps = {REPS}", flush=True)

    for profile in (["--release"], []):  # dependencies, untimed
        r = cargo("build", "-q", "-p", "ad", *profile)
        if r.returncode != 0:
            sys.exit(r.stderr)
    release = {n: [] for n in names}
    for rep in range(REPS):
        for n in names:
            release[n].append(time_passes(n))
            print(f"rep {rep + 1}/{REPS} {n}: {release[n][-1]}", flush=True)
    debug = {}
    for n in names:
        debug[n] = debug_build(n)
        print(f"debug build {n}: {debug[n]}", flush=True)

    res = [dict(shape=s, size=size, ops=ops, release_ad=release[a], release_plain=release[p],
                debug_ad=debug[a], debug_plain=debug[p]) for s, size, ops, a, p in rows]
    write(f"{RESULTS}/results.json", json.dumps(res, indent=1))
    md = (f"`#[ad::gradient]` inside rustc (`-Z time-passes`, release), median of {REPS}; "
          "control = the same source without the attribute; difference = the macro's cost.\n\n"
          + table(res))
    write(f"{RESULTS}/results.md", md)
    print("\n" + md)


if __name__ == "__main__":
    main()
