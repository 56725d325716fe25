//! Differential test of `#[gradient]`: every program of this build, compiled through the real
//! macro, against the forward-mode dual-number oracle (see TESTING.md).
//!
//! Prints `N programs, M mismatches`; each mismatching program is written as a standalone
//! reproducer into `target/random-programs-mismatches/` (or `$AD_RANDOM_MISMATCH_DIR`).

use random_programs::check::{self, Kind, Settings};
use random_programs::programs;

mod gradients {
    include!(concat!(env!("OUT_DIR"), "/gradients.rs"));
}

#[test]
fn gradients_agree_with_dual_numbers() {
    let settings = Settings {
        // The oracle's own check against finite differences is `tests/oracle.rs`.
        fd: false,
        ..Settings::default()
    };
    let sum = check::run(programs::PROGRAMS, Some(gradients::REVERSE), &settings);
    println!(
        "seed {}, programs {}..{}, features {}",
        programs::SEED,
        programs::FIRST,
        programs::FIRST + programs::PROGRAMS.len() as u64,
        programs::FEATURES
    );
    println!("{}", sum.details());
    let dir = check::mismatch_dir();
    let written = check::write_reproducers(&sum.findings, programs::FEATURES, &dir, 50);
    for f in &sum.findings {
        let what = match &f.kind {
            Kind::Panic(m) => format!("panic: {m}"),
            k => format!("{k:?}"),
        };
        println!(
            "mismatch: program {} ({what}) at {:?}",
            f.program.index, f.input
        );
    }
    for p in &written {
        println!("reproducer: {}", p.display());
    }
    // The closing line the campaign runner reads.
    println!("{}", sum.line());
    assert_eq!(sum.mismatched_programs(), 0, "{}", sum.line());
}
