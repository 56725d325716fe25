//! Loop, slice and buffer constructs that `#[gradient]` refuses: each file under
//! `tests/ui_loops/` is named after the refusal, and its `.stderr` holds the expected error.
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test --test ui_loops` and read
//! the diff.

#[test]
fn ui_loops() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui_loops/*.rs");
}
