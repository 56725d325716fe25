//! The expansion of `#[gradient]`, compiled as an ordinary library so that a fuzzer can link it:
//! a proc-macro crate cannot be linked by another crate, so its modules are included by path.
//! `robustness` brings the corpus, the mutators and the checks of the unit tests.

#[path = "../../ad-macro/src/adjoint.rs"]
mod adjoint;
#[path = "../../ad-macro/src/analyse.rs"]
mod analyse;
#[path = "../../ad-macro/src/attr.rs"]
mod attr;
#[path = "../../ad-macro/src/emit.rs"]
mod emit;
#[path = "../../ad-macro/src/errors.rs"]
mod errors;
#[path = "../../ad-macro/src/expand.rs"]
#[allow(dead_code)] // `expand`, the catching entry point, is the proc macro's
mod expand;
#[path = "../../ad-macro/src/intrinsics.rs"]
mod intrinsics;
#[path = "../../ad-macro/src/ir.rs"]
mod ir;
#[path = "../../ad-macro/src/lower.rs"]
mod lower;
#[path = "../../ad-macro/src/robustness.rs"]
#[allow(dead_code)]
mod robustness;

use std::str::FromStr;

use proc_macro2::TokenStream;

pub use robustness::{abbreviate, Case, Report, STACK, TIME_LIMIT};

/// Deeper input is skipped: syn's own recursive descent overflows rustc's 8 MiB stack at about
/// 500 nested groups in a debug build (a known limit, see README.md), and the fuzzer would find
/// that and nothing else.
pub const MAX_DEPTH: usize = 200;

/// The fuzz target's contract: `data` as UTF-8 (`#[gradient(attr)]`, a NUL byte, then the item;
/// with no NUL byte all of it is the item), lexed by `proc_macro2` (input that does not lex
/// cannot come from rustc), expanded by the raw pipeline. Panics if the expansion panics, takes
/// too long, or breaks its contract (see `robustness::check`).
pub fn fuzz_one(data: &[u8]) {
    let Some(case) = case_from_bytes("fuzz input", data) else {
        return;
    };
    if robustness::depth(&case.item) > MAX_DEPTH {
        return;
    }
    if let Err(what) = robustness::check(&case.attr, &case.item).0 {
        let item = abbreviate(&case.item.to_string());
        panic!("{what}\n#[gradient({})] {item}", case.attr);
    }
}

/// A fuzz input as a case: `None` if it is not UTF-8 or does not lex.
pub fn case_from_bytes(label: &str, data: &[u8]) -> Option<Case> {
    let text = std::str::from_utf8(data).ok()?;
    let (attr, item) = text.split_once('\0').unwrap_or(("", text));
    Some(Case {
        label: label.to_string(),
        attr: TokenStream::from_str(attr).ok()?,
        item: TokenStream::from_str(item).ok()?,
    })
}

/// A mutant of the corpus function `index` (see `robustness::mutant`).
pub fn mutant(index: usize, seed: u64) -> Case {
    robustness::mutant(index, seed)
}

/// Random tokens in one of several positions (see `robustness::soup_case`).
pub fn soup_case(seed: u64) -> Case {
    robustness::soup_case(seed)
}

/// The deep, huge, attribute, signature and unsupported-construct cases of the unit tests, less
/// the known findings (`robustness::KNOWN`, some of which abort the process).
pub fn fixed_cases(depth: usize, statements: usize) -> Vec<Case> {
    let mut cases = deep_and_huge(depth, statements);
    cases.extend(robustness::attribute_cases());
    cases.extend(robustness::signature_cases());
    cases.extend(robustness::unsupported_cases());
    cases.retain(|c| robustness::known(&c.label).is_none());
    cases
}

/// The deep and huge cases at the given sizes, known findings included.
pub fn deep_and_huge(depth: usize, statements: usize) -> Vec<Case> {
    let mut cases = robustness::deep_cases(depth);
    cases.extend(robustness::huge_cases(statements));
    cases
}

/// Minimal reproducers of the known findings (`robustness::KNOWN`), with what each shows.
pub fn findings() -> Vec<(Case, String)> {
    let cases = robustness::finding_cases().into_iter();
    let cases = cases.chain(robustness::overflow_cases());
    cases
        .map(|c| {
            let what = robustness::known(&c.label).map(|k| format!("{k:?}"));
            (c, what.unwrap_or_default())
        })
        .collect()
}

/// The corpus functions as fuzzer seeds: `attr`, NUL, function.
pub fn seeds() -> Vec<String> {
    robustness::CORPUS
        .iter()
        .map(|(a, f)| format!("{a}\0{f}"))
        .collect()
}

/// A libFuzzer dictionary (`-dict=FILE`): Rust words, operators, literals and constructs.
pub fn dictionary() -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let lines = robustness::dictionary().into_iter();
    lines.map(|s| format!("\"{}\"\n", escape(s))).collect()
}

/// Number of functions in the corpus.
pub fn corpus_len() -> usize {
    robustness::CORPUS.len()
}

/// Runs `work` on a thread with rustc's stack, under the same watchdog as the unit tests.
pub fn guarded<F>(name: &str, work: F) -> Report
where
    F: FnOnce(&dyn Fn(&Case), &mut Report) + Send + 'static,
{
    robustness::guarded(name, work)
}
