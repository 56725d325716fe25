//! `cargo bench --bench summary`: every objective under every tool, timed in this one process,
//! printed as one Markdown table (the one kept in `BENCHMARKS.md`), followed by the targets.
//!
//! For each objective the tools are timed in interleaved rounds (one batch of calls per tool per
//! round), so a change of clock speed hits all of them alike; each batch is sized to take about
//! 2 ms, and the figure reported is the median over the rounds of the time per call. The ratios
//! are medians over rounds of the ratio within a round (see [`ratio`]). Before any timing, every
//! tool's value and gradient are checked against the hand-written adjoint.
//!
//! The "heap peak" column is the largest amount of heap memory one call held at once beyond what
//! was live before it (buffers, tapes, dual vectors), counted by a global allocator in a separate
//! untimed call; while timing, the allocator only pays one relaxed load per allocation. For
//! `reverse` it adds the nodes one call puts on the tape, whose buffer is reused across calls;
//! for `f_grad`, whose tapes reuse the buffers of earlier calls through a per-thread cache, the
//! call is measured with the cache emptied first, so it allocates its tapes as a first call does.
//!
//! Optional arguments after `--`: substrings of objective names to run only those, e.g.
//! `cargo bench --bench summary -- GMM`. Run without `--bench` (as `cargo test --benches` does), it
//! only checks agreement at small sizes and times nothing.

mod objectives;

use objectives::ba::Ba;
use objectives::gmm::Gmm;
use objectives::lecture::Lecture;
use objectives::logreg::LogReg;
use objectives::lse::Lse;
use objectives::lstm::Lstm;
use objectives::matmul::MatMul;
use objectives::mlp::Mlp;
use objectives::recurrence::Recurrence;
use objectives::rosenbrock::Rosenbrock;
use objectives::softmax::Softmax;
use objectives::{check_agreement, Problem, Tool};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The system allocator, counting live bytes and their peak while [`COUNTING`] is set.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn record(delta: isize) {
    if COUNTING.load(Relaxed) {
        let now = LIVE.fetch_add(delta, Relaxed) + delta;
        PEAK.fetch_max(now, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping touches only atomics.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            record(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            record(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        record(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Peak heap bytes held by one call of `tool` beyond what was live before it.
fn heap_peak<P: Problem>(p: &P, tool: Tool, g: &mut [f64]) -> usize {
    // `f_grad`'s tapes reuse, through a per-thread cache, the buffers earlier calls grew: empty
    // it, so that the call allocates what it needs, as a first call does.
    ad_runtime::release_tape_cache();
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    black_box(tool.run(black_box(p), g));
    COUNTING.store(false, Relaxed);
    let peak = PEAK.load(Relaxed).max(0) as usize;
    match tool {
        // `reverse`'s node buffer is reused across calls; count what one call fills.
        Tool::Reverse => peak + REVERSE_NODE_BYTES * p.reverse_tape_nodes(),
        _ => peak,
    }
}

/// Size of one node of `reverse` 0.2's tape: two weights and two indices.
const REVERSE_NODE_BYTES: usize = 32;

/// Wall time one batch of calls should take.
const BATCH_TARGET: Duration = Duration::from_millis(2);
/// Rounds per objective (samples per tool, unless the tool's budget runs out first).
const ROUNDS: usize = 41;
/// Time one tool may spend on one objective; a slow tool stops early with at least
/// [`MIN_SAMPLES`] samples.
const TOOL_BUDGET: Duration = Duration::from_secs(3);
const MIN_SAMPLES: usize = 5;
/// Relative tolerance of the agreement check.
const TOLERANCE: f64 = 1e-9;

/// Calls `f` `batch` times, keeping its inputs opaque and its outputs observed.
#[inline(never)]
fn time_batch<P: Problem>(
    p: &P,
    g: &mut [f64],
    batch: usize,
    f: impl Fn(&P, &mut [f64]) -> f64,
) -> Duration {
    let start = Instant::now();
    for _ in 0..batch {
        black_box(f(black_box(p), &mut *g));
        black_box(&mut *g);
    }
    start.elapsed()
}

/// One batch of `tool`, dispatched once, so that each loop is monomorphic.
fn run_batch<P: Problem>(p: &P, tool: Tool, g: &mut [f64], batch: usize) -> Duration {
    match tool {
        Tool::Function => time_batch(p, g, batch, |p, _| p.value()),
        Tool::Generated => time_batch(p, g, batch, |p, g| p.generated(g).unwrap_or(f64::NAN)),
        Tool::Hand => time_batch(p, g, batch, |p, g| p.hand(g)),
        Tool::NumDual => time_batch(p, g, batch, |p, g| p.num_dual(g)),
        Tool::Reverse => time_batch(p, g, batch, |p, g| p.reverse(g)),
    }
}

struct Sampler {
    tool: Tool,
    heap: usize,
    batch: usize,
    spent: Duration,
    per_call_ns: Vec<f64>,
}

struct Row {
    objective: String,
    tool: Tool,
    /// Time per call of each round, in ns, in round order (empty when not measured).
    per_round_ns: Vec<f64>,
    /// Peak heap bytes of one call.
    heap: usize,
    note: &'static str,
}

impl Row {
    /// Median, 25th and 75th percentile of the time per call.
    fn stats(&self) -> Option<[f64; 3]> {
        if self.per_round_ns.is_empty() {
            return None;
        }
        let mut v = self.per_round_ns.clone();
        v.sort_by(f64::total_cmp);
        Some([
            percentile(&v, 0.5),
            percentile(&v, 0.25),
            percentile(&v, 0.75),
        ])
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn measure<P: Problem>(p: &P, all_rows: &mut Vec<Row>) {
    check_agreement(p, TOLERANCE);
    let mut rows = Vec::new();
    let mut g = vec![0.0; p.n_params()];
    let mut samplers = Vec::new();
    for tool in Tool::ALL {
        if !tool.available(p) {
            let note = match tool {
                Tool::Generated => "not built",
                _ => "skipped: O(n²) forward mode, seconds to minutes per call",
            };
            rows.push(Row {
                objective: p.name(),
                tool,
                per_round_ns: Vec::new(),
                heap: 0,
                note,
            });
            continue;
        }
        // Warm up (caches, allocator, the tape's capacity), then size the batch.
        let mut once = run_batch(p, tool, &mut g, 1);
        let heap = heap_peak(p, tool, &mut g);
        let warm_until = Instant::now() + Duration::from_millis(50);
        while Instant::now() < warm_until {
            once = once.min(run_batch(p, tool, &mut g, 1));
        }
        let batch = (BATCH_TARGET.as_secs_f64() / once.as_secs_f64().max(1e-9)).ceil() as usize;
        samplers.push(Sampler {
            tool,
            heap,
            batch: batch.max(1),
            spent: Duration::ZERO,
            per_call_ns: Vec::with_capacity(ROUNDS),
        });
    }
    // A tool that stops early never resumes, so sample r of every tool is from round r.
    for _ in 0..ROUNDS {
        for s in samplers.iter_mut() {
            if s.per_call_ns.len() >= MIN_SAMPLES && s.spent > TOOL_BUDGET {
                continue;
            }
            let t = run_batch(p, s.tool, &mut g, s.batch);
            s.spent += t;
            s.per_call_ns.push(t.as_nanos() as f64 / s.batch as f64);
        }
    }
    for s in samplers {
        rows.push(Row {
            objective: p.name(),
            tool: s.tool,
            per_round_ns: s.per_call_ns,
            heap: s.heap,
            note: "",
        });
    }
    rows.sort_by_key(|r| Tool::ALL.iter().position(|&t| t == r.tool));
    all_rows.extend(rows);
}

fn format_time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn format_bytes(b: usize) -> String {
    let b = b as f64;
    if b == 0.0 {
        "0".to_string()
    } else if b < 1024.0 {
        format!("{b} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

fn find<'r>(rows: &'r [Row], objective: &str, tool: Tool) -> Option<&'r Row> {
    rows.iter()
        .find(|r| r.objective == objective && r.tool == tool && !r.per_round_ns.is_empty())
}

/// Time of `tool` over time of `base` on one objective: the median over rounds of the ratio within
/// each round, so that load from other processes, which comes and goes in phases longer than a
/// round, cancels out of the comparison.
fn ratio(rows: &[Row], objective: &str, tool: Tool, base: Tool) -> Option<f64> {
    let a = &find(rows, objective, tool)?.per_round_ns;
    let b = &find(rows, objective, base)?.per_round_ns;
    let mut r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    r.sort_by(f64::total_cmp);
    Some(percentile(&r, 0.5))
}

fn print_table(rows: &[Row]) {
    println!(
        "| objective | tool | median | × function | × hand-written | IQR | heap peak | samples |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        match r.stats() {
            Some([median, p25, p75]) => {
                let vs = |base| {
                    ratio(rows, &r.objective, r.tool, base)
                        .map(|x| format!("{x:.2}"))
                        .unwrap_or_else(|| "—".to_string())
                };
                println!(
                    "| {} | {} | {} | {} | {} | ±{:.0}% | {} | {} |",
                    r.objective,
                    r.tool.label(),
                    format_time(median),
                    vs(Tool::Function),
                    vs(Tool::Hand),
                    50.0 * (p75 - p25) / median,
                    format_bytes(r.heap),
                    r.per_round_ns.len()
                );
            }
            None => println!(
                "| {} | {} | — | — | — | {} | — | 0 |",
                r.objective,
                r.tool.label(),
                r.note
            ),
        }
    }
}

/// Objectives (by name prefix) that also carry the target `f_grad / function ≤ 2.0`.
const HEAVY: [&str; 6] = [
    "Rosenbrock",
    "GMM",
    "MLP",
    "logistic regression",
    "log-sum-exp",
    "softmax cross-entropy",
];

/// The targets, checked against this run.
fn print_targets(rows: &[Row]) {
    let mut objectives: Vec<&str> = rows.iter().map(|r| r.objective.as_str()).collect();
    objectives.dedup();
    println!();
    println!("| objective | target | measured | met |");
    println!("|---|---|--:|:-:|");
    for o in objectives {
        let check = |target: &str, measured: Option<f64>, ok: fn(f64) -> bool| match measured {
            Some(m) => println!(
                "| {o} | {target} | {m:.2} | {} |",
                if ok(m) { "yes" } else { "**no**" }
            ),
            None => println!("| {o} | {target} | — | no f_grad in this build |"),
        };
        let generated_vs = |base| ratio(rows, o, Tool::Generated, base);
        check(
            "f_grad / hand-written ≤ 1.10",
            generated_vs(Tool::Hand),
            |m| m <= 1.10,
        );
        if HEAVY.iter().any(|prefix| o.starts_with(prefix)) {
            check(
                "f_grad / function ≤ 2.0",
                generated_vs(Tool::Function),
                |m| m <= 2.0,
            );
        }
        let tape_vs_generated = ratio(rows, o, Tool::Reverse, Tool::Generated);
        if o.starts_with("Rosenbrock") {
            check("reverse / f_grad ≥ 20", tape_vs_generated, |m| m >= 20.0);
        }
        if o.starts_with("GMM") {
            check("reverse / f_grad ≥ 4", tape_vs_generated, |m| m >= 4.0);
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    let rustc = std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "rustc (version unknown)".to_string());
    format!("{cpu}, {cores} cores, {os}, {rustc}")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // Under `cargo test --benches`: correctness only, small sizes, no timing.
        check_agreement(&Lecture::new(2.0, 3.0), TOLERANCE);
        check_agreement(&Rosenbrock::new(10, 1), TOLERANCE);
        check_agreement(&Gmm::new(2, 5, 50, 2), TOLERANCE);
        check_agreement(&Mlp::new(16, 3), TOLERANCE);
        check_agreement(&LogReg::new(3, 5, 5), TOLERANCE);
        check_agreement(&Lse::new(7, 6), TOLERANCE);
        check_agreement(&Softmax::new(3, 4, 5, 7), TOLERANCE);
        check_agreement(&Ba::new(3, 10, 30, 3), TOLERANCE);
        check_agreement(&Lstm::new(2, 4, 3, 1), TOLERANCE);
        check_agreement(&MatMul::new(5, 12), TOLERANCE);
        check_agreement(&Recurrence::new(100), TOLERANCE);
        println!("summary: tools agree; run `cargo bench --bench summary` to time them");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| {
        filters.is_empty()
            || filters
                .iter()
                .any(|f| name.to_lowercase().contains(&f.to_lowercase()))
    };

    let started = Instant::now();
    let mut rows = Vec::new();
    macro_rules! run {
        ($p:expr) => {{
            let p = $p;
            if wanted(&p.name()) {
                eprintln!("measuring {} …", p.name());
                measure(&p, &mut rows);
            }
        }};
    }
    run!(Lecture::new(2.0, 3.0));
    run!(Rosenbrock::new(10, 1));
    run!(Rosenbrock::new(1_000, 1));
    run!(Rosenbrock::new(100_000, 1));
    run!(Gmm::new(2, 5, 1_000, 2));
    run!(Gmm::new(10, 25, 1_000, 3));
    run!(Mlp::new(256, 4));
    run!(LogReg::new(20, 1_000, 5));
    run!(LogReg::new(100, 1_000, 5));
    run!(Lse::new(1_000, 6));
    run!(Lse::new(100_000, 6));
    run!(Softmax::new(20, 10, 500, 7));
    run!(Ba::new(20, 2_000, 8_000, 11));
    run!(Lstm::new(2, 1024, 14, 1));
    run!(MatMul::new(64, 12));
    run!(Recurrence::new(10_000));

    println!();
    println!("Machine: {}", machine());
    println!(
        "Command: `cargo bench --bench summary`; total {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!();
    print_table(&rows);
    print_targets(&rows);
}
