#!/usr/bin/env python3
"""Generates the crates that run.sh measures, from the benchmark objectives themselves.

Usage: gen.py AD_PATH OUT_DIR

AD_PATH is the `ad` workspace measured (the snapshot or the repository); the objectives are read
from AD_PATH/benches/objectives/*.rs, so the measured code is always the benchmarks' current code.
For each file there, the `#[ad::gradient...]` functions are extracted together with the top-level
items they use (found by name, transitively: helpers such as `wishart_constant`, constants such as
`HIDDEN`) and its `use std::...` / `use core::...` lines. Each file becomes a module of the
generated crate. Everything else (hand-written adjoints, num-dual and reverse versions, `Problem`
impls) is left out.

Written under OUT_DIR:
  with_ad/          every function keeps its attribute; `use_all()` calls every `<fn>_grad`
  without_ad/       no attribute anywhere; `use_all()` calls the plain functions
  only_<short>/     only that function keeps its attribute
  inputs/<short>.rs each function alone with its attribute (doc comments dropped), for the harness
  macro-harness/    measurement-only binary: ad-macro's modules + macro_harness.rs (see README.md)
  variants.json     the crate names and the functions (short name, name), for the other scripts
Each crate depends on `ad = { path = AD_PATH }` (the harness on ad-macro's dependencies), gets a
copy of AD_PATH/Cargo.lock (same dependency versions) and is its own workspace.

The only hand-written code here is CALLS: one call of each function on small inputs. A gradient
function without an entry (or an entry without a function) is an error, so nothing drifts.
"""
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# function name -> (short name, call of the generated `_grad`, call of the plain function).
# Inputs go through black_box (`bb`) so that nothing is constant-folded away.
_GMM_INPUTS = (
    "let (d, k) = (bb(2usize), bb(2usize));\n"  # d = 2, K = 2, N = 3
    "let alphas = bb(vec![0.1, -0.2]);\n"
    "let means = bb(vec![0.0, 1.0, -1.0, 0.5]);\n"
    "let icf = bb(vec![0.1, 0.2, 0.3, -0.1, 0.0, 0.4]);\n"
    "let x = bb(vec![0.3, -0.7, 1.1, 0.2, -0.4, 0.9]);\n"
)
_MLP_INPUTS = (  # two samples
    "let w1 = bb(vec![0.01; HIDDEN * IN]);\n"
    "let b1 = bb(vec![0.1; HIDDEN]);\n"
    "let w2 = bb(vec![0.02; HIDDEN]);\n"
    "let xs = bb(vec![0.5; 2 * IN]);\n"
    "let ys = bb(vec![1.0, -1.0]);\n"
)
CALLS = {
    "lecture": (
        "lecture",
        "let (v, [gx, gy]) = lecture_grad(bb(2.0), bb(3.0));\nacc += v + gx + gy;",
        "acc += lecture(bb(2.0), bb(3.0));",
    ),
    "rosenbrock": (
        "rosenbrock",
        "let x = bb(vec![0.5, -1.0, 1.5, 2.0]);\nlet mut g = vec![0.0; x.len()];\n"
        "let (v, []) = rosenbrock_grad(&x, &mut g);\nacc += v + g.iter().sum::<f64>();",
        "let x = bb(vec![0.5, -1.0, 1.5, 2.0]);\nacc += rosenbrock(&x);",
    ),
    "gmm_objective": (
        "gmm",
        _GMM_INPUTS
        + "let (mut ga, mut gm, mut gi) = (vec![0.0; 2], vec![0.0; 4], vec![0.0; 6]);\n"
        "let (v, []) = gmm_objective_grad(&alphas, &mut ga, &means, &mut gm, &icf, &mut gi, &x, d, k, bb(1.0), bb(0));\n"
        "acc += v + ga[0] + gm[0] + gi[0];",
        _GMM_INPUTS + "acc += gmm_objective(&alphas, &means, &icf, &x, d, k, bb(1.0), bb(0));",
    ),
    "mlp_loss": (
        "mlp",
        _MLP_INPUTS
        + "let (mut g_w1, mut g_b1, mut g_w2) = (vec![0.0; HIDDEN * IN], vec![0.0; HIDDEN], vec![0.0; HIDDEN]);\n"
        "let (v, [db2]) = mlp_loss_grad(&w1, &mut g_w1, &b1, &mut g_b1, &w2, &mut g_w2, bb(0.3), &xs, &ys);\n"
        "acc += v + db2 + g_w1[0] + g_b1[0] + g_w2[0];",
        _MLP_INPUTS + "acc += mlp_loss(&w1, &b1, &w2, bb(0.3), &xs, &ys);",
    ),
    "logistic": (
        "logistic",
        "let (v, [gx0, gr]) = logistic_grad(bb(0.3), bb(3.2), bb(10));\nacc += v + gx0 + gr;",
        "acc += logistic(bb(0.3), bb(3.2), bb(10));",
    ),
}

ITEM = re.compile(
    r"^(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|async|unsafe|extern\s+\"C\")\s+)*"
    r"(fn|const|static|use|struct|enum|union|impl|trait|type|mod|macro_rules!)\b\s*(\w*)"
)
GRAD_ATTR = re.compile(r"^#\[(?:ad::)?gradient\b")
IDENT = re.compile(r"\b[A-Za-z_]\w*\b")


def top_level_items(path):
    """Top-level items of a rustfmt-formatted file: dicts with kind, name, lines (doc comments
    and attributes included), grad (index range of the #[ad::gradient...] attribute or None)."""
    lines = open(path).read().split("\n")
    items, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not (line.startswith(("///", "#[")) or ITEM.match(line)):
            i += 1
            continue
        start, grad = i, None
        while not ITEM.match(lines[i]):  # doc comments and (possibly multi-line) attributes
            if GRAD_ATTR.match(lines[i]):
                j = i
                while lines[j].count("[") - lines[j].count("]") + sum(
                        l.count("[") - l.count("]") for l in lines[i:j]) > 0:
                    j += 1
                grad = (i - start, j - start + 1)
            i += 1
            if i == len(lines):
                sys.exit(f"{path}:{start + 1}: attribute or doc comment without an item")
        kind, name = ITEM.match(lines[i]).groups()
        j = i
        while True:
            l = lines[j].rstrip()
            if j == i and (l.endswith(";") or (l.endswith("}") and l.count("{") == l.count("}"))):
                break
            if j > i and (l in ("}", "};") or (kind in ("const", "static", "use", "type")
                                                  and l.endswith(";"))):
                break
            j += 1
            if j == len(lines):
                sys.exit(f"{path}:{i + 1}: end of item `{name}` not found")
        items.append({"kind": kind, "name": name if kind != "use" else lines[i],
                      "lines": lines[start:j + 1], "grad": grad})
        i = j + 1
    return items


def strip_comments(text):
    return "\n".join(l.split("//")[0] for l in text.split("\n"))


def extract(path, extra_refs):
    """(kept items in file order, names of the gradient functions) of one objectives file."""
    items = top_level_items(path)
    grads = [it["name"] for it in items if it["grad"] and it["kind"] == "fn"]
    if not grads:
        return [], []
    named = {it["name"]: it for it in items if it["kind"] in ("fn", "const", "static", "struct",
                                                               "enum", "type")}
    keep, todo = set(), list(grads)
    todo += [n for n in extra_refs if n in named]
    while todo:
        n = todo.pop()
        if n in keep:
            continue
        keep.add(n)
        refs = set(IDENT.findall(strip_comments("\n".join(named[n]["lines"]))))
        todo += [r for r in refs if r in named and r not in keep]
    kept = [it for it in items
            if it["name"] in keep or (it["kind"] == "use" and re.match(r"^use (std|core)::", it["name"]))]
    return kept, grads


def lib_rs(modules, instrumented):
    out = ["//! Generated by benches/build-cost/gen.py from benches/objectives; "
           "#[ad::gradient] kept on: " + (", ".join(sorted(instrumented)) or "(none)") + ".",
           "#![allow(clippy::needless_range_loop)]", ""]
    for mod, kept in modules:
        out.append(f"mod {mod} {{")
        for it in kept:
            lines = list(it["lines"])
            if it["grad"] and it["name"] not in instrumented:
                a, b = it["grad"]
                del lines[a:b]
            out += lines
        out += ["}", f"pub use {mod}::*;", ""]
    out += ["/// Calls each objective once (its generated `_grad` if instrumented), so nothing is dead code.",
            "pub fn use_all() -> f64 {", "    use std::hint::black_box as bb;", "    let mut acc = 0.0;"]
    for fn, (_short, with_call, plain_call) in CALLS.items():
        call = with_call if fn in instrumented else plain_call
        out += ["    {"] + ["        " + l for l in call.split("\n")] + ["    }"]
    out += ["    acc", "}", ""]
    return "\n".join(out)


def q(s):
    """A string literal, valid in Rust and TOML."""
    return json.dumps(s, ensure_ascii=False)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path) or open(path).read() != text:  # keep mtimes of unchanged files
        open(path, "w").write(text)


def crate(out, name, ad_path, deps, src_name, src):
    d = os.path.join(out, name)
    write(os.path.join(d, "Cargo.toml"),
          f'[package]\nname = "{name}"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
          f"[dependencies]\n{deps}\n# Not part of any workspace.\n[workspace]\n")
    write(os.path.join(d, "src", src_name), src)
    # The same dependency versions as the `ad` workspace (cargo prunes the unused entries).
    shutil.copy(os.path.join(ad_path, "Cargo.lock"), os.path.join(d, "Cargo.lock"))


def harness(out, ad_path):
    """ad-macro's modules (by #[path], unchanged) plus macro_harness.rs, as an ordinary binary."""
    mdir = os.path.join(ad_path, "ad-macro")
    lib = open(os.path.join(mdir, "src", "lib.rs")).read().split("\n")
    mods = []
    for k, l in enumerate(lib):
        m = re.match(r"^(?:pub(?:\([^)]*\))?\s+)?mod (\w+);", l)
        if m and not (k > 0 and lib[k - 1].strip() == "#[cfg(test)]"):
            mods.append(m.group(1))
    src = ["// Generated by benches/build-cost/gen.py. Measurement only: ad-macro's modules, compiled",
           "// as an ordinary binary so that macro_harness.rs can call `expand::expand` directly.",
           "#![allow(dead_code, unused_imports)]"]
    src += [f"#[path = {q(os.path.join(mdir, 'src', m + '.rs'))}]\nmod {m};" for m in mods]
    src += [f"#[path = {q(os.path.join(HERE, 'macro_harness.rs'))}]\nmod macro_harness;",
            "fn main() {\n    macro_harness::main()\n}\n"]
    # ad-macro's [dependencies] section verbatim, plus prettyplease from its dev-dependencies.
    toml = open(os.path.join(mdir, "Cargo.toml")).read()
    deps = re.search(r"^\[dependencies\]\n(.*?)(?=^\[|\Z)", toml, re.S | re.M).group(1)
    pp = re.search(r"^prettyplease\s*=.*$", toml, re.M)
    if not pp:
        sys.exit("ad-macro/Cargo.toml: no prettyplease (dev-)dependency for the harness")
    crate(out, "macro-harness", ad_path, deps.rstrip() + "\n" + pp.group(0) + "\n", "main.rs",
          "\n".join(src))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ad_path, out = (os.path.abspath(a) for a in sys.argv[1:])
    objdir = os.path.join(ad_path, "benches", "objectives")
    extra = set(IDENT.findall("\n".join(c for _, w, p in CALLS.values() for c in (w, p))))
    modules, found = [], []
    for f in sorted(os.listdir(objdir)):
        if not f.endswith(".rs") or f == "mod.rs":
            continue
        kept, grads = extract(os.path.join(objdir, f), extra)
        if grads:
            modules.append((f[:-3], kept))
            found += grads
            for it in kept:
                if it["grad"]:
                    short = CALLS.get(it["name"], (it["name"],))[0]
                    body = [l for l in it["lines"] if not l.startswith("///")]
                    write(os.path.join(out, "inputs", short + ".rs"), "\n".join(body) + "\n")
    if sorted(found) != sorted(CALLS):
        sys.exit(f"gen.py: #[ad::gradient] functions in {objdir}: {sorted(found)}; CALLS in gen.py "
                 f"has {sorted(CALLS)}. Add (or remove) the call of each function in CALLS.")
    dep = f"ad = {{ path = {q(ad_path)} }}\n"
    variants = {"with_ad": set(CALLS), "without_ad": set()}
    variants.update({f"only_{s}": {fn} for fn, (s, _, _) in CALLS.items()})
    for name, instrumented in variants.items():
        crate(out, name, ad_path, dep, "lib.rs", lib_rs(modules, instrumented))
    harness(out, ad_path)
    write(os.path.join(out, "variants.json"), json.dumps(
        {"variants": list(variants), "functions": [[s, fn] for fn, (s, _, _) in CALLS.items()]}, indent=1) + "\n")
    print(f"generated {', '.join(variants)}, inputs/, macro-harness/ in {out} "
          f"(objectives: {', '.join(m for m, _ in modules)})")


if __name__ == "__main__":
    main()
