//! The fuzz target's checks without libFuzzer, on a stable toolchain: mutants of the corpus and
//! random token soup through the `#[gradient]` expansion for a given time.
//!
//! ```text
//! soak [SECONDS] [--seed S] [--fixed]   run for SECONDS (default 60) from seed S (default 1000000);
//!                                       --fixed first runs the deep, huge, attribute, signature and
//!                                       unsupported-construct cases of the unit tests
//! soak --write-seeds DIR                write the corpus as seed inputs for `cargo fuzz`
//! soak --write-dict FILE                write a libFuzzer dictionary of Rust tokens and constructs
//! soak --write-findings DIR             write the minimal reproducers of the known findings, one
//!                                       file each, to replay with --run or `cargo fuzz run`
//! soak --probe NAME SIZE [--syn]        one deep or huge case (label starting with NAME) at SIZE,
//!                                       on an 8 MiB stack: time and verdict; with --syn, only
//!                                       syn's parse of the item (is a stack overflow syn's own?)
//! ```
//! soak --run FILE...                    each FILE (a fuzz input or artifact: attribute, NUL byte,
//!                                       item; or only the item) once, on an 8 MiB stack
//!
//! Exits with status 1 when an input panicked, hung, took too long or broke the contract.

use std::time::{Duration, Instant};

fn main() {
    quiet_panics();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    if let Some(i) = flag("--write-seeds") {
        let dir = args.get(i + 1).expect("--write-seeds DIR");
        std::fs::create_dir_all(dir).expect("create the seed directory");
        for (k, seed) in ad_macro_fuzz::seeds().iter().enumerate() {
            std::fs::write(format!("{dir}/corpus-{k:02}"), seed).expect("write a seed");
        }
        println!("wrote {} seeds to {dir}", ad_macro_fuzz::seeds().len());
        return;
    }
    if let Some(i) = flag("--write-dict") {
        let file = args.get(i + 1).expect("--write-dict FILE");
        std::fs::write(file, ad_macro_fuzz::dictionary()).expect("write the dictionary");
        println!("wrote {file}");
        return;
    }
    if let Some(i) = flag("--write-findings") {
        let dir = args.get(i + 1).expect("--write-findings DIR");
        std::fs::create_dir_all(dir).expect("create the directory");
        for (k, (case, what)) in ad_macro_fuzz::findings().iter().enumerate() {
            let kind = what.split('(').next().unwrap_or("finding").to_lowercase();
            let path = format!("{dir}/{k:02}-{kind}");
            let data = format!("{}\0{}", case.attr, case.item);
            std::fs::write(&path, data).expect("write a finding");
            println!("{path}: {}", case.label);
        }
        return;
    }
    if let Some(i) = flag("--probe") {
        let name = args.get(i + 1).expect("--probe NAME SIZE").clone();
        let size: usize = args
            .get(i + 2)
            .and_then(|s| s.parse().ok())
            .expect("a SIZE");
        probe(name, size, flag("--syn").is_some());
        return;
    }
    if let Some(i) = flag("--run") {
        let files = args[i + 1..].to_vec();
        run_files(files);
        return;
    }
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(60);
    let start_seed: u64 = flag("--seed")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1_000_000);
    let fixed = flag("--fixed").is_some();
    let budget = Duration::from_secs(seconds);
    let started = Instant::now();
    let report = ad_macro_fuzz::guarded("soak", move |note, report| {
        if fixed {
            for case in ad_macro_fuzz::fixed_cases(200, 5000) {
                note(&case);
                report.run(&case);
            }
        }
        let n = ad_macro_fuzz::corpus_len();
        let mut seed = start_seed;
        while started.elapsed() < budget {
            for index in 0..n {
                let case = ad_macro_fuzz::mutant(index, seed);
                note(&case);
                report.run(&case);
            }
            for k in 0..n as u64 / 2 {
                let case = ad_macro_fuzz::soup_case(seed * 64 + k);
                note(&case);
                report.run(&case);
            }
            seed += 1;
        }
        eprintln!("seeds {start_seed}..{seed}");
    });
    println!(
        "{}\nwall time {:.1?}",
        report.summary("soak"),
        started.elapsed()
    );
    if !report.failures.is_empty() {
        std::process::exit(1);
    }
}

fn probe(name: String, size: usize, syn_only: bool) {
    let work = move || {
        let cases = ad_macro_fuzz::deep_and_huge(size, size);
        let Some(case) = cases.into_iter().find(|c| c.label.starts_with(&name)) else {
            eprintln!("no deep or huge case starts with `{name}`");
            std::process::exit(2);
        };
        if syn_only {
            let start = Instant::now();
            let parsed = syn::parse2::<syn::ItemFn>(case.item.clone());
            let ok = parsed.is_ok();
            drop(parsed);
            println!("syn parsed {}: {ok}, {:.1?}", case.label, start.elapsed());
            return true;
        }
        let mut report = ad_macro_fuzz::Report::default();
        report.run(&case);
        println!("{}", report.summary(&case.label));
        report.failures.is_empty()
    };
    let thread = std::thread::Builder::new().stack_size(ad_macro_fuzz::STACK);
    let ok = thread
        .spawn(work)
        .expect("spawn")
        .join()
        .expect("the probe panicked");
    std::process::exit(if ok { 0 } else { 1 });
}

fn run_files(files: Vec<String>) {
    let work = move || {
        let mut report = ad_macro_fuzz::Report::default();
        for file in &files {
            let data = std::fs::read(file).expect("read the input");
            let Some(case) = ad_macro_fuzz::case_from_bytes(file, &data) else {
                println!("{file}: not UTF-8 or does not lex (the fuzz target skips it)");
                continue;
            };
            report.run(&case);
        }
        println!("{}", report.summary("run"));
        report.failures.is_empty()
    };
    let thread = std::thread::Builder::new().stack_size(ad_macro_fuzz::STACK);
    let ok = thread
        .spawn(work)
        .expect("spawn")
        .join()
        .expect("the run panicked");
    std::process::exit(if ok { 0 } else { 1 });
}

/// The expansions' panics are caught and reported in the summary (with the input, shrunk); print
/// only one line for each place that panics, the first time, instead of a backtrace each time.
fn quiet_panics() {
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    std::panic::set_hook(Box::new(move |info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(place.clone()) {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            eprintln!("panic at {place}: {}", ad_macro_fuzz::abbreviate(&msg));
        }
    }));
}
