//! The syntax of scalar `#[gradient]` functions: bindings, shadowing, compound assignment,
//! blocks, branches, early returns, literals, casts, constants, `f32`, calls between gradient
//! functions, inactive statements, `wrt(...)`, visibility, names that look generated, and mutable
//! parameters. Each gradient is compared with a closed form and with central finite differences.

use std::sync::atomic::{AtomicUsize, Ordering};

use ad::{check_gradient, gradient};
use approx::relative_eq;

const FD_TOL: f64 = 1e-6;
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
        assert_eq!(value, f(p), "{name} at {p:?}: value");
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

/// A grid of points for functions of two variables, with both signs and some zeros.
fn grid2() -> Vec<[f64; 2]> {
    let values = [-2.5, -0.7, 0.0, 0.3, 1.1, 3.2];
    let mut out = Vec::new();
    for x in values {
        for y in values {
            out.push([x, y]);
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Bindings, shadowing, assignment.
// ------------------------------------------------------------------------------------------

#[gradient]
#[allow(clippy::assign_op_pattern, clippy::needless_late_init)]
fn let_forms(x: f64, y: f64) -> f64 {
    let a = x * y;
    let b: f64 = a + 1.0;
    let mut c = b;
    c = c * x;
    let d;
    d = c - y;
    let e: f64;
    e = d * d;
    e
}

#[test]
fn let_with_and_without_type() {
    check(
        "let_forms",
        |[x, y]| let_forms(x, y),
        |[x, y]| let_forms_grad(x, y),
        |[x, y]| {
            // e = (x(xy + 1) − y)²
            let d = x * (x * y + 1.0) - y;
            [2.0 * d * (2.0 * x * y + 1.0), 2.0 * d * (x * x - 1.0)]
        },
        &grid2(),
    );
}

#[gradient]
fn shadowing(x: f64, y: f64) -> f64 {
    let x = x * 2.0;
    let x = x.sin() + x;
    let y = {
        let x = x * y;
        x + 1.0
    };
    let z = x;
    let x = y;
    x * z
}

#[test]
fn shadowing_of_parameters_and_locals() {
    check(
        "shadowing",
        |[x, y]| shadowing(x, y),
        |[x, y]| shadowing_grad(x, y),
        |[x, y]| {
            let u = (2.0 * x).sin() + 2.0 * x; // the second x
            let du = 2.0 * (2.0 * x).cos() + 2.0;
            // result = (u·y + 1)·u
            [du * (2.0 * u * y + 1.0), u * u]
        },
        &grid2(),
    );
}

#[gradient]
fn compound(x: f64, y: f64) -> f64 {
    let mut s = x;
    s += y;
    s -= 0.5 * x;
    s *= y;
    s /= x * x + 2.0;
    s += s * x;
    s
}

#[test]
fn compound_assignment() {
    let f = |x: f64, y: f64| {
        let s = (0.5 * x + y) * y / (x * x + 2.0);
        s * (1.0 + x)
    };
    check(
        "compound",
        |[x, y]| compound(x, y),
        |[x, y]| compound_grad(x, y),
        |[x, y]| {
            let q = x * x + 2.0;
            let n = (0.5 * x + y) * y;
            let s = n / q;
            let ds_dx = 0.5 * y / q - n * 2.0 * x / (q * q);
            let ds_dy = (0.5 * x + 2.0 * y) / q;
            let _ = f;
            [ds_dx * (1.0 + x) + s, ds_dy * (1.0 + x)]
        },
        &grid2(),
    );
    for [x, y] in grid2() {
        assert!(relative_eq!(compound(x, y), f(x, y), max_relative = 1e-14));
    }
}

#[gradient]
fn mutable_params(mut x: f64, mut y: f64) -> f64 {
    x = x * x + y;
    y *= x;
    x += 1.0;
    x -= y / 4.0;
    x
}

#[test]
fn mutable_parameters_reassigned() {
    check(
        "mutable_params",
        |[x, y]| mutable_params(x, y),
        |[x, y]| mutable_params_grad(x, y),
        |[x, y]| {
            // u = x² + y; result = u + 1 − y·u/4
            let u = x * x + y;
            [2.0 * x * (1.0 - y / 4.0), (1.0 - y / 4.0) - u / 4.0]
        },
        &grid2(),
    );
}

#[gradient]
fn blocks_parens_negation(x: f64, y: f64) -> f64 {
    let a = {
        let t = x * x;
        t - y
    };
    let b = -(a) * -(x - y) + -x;
    let c = {
        let nb = { -b };
        nb + 0.0
    };
    ((c + x) * (-y)) - -a
}

#[test]
fn block_expressions_parentheses_unary_minus() {
    check(
        "blocks_parens_negation",
        |[x, y]| blocks_parens_negation(x, y),
        |[x, y]| blocks_parens_negation_grad(x, y),
        |[x, y]| {
            // a = x² − y, b = a(x − y) − x, c = −b, result = −(c + x)y + a
            let a = x * x - y;
            let (da_dx, da_dy) = (2.0 * x, -1.0);
            let db_dx = da_dx * (x - y) + a - 1.0;
            let db_dy = da_dy * (x - y) - a;
            [
                (db_dx - 1.0) * y + da_dx,
                (db_dy) * y - (-(a * (x - y) - x) + x) + da_dy,
            ]
        },
        &grid2(),
    );
}

// ------------------------------------------------------------------------------------------
// Branches and early returns.
// ------------------------------------------------------------------------------------------

#[gradient]
fn if_statement(x: f64, y: f64) -> f64 {
    let mut r = 0.0;
    if x > y {
        r = x * y;
    } else if x < -1.0 {
        r = x - y;
        r *= r;
    } else {
        r += y.exp();
    }
    if y > 0.0 {
        r += y;
    }
    r
}

#[test]
fn if_else_if_else_as_statement() {
    check(
        "if_statement",
        |[x, y]| if_statement(x, y),
        |[x, y]| if_statement_grad(x, y),
        |[x, y]| {
            let mut g = if x > y {
                [y, x]
            } else if x < -1.0 {
                [2.0 * (x - y), -2.0 * (x - y)]
            } else {
                [0.0, y.exp()]
            };
            if y > 0.0 {
                g[1] += 1.0;
            }
            g
        },
        // Away from the switching lines x = y, x = −1, y = 0.
        &[
            [2.0, 1.0],
            [-2.0, 0.5],
            [-2.0, -0.5],
            [0.5, 1.5],
            [0.5, -2.5],
            [-3.0, -1.5],
        ],
    );
}

#[gradient]
fn if_expression(x: f64, y: f64) -> f64 {
    let r = if x > 1.0 {
        x * x
    } else if x > 0.0 {
        x.sin()
    } else {
        -x
    };
    let s = if r * y > x + y { r * y } else { (x + y) * 2.0 };
    s + if y < 0.0 { y * y } else { y }
}

#[test]
fn if_as_expression_with_active_conditions() {
    let d = |[x, y]: [f64; 2]| {
        let (r, dr) = if x > 1.0 {
            (x * x, 2.0 * x)
        } else if x > 0.0 {
            (x.sin(), x.cos())
        } else {
            (-x, -1.0)
        };
        let mut g = if r * y > x + y {
            [dr * y, r]
        } else {
            [2.0, 2.0]
        };
        g[1] += if y < 0.0 { 2.0 * y } else { 1.0 };
        g
    };
    check(
        "if_expression",
        |[x, y]| if_expression(x, y),
        |[x, y]| if_expression_grad(x, y),
        d,
        &[
            [2.0, 3.0],
            [2.0, -1.0],
            [0.5, 2.0],
            [0.5, -2.0],
            [-1.5, 0.7],
            [-1.5, -0.7],
        ],
    );
}

#[gradient]
fn active_conditions(x: f64, y: f64) -> f64 {
    let p = x * y;
    let very_negative = p < -1.0;
    if p.sin() > 0.0 && (x - y).abs() < 2.0 || x.is_nan() {
        p.sqrt()
    } else if !very_negative {
        p * x
    } else {
        y
    }
}

#[test]
fn conditions_on_active_values() {
    check(
        "active_conditions",
        |[x, y]| active_conditions(x, y),
        |[x, y]| active_conditions_grad(x, y),
        |[x, y]| {
            let p = x * y;
            if p.sin() > 0.0 && (x - y).abs() < 2.0 {
                let d = 0.5 / p.sqrt();
                [d * y, d * x]
            } else if p >= -1.0 {
                [2.0 * x * y, x * x]
            } else {
                [0.0, 1.0]
            }
        },
        &[
            [1.0, 2.0],
            [1.0, 4.0],
            [-1.0, 0.5],
            [-2.0, 3.0],
            [2.0, -3.0],
        ],
    );
}

#[gradient]
#[allow(clippy::needless_return)]
fn early_returns(x: f64, y: f64) -> f64 {
    if x < 0.0 {
        if y < 0.0 {
            return x * y;
        }
        let t = x + y;
        if t > 0.0 {
            return t.sin();
        }
    } else if x > 5.0 {
        return x.ln() * y;
    }
    let mut z = x * y;
    if z > 1.0 {
        z = z.sqrt();
        return z * 2.0;
    }
    z += x;
    return z + 1.0;
}

fn early_returns_d(x: f64, y: f64) -> [f64; 2] {
    if x < 0.0 {
        if y < 0.0 {
            return [y, x];
        }
        let t = x + y;
        if t > 0.0 {
            return [t.cos(), t.cos()];
        }
    } else if x > 5.0 {
        return [y / x, x.ln()];
    }
    let z = x * y;
    if z > 1.0 {
        let d = 1.0 / z.sqrt();
        return [d * y, d * x];
    }
    [y + 1.0, x]
}

#[test]
fn early_return_anywhere() {
    check(
        "early_returns",
        |[x, y]| early_returns(x, y),
        |[x, y]| early_returns_grad(x, y),
        |[x, y]| early_returns_d(x, y),
        &[
            [-1.0, -2.0],
            [-1.0, 3.0],
            [-3.0, 1.0],
            [6.0, 2.0],
            [2.0, 3.0],
            [0.5, 0.5],
            [0.5, -4.0],
        ],
    );
}

#[gradient]
#[allow(clippy::assign_op_pattern)]
fn return_in_loop(x: f64, n: usize) -> f64 {
    let mut s = x;
    for i in 0..n {
        if s > 10.0 {
            return s * i as f64;
        }
        s = s * x;
    }
    s
}

#[test]
fn early_return_from_a_loop() {
    for n in [0, 1, 3, 6] {
        for x in [0.5, 1.5, 2.5, 4.0] {
            let (v, [g]) = return_in_loop_grad(x, n);
            assert_eq!(v, return_in_loop(x, n));
            // s = x^(i+1) at step i; returns s·i at the first step with s > 10, else x^(n+1).
            let n32 = n as i32;
            let expected = (0..n32)
                .find(|&i| x.powi(i + 1) > 10.0)
                .map_or(f64::from(n32 + 1) * x.powi(n32), |i| {
                    f64::from(i) * f64::from(i + 1) * x.powi(i)
                });
            assert!(
                relative_eq!(g, expected, max_relative = 1e-12),
                "return_in_loop({x}, {n}): {g} vs {expected}"
            );
            check_gradient(|p| return_in_loop(p[0], n), &[x], &[g], FD_TOL).unwrap();
        }
    }
}

#[gradient]
#[allow(clippy::needless_return)]
fn returns_in_both_branches(x: f64) -> f64 {
    if x > 0.0 {
        return x * x;
    } else {
        return -x;
    }
}

#[gradient]
fn return_in_else_if_chain(x: f64, y: f64) -> f64 {
    let mut s = x;
    if x > 1.0 {
        s *= y;
    } else if x > 0.0 {
        return s * 2.0;
    } else {
        if y > 0.0 {
            return y;
        }
        s = -s;
    }
    s * y
}

#[test]
fn returns_in_every_branch_and_in_else_if_chains() {
    check(
        "returns_in_both_branches",
        |[x]| returns_in_both_branches(x),
        |[x]| returns_in_both_branches_grad(x),
        |[x]| if x > 0.0 { [2.0 * x] } else { [-1.0] },
        &[[-2.0], [-0.5], [0.5], [3.0]],
    );
    check(
        "return_in_else_if_chain",
        |[x, y]| return_in_else_if_chain(x, y),
        |[x, y]| return_in_else_if_chain_grad(x, y),
        |[x, y]| {
            if x > 1.0 {
                [y * y, 2.0 * x * y]
            } else if x > 0.0 {
                [2.0, 0.0]
            } else if y > 0.0 {
                [0.0, 1.0]
            } else {
                [-y, -x]
            }
        },
        // Away from the switches at x = 0, x = 1 and y = 0.
        &[
            [2.0, 3.0],
            [2.0, -1.5],
            [0.5, 3.0],
            [-0.5, 3.0],
            [-0.5, -3.0],
            [-2.5, -0.7],
        ],
    );
}

#[gradient]
#[allow(clippy::needless_late_init)]
fn deferred_init(x: f64, y: f64) -> f64 {
    let r;
    if x > y {
        r = x * x;
    } else {
        r = y - x;
    }
    r * 3.0
}

#[test]
fn let_without_initialiser_assigned_in_branches() {
    check(
        "deferred_init",
        |[x, y]| deferred_init(x, y),
        |[x, y]| deferred_init_grad(x, y),
        |[x, y]| {
            if x > y {
                [6.0 * x, 0.0]
            } else {
                [-3.0, 3.0]
            }
        },
        &[[2.0, 1.0], [1.0, 2.0], [-1.0, -3.0]],
    );
}

// ------------------------------------------------------------------------------------------
// Literals, casts, constants.
// ------------------------------------------------------------------------------------------

#[gradient]
fn literals(x: f64, y: f64) -> f64 {
    1.5e-3 * x + 2. * y + 1e2 + 3.0_f64 * x * x + 4f64 * y + 1_000.25 + x.powi(2_i32) - 0.0
}

#[test]
fn float_and_integer_literals() {
    check(
        "literals",
        |[x, y]| literals(x, y),
        |[x, y]| literals_grad(x, y),
        |[x, _]| [1.5e-3 + 6.0 * x + 2.0 * x, 6.0],
        &grid2(),
    );
}

#[gradient]
#[allow(clippy::unnecessary_cast)]
fn casts(x: f64, n: usize, k: i32, flag: bool) -> f64 {
    let m = n * 2 + 1;
    let scale = m as f64 / (k as f64 + 0.5);
    let bonus = if flag { f64::from(k) } else { n as f64 };
    (x as f64) * scale + x * bonus + (flag as i32) as f64 * x
}

#[test]
fn casts_of_inactive_values() {
    for (n, k, flag) in [(0, 1, false), (3, -2, true), (10, 7, false)] {
        let scale = (n * 2 + 1) as f64 / (f64::from(k) + 0.5);
        let bonus = if flag { f64::from(k) } else { n as f64 };
        let slope = scale + bonus + if flag { 1.0 } else { 0.0 };
        check(
            "casts",
            |[x]| casts(x, n, k, flag),
            |[x]| casts_grad(x, n, k, flag),
            |_| [slope],
            &[[-1.5], [0.0], [2.25]],
        );
    }
}

mod consts {
    use ad::gradient;
    use std::f64;

    #[gradient]
    pub fn constants(x: f64) -> f64 {
        std::f64::consts::PI * x + f64::consts::E * x * x + f64::EPSILON + core::f64::consts::TAU
            - f64::MAX.recip() * x
    }
}

#[test]
fn float_constants() {
    use std::f64::consts::{E, PI};
    check(
        "constants",
        |[x]| consts::constants(x),
        |[x]| consts::constants_grad(x),
        |[x]| [PI + 2.0 * E * x - f64::MAX.recip()],
        &[[-2.0], [0.0], [0.7]],
    );
}

// ------------------------------------------------------------------------------------------
// f32.
// ------------------------------------------------------------------------------------------

#[gradient]
fn f32_mix(x: f32, y: f32) -> f32 {
    let a = x.sin() * y + x.powi(2) / y.exp();
    let b = if a > 0.0 { a.sqrt() } else { -a };
    b * std::f32::consts::PI + 2.0_f32 * x + 3f32 + f32::EPSILON
}

#[gradient]
fn f32_compound(mut x: f32, y: f32, n: u8) -> f32 {
    x *= y;
    x += f32::from(n) * y.tanh();
    x /= 2.0;
    x.max(y).hypot(1.5)
}

#[gradient]
fn f32_caller(x: f32, y: f32) -> f32 {
    f32_compound(x, y, 3) - f32_mix(y, x)
}

/// Compares an `f32` gradient with a closed form evaluated in `f64`.
fn check_f32<const N: usize>(name: &str, got: (f32, [f32; N]), value: f64, d: [f64; N]) {
    assert!(
        relative_eq!(f64::from(got.0), value, max_relative = 1e-5),
        "{name}: value {} vs {value}",
        got.0
    );
    for (k, (&g, &d)) in got.1.iter().zip(&d).enumerate() {
        assert!(
            relative_eq!(f64::from(g), d, epsilon = 1e-6, max_relative = 1e-4),
            "{name}: component {k} is {g}, closed form {d}"
        );
    }
}

fn f32_mix_f64(x: f64, y: f64) -> (f64, [f64; 2]) {
    let a = x.sin() * y + x * x / y.exp();
    let da = [x.cos() * y + 2.0 * x / y.exp(), x.sin() - x * x / y.exp()];
    let pi = std::f64::consts::PI;
    let (b, db) = if a > 0.0 {
        (a.sqrt(), da.map(|g| 0.5 / a.sqrt() * g))
    } else {
        (-a, da.map(|g| -g))
    };
    let v = b * pi + 2.0 * x + 3.0 + f64::from(f32::EPSILON);
    (v, [db[0] * pi + 2.0, db[1] * pi])
}

fn f32_compound_f64(x: f64, y: f64, n: u8) -> (f64, [f64; 2]) {
    let t = y.tanh();
    let u = (x * y + f64::from(n) * t) / 2.0;
    let du = [y / 2.0, (x + f64::from(n) * (1.0 - t * t)) / 2.0];
    let (m, dm) = if u >= y { (u, du) } else { (y, [0.0, 1.0]) };
    let h = m.hypot(1.5);
    (h, dm.map(|g| m / h * g))
}

#[test]
fn f32_functions() {
    for (x, y) in [(0.7_f32, 1.3_f32), (-1.2, 0.4), (2.0, -0.5), (-0.3, -2.0)] {
        let (xd, yd) = (f64::from(x), f64::from(y));
        let (v, d) = f32_mix_f64(xd, yd);
        check_f32("f32_mix", f32_mix_grad(x, y), v, d);
        assert_eq!(f32_mix_grad(x, y).0, f32_mix(x, y));
        let (v, d) = f32_compound_f64(xd, yd, 2);
        check_f32("f32_compound", f32_compound_grad(x, y, 2), v, d);
        assert_eq!(f32_compound_grad(x, y, 2).0, f32_compound(x, y, 2));
        let (v1, d1) = f32_compound_f64(xd, yd, 3);
        let (v2, d2) = f32_mix_f64(yd, xd);
        check_f32(
            "f32_caller",
            f32_caller_grad(x, y),
            v1 - v2,
            [d1[0] - d2[1], d1[1] - d2[0]],
        );
        assert_eq!(f32_caller_grad(x, y).0, f32_caller(x, y));
    }
}

// ------------------------------------------------------------------------------------------
// Calls between #[gradient] functions.
// ------------------------------------------------------------------------------------------

#[gradient]
fn inner(x: f64, k: i32) -> f64 {
    x.powi(k) + x.sin()
}

#[gradient]
fn middle(x: f64, y: f64, n: usize) -> f64 {
    inner(x * y, n as i32) * y + inner(y, 2)
}

#[gradient]
fn outer(a: f64, b: f64) -> f64 {
    let m = middle(a.exp(), b, 3);
    m - middle(b, a, 1) / 2.0 + inner(2.0, 3)
}

fn inner_d(x: f64, k: i32) -> f64 {
    f64::from(k) * x.powi(k - 1) + x.cos()
}

fn middle_d(x: f64, y: f64, n: usize) -> [f64; 2] {
    let k = n as i32;
    let p = x * y;
    [
        inner_d(p, k) * y * y,
        inner_d(p, k) * x * y + inner(p, k) + inner_d(y, 2),
    ]
}

#[test]
fn chain_of_three_gradient_functions() {
    check(
        "inner",
        |[x]| inner(x, 3),
        |[x]| inner_grad(x, 3),
        |[x]| [inner_d(x, 3)],
        &[[-1.0], [0.5], [2.0]],
    );
    check(
        "middle",
        |[x, y]| middle(x, y, 2),
        |[x, y]| middle_grad(x, y, 2),
        |[x, y]| middle_d(x, y, 2),
        &grid2(),
    );
    check(
        "outer",
        |[a, b]| outer(a, b),
        |[a, b]| outer_grad(a, b),
        |[a, b]| {
            let e = a.exp();
            let m1 = middle_d(e, b, 3);
            let m2 = middle_d(b, a, 1);
            [m1[0] * e - m2[1] / 2.0, m1[1] - m2[0] / 2.0]
        },
        &[[-1.0, 0.5], [0.3, -0.8], [0.8, 1.2]],
    );
}

#[gradient]
fn two_factors(a: f64, b: f64) -> f64 {
    a * b.sin()
}

#[gradient]
fn calls_in_conditions_and_repeated_arguments(x: f64) -> f64 {
    if two_factors(x, x) > 1.0 {
        return two_factors(x, 2.0).exp();
    }
    two_factors(x, x) + two_factors(1.5, x).sin()
}

#[test]
fn calls_in_conditions_and_with_one_variable_twice() {
    check(
        "calls_in_conditions_and_repeated_arguments",
        |[x]| calls_in_conditions_and_repeated_arguments(x),
        |[x]| calls_in_conditions_and_repeated_arguments_grad(x),
        |[x]| {
            if x * x.sin() > 1.0 {
                [(x * 2.0_f64.sin()).exp() * 2.0_f64.sin()]
            } else {
                let inner = 1.5 * x.sin();
                [x.sin() + x * x.cos() + inner.cos() * 1.5 * x.cos()]
            }
        },
        &[[-2.5], [-0.4], [0.3], [1.0], [1.4], [2.0]],
    );
}

mod helpers {
    use ad::gradient;

    #[gradient]
    pub fn square(x: f64) -> f64 {
        x * x
    }
}

#[gradient]
fn calls_through_paths(x: f64, y: f64) -> f64 {
    helpers::square(x) + self::helpers::square(y) * crate::helpers::square(x - y)
}

#[test]
fn calls_through_module_paths() {
    check(
        "calls_through_paths",
        |[x, y]| calls_through_paths(x, y),
        |[x, y]| calls_through_paths_grad(x, y),
        |[x, y]| {
            let d = x - y;
            [2.0 * x + y * y * 2.0 * d, 2.0 * y * d * d - y * y * 2.0 * d]
        },
        &grid2(),
    );
}

#[gradient]
fn power_by_recursion(x: f64, n: u32) -> f64 {
    if n == 0 {
        1.0
    } else {
        x * power_by_recursion(x, n - 1)
    }
}

#[test]
fn recursive_gradient_function() {
    for n in 0..5_u32 {
        let k = n as i32;
        check(
            "power_by_recursion",
            |[x]| power_by_recursion(x, n),
            |[x]| power_by_recursion_grad(x, n),
            |[x]| [f64::from(k) * x.powi(k - 1)],
            &[[-1.3], [0.5], [2.0]],
        );
    }
}

// ------------------------------------------------------------------------------------------
// Inactive statements are kept.
// ------------------------------------------------------------------------------------------

static SIDE_EFFECTS: AtomicUsize = AtomicUsize::new(0);

fn bump(by: usize) {
    SIDE_EFFECTS.fetch_add(by, Ordering::SeqCst);
}

#[gradient]
#[allow(clippy::assign_op_pattern)]
fn with_bookkeeping(x: f64, y: f64, n: usize) -> f64 {
    let mut count = 0;
    let mut s = x;
    println!("with_bookkeeping: x = {x}, y = {}, n = {n}", y);
    assert!(x.is_finite(), "x must be finite, got {x}");
    assert!(n < 100);
    for _ in 0..n {
        s = s * y;
        count += 1;
    }
    assert_eq!(count, n);
    bump(count + 1);
    let label = format!("{count}");
    debug_assert!(!label.is_empty());
    s + count as f64
}

#[test]
fn inactive_statements_are_kept() {
    let before = SIDE_EFFECTS.load(Ordering::SeqCst);
    let (v, g) = with_bookkeeping_grad(1.5, 0.5, 3);
    assert_eq!(SIDE_EFFECTS.load(Ordering::SeqCst) - before, 4);
    assert_eq!(v, with_bookkeeping(1.5, 0.5, 3));
    assert!(relative_eq!(g[0], 0.125, max_relative = 1e-14));
    assert!(relative_eq!(g[1], 3.0 * 1.5 * 0.25, max_relative = 1e-14));
}

#[test]
#[should_panic(expected = "x must be finite, got inf")]
fn inactive_assert_still_checks() {
    let _ = with_bookkeeping_grad(f64::INFINITY, 1.0, 1);
}

// ------------------------------------------------------------------------------------------
// wrt(...), visibility.
// ------------------------------------------------------------------------------------------

#[gradient(wrt(y))]
fn only_y(x: f64, y: f64, z: f64) -> f64 {
    x * y * y + z.sin() * y
}

#[gradient(wrt(z, x))]
fn z_and_x(x: f64, y: f64, z: f64) -> f64 {
    x * y * y + z.sin() * y
}

#[test]
fn wrt_subsets_in_parameter_order() {
    let (x, y, z): (f64, f64, f64) = (0.7, -1.3, 2.1);
    let full = [y * y, 2.0 * x * y + z.sin(), z.cos() * y];
    let (v, [dy]) = only_y_grad(x, y, z);
    assert_eq!(v, only_y(x, y, z));
    assert!(relative_eq!(dy, full[1], max_relative = 1e-14));
    let (v, [dx, dz]) = z_and_x_grad(x, y, z);
    assert_eq!(v, z_and_x(x, y, z));
    assert!(relative_eq!(dx, full[0], max_relative = 1e-14));
    assert!(relative_eq!(dz, full[2], max_relative = 1e-14));
}

mod visibility {
    pub mod inner {
        use ad::gradient;

        #[gradient]
        pub fn public(x: f64) -> f64 {
            x * 3.0
        }

        #[gradient]
        pub(crate) fn crate_visible(x: f64) -> f64 {
            x * 4.0
        }

        #[gradient]
        pub(in crate::visibility) fn restricted(x: f64) -> f64 {
            x * 5.0
        }
    }

    pub fn restricted_grad_from_parent(x: f64) -> (f64, [f64; 1]) {
        assert_eq!(inner::restricted(x), x * 5.0);
        inner::restricted_grad(x)
    }
}

#[test]
fn visibility_is_copied() {
    assert_eq!(visibility::inner::public_grad(2.0), (6.0, [3.0]));
    assert_eq!(visibility::inner::public(2.0), 6.0);
    assert_eq!(visibility::inner::crate_visible_grad(2.0), (8.0, [4.0]));
    assert_eq!(visibility::inner::crate_visible(2.0), 8.0);
    assert_eq!(visibility::restricted_grad_from_parent(2.0), (10.0, [5.0]));
}

// ------------------------------------------------------------------------------------------
// User names that look like generated ones.
// ------------------------------------------------------------------------------------------

#[gradient]
#[allow(clippy::let_and_return)]
fn generated_looking_names(x_1: f64, x_1_bar: f64, __g: f64) -> f64 {
    let __value = x_1 * x_1_bar;
    let _t_5 = __value + __g;
    let ret_0 = _t_5 * x_1;
    let __d0 = ret_0.sin();
    let mut tape = __d0 * __g;
    let __i = 2;
    let s_2_bar = tape * __i as f64;
    tape += s_2_bar;
    let x = tape;
    let x_0 = x * x_1;
    let __n0 = x_0 + 1.0;
    let __s0 = __n0 * x_1_bar;
    let go_1 = if __s0 > 0.0 { __s0 } else { -__s0 };
    let returned_2 = go_1 + x;
    let _if_3 = returned_2 * 0.5;
    let f_grad = _if_3 + ret_0;
    f_grad
}

fn generated_looking_names_closed(a: f64, b: f64, g: f64) -> (f64, [f64; 3]) {
    // r = (ab + g)a, d = sin r, x = 3 d g, x0 = x a, s = (x0 + 1) b,
    // result = (|s| + x)/2 + r.
    let r = (a * b + g) * a;
    let dr = [2.0 * a * b + g, a * a, a];
    let d = r.sin();
    let dd = dr.map(|v| r.cos() * v);
    let x = 3.0 * d * g;
    let dx = [3.0 * g * dd[0], 3.0 * g * dd[1], 3.0 * (g * dd[2] + d)];
    let x0 = x * a;
    let dx0 = [dx[0] * a + x, dx[1] * a, dx[2] * a];
    let s = (x0 + 1.0) * b;
    let ds = [dx0[0] * b, dx0[1] * b + x0 + 1.0, dx0[2] * b];
    let sign = if s > 0.0 { 1.0 } else { -1.0 };
    let value = (s.abs() + x) / 2.0 + r;
    let grad = [0, 1, 2].map(|k| (sign * ds[k] + dx[k]) / 2.0 + dr[k]);
    (value, grad)
}

#[test]
fn user_names_that_look_generated() {
    check(
        "generated_looking_names",
        |[a, b, g]| generated_looking_names(a, b, g),
        |[a, b, g]| generated_looking_names_grad(a, b, g),
        |[a, b, g]| generated_looking_names_closed(a, b, g).1,
        &[[0.3, -0.4, 1.1], [1.2, 0.5, -0.7], [-0.8, 2.0, 0.2]],
    );
}

// A gradient function whose name is one the generator uses for its locals (`__g`): the generated
// local must not capture the user's calls.
#[gradient]
fn __g(v: f64) -> f64 {
    v + 1.0
}

#[gradient]
fn item_named_like_a_generated_local(x: f64, y: f64) -> f64 {
    let t = x * y;
    t * 0.25 + 2.0 * x + __g(y) * 3.0 + __g(2.0)
}

#[test]
fn items_with_generated_looking_names_are_not_captured() {
    check(
        "item_named_like_a_generated_local",
        |[x, y]| item_named_like_a_generated_local(x, y),
        |[x, y]| item_named_like_a_generated_local_grad(x, y),
        |[x, y]| [0.25 * y + 2.0, 0.25 * x + 3.0],
        &grid2(),
    );
    assert_eq!(item_named_like_a_generated_local(0.0, 0.0), 6.0);
}

#[gradient]
fn shadowing_in_branches(x: f64, y: f64) -> f64 {
    let mut s = x;
    let t = y * 2.0;
    if x > 0.0 {
        let t = t * x;
        s += t;
        let s = s * 100.0;
        assert!(s.is_finite());
    } else {
        let x = -x;
        s -= x * t;
    }
    {
        let y = s * y;
        s += y;
    }
    s + t
}

#[test]
fn shadowing_inside_branches_and_blocks() {
    check(
        "shadowing_in_branches",
        |[x, y]| shadowing_in_branches(x, y),
        |[x, y]| shadowing_in_branches_grad(x, y),
        |[x, y]| {
            // x > 0: s = x + 2xy; x ≤ 0: s = x + 2xy as well (−(−x)·2y = 2xy).
            // Then s ← s(1 + y); result = s(1 + y) + 2y.
            let s = x + 2.0 * x * y;
            let ds = [1.0 + 2.0 * y, 2.0 * x];
            [ds[0] * (1.0 + y), ds[1] * (1.0 + y) + s + 2.0]
        },
        &grid2(),
    );
}

// ------------------------------------------------------------------------------------------
// The generated code names everything by absolute path: items that shadow the prelude (and a
// macro named `assert`) beside the function do not change it.
// ------------------------------------------------------------------------------------------

mod shadowed_prelude {
    #![allow(dead_code, unused_macros)]

    use ad::gradient;

    struct Default;
    struct Vec;
    struct Option;
    struct Some;
    mod core {}
    mod std {}
    macro_rules! assert {
        ($($t:tt)*) => {
            compile_error!("the generated code used the user's `assert!`")
        };
    }

    #[gradient]
    pub fn f(x: f64, y: f64, n: usize) -> f64 {
        let mut s = x;
        let r;
        if x > y {
            r = x * y;
            return r;
        }
        for _ in 0..n {
            s *= y;
        }
        s + x.max(y)
    }
}

#[test]
fn prelude_names_shadowed_beside_the_function() {
    check(
        "shadowed_prelude::f",
        |[x, y]| shadowed_prelude::f(x, y, 2),
        |[x, y]| shadowed_prelude::f_grad(x, y, 2),
        |[x, y]| {
            if x > y {
                [y, x]
            } else {
                [y * y, 2.0 * x * y + 1.0]
            }
        },
        &[[1.0, 2.0], [3.0, 2.0], [-1.0, 0.5]],
    );
}

#[gradient]
fn swap_mul(a: f64, b: f64) -> f64 {
    let mut x = a;
    let mut y = b;
    // The right-hand side is evaluated first, with the old x and y.
    (x, y) = (y, x * y);
    x * y
}

#[gradient]
fn destructure_into_buffer_and_skip(a: f64, b: f64) -> f64 {
    let mut v = [a, b];
    let mut w = 0.0;
    [v[0], v[1], _] = [b * v[0], v[0].sin(), w];
    (w, _) = (v[1] * a, w + 1.0);
    v[0] + w
}

/// A destructuring assignment is differentiated element by element, with Rust's order: every
/// right-hand value first, then the places (once kept as written, it lost its derivatives).
#[test]
fn destructuring_assignments() {
    check(
        "swap_mul",
        |[a, b]| swap_mul(a, b),
        |[a, b]| swap_mul_grad(a, b),
        // x = b, y = a b: x y = a b².
        |[a, b]| [b * b, 2.0 * a * b],
        &grid2(),
    );
    let (v, g) = swap_mul_grad(3.0, 2.0);
    assert_eq!((v, g), (12.0, [4.0, 12.0]));
    check(
        "destructure_into_buffer_and_skip",
        |[a, b]| destructure_into_buffer_and_skip(a, b),
        |[a, b]| destructure_into_buffer_and_skip_grad(a, b),
        // v0 = b a, v1 = sin a, w = a sin a: f = a b + a sin a.
        |[a, b]| [b + a.sin() + a * a.cos(), a],
        &grid2(),
    );
}
