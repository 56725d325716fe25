//! Fused loops whose one accumulator is used non-linearly after the loop (`s.sqrt()`,
//! `s.ln()`): the loop runs fused with the accumulator's adjoint set to 1, and the reverse sweep
//! scales what it added when it reaches the loop (`fuse::Deferred`). Each gradient is checked
//! against central finite differences, with near misses that must replay as before: a slice
//! read again after the loop, a slice read by a fused loop before it, two accumulators.
#![allow(clippy::needless_range_loop)]

use ad::gradient;

const X: [f64; 7] = [0.7, -0.4, 1.3, 0.2, -1.1, 0.9, 0.5];

/// The `f_grad` of a `#[gradient] fn f(x: &[f64]) -> f64`.
type Grad = fn(&[f64], &mut [f64]) -> (f64, [f64; 0]);

/// A function of one slice and its `f_grad`.
type Case = (fn(&[f64]) -> f64, Grad);

#[track_caller]
fn check(f: &dyn Fn(&[f64]) -> f64, value: f64, grad: &[f64], x: &[f64]) {
    assert_eq!(value.to_bits(), f(x).to_bits(), "f_grad's value differs");
    if let Err(e) = ad::check_gradient(f, x, grad, 1e-6) {
        panic!("{e}\n  at x = {x:?}\n  gradient = {grad:?}");
    }
}

#[gradient]
fn norm(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i];
    }
    s.sqrt()
}

/// Log-sum-exp: the max loop replays (and adds to `x`'s shadow after the scaling), the sum loop
/// is fused and adds to the private adjoint of `mx`, which `s.ln() + mx` also reads.
#[gradient]
fn log_sum_exp(x: &[f64]) -> f64 {
    let mut mx = x[0];
    for i in 1..x.len() {
        if x[i] > mx {
            mx = x[i];
        }
    }
    let mut s = 0.0;
    for i in 0..x.len() {
        s += (x[i] - mx).exp();
    }
    s.ln() + mx
}

#[test]
fn norms_and_log_sum_exp() {
    let cases: [Case; 2] = [(norm, norm_grad), (log_sum_exp, log_sum_exp_grad)];
    for (f, grad) in cases {
        let mut g = vec![f64::NAN; X.len()];
        let (v, []) = grad(&X, &mut g);
        check(&f, v, &g, &X);
    }
    // The softmax, exactly as the closed form gives it.
    let mut g = vec![0.0; X.len()];
    log_sum_exp_grad(&X, &mut g);
    let z: f64 = X.iter().map(|v| v.exp()).sum();
    for (gi, xi) in g.iter().zip(X) {
        approx::assert_relative_eq!(*gi, xi.exp() / z, max_relative = 1e-14);
    }
}

/// Scalars and a local buffer read in the loop, a shadow the loop stores only partly (`1..`),
/// statements before the loop that read the slice and the buffer (their reverse adds after the
/// scaling), and a use of the sum that is neither first nor alone.
#[gradient]
fn scalars_and_buffers(x: &[f64], c: f64, k: f64) -> f64 {
    let n = x.len();
    let mut w = vec![0.0; n];
    for j in 0..n {
        w[j] = (x[j] * k).cos();
    }
    let a = c * x[0];
    let mut s = 1.0;
    for i in 1..n {
        s += (a * x[i] - k).tanh() * w[i] + c;
    }
    let t = s.ln() * s;
    t + a * c
}

#[test]
fn scalars_buffers_and_partly_stored_shadows() {
    let (c, k) = (0.8, -0.3);
    let mut g = vec![f64::NAN; X.len()];
    let (v, [dc, dk]) = scalars_and_buffers_grad(&X, &mut g, c, k);
    check(&|x| scalars_and_buffers(x, c, k), v, &g, &X);
    let f = |p: &[f64]| scalars_and_buffers(&X, p[0], p[1]);
    ad::check_gradient(f, &[c, k], &[dc, dk], 1e-6).unwrap();
}

/// Near misses: `x` read again after the loop (its adjoint would mix), `x` read by a fused loop
/// before it, two accumulators used non-linearly.
#[gradient]
fn read_after(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i].sin();
    }
    s.sqrt() + x[1] * x[2]
}

#[gradient]
fn fused_before(x: &[f64]) -> f64 {
    let mut u = 0.0;
    for i in 0..x.len() {
        u += x[i] * 2.0;
    }
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i];
    }
    s.sqrt() + u
}

#[gradient]
fn two_sums(x: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut t = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i];
        t += x[i].sin();
    }
    (s * t).sqrt()
}

#[test]
fn near_misses_replay() {
    let x: Vec<f64> = X.iter().map(|v| v.abs() + 0.1).collect();
    let cases: [Case; 3] = [
        (read_after, read_after_grad),
        (fused_before, fused_before_grad),
        (two_sums, two_sums_grad),
    ];
    for (f, grad) in cases {
        let mut g = vec![f64::NAN; x.len()];
        let (v, []) = grad(&x, &mut g);
        check(&f, v, &g, &x);
    }
}

mod random_inputs {
    use super::*;
    use proptest::prelude::*;

    fn fd(f: impl FnMut(&[f64]) -> f64, x: &[f64], g: &[f64]) -> Result<(), TestCaseError> {
        ad::check_gradient(f, x, g, 1e-5)
            .map_err(|e| TestCaseError::fail(format!("{e}\n  at {x:?}\n  gradient {g:?}")))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Lengths from 1 (the max loop does not run, the sum loop runs once) up.
        #[test]
        fn deferred_seeds_at_random_points(
            x in prop::collection::vec(-3.0..3.0f64, 1..12),
            c in 0.2..1.5f64,
            k in -1.0..1.0f64,
        ) {
            let mut g = vec![f64::NAN; x.len()];
            let (v, []) = log_sum_exp_grad(&x, &mut g);
            prop_assert_eq!(v.to_bits(), log_sum_exp(&x).to_bits());
            fd(log_sum_exp, &x, &g)?;
            let (v, []) = norm_grad(&x, &mut g);
            prop_assert_eq!(v.to_bits(), norm(&x).to_bits());
            fd(norm, &x, &g)?;
            if x.len() >= 2 {
                let (v, [dc, dk]) = scalars_and_buffers_grad(&x, &mut g, c, k);
                prop_assert_eq!(v.to_bits(), scalars_and_buffers(&x, c, k).to_bits());
                fd(|x| scalars_and_buffers(x, c, k), &x, &g)?;
                fd(|p| scalars_and_buffers(&x, p[0], p[1]), &[c, k], &[dc, dk])?;
            }
        }
    }
}
