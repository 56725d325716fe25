//! Regressions found by the test sessions: each case once failed to compile or gave a wrong
//! gradient.

// Only the generated gradients of some functions are called.
#![allow(dead_code, clippy::let_and_return, clippy::needless_range_loop)]

use ad::gradient;
#[gradient]
pub fn f(_x: &[f64], n: usize) -> f64 {
    n as f64
}
#[gradient]
pub fn g(x: f64, _y: f64) -> f64 {
    let r#fn = x * 2.0;
    r#fn
}
#[gradient(wrt(y))]
fn h(x: f32, y: f64) -> f64 {
    y * x as f64 + y * f64::from(x)
}
#[gradient]
fn q(x: f64) -> f64 {
    <f64>::sin(x) + f64::from_bits(7)
}
/// Inactive result, raw identifiers, floats of the other type, qualified paths.
#[test]
fn inactive_result_raw_names_other_float_type() {
    let mut s = [9.0; 2];
    assert_eq!(f_grad(&[1.0, 2.0], &mut s, 3), (3.0, []));
    assert_eq!(s, [0.0, 0.0]);
    assert_eq!(g_grad(1.0, 5.0), (2.0, [2.0, 0.0]));
    assert_eq!(h_grad(2.0, 3.0), (12.0, [4.0]));
    assert_eq!(q_grad(0.0).1, [1.0]);
}
#[gradient]
pub fn blk(x: f64) -> f64 {
    let a = {
        let t = x;
        t * t
    };
    let c = {
        let t = x * 2.0;
        t
    };
    let r = if x > 0.0 {
        let u = x;
        u
    } else {
        let w = 2.0 * x;
        w
    };
    a + c + r
}
#[gradient]
pub fn tailblk(x: f64) -> f64 {
    let t = x * 2.0;
    {
        let u = t + x;
        u
    }
}
#[gradient]
pub fn mean(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i];
    }
    s / x.len() as f64
}
/// Blocks whose tail is a local declared inside them; `x.len() as f64`.
#[test]
fn block_locals_and_lengths() {
    assert_eq!(blk_grad(3.0), (9.0 + 6.0 + 3.0, [6.0 + 2.0 + 1.0]));
    assert_eq!(tailblk_grad(1.0), (3.0, [3.0]));
    let mut g = [0.0; 2];
    assert_eq!(mean_grad(&[1.0, 3.0], &mut g).0, 2.0);
    assert_eq!(g, [0.5, 0.5]);
}
#[gradient(wrt(a))]
pub fn scale(a: f64, b: f64) -> f64 {
    a * b
}
#[gradient]
pub fn caller(a: f64) -> f64 {
    scale(a, 2.0) + scale(3.0, a)
}
#[gradient(wrt(w))]
pub fn lsq(w: &[f64], data: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..w.len() {
        s += (w[i] - data[i]).powi(2);
    }
    s
}
#[gradient]
pub fn calls_lsq(w: &[f64], d: &[f64]) -> f64 {
    lsq(w, d) * 2.0
}
/// Calls to functions restricted with `wrt(...)`, with scalars and slices.
#[test]
fn calls_to_wrt_restricted_functions() {
    // `scale` differentiates `a` only: the second call passes no derivative through `b`.
    assert_eq!(caller_grad(5.0), (25.0, [2.0]));
    let mut gw = [0.0; 2];
    let mut gd = [0.0; 2];
    let (v, []) = calls_lsq_grad(&[1.0, 2.0], &mut gw, &[0.0, 0.0], &mut gd);
    assert_eq!(v, 10.0);
    assert_eq!(gw, [4.0, 8.0]);
    // `lsq` differentiates `w` only: no derivative flows into `d` through it.
    assert_eq!(gd, [0.0, 0.0]);
}

#[gradient]
fn scaled_by_f32_constant(x: f64) -> f64 {
    let scale: f32 = 2.0;
    x * f64::from(scale)
}

/// A local of the other float type is an inactive constant.
#[test]
fn local_of_the_other_float_type_is_inactive() {
    assert_eq!(scaled_by_f32_constant_grad(3.0), (6.0, [2.0]));
}

fn plain_constant(g: f64) -> f64 {
    g.ln()
}

#[gradient(wrt(x))]
fn partly_active(x: f64, g: f64) -> f64 {
    x * g - plain_constant(g)
}

#[gradient]
fn calls_partly_active(x: f64, g: f64) -> f64 {
    partly_active(x, g) * 2.0
}

/// A `wrt(...)` function may call plain functions with its inactive parameters, and callers
/// see derivatives only through its active ones.
#[test]
fn callee_with_wrt_calls_plain_functions_with_inactive_arguments() {
    assert_eq!(partly_active_grad(2.0, 1.0), (2.0, [1.0]));
    assert_eq!(calls_partly_active_grad(2.0, 1.0), (4.0, [2.0, 0.0]));
}

#[gradient]
fn shadowed_inside_a_condition(x: f64) -> f64 {
    if x < {
        let x = x * 10.0;
        x
    } {
        return 1.0;
    }
    x * 2.0
}

/// A name bound inside code kept as written (here a condition) shadows the function's
/// variable of the same name.
#[test]
fn names_bound_inside_kept_code_shadow() {
    // 0.5 < 5.0: the early return; with the outer `x` it would be 0.5 < 0.5 and `x * 2.0`.
    assert_eq!(shadowed_inside_a_condition_grad(0.5), (1.0, [0.0]));
}

#[gradient]
fn saturated_tanh(x: f64) -> f64 {
    (x * 10.0).tanh()
}

/// The derivative of a saturated `tanh` keeps its relative precision.
#[test]
fn saturated_tanh_keeps_precision() {
    let x = 1.6;
    let exact = 10.0 / (x * 10.0f64).cosh().powi(2);
    let (_, [d]) = saturated_tanh_grad(x);
    assert!((d - exact).abs() <= 1e-9 * exact, "{d} vs {exact}");
}

#[gradient]
fn floor_then_cbrt(x: f64) -> f64 {
    x.floor().cbrt() + x
}

/// A piecewise-constant operation stops the adjoint: `cbrt'(0) = ∞` times `floor' = 0` is not
/// NaN but nothing (found by differential testing).
#[test]
fn piecewise_constant_operations_stop_the_adjoint() {
    assert_eq!(floor_then_cbrt_grad(0.5), (0.5, [1.0]));
}

#[gradient]
fn sqrt_shifted(x: f64) -> f64 {
    (x - 1.0).sqrt()
}

#[gradient]
fn log_of(x: f64) -> f64 {
    x.ln()
}

/// NaN and infinities propagate as in the original function; at a point where the forward
/// value is finite but the derivative is not (`sqrt` at 0), the gradient is the derivative's
/// limit (documented in `ad::rules`).
#[test]
fn nan_and_infinities_propagate() {
    let (v, [d]) = sqrt_shifted_grad(0.0);
    assert!(v.is_nan() && d.is_nan());
    assert_eq!(sqrt_shifted_grad(1.0), (0.0, [f64::INFINITY]));
    assert_eq!(log_of_grad(0.0), (f64::NEG_INFINITY, [f64::INFINITY]));
    let (v, [d]) = log_of_grad(f64::NAN);
    assert!(v.is_nan() && d.is_nan());
}

#[gradient]
fn dead_singular_value(y: f64, s: &[f64]) -> f64 {
    let mut a: f64 = 1.0;
    let mut i: usize = 0;
    while i < 3 {
        a += y;
        let _u = a.clamp(-1.0, 0.0).cbrt();
        i += 1;
    }
    s[1] + 0.0 * y
}

/// A value that never reaches the result gets no adjoint (else `0 · cbrt'(0) = 0 · ∞` would
/// be NaN); found by differential testing (seed 7, program 873).
#[test]
fn dead_values_get_no_adjoint() {
    let s = [-0.27, 0.70, -0.085];
    let mut gs = [0.0; 3];
    let (v, [dy]) = dead_singular_value_grad(-0.34897011942667633, &s, &mut gs);
    assert_eq!((v, dy), (0.70, 0.0));
    assert_eq!(gs, [0.0, 1.0, 0.0]);
}

#[gradient]
fn assigned_in_one_branch(x: f64, c: f64) -> f64 {
    let mut out = x * x;
    let r = if c > 0.0 {
        out = 3.0 * x;
        out.sin()
    } else {
        out.tanh() * 2.0
    };
    out - r
}

/// The reverse of `out = 3x` in one branch zeroes `out`'s adjoint; the other branch must still
/// add to it, not assign (found by differential testing, seed 20240917, program 274, when the
/// reverse sweep first assigned known-zero adjoints).
#[test]
fn a_branch_does_not_know_what_the_other_zeroed() {
    for (x, c) in [(0.7, 1.0), (0.7, -1.0), (-1.3, -0.5)] {
        let (_, [dx, dc]) = assigned_in_one_branch_grad(x, c);
        let want = if c > 0.0 {
            3.0 - 3.0 * (3.0 * x).cos()
        } else {
            let t = (x * x).tanh();
            2.0 * x - 2.0 * (1.0 - t * t) * 2.0 * x
        };
        assert!(
            (dx - want).abs() < 1e-12,
            "x = {x}, c = {c}: {dx} vs {want}"
        );
        assert_eq!(dc, 0.0);
    }
}

#[gradient]
fn nested_loops_carry_one_slice(s: &[f64], q: &[f64]) -> f64 {
    let mut energy = 0.0;
    let mut a = 1.0;
    for i in 0..q.len() - 1 {
        let mut t = s[i];
        for j in 0..2 {
            t += q[j] - q[j + 1];
        }
        for _ in 0..3 {
            energy += t;
        }
        a = q[1 + i] - q[i];
    }
    energy + a
}

/// A loop replayed backwards and a loop inside it both carry adjoints of `q[k]`, `q[k + 1]` in
/// registers: the inner loop's registers shadowed the outer's of the same name (found by
/// differential testing, seed 4242, program 794). f = 3 Σᵢ sᵢ + 6 (q₀ − q₂) + q₂ − q₁ here.
#[test]
fn nested_loops_keep_their_own_carried_adjoints() {
    let (s, q) = ([-0.69, 0.91], [-0.61, 0.31, -0.12]);
    let (mut ds, mut dq) = ([f64::NAN; 2], [f64::NAN; 3]);
    nested_loops_carry_one_slice_grad(&s, &mut ds, &q, &mut dq);
    assert_eq!(ds, [3.0, 3.0]);
    assert_eq!(dq, [6.0, -1.0, -5.0]);
}

// As the random program had it: `r += x` is never read.
#[allow(unused_assignments)]
#[gradient]
fn inner_loop_reads_what_follows_increments(x: f64, s: &[f64]) -> f64 {
    let mut loss = 0.3;
    for _ in 0..s.len() - 1 {
        let mut r = 1.0;
        for _ in 0..s.len() {
            loss -= r;
        }
        r += x;
    }
    loss
}

/// An inner loop of a fused loop that reads `r` (not one of its sums) was merged although
/// `r += x` follows: the merged reverse added to `r̄` before the reverse of `r += x` passed `r̄`
/// on to `x̄` (found by the random programs, seed 263, program 729). `x` does not reach `loss`.
#[test]
fn merged_loops_write_no_adjoint_read_after_them() {
    let s = [1.6, -1.3, 1.2, -0.1];
    let (v, [dx]) = inner_loop_reads_what_follows_increments_grad(-0.36, &s, &mut [0.0; 4]);
    assert_eq!(v, 0.3 - 12.0);
    assert_eq!(dx, 0.0);
}

#[gradient]
fn two_deferred_loops_read_one_scalar(s: &[f64], y: f64) -> f64 {
    let mut sum = 1.0;
    for _ in 0..s.len() {
        sum -= y;
    }
    for i in 0..s.len() {
        sum += y * s[i];
    }
    sum.sin()
}

/// Two fused loops with deferred seeds for the same sum (`sum.sin()` after both), both reading
/// `y`: each declared `y_bar_unscaled`, the second shadowing the first, whose part was lost
/// (found by the random programs, seed 269, program 403, once loops declaring a buffer fused).
/// f = sin(1 − n y + y Σ s), f' = cos(..) (Σ s − n).
#[test]
fn deferred_loops_keep_their_own_private_adjoints() {
    let s = [0.25, -0.63, 0.41];
    let y = 0.71;
    let (v, [dy]) = two_deferred_loops_read_one_scalar_grad(&s, &mut [0.0; 3], y);
    let sum: f64 = s.iter().sum();
    let inner = 1.0 - 3.0 * y + y * sum;
    assert_eq!(v, two_deferred_loops_read_one_scalar(&s, y));
    let want = inner.cos() * (sum - 3.0);
    assert!((dy - want).abs() <= 1e-14, "{dy} vs {want}");
}
