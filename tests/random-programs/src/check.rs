//! The harness: evaluates each program's `f_grad` and its oracle at input points where the
//! comparison means something, and turns every disagreement into a standalone reproducer.

use crate::dual::{reset_guard, take_guard, Dual, Guard};
use crate::generator::rng::Rng;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A parameter of a program's entry `f`.
#[derive(Clone, Copy, Debug)]
pub struct ParamInfo {
    pub name: &'static str,
    /// `None` for a scalar, the slice length the harness passes for a slice.
    pub len: Option<usize>,
    /// Whether `f_grad` differentiates with respect to it (`wrt`).
    pub active: bool,
}

/// One generated program, as compiled into this crate (see [`crate::programs`]).
#[derive(Clone, Copy, Debug)]
pub struct Program {
    pub seed: u64,
    pub index: u64,
    /// The `#[gradient]` source, as a user writes it.
    pub source: &'static str,
    pub params: &'static [ParamInfo],
    /// `f` at the flat input vector (scalars and slice elements in parameter order).
    pub plain: fn(&[f64]) -> f64,
    /// The dual-number version of `f` at the flat input vector.
    pub oracle: fn(&[f64]) -> Oracle,
    /// Fixed input points (reproducers and shrinking); empty means "draw at random".
    pub inputs: &'static [&'static [f64]],
}

impl Program {
    pub fn n_inputs(&self) -> usize {
        self.params.iter().map(|p| p.len.unwrap_or(1)).sum()
    }

    /// For each flat input, whether its gradient is computed by `f_grad`.
    pub fn active_mask(&self) -> Vec<bool> {
        self.params
            .iter()
            .flat_map(|p| std::iter::repeat_n(p.active, p.len.unwrap_or(1)))
            .collect()
    }
}

/// What the oracle computes.
#[derive(Clone, Debug, PartialEq)]
pub struct Oracle {
    pub value: f64,
    pub grad: Vec<f64>,
    /// The gradient magnitude (see [`Dual::m`]): the scale of the rounding in `grad`.
    pub mag: Vec<f64>,
}

impl Oracle {
    pub fn from_dual<const N: usize>(d: Dual<N>) -> Oracle {
        Oracle {
            value: d.v,
            grad: d.d.to_vec(),
            mag: d.m.to_vec(),
        }
    }
}

/// What the code under test computes: `f_grad`'s value and gradient (flat, NaN where inactive)
/// and the value of `f` itself as `#[gradient]` left it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reverse {
    pub value: f64,
    pub grad: Vec<f64>,
    pub original: f64,
}

/// The caller of one program's `f_grad`.
pub type ReverseFn = fn(&[f64]) -> Reverse;

/// Tolerances and effort.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Input points compared per program.
    pub points: usize,
    /// Random draws tried per program before giving up on finding `points` good ones.
    pub attempts: usize,
    /// Relative tolerance of `f_grad` against the oracle.
    pub rel_tol: f64,
    /// The absolute floor, as a fraction of the gradient magnitude: `rel_tol * noise * m` is
    /// far above the rounding error of a sum of terms of size `m`.
    pub noise: f64,
    /// The absolute floor of every component, as a fraction of the problem's scale
    /// `S = max(|f|, max_j |oracle_j|)`: `rel_tol * floor * S` (about 45 ulps of `S`) is
    /// rounding noise for a component many orders of magnitude below the others.
    pub floor: f64,
    /// Input points where a comparison or kink is within this relative distance of flipping
    /// are discarded.
    pub margin: f64,
    /// Input points where some intermediate value or derivative exceeds this are discarded.
    pub max_abs: f64,
    /// Also compare the oracle with finite differences (the second opinion).
    pub fd: bool,
    /// Relative tolerance of finite differences against the oracle.
    pub fd_tol: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            points: 3,
            attempts: 60,
            rel_tol: 1e-9,
            noise: 1e-4,
            floor: 1e-5,
            margin: 1e-6,
            max_abs: 1e8,
            fd: true,
            fd_tol: 1e-6,
        }
    }
}

/// What went wrong with one program at one input point.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `f_grad` disagrees with the oracle (value or gradient).
    Mismatch,
    /// `f_grad` panicked.
    Panic(String),
    /// `f` as left by `#[gradient]` computes another value than the plain copy.
    OriginalChanged,
    /// The oracle's value differs from the plain program's: a bug of this crate.
    OracleInconsistent,
    /// Finite differences disagree with the oracle: a bug of this crate, or of the
    /// tolerances.
    FiniteDifferences,
}

/// One disagreement, with everything a reproducer needs.
#[derive(Clone, Debug)]
pub struct Finding {
    pub kind: Kind,
    pub program: Program,
    pub input: Vec<f64>,
    pub oracle: Oracle,
    pub reverse: Option<Reverse>,
    pub fd: Option<Vec<f64>>,
    /// Flat indices of the disagreeing gradient components (empty: the value).
    pub components: Vec<usize>,
}

/// The outcome of checking a list of programs.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub programs: usize,
    /// Input points compared.
    pub points: usize,
    /// Programs for which no acceptable input point was found in `attempts` draws.
    pub programs_without_points: usize,
    /// Input points at which finite differences were also compared.
    pub fd_points: usize,
    /// The largest `|fd - oracle| / scale` seen, in units of `fd_tol`.
    pub fd_worst: f64,
    /// The largest `|f_grad - oracle| / scale` seen, in units of `rel_tol`.
    pub worst: f64,
    pub findings: Vec<Finding>,
}

impl Summary {
    /// Programs with at least one finding of a kind other than the FD second opinion.
    pub fn mismatched_programs(&self) -> usize {
        let mut idx: Vec<u64> = self
            .findings
            .iter()
            .filter(|f| f.kind != Kind::FiniteDifferences)
            .map(|f| f.program.index)
            .collect();
        idx.sort_unstable();
        idx.dedup();
        idx.len()
    }

    pub fn fd_disagreements(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.kind == Kind::FiniteDifferences)
            .count()
    }

    fn merge(&mut self, o: Summary) {
        self.programs += o.programs;
        self.points += o.points;
        self.programs_without_points += o.programs_without_points;
        self.fd_points += o.fd_points;
        self.fd_worst = self.fd_worst.max(o.fd_worst);
        self.worst = self.worst.max(o.worst);
        self.findings.extend(o.findings);
    }

    /// The closing line: `N programs, M mismatches`.
    pub fn line(&self) -> String {
        format!(
            "{} programs, {} mismatches",
            self.programs,
            self.mismatched_programs()
        )
    }

    /// The details below the closing line.
    pub fn details(&self) -> String {
        format!(
            "{} input points compared ({} programs had no usable point); worst |f_grad - oracle| \
             = {:.3} x tolerance; finite differences at {} points, {} disagreements, worst {:.3} \
             x tolerance",
            self.points,
            self.programs_without_points,
            self.worst,
            self.fd_points,
            self.fd_disagreements(),
            self.fd_worst
        )
    }
}

/// Checks `programs` (against `reverse[k]` when given; otherwise the oracle alone, against
/// finite differences), on all cores.
pub fn run(programs: &[Program], reverse: Option<&[ReverseFn]>, s: &Settings) -> Summary {
    if let Some(r) = reverse {
        assert_eq!(r.len(), programs.len(), "one f_grad caller per program");
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = programs.len().div_ceil(threads).max(1);
    let mut total = Summary::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = programs
            .chunks(chunk)
            .enumerate()
            .map(|(c, ps)| {
                let rs = reverse.map(|r| &r[c * chunk..c * chunk + ps.len()]);
                scope.spawn(move || {
                    let mut sum = Summary::default();
                    for (k, p) in ps.iter().enumerate() {
                        sum.merge(check(p, rs.map(|r| r[k]), s));
                    }
                    sum
                })
            })
            .collect();
        for h in handles {
            total.merge(h.join().expect("the harness does not panic"));
        }
    });
    total.findings.sort_by_key(|f| f.program.index);
    total
}

/// `max(|f|, max_j |oracle_j|)`: the size of the quantities a user sees at this point.
pub fn problem_scale(o: &Oracle) -> f64 {
    o.grad.iter().fold(
        o.value.abs(),
        |acc, g| if g.abs() > acc { g.abs() } else { acc },
    )
}

/// Evaluates the oracle at `x`, with the record of its comparisons and kinks.
fn eval_oracle(p: &Program, x: &[f64]) -> Option<(Oracle, Guard)> {
    reset_guard();
    let o = catch_unwind(AssertUnwindSafe(|| (p.oracle)(x))).ok()?;
    Some((o, take_guard()))
}

/// Whether `x` is a good point: finite, moderate, and no comparison near flipping.
fn acceptable(o: &Oracle, g: &Guard, s: &Settings) -> bool {
    o.value.is_finite()
        && o.grad.iter().chain(&o.mag).all(|v| v.is_finite())
        && g.max_abs <= s.max_abs
        && g.rel >= s.margin
}

fn draw(rng: &mut Rng, n: usize) -> Vec<f64> {
    let scale = *rng.pick(&[2.0, 2.0, 1.0, 3.0, 0.5]);
    (0..n).map(|_| rng.uniform(-scale, scale)).collect()
}

/// Checks one program.
pub fn check(p: &Program, reverse: Option<ReverseFn>, s: &Settings) -> Summary {
    let mut sum = Summary {
        programs: 1,
        ..Summary::default()
    };
    let mut rng = Rng::for_program(p.seed, p.index, 1);
    let n = p.n_inputs();
    let active = p.active_mask();
    debug_assert_eq!(active.len(), n);
    let mut accepted = 0;
    let fixed = !p.inputs.is_empty();
    let tries = if fixed { p.inputs.len() } else { s.attempts };
    for t in 0..tries {
        if accepted == s.points {
            break;
        }
        let x = if fixed {
            p.inputs[t].to_vec()
        } else {
            draw(&mut rng, n)
        };
        let Some((o, guard)) = eval_oracle(p, &x) else {
            continue;
        };
        if !acceptable(&o, &guard, s) {
            continue;
        }
        accepted += 1;
        sum.points += 1;
        let finding = |kind, reverse, fd, components| Finding {
            kind,
            program: *p,
            input: x.clone(),
            oracle: o.clone(),
            reverse,
            fd,
            components,
        };
        let plain = (p.plain)(&x);
        if plain.to_bits() != o.value.to_bits() {
            sum.findings
                .push(finding(Kind::OracleInconsistent, None, None, vec![]));
            continue;
        }
        if let Some(rev) = reverse {
            match catch_unwind(AssertUnwindSafe(|| rev(&x))) {
                Err(e) => {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "a panic without message".into());
                    sum.findings
                        .push(finding(Kind::Panic(msg), None, None, vec![]));
                }
                Ok(r) => {
                    let mut bad = Vec::new();
                    let vtol = s.rel_tol
                        * o.value
                            .abs()
                            .max(s.noise * guard.max_abs)
                            .max(s.floor * problem_scale(&o));
                    // NaN counts as bad.
                    let value_bad = (r.value - o.value).abs() > vtol || r.value.is_nan();
                    for (i, _) in active.iter().enumerate().filter(|(_, &a)| a) {
                        let scale = o.grad[i]
                            .abs()
                            .max(s.noise * o.mag[i])
                            .max(s.floor * problem_scale(&o));
                        let err = (r.grad[i] - o.grad[i]).abs();
                        if err == 0.0 {
                            continue;
                        }
                        let ratio = err / (s.rel_tol * scale);
                        if ratio <= 1.0 {
                            sum.worst = sum.worst.max(ratio);
                        } else {
                            bad.push(i);
                        }
                    }
                    if r.original.to_bits() != plain.to_bits() {
                        sum.findings.push(finding(
                            Kind::OriginalChanged,
                            Some(r.clone()),
                            None,
                            vec![],
                        ));
                    }
                    if value_bad || !bad.is_empty() {
                        sum.findings
                            .push(finding(Kind::Mismatch, Some(r), None, bad));
                    }
                }
            }
        }
        if s.fd {
            if let Some((fd, worst, bad)) = fd_check(p, &x, &o, &guard, s) {
                sum.fd_points += 1;
                sum.fd_worst = sum.fd_worst.max(worst);
                if !bad.is_empty() {
                    sum.findings
                        .push(finding(Kind::FiniteDifferences, None, Some(fd), bad));
                }
            }
        }
    }
    if accepted == 0 {
        sum.programs_without_points = 1;
    }
    sum
}

/// Central finite differences (five-point stencil) of the plain program, with steps that stay
/// well inside the distance `dist` to the nearest kink.
///
/// The step is refined (divided by 4, which divides the truncation error by 256) until two
/// successive estimates agree within `tol(i)`; a component that never settles (a function that
/// oscillates too fast for any step that rounding allows) is `None`, i.e. inconclusive.
pub fn finite_differences(
    p: &Program,
    x: &[f64],
    dist: f64,
    tol: impl Fn(usize) -> f64,
) -> Vec<Option<f64>> {
    (0..x.len())
        .map(|i| {
            let at = |d: f64| {
                let mut y = x.to_vec();
                y[i] += d;
                (p.plain)(&y)
            };
            let stencil =
                |h: f64| (at(-2.0 * h) - 8.0 * at(-h) + 8.0 * at(h) - at(2.0 * h)) / (12.0 * h);
            let mut h = (1e-3 * x[i].abs().max(1.0)).min(dist / 8.0);
            let mut prev = stencil(h);
            for _ in 0..6 {
                h /= 4.0;
                if h < 1e-8 {
                    return None;
                }
                let d = stencil(h);
                if (d - prev).abs() <= tol(i) {
                    return Some(d);
                }
                prev = d;
            }
            None
        })
        .collect()
}

/// Compares the oracle with finite differences: the FD gradient (NaN where inconclusive), the
/// worst error in units of the tolerance, and the disagreeing components. `None` when no
/// component was conclusive.
fn fd_check(
    p: &Program,
    x: &[f64],
    o: &Oracle,
    guard: &Guard,
    s: &Settings,
) -> Option<(Vec<f64>, f64, Vec<usize>)> {
    // FD carries truncation error of relative size h^4 and rounding of eps |f| / h (with |f|
    // the size of the intermediates, up to the magnitude), so it says nothing about gradient
    // components much below those.
    let scale = |i: usize| {
        o.grad[i]
            .abs()
            .max(1e-2 * o.mag[i])
            .max(1e-4 * o.value.abs())
            .max(1e-4)
    };
    let tol = |i: usize| s.fd_tol * scale(i) * 0.1;
    let fd = catch_unwind(AssertUnwindSafe(|| {
        finite_differences(p, x, guard.dist, tol)
    }))
    .ok()?;
    if fd.iter().all(Option::is_none) {
        return None;
    }
    let mut worst: f64 = 0.0;
    let mut bad = Vec::new();
    for (i, d) in fd.iter().enumerate() {
        let Some(d) = d else { continue };
        let ratio = (d - o.grad[i]).abs() / (s.fd_tol * scale(i));
        if ratio.is_nan() || ratio > 1.0 {
            bad.push(i);
        } else {
            worst = worst.max(ratio);
        }
    }
    let fd = fd.iter().map(|d| d.unwrap_or(f64::NAN)).collect();
    Some((fd, worst, bad))
}

// ---------------------------------------------------------------------------------------------
// Reproducers.
// ---------------------------------------------------------------------------------------------

/// Where reproducers go: `$AD_RANDOM_MISMATCH_DIR`, or `random-programs-mismatches/` in the
/// target directory of the running test.
pub fn mismatch_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AD_RANDOM_MISMATCH_DIR") {
        return PathBuf::from(d);
    }
    // The test runs as <target>/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("random-programs-mismatches")
}

fn flist(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    items.join(", ")
}

/// One value per parameter: `x = 0.5`, `s = [1.0, 2.0]`.
fn per_param(p: &Program, v: &[f64]) -> Vec<(ParamInfo, String)> {
    let mut at = 0;
    p.params
        .iter()
        .map(|q| {
            let s = match q.len {
                None => format!("{:?}", v[at]),
                Some(l) => format!("[{}]", flist(&v[at..at + l])),
            };
            at += q.len.unwrap_or(1);
            (*q, s)
        })
        .collect()
}

/// A standalone test file that fails while the finding is there.
pub fn reproducer(f: &Finding, features: &str) -> String {
    let p = &f.program;
    let mut out = String::new();
    let what = match &f.kind {
        Kind::Mismatch => "`f_grad` disagrees with forward-mode dual numbers".to_string(),
        Kind::Panic(m) => format!("`f_grad` panics: {m}"),
        Kind::OriginalChanged => "`#[gradient]` changed the value of `f` itself".to_string(),
        Kind::OracleInconsistent => {
            "the dual-number oracle disagrees with the plain program (a bug of \
             tests/random-programs)"
                .to_string()
        }
        Kind::FiniteDifferences => {
            "finite differences disagree with the dual-number oracle (a bug of \
             tests/random-programs, or of its tolerances)"
                .to_string()
        }
    };
    let _ = writeln!(out, "//! Reproducer: {what}.");
    let _ = writeln!(out, "//!");
    let _ = writeln!(
        out,
        "//! Program {} of the campaign with seed {} (features `{features}`); regenerate with",
        p.index, p.seed
    );
    let _ = writeln!(
        out,
        "//! `AD_RANDOM_SEED={} AD_RANDOM_FIRST={} AD_RANDOM_PROGRAMS=1 AD_RANDOM_FEATURES={features} \
         cargo test -p random-programs --test differential`.",
        p.seed, p.index
    );
    let _ = writeln!(
        out,
        "//! Run it alone: copy it to the `ad` crate's `tests/` and `cargo test --test <file stem>`."
    );
    let _ = writeln!(out, "//!");
    for (q, v) in per_param(p, &f.input) {
        let _ = writeln!(out, "//! input {} = {v}", q.name);
    }
    let _ = writeln!(out, "//! oracle value {:?}", f.oracle.value);
    for (q, v) in per_param(p, &f.oracle.grad) {
        let _ = writeln!(out, "//! oracle d/d{} = {v}", q.name);
    }
    if let Some(r) = &f.reverse {
        let _ = writeln!(out, "//! f_grad value {:?}", r.value);
        for (q, v) in per_param(p, &r.grad) {
            if q.active {
                let _ = writeln!(out, "//! f_grad d/d{} = {v}", q.name);
            }
        }
    }
    if let Some(fd) = &f.fd {
        for (q, v) in per_param(p, fd) {
            let _ = writeln!(out, "//! finite differences d/d{} = {v}", q.name);
        }
    }
    if !f.components.is_empty() {
        let _ = writeln!(out, "//! disagreeing flat components: {:?}", f.components);
    }
    let _ = writeln!(out, "\n{}", p.source);
    out.push_str(&reproducer_test(p, &f.input, &f.oracle));
    out
}

/// `#[test] fn reproduce()`: calls `f_grad` at `x` and compares with the oracle's numbers.
fn reproducer_test(p: &Program, x: &[f64], o: &Oracle) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "/// The size of the quantities at this point: max(|f|, max |gradient|).\n\
         const SCALE: f64 = {:?};\n",
        problem_scale(o)
    );
    let _ = writeln!(t, "#[test]\nfn reproduce() {{");
    let mut args = Vec::new();
    let mut checks = Vec::new();
    let mut at = 0;
    let mut k = 0;
    for q in p.params {
        match q.len {
            None => {
                args.push(format!("{:?}", x[at]));
                if q.active {
                    checks.push(format!(
                        "    close(\"d/d{}\", grad[{k}], {:?}, {:?});",
                        q.name, o.grad[at], o.mag[at]
                    ));
                    k += 1;
                }
                at += 1;
            }
            Some(l) => {
                let _ = writeln!(t, "    let {} = [{}];", q.name, flist(&x[at..at + l]));
                args.push(format!("&{}", q.name));
                if q.active {
                    let _ = writeln!(t, "    let mut {}_shadow = [f64::NAN; {l}];", q.name);
                    args.push(format!("&mut {}_shadow", q.name));
                    checks.push(format!(
                        "    let want = [{}];\n    let mag = [{}];\n    for i in 0..{l} {{\n        \
                         close(&format!(\"d/d{}[{{i}}]\"), {}_shadow[i], want[i], mag[i]);\n    }}",
                        flist(&o.grad[at..at + l]),
                        flist(&o.mag[at..at + l]),
                        q.name,
                        q.name
                    ));
                }
                at += l;
            }
        }
    }
    let _ = writeln!(t, "    let (value, grad) = f_grad({});", args.join(", "));
    let _ = writeln!(t, "    let _ = &grad;");
    let _ = writeln!(t, "    close(\"value\", value, {:?}, 0.0);", o.value);
    for c in checks {
        let _ = writeln!(t, "{c}");
    }
    let _ = writeln!(t, "}}\n");
    let _ = writeln!(
        t,
        "/// Relative tolerance 1e-9, with floors at 1e-13 of the gradient's magnitude `mag` (the\n\
         /// size of the terms it sums) and at 1e-14 of `SCALE`.\n\
         fn close(what: &str, got: f64, want: f64, mag: f64) {{\n    \
         let tol = 1e-9 * want.abs().max(1e-4 * mag).max(1e-5 * SCALE);\n    \
         assert!((got - want).abs() <= tol, \"{{what}}: f_grad gives {{got:?}}, dual numbers give {{want:?}}\");\n}}"
    );
    t
}

/// Writes a reproducer for each finding (at most `limit`) into `dir`; returns their paths.
pub fn write_reproducers(
    findings: &[Finding],
    features: &str,
    dir: &Path,
    limit: usize,
) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if findings.is_empty() {
        return paths;
    }
    if std::fs::create_dir_all(dir).is_err() {
        return paths;
    }
    let mut seen = Vec::new();
    for f in findings {
        let key = (f.program.seed, f.program.index);
        if seen.contains(&key) || paths.len() >= limit {
            continue;
        }
        seen.push(key);
        let path = dir.join(format!("seed{}_p{}.rs", key.0, key.1));
        if std::fs::write(&path, reproducer(f, features)).is_ok() {
            paths.push(path);
        }
    }
    paths
}
