//! Helpers shared by the integration tests of fused and merged loops (`mod common;`).
#![allow(dead_code)]

/// `len` values in [−2, 2) from a xorshift seeded by `seed`.
pub fn data(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0
        })
        .collect()
}

/// `v` is `f(x)` to the bit, and `g` matches central finite differences of `f` at `x`.
pub fn check(f: impl Fn(&[f64]) -> f64, g: &[f64], v: f64, x: &[f64], what: &str) {
    assert_eq!(
        v.to_bits(),
        f(x).to_bits(),
        "{what}: the value is the function's"
    );
    if let Err(e) = ad::check_gradient(&f, x, g, 1e-6) {
        panic!("{what}, len {}: {e}", x.len());
    }
}
