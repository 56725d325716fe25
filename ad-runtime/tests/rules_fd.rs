//! Every derivative rule against finite differences of the std method it differentiates, on a
//! grid of points inside the method's domain and away from its non-differentiable points (those
//! are covered by `conventions.rs`).
//!
//! The reference derivative is the five-point central stencil
//! `(−f(x+2h) + 8f(x+h) − 8f(x−h) + f(x−2h)) / 12h` with `h` a power of two near `2⁻¹²·|x|` (`2⁻¹²` at 0),
//! accurate to about 1e-12 relative for these functions, so the f64 rules are held to 1e-9.
//! The f32 rules are compared with the same f64 reference, to 1e-5.

use ad_runtime::rules;
use approx::assert_relative_eq;

/// Five-point central difference of `f` at `x`.
fn fd(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    let scale = if x == 0.0 { 1.0 } else { x.abs() };
    let h = 2f64.powi(scale.log2().floor() as i32 - 12);
    (-f(x + 2.0 * h) + 8.0 * f(x + h) - 8.0 * f(x - h) + f(x - 2.0 * h)) / (12.0 * h)
}

const TOL_F64: f64 = 1e-9;
const TOL_F32: f64 = 1e-5;

/// Checks a unary rule at every point of `grid`, for f64 and f32.
macro_rules! unary {
    ($test:ident, $rule:ident, |$x:ident| $f64_expr:expr, |$x32:ident| $f32_expr:expr, $grid:expr) => {
        #[test]
        fn $test() {
            for &x in $grid.iter() {
                let f = |$x: f64| $f64_expr;
                let reference = fd(f, x);
                let got = rules::$rule(x, f(x));
                assert_relative_eq!(got, reference, epsilon = TOL_F64, max_relative = TOL_F64);

                let x32 = x as f32;
                let f32_fn = |$x32: f32| $f32_expr;
                let got32 = rules::$rule(x32, f32_fn(x32));
                let reference32 = fd(f, f64::from(x32));
                assert_relative_eq!(
                    f64::from(got32),
                    reference32,
                    epsilon = TOL_F32,
                    max_relative = TOL_F32
                );
            }
        }
    };
    ($test:ident, $method:ident, $grid:expr) => {
        unary!($test, $method, |x| x.$method(), |x| x.$method(), $grid);
    };
}

const GENERAL: [f64; 9] = [-3.1, -1.7, -0.6, -0.25, 0.2, 0.45, 1.3, 2.6, 4.9];
const SMALL: [f64; 7] = [-1.2, -0.7, -0.3, 0.0, 0.3, 0.8, 1.2];
const UNIT_OPEN: [f64; 7] = [-0.9, -0.6, -0.3, 0.0, 0.3, 0.6, 0.9];
const POSITIVE: [f64; 7] = [0.1, 0.35, 0.9, 1.0, 2.5, 10.0, 123.0];
const NONZERO: [f64; 8] = [-40.0, -2.5, -0.7, -0.15, 0.15, 0.7, 2.5, 40.0];
/// Away from integers and half-integers, where floor/ceil/round/trunc/fract jump.
const NON_INTEGER: [f64; 8] = [-5.2, -2.3, -1.7, -0.4, 0.2, 0.7, 2.3, 5.8];

unary!(neg, neg, |x| -x, |x| -x, GENERAL);
unary!(sin, sin, GENERAL);
unary!(cos, cos, GENERAL);
unary!(tan, tan, SMALL);
unary!(asin, asin, UNIT_OPEN);
unary!(acos, acos, UNIT_OPEN);
unary!(atan, atan, GENERAL);
unary!(sinh, sinh, GENERAL);
unary!(cosh, cosh, GENERAL);
unary!(tanh, tanh, GENERAL);
unary!(asinh, asinh, GENERAL);
unary!(acosh, acosh, [1.1, 1.5, 2.0, 3.7, 10.0, 250.0]);
unary!(atanh, atanh, UNIT_OPEN);
unary!(exp, exp, GENERAL);
unary!(exp2, exp2, GENERAL);
unary!(exp_m1, exp_m1, GENERAL);
unary!(ln, ln, POSITIVE);
unary!(log2, log2, POSITIVE);
unary!(log10, log10, POSITIVE);
unary!(ln_1p, ln_1p, [-0.9, -0.5, -0.1, 0.0, 0.3, 2.0, 10.0]);
unary!(sqrt, sqrt, POSITIVE);
unary!(cbrt, cbrt, NONZERO);
unary!(recip, recip, NONZERO);
unary!(abs, abs, NONZERO);
unary!(signum, signum, NONZERO);
unary!(to_radians, to_radians, GENERAL);
unary!(to_degrees, to_degrees, GENERAL);
unary!(floor, floor, NON_INTEGER);
unary!(ceil, ceil, NON_INTEGER);
unary!(round, round, NON_INTEGER);
unary!(trunc, trunc, NON_INTEGER);
unary!(fract, fract, NON_INTEGER);

#[test]
fn powi() {
    for n in [-7, -3, -2, -1, 0, 1, 2, 3, 4, 9] {
        for &x in NONZERO.iter().chain(&[1.0, -1.0]) {
            let f = |x: f64| x.powi(n);
            assert_relative_eq!(
                rules::powi(x, n, f(x)),
                fd(f, x),
                epsilon = TOL_F64,
                max_relative = TOL_F64
            );
            let x32 = x as f32;
            assert_relative_eq!(
                f64::from(rules::powi(x32, n, x32.powi(n))),
                fd(f, f64::from(x32)),
                epsilon = TOL_F32,
                max_relative = TOL_F32
            );
        }
    }
}

#[test]
fn powi_extreme_exponent() {
    // n − 1 overflows i32 for n = i32::MIN; the rule must not.
    let n = i32::MIN;
    assert_eq!(rules::powi(1.0_f64, n, 1.0), f64::from(n));
    assert_eq!(rules::powi(-1.0_f64, n, 1.0), -f64::from(n));
    assert_eq!(rules::powi(2.0_f64, n, 0.0), 0.0 * f64::from(n));
}

/// Checks a rule of several inputs: `$rule($args..., y)` against finite differences of
/// `$f64_fn` in each argument, at every point of `$points`, for f64 and f32.
macro_rules! multi {
    ($test:ident, $rule:ident, [$($i:tt),+], |$p:ident| $f64_expr:expr, $points:expr) => {
        #[test]
        fn $test() {
            fn f64_fn($p: &[f64]) -> f64 {
                $f64_expr
            }
            fn f32_fn(p: &[f32]) -> f32 {
                let $p = p;
                $f64_expr
            }
            for point in $points.iter() {
                let point: &[f64] = &point[..];
                let y = f64_fn(point);
                let partials = rules::$rule($(point[$i],)+ y);
                let partials = [$(partials.$i),+];
                let point32: Vec<f32> = point.iter().map(|&v| v as f32).collect();
                let y32 = f32_fn(&point32);
                let partials32 = rules::$rule($(point32[$i],)+ y32);
                let partials32 = [$(partials32.$i),+];
                for i in 0..point.len() {
                    let along = |base: &[f64], t: f64| {
                        let mut q = base.to_vec();
                        q[i] = t;
                        f64_fn(&q)
                    };
                    let reference = fd(|t| along(point, t), point[i]);
                    assert_relative_eq!(
                        partials[i],
                        reference,
                        epsilon = TOL_F64,
                        max_relative = TOL_F64
                    );
                    let p64: Vec<f64> = point32.iter().map(|&v| f64::from(v)).collect();
                    let reference32 = fd(|t| along(&p64, t), p64[i]);
                    assert_relative_eq!(
                        f64::from(partials32[i]),
                        reference32,
                        epsilon = TOL_F32,
                        max_relative = TOL_F32
                    );
                }
            }
        }
    };
}

/// All pairs of `xs` × `ys`.
fn pairs(xs: &[f64], ys: &[f64]) -> Vec<[f64; 2]> {
    xs.iter()
        .flat_map(|&a| ys.iter().map(move |&b| [a, b]))
        .collect()
}

fn general_pairs() -> Vec<[f64; 2]> {
    pairs(&[-2.3, -0.4, 0.7, 3.1], &[-1.9, -0.3, 0.6, 2.2])
}

multi!(add, add, [0, 1], |p| p[0] + p[1], general_pairs());
multi!(sub, sub, [0, 1], |p| p[0] - p[1], general_pairs());
multi!(mul, mul, [0, 1], |p| p[0] * p[1], general_pairs());
multi!(div, div, [0, 1], |p| p[0] / p[1], general_pairs());
// a / b is never close to an integer on this grid, where `%` jumps.
multi!(
    rem,
    rem,
    [0, 1],
    |p| p[0] % p[1],
    pairs(&[5.3, -7.1, 2.2, 0.4], &[1.7, -2.3, 0.9])
);
multi!(atan2, atan2, [0, 1], |p| p[0].atan2(p[1]), general_pairs());
multi!(
    powf_positive_base,
    powf,
    [0, 1],
    |p| p[0].powf(p[1]),
    pairs(
        &[0.3, 0.9, 1.0, 1.6, 4.2],
        &[-2.5, -1.0, -0.3, 0.5, 1.0, 2.0, 3.7]
    )
);
multi!(hypot, hypot, [0, 1], |p| p[0].hypot(p[1]), general_pairs());
multi!(
    log,
    log,
    [0, 1],
    |p| p[0].log(p[1]),
    pairs(&[0.2, 1.0, 3.5, 40.0], &[0.3, 0.7, 2.0, 10.0])
);
// a ≠ b everywhere on this grid.
multi!(max, max, [0, 1], |p| p[0].max(p[1]), general_pairs());
multi!(min, min, [0, 1], |p| p[0].min(p[1]), general_pairs());
// No zeros on this grid: copysign jumps at b = 0.
multi!(
    copysign,
    copysign,
    [0, 1],
    |p| p[0].copysign(p[1]),
    general_pairs()
);
multi!(
    mul_add,
    mul_add,
    [0, 1, 2],
    |p| p[0].mul_add(p[1], p[2]),
    [
        [-1.5, 2.0, 0.3],
        [0.25, -3.0, -7.0],
        [4.0, 0.5, 1.0],
        [-0.7, -0.9, 0.0]
    ]
);
// x strictly below, inside and above [lo, hi], never at the bounds.
multi!(
    clamp,
    clamp,
    [0, 1, 2],
    |p| p[0].clamp(p[1], p[2]),
    [
        [-3.0, -1.0, 2.0],
        [0.5, -1.0, 2.0],
        [3.5, -1.0, 2.0],
        [-0.2, -0.5, -0.1],
        [0.0, -0.5, -0.1],
        [-0.9, -0.5, -0.1]
    ]
);

/// `powf` with a negative base and an integer exponent is real: ∂/∂base still follows
/// `b · a^(b−1)` (∂/∂exponent is NaN there, see `conventions.rs`).
#[test]
fn powf_negative_base_integer_exponent() {
    for a in [-3.0_f64, -1.2, -0.5] {
        for b in [-2.0_f64, -1.0, 2.0, 3.0, 5.0] {
            let (da, _) = rules::powf(a, b, a.powf(b));
            assert_relative_eq!(
                da,
                fd(|t| t.powf(b), a),
                epsilon = TOL_F64,
                max_relative = TOL_F64
            );
        }
    }
}
