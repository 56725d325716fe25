//! The oracle against finite differences, on this build's programs: the second opinion.
//!
//! Runs without the macro, so it validates the generator and the dual numbers on their own:
//! every program's dual-number gradient must agree with a five-point central difference of the
//! plain program, wherever the step stays clear of kinks and branch boundaries.

use random_programs::check::{self, Settings};
use random_programs::programs;

#[test]
fn oracle_agrees_with_finite_differences() {
    let s = Settings::default();
    let sum = check::run(programs::PROGRAMS, None, &s);
    println!("oracle vs finite differences: {}", sum.details());
    let dir = check::mismatch_dir();
    let written = check::write_reproducers(&sum.findings, programs::FEATURES, &dir, 20);
    for p in &written {
        println!("reproducer: {}", p.display());
    }
    assert!(
        sum.findings.is_empty(),
        "{} findings of the oracle itself (first: {:?})",
        sum.findings.len(),
        sum.findings
            .first()
            .map(|f| (&f.kind, f.program.index, &f.components))
    );
    assert!(
        sum.fd_points * 2 >= sum.points,
        "finite differences were possible at only {} of {} points",
        sum.fd_points,
        sum.points
    );
}
