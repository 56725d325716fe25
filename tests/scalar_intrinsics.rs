//! Every float method with a derivative rule, in method form (`x.sin()`) and path form
//! (`f64::sin(x)`): the generated gradient against the closed-form derivative and against central
//! finite differences, at several points of the domain; then the documented conventions at the
//! points where the derivative does not exist.

use ad::{check_gradient, gradient};
use approx::relative_eq;

/// Finite differences must agree to this relative error (see `ad::check_gradient`).
const FD_TOL: f64 = 1e-6;
/// The generated gradient and the closed form differ only by rounding.
const CLOSED_TOL: f64 = 1e-12;

/// Checks `grad` at every point: its value is exactly `f`'s, its gradient matches the closed form
/// `d` and central finite differences of `f`.
fn check<const N: usize>(
    name: &str,
    f: impl Fn([f64; N]) -> f64,
    grad: impl Fn([f64; N]) -> (f64, [f64; N]),
    d: impl Fn([f64; N]) -> [f64; N],
    points: &[[f64; N]],
) {
    for &p in points {
        let (value, g) = grad(p);
        let expected_value = f(p);
        assert!(
            value == expected_value || (value.is_nan() && expected_value.is_nan()),
            "{name} at {p:?}: value {value}, but the function gives {expected_value}"
        );
        let closed = d(p);
        for k in 0..N {
            assert!(
                relative_eq!(g[k], closed[k], epsilon = 1e-14, max_relative = CLOSED_TOL),
                "{name} at {p:?}: component {k} is {}, closed form {}",
                g[k],
                closed[k]
            );
        }
        let as_slice = |x: &[f64]| {
            let mut q = [0.0; N];
            q.copy_from_slice(x);
            f(q)
        };
        if let Err(e) = check_gradient(as_slice, &p, &g, FD_TOL) {
            panic!("{name} at {p:?}: {e}");
        }
    }
}

/// Checks a function of one variable with the points given as plain numbers.
fn check1(
    name: &str,
    f: fn(f64) -> f64,
    grad: fn(f64) -> (f64, [f64; 1]),
    d: impl Fn(f64) -> f64,
    points: &[f64],
) {
    let points: Vec<[f64; 1]> = points.iter().map(|&x| [x]).collect();
    check(name, |[x]| f(x), |[x]| grad(x), |[x]| [d(x)], &points);
}

/// Exact comparison of gradients at the non-differentiable points, where the convention is a
/// specific value (`0`, `1`, `+∞`).
fn assert_grad<const N: usize>(name: &str, got: (f64, [f64; N]), expected: [f64; N]) {
    assert_eq!(got.1, expected, "{name}: gradient (value {})", got.0);
}

const ANGLES: [f64; 7] = [-2.3, -0.7, -0.1, 0.0, 0.4, 1.3, 2.9];
const UNIT: [f64; 6] = [-0.9, -0.35, 0.0, 0.2, 0.5, 0.8];
const POSITIVE: [f64; 6] = [0.05, 0.5, 1.0, 2.0, 7.5, 40.0];
const REALS: [f64; 7] = [-3.0, -1.2, -0.3, 0.0, 0.6, 1.7, 4.0];

// ------------------------------------------------------------------------------------------
// Unary methods: `x.NAME()` and `f64::NAME(x)`.
// ------------------------------------------------------------------------------------------

macro_rules! unary_fns {
    ($($method:ident $path:ident $name:ident;)*) => {
        $(
            #[gradient]
            fn $method(x: f64) -> f64 {
                x.$name()
            }

            #[gradient]
            fn $path(x: f64) -> f64 {
                f64::$name(x)
            }
        )*
    };
}

// The functions are written out by hand for the trigonometric ones (the macro's input as a user
// would type it), and through `unary_fns!` for the rest (the macro's input coming from
// `macro_rules!`, with its invisible groups).

#[gradient]
fn sin_m(x: f64) -> f64 {
    x.sin()
}

#[gradient]
fn sin_p(x: f64) -> f64 {
    f64::sin(x)
}

#[gradient]
fn cos_m(x: f64) -> f64 {
    x.cos()
}

#[gradient]
fn cos_p(x: f64) -> f64 {
    f64::cos(x)
}

#[gradient]
fn tan_m(x: f64) -> f64 {
    x.tan()
}

#[gradient]
fn tan_p(x: f64) -> f64 {
    f64::tan(x)
}

#[gradient]
fn asin_m(x: f64) -> f64 {
    x.asin()
}

#[gradient]
fn asin_p(x: f64) -> f64 {
    f64::asin(x)
}

#[gradient]
fn acos_m(x: f64) -> f64 {
    x.acos()
}

#[gradient]
fn acos_p(x: f64) -> f64 {
    f64::acos(x)
}

#[gradient]
fn atan_m(x: f64) -> f64 {
    x.atan()
}

#[gradient]
fn atan_p(x: f64) -> f64 {
    f64::atan(x)
}

unary_fns! {
    sinh_m sinh_p sinh;
    cosh_m cosh_p cosh;
    tanh_m tanh_p tanh;
    asinh_m asinh_p asinh;
    acosh_m acosh_p acosh;
    atanh_m atanh_p atanh;
    exp_m exp_p exp;
    exp2_m exp2_p exp2;
    exp_m1_m exp_m1_p exp_m1;
    ln_m ln_p ln;
    log2_m log2_p log2;
    log10_m log10_p log10;
    ln_1p_m ln_1p_p ln_1p;
    sqrt_m sqrt_p sqrt;
    cbrt_m cbrt_p cbrt;
    recip_m recip_p recip;
    abs_m abs_p abs;
    signum_m signum_p signum;
    to_radians_m to_radians_p to_radians;
    to_degrees_m to_degrees_p to_degrees;
    floor_m floor_p floor;
    ceil_m ceil_p ceil;
    round_m round_p round;
    trunc_m trunc_p trunc;
    fract_m fract_p fract;
}

/// Checks the method form and the path form of a unary intrinsic.
macro_rules! check_unary {
    ($method:ident, $mgrad:ident, $path:ident, $pgrad:ident, $d:expr, $points:expr) => {{
        check1(stringify!($method), $method, $mgrad, $d, &$points);
        check1(stringify!($path), $path, $pgrad, $d, &$points);
    }};
}

#[test]
fn trigonometric() {
    check_unary!(sin_m, sin_m_grad, sin_p, sin_p_grad, f64::cos, ANGLES);
    check_unary!(
        cos_m,
        cos_m_grad,
        cos_p,
        cos_p_grad,
        |x: f64| -x.sin(),
        ANGLES
    );
    check_unary!(
        tan_m,
        tan_m_grad,
        tan_p,
        tan_p_grad,
        |x: f64| 1.0 / (x.cos() * x.cos()),
        ANGLES
    );
}

#[test]
fn inverse_trigonometric() {
    check_unary!(
        asin_m,
        asin_m_grad,
        asin_p,
        asin_p_grad,
        |x: f64| 1.0 / (1.0 - x * x).sqrt(),
        UNIT
    );
    check_unary!(
        acos_m,
        acos_m_grad,
        acos_p,
        acos_p_grad,
        |x: f64| -1.0 / (1.0 - x * x).sqrt(),
        UNIT
    );
    check_unary!(
        atan_m,
        atan_m_grad,
        atan_p,
        atan_p_grad,
        |x: f64| 1.0 / (1.0 + x * x),
        REALS
    );
}

#[test]
fn hyperbolic() {
    check_unary!(sinh_m, sinh_m_grad, sinh_p, sinh_p_grad, f64::cosh, REALS);
    check_unary!(cosh_m, cosh_m_grad, cosh_p, cosh_p_grad, f64::sinh, REALS);
    check_unary!(
        tanh_m,
        tanh_m_grad,
        tanh_p,
        tanh_p_grad,
        |x: f64| 1.0 / (x.cosh() * x.cosh()),
        REALS
    );
    check_unary!(
        asinh_m,
        asinh_m_grad,
        asinh_p,
        asinh_p_grad,
        |x: f64| 1.0 / (x * x + 1.0).sqrt(),
        REALS
    );
    check_unary!(
        acosh_m,
        acosh_m_grad,
        acosh_p,
        acosh_p_grad,
        |x: f64| 1.0 / (x * x - 1.0).sqrt(),
        [1.2, 1.5, 2.0, 5.0, 30.0]
    );
    check_unary!(
        atanh_m,
        atanh_m_grad,
        atanh_p,
        atanh_p_grad,
        |x: f64| 1.0 / (1.0 - x * x),
        UNIT
    );
}

#[test]
fn exponentials() {
    check_unary!(exp_m, exp_m_grad, exp_p, exp_p_grad, f64::exp, REALS);
    check_unary!(
        exp2_m,
        exp2_m_grad,
        exp2_p,
        exp2_p_grad,
        |x: f64| x.exp2() * std::f64::consts::LN_2,
        REALS
    );
    check_unary!(
        exp_m1_m,
        exp_m1_m_grad,
        exp_m1_p,
        exp_m1_p_grad,
        f64::exp,
        REALS
    );
}

#[test]
fn logarithms() {
    check_unary!(ln_m, ln_m_grad, ln_p, ln_p_grad, |x: f64| 1.0 / x, POSITIVE);
    check_unary!(
        log2_m,
        log2_m_grad,
        log2_p,
        log2_p_grad,
        |x: f64| 1.0 / (x * std::f64::consts::LN_2),
        POSITIVE
    );
    check_unary!(
        log10_m,
        log10_m_grad,
        log10_p,
        log10_p_grad,
        |x: f64| 1.0 / (x * std::f64::consts::LN_10),
        POSITIVE
    );
    check_unary!(
        ln_1p_m,
        ln_1p_m_grad,
        ln_1p_p,
        ln_1p_p_grad,
        |x: f64| 1.0 / (1.0 + x),
        [-0.5, -0.1, 0.0, 1e-3, 1.0, 10.0]
    );
}

#[test]
fn roots_and_reciprocal() {
    check_unary!(
        sqrt_m,
        sqrt_m_grad,
        sqrt_p,
        sqrt_p_grad,
        |x: f64| 0.5 / x.sqrt(),
        POSITIVE
    );
    check_unary!(
        cbrt_m,
        cbrt_m_grad,
        cbrt_p,
        cbrt_p_grad,
        |x: f64| 1.0 / (3.0 * x.cbrt() * x.cbrt()),
        [-27.0, -2.0, -0.3, 0.3, 1.0, 8.0]
    );
    check_unary!(
        recip_m,
        recip_m_grad,
        recip_p,
        recip_p_grad,
        |x: f64| -1.0 / (x * x),
        [-3.0, -0.2, 0.5, 1.0, 4.0]
    );
}

#[test]
fn sign_and_angle_conversions() {
    check_unary!(
        abs_m,
        abs_m_grad,
        abs_p,
        abs_p_grad,
        |x: f64| if x > 0.0 { 1.0 } else { -1.0 },
        [-3.0, -0.2, 0.5, 4.0]
    );
    check_unary!(
        signum_m,
        signum_m_grad,
        signum_p,
        signum_p_grad,
        |_| 0.0,
        [-3.0, -0.2, 0.5, 4.0]
    );
    check_unary!(
        to_radians_m,
        to_radians_m_grad,
        to_radians_p,
        to_radians_p_grad,
        |_| std::f64::consts::PI / 180.0,
        REALS
    );
    check_unary!(
        to_degrees_m,
        to_degrees_m_grad,
        to_degrees_p,
        to_degrees_p_grad,
        |_| 180.0 / std::f64::consts::PI,
        REALS
    );
}

#[test]
fn rounding() {
    // Points away from the jumps (integers, and half-integers for `round`).
    let points = [-2.7, -1.3, -0.2, 0.3, 1.2, 3.8];
    check_unary!(
        floor_m,
        floor_m_grad,
        floor_p,
        floor_p_grad,
        |_| 0.0,
        points
    );
    check_unary!(ceil_m, ceil_m_grad, ceil_p, ceil_p_grad, |_| 0.0, points);
    check_unary!(
        round_m,
        round_m_grad,
        round_p,
        round_p_grad,
        |_| 0.0,
        points
    );
    check_unary!(
        trunc_m,
        trunc_m_grad,
        trunc_p,
        trunc_p_grad,
        |_| 0.0,
        points
    );
    check_unary!(
        fract_m,
        fract_m_grad,
        fract_p,
        fract_p_grad,
        |_| 1.0,
        points
    );
}

// ------------------------------------------------------------------------------------------
// powi: a float and an `i32` (a literal, or an inactive parameter).
// ------------------------------------------------------------------------------------------

#[gradient]
fn powi_m(x: f64, n: i32) -> f64 {
    x.powi(n)
}

#[gradient]
fn powi_p(x: f64, n: i32) -> f64 {
    f64::powi(x, n)
}

#[gradient]
fn cube_m(x: f64) -> f64 {
    x.powi(3)
}

#[gradient]
fn inverse_square_p(x: f64) -> f64 {
    f64::powi(x, -2)
}

#[test]
fn powi() {
    let points = [-1.5, -0.4, 0.3, 1.0, 2.0];
    for n in [-3, -1, 0, 1, 2, 3, 5] {
        let d = |[x]: [f64; 1]| [f64::from(n) * x.powi(n - 1)];
        check(
            &format!("powi_m(_, {n})"),
            |[x]| powi_m(x, n),
            |[x]| powi_m_grad(x, n),
            d,
            &points.map(|x| [x]),
        );
        check(
            &format!("powi_p(_, {n})"),
            |[x]| powi_p(x, n),
            |[x]| powi_p_grad(x, n),
            d,
            &points.map(|x| [x]),
        );
    }
    check1("cube_m", cube_m, cube_m_grad, |x| 3.0 * x * x, &points);
    check1(
        "inverse_square_p",
        inverse_square_p,
        inverse_square_p_grad,
        |x| -2.0 / (x * x * x),
        &points,
    );
}

// ------------------------------------------------------------------------------------------
// Binary methods: `a.NAME(b)` and `f64::NAME(a, b)`, both arguments active.
// ------------------------------------------------------------------------------------------

#[gradient]
fn atan2_m(y: f64, x: f64) -> f64 {
    y.atan2(x)
}

#[gradient]
fn atan2_p(y: f64, x: f64) -> f64 {
    f64::atan2(y, x)
}

#[gradient]
fn powf_m(a: f64, b: f64) -> f64 {
    a.powf(b)
}

#[gradient]
fn powf_p(a: f64, b: f64) -> f64 {
    f64::powf(a, b)
}

#[gradient]
fn hypot_m(a: f64, b: f64) -> f64 {
    a.hypot(b)
}

#[gradient]
fn hypot_p(a: f64, b: f64) -> f64 {
    f64::hypot(a, b)
}

#[gradient]
fn log_m(a: f64, base: f64) -> f64 {
    a.log(base)
}

#[gradient]
fn log_p(a: f64, base: f64) -> f64 {
    f64::log(a, base)
}

#[gradient]
fn max_m(a: f64, b: f64) -> f64 {
    a.max(b)
}

#[gradient]
fn max_p(a: f64, b: f64) -> f64 {
    f64::max(a, b)
}

#[gradient]
fn min_m(a: f64, b: f64) -> f64 {
    a.min(b)
}

#[gradient]
fn min_p(a: f64, b: f64) -> f64 {
    f64::min(a, b)
}

#[gradient]
fn copysign_m(a: f64, b: f64) -> f64 {
    a.copysign(b)
}

#[gradient]
fn copysign_p(a: f64, b: f64) -> f64 {
    f64::copysign(a, b)
}

/// Checks the method and path forms of a binary intrinsic.
macro_rules! check_binary {
    ($method:ident, $mgrad:ident, $path:ident, $pgrad:ident, $d:expr, $points:expr) => {{
        let d = $d;
        let points: &[[f64; 2]] = &$points;
        check(
            stringify!($method),
            |[a, b]| $method(a, b),
            |[a, b]| $mgrad(a, b),
            d,
            points,
        );
        check(
            stringify!($path),
            |[a, b]| $path(a, b),
            |[a, b]| $pgrad(a, b),
            d,
            points,
        );
    }};
}

const PLANE: [[f64; 2]; 6] = [
    [1.0, 2.0],
    [-1.0, 0.5],
    [0.3, -2.0],
    [-2.0, -1.0],
    [0.0, 1.5],
    [4.0, 0.0],
];

#[test]
fn atan2() {
    check_binary!(
        atan2_m,
        atan2_m_grad,
        atan2_p,
        atan2_p_grad,
        |[y, x]: [f64; 2]| {
            let r2 = x * x + y * y;
            [x / r2, -y / r2]
        },
        PLANE
    );
}

#[test]
fn powf() {
    let mut points = Vec::new();
    for a in [0.3, 1.0, 2.5, 7.0] {
        for b in [-1.5, 0.0, 0.5, 2.0, 3.0] {
            points.push([a, b]);
        }
    }
    let d = |[a, b]: [f64; 2]| [b * a.powf(b - 1.0), a.powf(b) * a.ln()];
    check(
        "powf_m",
        |[a, b]| powf_m(a, b),
        |[a, b]| powf_m_grad(a, b),
        d,
        &points,
    );
    check(
        "powf_p",
        |[a, b]| powf_p(a, b),
        |[a, b]| powf_p_grad(a, b),
        d,
        &points,
    );
}

#[test]
fn hypot() {
    check_binary!(
        hypot_m,
        hypot_m_grad,
        hypot_p,
        hypot_p_grad,
        |[a, b]: [f64; 2]| {
            let h = (a * a + b * b).sqrt();
            [a / h, b / h]
        },
        PLANE
    );
}

#[test]
fn log_with_base() {
    let mut points = Vec::new();
    for a in [0.5, 3.0, 10.0, 123.0] {
        for base in [0.5, 2.0, std::f64::consts::E, 10.0] {
            points.push([a, base]);
        }
    }
    let d = |[a, b]: [f64; 2]| [1.0 / (a * b.ln()), -a.ln() / (b * b.ln() * b.ln())];
    check(
        "log_m",
        |[a, b]| log_m(a, b),
        |[a, b]| log_m_grad(a, b),
        d,
        &points,
    );
    check(
        "log_p",
        |[a, b]| log_p(a, b),
        |[a, b]| log_p_grad(a, b),
        d,
        &points,
    );
}

#[test]
fn max_and_min() {
    // No ties here; see `convention_max_min_ties`.
    let points = [[1.0, 2.0], [2.0, 1.0], [-3.0, -0.5], [0.25, -4.0]];
    check_binary!(
        max_m,
        max_m_grad,
        max_p,
        max_p_grad,
        |[a, b]: [f64; 2]| if a > b { [1.0, 0.0] } else { [0.0, 1.0] },
        points
    );
    check_binary!(
        min_m,
        min_m_grad,
        min_p,
        min_p_grad,
        |[a, b]: [f64; 2]| if a < b { [1.0, 0.0] } else { [0.0, 1.0] },
        points
    );
}

#[test]
fn copysign() {
    // d/da |a|·sign(b) = sign(a)·sign(b); nothing flows to b away from b = 0.
    let points = [[1.5, 2.0], [1.5, -2.0], [-0.7, 3.0], [-0.7, -0.1]];
    check_binary!(
        copysign_m,
        copysign_m_grad,
        copysign_p,
        copysign_p_grad,
        |[a, b]: [f64; 2]| [a.signum() * b.signum(), 0.0],
        points
    );
}

// ------------------------------------------------------------------------------------------
// Ternary methods: `mul_add` and `clamp`, all arguments active.
// ------------------------------------------------------------------------------------------

#[gradient]
fn mul_add_m(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

#[gradient]
fn mul_add_p(a: f64, b: f64, c: f64) -> f64 {
    f64::mul_add(a, b, c)
}

#[gradient]
fn clamp_m(x: f64, lo: f64, hi: f64) -> f64 {
    x.clamp(lo, hi)
}

#[gradient]
fn clamp_p(x: f64, lo: f64, hi: f64) -> f64 {
    f64::clamp(x, lo, hi)
}

#[test]
fn mul_add() {
    let points = [[1.0, 2.0, 3.0], [-0.5, 4.0, 0.0], [3.0, -2.5, -7.0]];
    let d = |[a, b, _]: [f64; 3]| [b, a, 1.0];
    check(
        "mul_add_m",
        |[a, b, c]| mul_add_m(a, b, c),
        |[a, b, c]| mul_add_m_grad(a, b, c),
        d,
        &points,
    );
    check(
        "mul_add_p",
        |[a, b, c]| mul_add_p(a, b, c),
        |[a, b, c]| mul_add_p_grad(a, b, c),
        d,
        &points,
    );
}

#[test]
fn clamp() {
    // Inside, below and above the interval (away from the bounds).
    let points = [
        [0.3, -1.0, 1.0],
        [-2.0, -1.0, 1.0],
        [5.0, -1.0, 1.0],
        [0.5, 0.25, 0.75],
    ];
    let d = |[x, lo, hi]: [f64; 3]| {
        if x < lo {
            [0.0, 1.0, 0.0]
        } else if x > hi {
            [0.0, 0.0, 1.0]
        } else {
            [1.0, 0.0, 0.0]
        }
    };
    check(
        "clamp_m",
        |[x, lo, hi]| clamp_m(x, lo, hi),
        |[x, lo, hi]| clamp_m_grad(x, lo, hi),
        d,
        &points,
    );
    check(
        "clamp_p",
        |[x, lo, hi]| clamp_p(x, lo, hi),
        |[x, lo, hi]| clamp_p_grad(x, lo, hi),
        d,
        &points,
    );
}

// ------------------------------------------------------------------------------------------
// The remainder operator: `a % b` and `a %= b`.
// ------------------------------------------------------------------------------------------

#[gradient]
fn rem_op(a: f64, b: f64) -> f64 {
    a % b
}

#[gradient]
fn rem_assign(a: f64, b: f64) -> f64 {
    let mut r = a * 2.0;
    r %= b;
    r
}

#[test]
fn remainder() {
    // Away from the jumps, where a / b is an integer.
    let points = [
        [5.3, 2.0],
        [-5.3, 2.0],
        [7.1, -3.0],
        [0.4, 1.5],
        [-9.9, -4.2],
    ];
    check(
        "rem_op",
        |[a, b]| rem_op(a, b),
        |[a, b]| rem_op_grad(a, b),
        |[a, b]| [1.0, -(a / b).trunc()],
        &points,
    );
    check(
        "rem_assign",
        |[a, b]| rem_assign(a, b),
        |[a, b]| rem_assign_grad(a, b),
        |[a, b]| [2.0, -(2.0 * a / b).trunc()],
        &points,
    );
}

// ------------------------------------------------------------------------------------------
// Intrinsics with some arguments constant, other path spellings, and compositions (the chain
// rule through an intrinsic).
// ------------------------------------------------------------------------------------------

#[gradient]
fn constant_arguments(x: f64) -> f64 {
    x.powf(2.5) + 2.0_f64.powf(x) + x.atan2(2.0) + 3.0_f64.hypot(x) + x.max(1.0) + x.log(10.0)
        - x.mul_add(2.0, 1.0)
        + x.clamp(-1.0, 1.0)
        + 0.5_f64.min(x)
}

fn constant_arguments_d(x: f64) -> f64 {
    let clamp = if x.abs() < 1.0 { 1.0 } else { 0.0 };
    let max = if x > 1.0 { 1.0 } else { 0.0 };
    let min = if x < 0.5 { 1.0 } else { 0.0 };
    2.5 * x.powf(1.5)
        + 2.0_f64.powf(x) * 2.0_f64.ln()
        + 2.0 / (4.0 + x * x)
        + x / (9.0 + x * x).sqrt()
        + max
        + 1.0 / (x * 10.0_f64.ln())
        - 2.0
        + clamp
        + min
}

#[gradient]
fn other_path_spellings(x: f64, y: f64) -> f64 {
    core::primitive::f64::sin(x) * std::primitive::f64::exp(y) + f64::powi(x, 2)
}

#[gradient]
fn composed(x: f64, y: f64) -> f64 {
    (x * y).sin().exp() + (x / y).ln_1p().sqrt() * f64::atan2(x - y, x + y).tanh()
}

fn composed_d(x: f64, y: f64) -> [f64; 2] {
    let e = (x * y).sin().exp();
    let de_dx = e * (x * y).cos() * y;
    let de_dy = e * (x * y).cos() * x;
    let q = x / y;
    let r = q.ln_1p().sqrt();
    let dr_dq = 0.5 / r / (1.0 + q);
    let a = (x - y).atan2(x + y);
    let t = a.tanh();
    let dt_da = 1.0 - t * t;
    // atan2(u, v) with u = x − y, v = x + y.
    let (u, v) = (x - y, x + y);
    let n = u * u + v * v;
    let (da_du, da_dv) = (v / n, -u / n);
    let da_dx = da_du + da_dv;
    let da_dy = -da_du + da_dv;
    [
        de_dx + dr_dq / y * t + r * dt_da * da_dx,
        de_dy - dr_dq * x / (y * y) * t + r * dt_da * da_dy,
    ]
}

#[test]
fn constant_arguments_and_compositions() {
    check1(
        "constant_arguments",
        constant_arguments,
        constant_arguments_grad,
        constant_arguments_d,
        // Positive: `x.powf(2.5)` and `x.log(10.0)` need x > 0.
        &[0.2, 0.8, 1.6, 3.0],
    );
    check(
        "other_path_spellings",
        |[x, y]| other_path_spellings(x, y),
        |[x, y]| other_path_spellings_grad(x, y),
        |[x, y]| [x.cos() * y.exp() + 2.0 * x, x.sin() * y.exp()],
        &[[0.3, -0.5], [2.0, 1.0]],
    );
    check(
        "composed",
        |[x, y]| composed(x, y),
        |[x, y]| composed_grad(x, y),
        |[x, y]| composed_d(x, y),
        &[[0.7, 1.3], [2.0, 0.5], [1.1, 3.0]],
    );
}

// ------------------------------------------------------------------------------------------
// f32: the same rules, generic over the float type.
// ------------------------------------------------------------------------------------------

#[gradient]
fn f32_unary(x: f32) -> f32 {
    x.sin() + x.exp() * 0.5 + f32::sqrt(x) + x.powi(3) + x.atan() + x.ln() + x.tanh() + x.cbrt()
}

#[gradient]
fn f32_binary(a: f32, b: f32) -> f32 {
    a.powf(b)
        + a.atan2(b)
        + f32::hypot(a, b)
        + a.max(b)
        + a.min(b)
        + a.mul_add(b, 1.0)
        + a.clamp(0.5, b)
        + a.log(b)
}

#[test]
fn f32_rules() {
    for x in [0.3_f32, 0.9, 2.5] {
        let xd = f64::from(x);
        let d = xd.cos()
            + xd.exp() * 0.5
            + 0.5 / xd.sqrt()
            + 3.0 * xd * xd
            + 1.0 / (1.0 + xd * xd)
            + 1.0 / xd
            + 1.0 / (xd.cosh() * xd.cosh())
            + 1.0 / (3.0 * xd.cbrt() * xd.cbrt());
        let (value, [g]) = f32_unary_grad(x);
        assert_eq!(value, f32_unary(x));
        assert!(
            relative_eq!(f64::from(g), d, max_relative = 1e-5),
            "f32_unary at {x}: {g} vs {d}"
        );
    }
    for (a, b) in [(0.7_f32, 1.6_f32), (2.0, 3.0), (1.3, 2.2)] {
        let (ad, bd) = (f64::from(a), f64::from(b));
        let r2 = ad * ad + bd * bd;
        let (max_a, min_a) = if ad > bd { (1.0, 0.0) } else { (0.0, 1.0) };
        let clamp = if ad < 0.5 || ad > bd {
            [0.0, 1.0]
        } else {
            [1.0, 0.0]
        };
        let da = bd * ad.powf(bd - 1.0)
            + bd / r2
            + ad / r2.sqrt()
            + max_a
            + min_a
            + bd
            + clamp[0]
            + 1.0 / (ad * bd.ln());
        let db = ad.powf(bd) * ad.ln() - ad / r2
            + bd / r2.sqrt()
            + (1.0 - max_a)
            + (1.0 - min_a)
            + ad
            + if ad > bd { 1.0 } else { 0.0 }
            - ad.ln() / (bd * bd.ln() * bd.ln());
        let (value, [ga, gb]) = f32_binary_grad(a, b);
        assert_eq!(value, f32_binary(a, b));
        assert!(
            relative_eq!(f64::from(ga), da, max_relative = 1e-5),
            "f32_binary at {a}, {b}: d/da {ga} vs {da}"
        );
        assert!(
            relative_eq!(f64::from(gb), db, max_relative = 1e-5),
            "f32_binary at {a}, {b}: d/db {gb} vs {db}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// Conventions at non-differentiable points (see the table in `ad_runtime`'s documentation).
// ------------------------------------------------------------------------------------------

#[test]
fn convention_abs_at_zero_is_zero() {
    assert_grad("abs_m(0)", abs_m_grad(0.0), [0.0]);
    assert_grad("abs_m(-0)", abs_m_grad(-0.0), [0.0]);
    assert_grad("abs_p(0)", abs_p_grad(0.0), [0.0]);
    assert_grad("abs_p(-0)", abs_p_grad(-0.0), [0.0]);
}

#[test]
fn convention_signum_is_zero_everywhere() {
    for x in [0.0, -0.0, 1.0, -2.0] {
        assert_grad("signum_m", signum_m_grad(x), [0.0]);
        assert_grad("signum_p", signum_p_grad(x), [0.0]);
    }
}

#[test]
fn convention_max_min_ties_go_to_the_first_argument() {
    for a in [-1.5, 0.0, 2.0] {
        assert_grad("max_m tie", max_m_grad(a, a), [1.0, 0.0]);
        assert_grad("max_p tie", max_p_grad(a, a), [1.0, 0.0]);
        assert_grad("min_m tie", min_m_grad(a, a), [1.0, 0.0]);
        assert_grad("min_p tie", min_p_grad(a, a), [1.0, 0.0]);
    }
}

#[test]
fn convention_max_min_with_nan_go_to_the_number() {
    assert_grad("max(NaN, 1)", max_m_grad(f64::NAN, 1.0), [0.0, 1.0]);
    assert_grad("max(1, NaN)", max_m_grad(1.0, f64::NAN), [1.0, 0.0]);
    assert_grad("min(NaN, 1)", min_m_grad(f64::NAN, 1.0), [0.0, 1.0]);
    assert_grad("min(1, NaN)", min_m_grad(1.0, f64::NAN), [1.0, 0.0]);
}

#[test]
fn convention_rounding_at_the_jumps() {
    for x in [-2.0, -1.0, 0.0, 1.0, 3.0] {
        assert_grad("floor_m", floor_m_grad(x), [0.0]);
        assert_grad("floor_p", floor_p_grad(x), [0.0]);
        assert_grad("ceil_m", ceil_m_grad(x), [0.0]);
        assert_grad("ceil_p", ceil_p_grad(x), [0.0]);
        assert_grad("trunc_m", trunc_m_grad(x), [0.0]);
        assert_grad("trunc_p", trunc_p_grad(x), [0.0]);
        assert_grad("fract_m", fract_m_grad(x), [1.0]);
        assert_grad("fract_p", fract_p_grad(x), [1.0]);
    }
    for x in [-1.5, -0.5, 0.5, 2.5] {
        assert_grad("round_m", round_m_grad(x), [0.0]);
        assert_grad("round_p", round_p_grad(x), [0.0]);
    }
}

#[test]
fn convention_sqrt_and_cbrt_at_zero_are_infinite() {
    assert_grad("sqrt_m(0)", sqrt_m_grad(0.0), [f64::INFINITY]);
    assert_grad("sqrt_p(0)", sqrt_p_grad(0.0), [f64::INFINITY]);
    assert_grad("cbrt_m(0)", cbrt_m_grad(0.0), [f64::INFINITY]);
    assert_grad("cbrt_p(0)", cbrt_p_grad(0.0), [f64::INFINITY]);
}

#[test]
fn convention_clamp_at_a_bound_goes_to_x() {
    assert_grad(
        "clamp at lo",
        clamp_m_grad(-1.0, -1.0, 1.0),
        [1.0, 0.0, 0.0],
    );
    assert_grad("clamp at hi", clamp_m_grad(1.0, -1.0, 1.0), [1.0, 0.0, 0.0]);
    assert_grad(
        "clamp_p at lo",
        clamp_p_grad(-1.0, -1.0, 1.0),
        [1.0, 0.0, 0.0],
    );
    assert_grad(
        "clamp_p at hi",
        clamp_p_grad(1.0, -1.0, 1.0),
        [1.0, 0.0, 0.0],
    );
    assert_grad(
        "clamp lo == hi",
        clamp_m_grad(2.0, 2.0, 2.0),
        [1.0, 0.0, 0.0],
    );
}

#[test]
fn convention_hypot_and_atan2_at_the_origin() {
    assert_grad("hypot(0, 0)", hypot_m_grad(0.0, 0.0), [0.0, 0.0]);
    assert_grad("hypot_p(0, 0)", hypot_p_grad(0.0, 0.0), [0.0, 0.0]);
    assert_grad("atan2(0, 0)", atan2_m_grad(0.0, 0.0), [0.0, 0.0]);
    assert_grad("atan2_p(0, 0)", atan2_p_grad(0.0, 0.0), [0.0, 0.0]);
}

#[test]
fn convention_powers_at_zero() {
    assert_grad("powi(0, 0)", powi_m_grad(0.0, 0), [0.0]);
    assert_grad("powi(0, 1)", powi_m_grad(0.0, 1), [1.0]);
    assert_grad("powi(0, 3)", powi_m_grad(0.0, 3), [0.0]);
    assert_grad("powi(x, 0)", powi_m_grad(3.0, 0), [0.0]);
    // Base 0: the limit from the right for the base; nothing flows to the exponent when y = 0.
    assert_grad("powf(0, 2)", powf_m_grad(0.0, 2.0), [0.0, 0.0]);
    assert_grad("powf(0, 1)", powf_m_grad(0.0, 1.0), [1.0, 0.0]);
    assert_grad("powf(0, 0.5)", powf_m_grad(0.0, 0.5), [f64::INFINITY, 0.0]);
    assert_grad("powf(x, 0)", powf_m_grad(3.0, 0.0), [0.0, 3.0_f64.ln()]);
}

#[test]
fn convention_copysign_flips_and_ignores_the_sign_source() {
    assert_grad("copysign(2, 3)", copysign_m_grad(2.0, 3.0), [1.0, 0.0]);
    assert_grad("copysign(2, -3)", copysign_m_grad(2.0, -3.0), [-1.0, 0.0]);
    assert_grad("copysign(-2, 0)", copysign_m_grad(-2.0, 0.0), [-1.0, 0.0]);
    assert_grad("copysign(2, -0)", copysign_m_grad(2.0, -0.0), [-1.0, 0.0]);
}
