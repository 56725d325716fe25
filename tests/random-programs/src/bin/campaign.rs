//! The campaign runner: checks any number of programs of any seed, in batches, through the real
//! macro, and shrinks each failing program into a minimal standalone reproducer.
//!
//! ```text
//! cargo run -p random-programs --bin campaign -- --seed 7 --count 100000
//! ```
//!
//! Each batch is written to `<target>/random-programs-campaign/` and compiled as the
//! `differential` test with `AD_RANDOM_SOURCE` pointing there. A batch that does not compile
//! has its failing programs located from rustc's error locations, set aside as compile-error
//! findings, and is compiled again without them. Prints `N programs, M mismatches` at the end;
//! reproducers go to `<target>/random-programs-mismatches/` (or `--out`).

use random_programs::generator::ast::Program;
use random_programs::generator::emit::{self, Unit};
use random_programs::generator::{self, Features};
use random_programs::reduce;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: campaign [--seed S] [--count N] [--first F] [--batch B] [--features SPEC]
                [--out DIR] [--shrink K] [--timeout SECS] [--release]

  --seed S        campaign seed (default: the CI seed)
  --count N       number of programs (default 1000)
  --first F       index of the first program (default 0)
  --only K,L,..   check only these program indices (e.g. to shrink them again)
  --batch B       programs compiled together (default 1000)
  --features SPEC constructs to generate, e.g. scalar, loops, slices, all, scalar,-wrt
                  (default: the CI level)
  --out DIR       where reproducers go (default <target>/random-programs-mismatches)
  --shrink K      shrink the first K failing programs into *.min.rs reproducers (default 5)
  --timeout SECS  limit for one cargo invocation (default 1800)
  --release       compile the programs with optimisations";

struct Opts {
    seed: u64,
    first: u64,
    count: u64,
    batch: u64,
    features: Features,
    only: Option<Vec<u64>>,
    out: PathBuf,
    shrink: usize,
    timeout: Duration,
    release: bool,
}

/// Why a program failed.
#[derive(Clone, Debug)]
enum Failure {
    /// The program (under `#[gradient]`) does not compile. `signature` is the first error with
    /// names masked, for recognising the same bug while shrinking.
    Compile { signature: String, message: String },
    /// The differential test reported it (mismatch, panic, ...) at `input`.
    Runtime { what: String, input: Vec<f64> },
    /// The test process crashed or hung with this program alone.
    Crash { output: String },
}

impl Failure {
    fn label(&self) -> String {
        match self {
            Failure::Compile { signature, .. } => format!("compile error: {signature}"),
            Failure::Runtime { what, .. } => what.clone(),
            Failure::Crash { .. } => "crash or timeout of the test process".into(),
        }
    }
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(&opts.out).expect("cannot create the output directory");
    let start = Instant::now();
    let mut failures: BTreeMap<u64, (Unit, Failure)> = BTreeMap::new();
    let end = opts.first + opts.count;
    let mut at = opts.first;
    while at < end {
        let n = opts.batch.min(end - at);
        let units = match &opts.only {
            None => emit::batch(opts.seed, at, n, &opts.features),
            Some(list) => list[at as usize..(at + n) as usize]
                .iter()
                .flat_map(|&k| emit::batch(opts.seed, k, 1, &opts.features))
                .collect(),
        };
        let t = Instant::now();
        let found = run_units(&opts, &units, &opts.out);
        // With --only, `at` counts positions in the list, not program indices.
        let label = if opts.only.is_some() {
            "positions"
        } else {
            "programs"
        };
        println!(
            "{label} {at}..{}: {} failing ({:.0} s, {:.0} s so far)",
            at + n,
            found.len(),
            t.elapsed().as_secs_f64(),
            start.elapsed().as_secs_f64()
        );
        for (pos, f) in found {
            let u = units[pos].clone();
            println!("  program {}: {}", u.index, f.label());
            if let Failure::Compile { message, .. } | Failure::Crash { output: message } = &f {
                write_compile_reproducer(&opts, &u, &f, message);
            }
            failures.insert(u.index, (u, f));
        }
        at += n;
    }
    let mut report = String::new();
    let which = match &opts.only {
        Some(list) => format!("programs {list:?}"),
        None => format!("programs {}..{end}", opts.first),
    };
    let _ = writeln!(
        report,
        "seed {}, {which}, features {}, {:.0} s",
        opts.seed,
        opts.features.describe(),
        start.elapsed().as_secs_f64()
    );
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (_, f) in failures.values() {
        *kinds.entry(same_failure_key(f)).or_default() += 1;
    }
    for (k, n) in &kinds {
        let _ = writeln!(report, "  {n:6} x {k}");
    }
    // One program of each kind of failure first, then the others, in index order.
    let mut shrunk: Vec<(Unit, Failure)> = Vec::new();
    let mut kinds_seen: Vec<String> = Vec::new();
    for (u, f) in failures.values() {
        let key = same_failure_key(f);
        if !kinds_seen.contains(&key) {
            kinds_seen.push(key);
            shrunk.push((u.clone(), f.clone()));
        }
    }
    for (u, f) in failures.values() {
        if !shrunk.iter().any(|(v, _)| v.index == u.index) {
            shrunk.push((u.clone(), f.clone()));
        }
    }
    shrunk.truncate(opts.shrink);
    for (u, f) in shrunk {
        println!("shrinking program {} ({})", u.index, f.label());
        match shrink(&opts, &u, &f) {
            Some(path) => {
                println!("  minimal reproducer: {}", path.display());
                let _ = writeln!(report, "  program {}: {}", u.index, path.display());
            }
            None => println!("  could not shrink"),
        }
    }
    let _ = writeln!(
        report,
        "{} programs, {} mismatches",
        opts.count,
        failures.len()
    );
    let _ = std::fs::write(opts.out.join("summary.txt"), &report);
    print!("{report}");
    std::process::exit(if failures.is_empty() { 0 } else { 1 });
}

fn parse_args() -> Result<Opts, String> {
    let target = target_dir();
    let mut o = Opts {
        seed: generator::DEFAULT_SEED,
        first: 0,
        count: generator::DEFAULT_COUNT,
        batch: 1000,
        features: Features::parse(generator::DEFAULT_FEATURES)?,
        only: None,
        out: target.join("random-programs-mismatches"),
        shrink: 5,
        timeout: Duration::from_secs(1800),
        release: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--release" {
            o.release = true;
            continue;
        }
        if a == "-h" || a == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v = args.next().ok_or_else(|| format!("{a} needs a value"))?;
        let num = || v.parse::<u64>().map_err(|e| format!("{a} {v}: {e}"));
        match a.as_str() {
            "--seed" => o.seed = num()?,
            "--count" => o.count = num()?,
            "--first" => o.first = num()?,
            "--batch" => o.batch = num()?.max(1),
            "--features" => o.features = Features::parse(&v)?,
            "--only" => {
                let list: Result<Vec<u64>, _> = v.split(',').map(|k| k.trim().parse()).collect();
                let list = list.map_err(|e| format!("--only {v}: {e}"))?;
                o.count = list.len() as u64;
                o.only = Some(list);
            }
            "--out" => o.out = PathBuf::from(v),
            "--shrink" => o.shrink = num()? as usize,
            "--timeout" => o.timeout = Duration::from_secs(num()?),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    if o.only.is_some() {
        o.first = 0;
    }
    Ok(o)
}

/// `$CARGO_TARGET_DIR`, or the workspace's `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Checks `units` (whose indices are distinct) and returns the failing ones by position.
/// Compile failures are set aside and the rest compiled again; a crash with no summary is
/// bisected.
fn run_units(opts: &Opts, units: &[Unit], mismatch_dir: &Path) -> BTreeMap<usize, Failure> {
    let position: BTreeMap<u64, usize> = units
        .iter()
        .enumerate()
        .map(|(k, u)| (u.index, k))
        .collect();
    assert_eq!(
        position.len(),
        units.len(),
        "program indices must be distinct"
    );
    let mut failed: BTreeMap<usize, Failure> = BTreeMap::new();
    let mut pending: Vec<usize> = (0..units.len()).collect();
    while !pending.is_empty() {
        let batch: Vec<Unit> = pending.iter().map(|&k| units[k].clone()).collect();
        let run = run_cargo(opts, &batch, mismatch_dir);
        if let Some(found) = run.summary {
            for (index, f) in found {
                if let Some(&k) = position.get(&index) {
                    failed.entry(k).or_insert(f);
                }
            }
            return failed;
        }
        let errors = locate_errors(&run.stderr, &run.gradients, &run.programs);
        if !errors.is_empty() {
            for (index, f) in errors {
                if let Some(&k) = position.get(&index) {
                    failed.entry(k).or_insert(f);
                }
            }
            pending.retain(|k| !failed.contains_key(k));
            continue;
        }
        // No summary and no located error: a crash, a hang, or an error elsewhere.
        if pending.len() == 1 {
            let tail: String = tail_lines(&(run.stdout.clone() + &run.stderr), 40);
            failed.insert(pending[0], Failure::Crash { output: tail });
            return failed;
        }
        if run.stderr.contains("could not compile `ad") || run.stderr.contains("error: failed to") {
            eprintln!(
                "cargo failed outside the generated programs:\n{}",
                run.stderr
            );
            std::process::exit(2);
        }
        let half = pending.len() / 2;
        for part in [&pending[..half], &pending[half..]] {
            let sub: Vec<Unit> = part.iter().map(|&k| units[k].clone()).collect();
            for (pos, f) in run_units(opts, &sub, mismatch_dir) {
                failed.insert(part[pos], f);
            }
        }
        return failed;
    }
    failed
}

struct Run {
    /// Failures by program index, when the test ran to its summary line.
    summary: Option<BTreeMap<u64, Failure>>,
    stdout: String,
    stderr: String,
    gradients: String,
    programs: String,
}

/// Writes `units` as the source of the `differential` test and runs it.
fn run_cargo(opts: &Opts, units: &[Unit], mismatch_dir: &Path) -> Run {
    let work = target_dir().join("random-programs-campaign");
    std::fs::create_dir_all(&work).expect("cannot create the work directory");
    let header = "written by the campaign runner";
    let programs = emit::programs_rs(units, header)
        + &format!(
            "pub const SEED: u64 = {};\npub const FIRST: u64 = 0;\npub const FEATURES: &str = {:?};\n",
            units.first().map_or(0, |u| u.seed),
            opts.features.describe()
        );
    let gradients = emit::gradients_rs(units, header);
    std::fs::write(work.join("programs.rs"), &programs).expect("cannot write programs.rs");
    std::fs::write(work.join("gradients.rs"), &gradients).expect("cannot write gradients.rs");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["test", "-p", "random-programs", "--test", "differential"]);
    if opts.release {
        cmd.arg("--release");
    }
    cmd.args(["--", "--nocapture"])
        .env("AD_RANDOM_SOURCE", &work)
        .env("AD_RANDOM_MISMATCH_DIR", mismatch_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let out_path = work.join("stdout.txt");
    let err_path = work.join("stderr.txt");
    cmd.stdout(Stdio::from(
        std::fs::File::create(&out_path).expect("stdout file"),
    ))
    .stderr(Stdio::from(
        std::fs::File::create(&err_path).expect("stderr file"),
    ));
    let mut child = cmd.spawn().expect("cannot run cargo");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("cannot wait for cargo").is_some() {
            break;
        }
        if start.elapsed() > opts.timeout {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let summary = parse_summary(&stdout);
    Run {
        summary,
        stdout,
        stderr,
        gradients,
        programs,
    }
}

/// Reads the test's `mismatch: program K (...) at [..]` lines, if it printed its summary.
fn parse_summary(stdout: &str) -> Option<BTreeMap<u64, Failure>> {
    let done = stdout.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() == 4 && w[1] == "programs," && w[3] == "mismatches"
    });
    if !done {
        return None;
    }
    let mut found = BTreeMap::new();
    for l in stdout.lines() {
        let Some(rest) = l.strip_prefix("mismatch: program ") else {
            continue;
        };
        let Some((k, rest)) = rest.split_once(' ') else {
            continue;
        };
        let Ok(k) = k.parse::<u64>() else { continue };
        let (what, input) = rest.rsplit_once(" at ").unwrap_or((rest, "[]"));
        let input = input
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .filter_map(|s| s.trim().parse::<f64>().ok())
            .collect();
        let what = what.trim_matches(|c| c == '(' || c == ')').to_string();
        found.entry(k).or_insert(Failure::Runtime { what, input });
    }
    Some(found)
}

/// Maps rustc's errors in the generated files to the (indices of the) programs they are in.
fn locate_errors(stderr: &str, gradients: &str, programs: &str) -> BTreeMap<u64, Failure> {
    let starts = |text: &str| -> Vec<(usize, u64)> {
        text.lines()
            .enumerate()
            .filter_map(|(n, l)| {
                let l = l.strip_prefix("pub ").unwrap_or(l);
                let name = l.strip_prefix("mod p")?.strip_suffix(" {")?;
                Some((n + 1, name.parse().ok()?))
            })
            .collect()
    };
    let (g_starts, p_starts) = (starts(gradients), starts(programs));
    let mut found = BTreeMap::new();
    let lines: Vec<&str> = stderr.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if !l.starts_with("error") || l.starts_with("error: could not compile") {
            continue;
        }
        if l.starts_with("error: aborting") {
            continue;
        }
        // The location follows the message within a few lines.
        let Some(loc) = lines[i + 1..]
            .iter()
            .take(4)
            .find_map(|m| m.trim_start().strip_prefix("--> "))
        else {
            continue;
        };
        let mut parts = loc.rsplitn(3, ':');
        let (_col, line, file) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        let Some(line) = line.and_then(|s| s.parse::<usize>().ok()) else {
            continue;
        };
        let table = if file.ends_with("gradients.rs") {
            &g_starts
        } else if file.ends_with("programs.rs") {
            &p_starts
        } else {
            continue;
        };
        let Some(&(_, index)) = table.iter().rev().find(|(start, _)| *start <= line) else {
            continue;
        };
        let block: Vec<&str> = lines[i..]
            .iter()
            .take(40)
            .enumerate()
            .take_while(|(k, m)| *k == 0 || !m.starts_with("error"))
            .map(|(_, m)| *m)
            .collect();
        found.entry(index).or_insert(Failure::Compile {
            signature: mask_names(l),
            message: block.join("\n"),
        });
    }
    found
}

/// `cannot find value `x_bar` in this scope` -> `cannot find value `_` in this scope`.
fn mask_names(line: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for ch in line.chars() {
        if ch == '`' {
            if inside {
                out.push_str("_`");
            } else {
                out.push('`');
            }
            inside = !inside;
        } else if !inside {
            out.push(ch);
        }
    }
    out
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn comment(text: &str) -> String {
    text.lines()
        .map(|l| format!("//! {l}\n"))
        .collect::<String>()
}

fn write_compile_reproducer(opts: &Opts, u: &Unit, f: &Failure, message: &str) -> PathBuf {
    let path = opts.out.join(format!("seed{}_p{}.rs", u.seed, u.index));
    let what = match f {
        Failure::Compile { .. } => "the program does not compile under `#[gradient]`",
        _ => "the test process crashed or hung on this program",
    };
    let text = format!(
        "//! Reproducer: {what}.\n//!\n//! Program {} of the campaign with seed {} (features `{}`).\n\
         //! Run it alone: copy it to the `ad` crate's `tests/` and `cargo test --test <file stem>`.\n\
         //!\n{}\n{}\n#[test]\nfn compiles() {{}}\n",
        u.index,
        u.seed,
        opts.features.describe(),
        comment(message),
        emit::source(&u.program)
    );
    let _ = std::fs::write(&path, text);
    path
}

/// Shrinks a failing program: repeatedly replaces it by its smallest one-step variant that
/// still fails the same way. Returns the path of the minimal reproducer.
fn shrink(opts: &Opts, u: &Unit, f: &Failure) -> Option<PathBuf> {
    let mut input = match f {
        Failure::Runtime { input, .. } => Some(input.clone()),
        _ => None,
    };
    let mut best: Program = u.program.clone();
    let scratch = target_dir().join("random-programs-campaign/shrink");
    for _round in 0..80 {
        let mut cands: Vec<(Program, Vec<Vec<f64>>)> = reduce::variants(&best)
            .into_iter()
            .filter(|c| reduce::size(c) < reduce::size(&best))
            .filter_map(|c| {
                let inputs = match &input {
                    Some(x) => vec![reduce::remap_inputs(&best, &c, x)?],
                    None => vec![],
                };
                Some((c, inputs))
            })
            .collect();
        cands.truncate(60);
        if cands.is_empty() {
            break;
        }
        // Candidates are numbered 0, 1, ...: their inputs are fixed, so the index only names
        // their module.
        let units: Vec<Unit> = cands
            .iter()
            .enumerate()
            .map(|(k, (p, inputs))| Unit {
                seed: u.seed,
                index: k as u64,
                program: p.clone(),
                inputs: inputs.clone(),
            })
            .collect();
        let _ = std::fs::remove_dir_all(&scratch);
        let found = run_units(opts, &units, &scratch);
        let still: Option<usize> = found
            .iter()
            .filter(|(_, g)| same_failure(f, g))
            .map(|(&k, _)| k)
            .min_by_key(|&k| reduce::size(&cands[k].0));
        match still {
            Some(k) => {
                best = cands[k].0.clone();
                input = cands[k].1.first().cloned();
            }
            None => break,
        }
        println!("  size {}", reduce::size(&best));
    }
    let inputs: Vec<Vec<f64>> = input.into_iter().collect();
    let min = Unit {
        seed: u.seed,
        index: u.index,
        program: best,
        inputs,
    };
    let path = opts.out.join(format!("seed{}_p{}.min.rs", u.seed, u.index));
    match f {
        Failure::Runtime { .. } => {
            // Let the test write the reproducer (it has the oracle's numbers), then move it.
            let _ = std::fs::remove_dir_all(&scratch);
            let found = run_units(opts, std::slice::from_ref(&min), &scratch);
            found.get(&0)?;
            let written = std::fs::read_dir(&scratch)
                .ok()?
                .filter_map(Result::ok)
                .find(|e| e.path().extension().is_some_and(|x| x == "rs"))?;
            let text = std::fs::read_to_string(written.path()).ok()?;
            let text = format!(
                "//! Shrunk by the campaign runner from program {} of seed {}.\n{text}",
                u.index, u.seed
            );
            std::fs::write(&path, text).ok()?;
        }
        Failure::Compile { message, .. } | Failure::Crash { output: message } => {
            let found = run_units(opts, std::slice::from_ref(&min), &scratch);
            let msg = match found.get(&0) {
                Some(Failure::Compile { message, .. }) => message.clone(),
                _ => message.clone(),
            };
            let p = write_compile_reproducer(opts, &min, f, &msg);
            std::fs::rename(&p, &path).ok()?;
        }
    }
    Some(path)
}

/// What makes two failures "the same bug" for shrinking: the masked first compile error, the
/// kind of runtime finding (`Mismatch`, `panic`, ...), or a crash.
fn same_failure_key(f: &Failure) -> String {
    match f {
        Failure::Compile { signature, .. } => format!("compile: {signature}"),
        Failure::Runtime { what, .. } => {
            format!("runtime: {}", what.split(':').next().unwrap_or(""))
        }
        Failure::Crash { .. } => "crash".into(),
    }
}

fn same_failure(a: &Failure, b: &Failure) -> bool {
    same_failure_key(a) == same_failure_key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_errors_are_located_in_their_program() {
        let gradients = "// header\n\n#[allow(unused)]\nmod p000007 {\nuse ad::gradient;\n#[gradient]\nfn f(x: f64) -> f64 {\n    1.0\n}\n}\n#[allow(unused)]\nmod p000012 {\n}\n";
        let stderr = "error[E0425]: cannot find value `ret_0_bar` in this scope\n  --> /t/out/gradients.rs:6:1\n   |\n6 | #[gradient]\n\nerror: aborting due to 1 previous error\n";
        let found = locate_errors(stderr, gradients, "");
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), vec![7]);
        match &found[&7] {
            Failure::Compile { signature, message } => {
                assert_eq!(
                    signature,
                    "error[E0425]: cannot find value `_` in this scope"
                );
                assert!(message.contains("gradients.rs:6:1"));
            }
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn the_summary_and_its_mismatches_are_read() {
        let out = "seed 1\nmismatch: program 42 (Mismatch) at [0.5, -1.25]\n\
                   mismatch: program 43 (panic: index out of bounds: the len is 3 but the index is 3) at [1.0]\n\
                   1000 programs, 2 mismatches\n";
        let found = parse_summary(out).expect("summary present");
        match &found[&42] {
            Failure::Runtime { what, input } => {
                assert_eq!(what, "Mismatch");
                assert_eq!(input, &vec![0.5, -1.25]);
            }
            f => panic!("{f:?}"),
        }
        assert!(matches!(&found[&43], Failure::Runtime { what, .. } if what.starts_with("panic")));
        assert!(parse_summary("compiling...\n").is_none());
    }
}
