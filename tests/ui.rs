//! Misuses of `#[gradient]`, each refused at compile time with an error on the offending tokens.
//! One file per misuse in `tests/ui/`, with the expected compiler output beside it
//! (regenerate with `TRYBUILD=overwrite cargo test --test ui` and read the diff).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
