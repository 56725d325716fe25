//! The derivative rule of every intrinsic float operation.
//!
//! **Signature convention.** A rule receives every float input of the operation in order, then
//! the forward result `y`, and returns `∂y/∂input` for each float input: a bare `T` for one
//! input, a tuple for two or three. A non-float argument (the `i32` of [`powi`]) sits where the
//! method has it and gets no partial. Rules are `#[inline(always)]` and cheap: where the forward
//! value gives the derivative for free they use it (`exp` → `y`, `tanh` → `1 − y²`).
//!
//! | rule | operation | returns |
//! |---|---|---|
//! | `NAME(x, y) -> T` | `x.NAME()`, `-x` (`neg`) | `dy/dx` |
//! | [`powi`]`(x, n, y) -> T` | `x.powi(n)` | `dy/dx` |
//! | `NAME(a, b, y) -> (T, T)` | `a + b`, `a.NAME(b)`, ... | `(∂y/∂a, ∂y/∂b)` |
//! | [`mul_add`]`(a, b, c, y)`, [`clamp`]`(x, lo, hi, y)` | `a.mul_add(b, c)`, `x.clamp(lo, hi)` | three partials |
//!
//! **Conventions at non-differentiable points** (each repeated on its rule and tested):
//! `abs'(0) = 0`; `signum' = 0`; `floor`, `ceil`, `round`, `trunc` have derivative `0` and
//! `fract` has `1`, also at their jumps; `rem` gives `(1, −trunc(a/b))`; `max`/`min` give a tie
//! entirely to the first argument and, when one argument is NaN, everything to the other one
//! (the one they return); `clamp` at `x == lo` or `x == hi` gives everything to `x`;
//! `sqrt'(0) = cbrt'(0) = +∞` (the limit); `hypot` and `atan2` at `(0, 0)` give `(0, 0)`;
//! `powf` at base 0 returns the limit as the base tends to `0⁺` (and `∂/∂exponent = 0` when
//! `y == 0`); `copysign` gives `(±1, 0)`.
//!
//! Elsewhere in the operation's domain each rule returns the exact derivative, evaluated in
//! floating point; it is `±∞` where the derivative is infinite (e.g. `ln` at 0, `asin` at ±1).
//! Rules do not check domains: where `y` is NaN (out-of-domain or NaN inputs) the partials are
//! whatever the formula gives, usually but not always NaN.
//!
//! ```
//! use ad_runtime::rules;
//!
//! let (a, b) = (3.0_f64, 4.0_f64);
//! let y = a.hypot(b); // 5
//! assert_eq!(rules::hypot(a, b, y), (0.6, 0.8));
//! assert_eq!(rules::powi(2.0_f64, 3, 8.0), 12.0);
//! ```

use crate::Float;

// ---------------------------------------------------------------------------------------------
// Unary rules: `fn NAME(x, y) -> dy/dx`.
// ---------------------------------------------------------------------------------------------

/// Rule of `-x`: `−1`. Ignores `x` and `y`.
#[inline(always)]
pub fn neg<T: Float>(_x: T, _y: T) -> T {
    -T::ONE
}

/// Rule of `x.sin()`: `cos x`. Ignores `y`.
#[inline(always)]
pub fn sin<T: Float>(x: T, _y: T) -> T {
    x.cos()
}

/// Rule of `x.cos()`: `−sin x`. Ignores `y`.
#[inline(always)]
pub fn cos<T: Float>(x: T, _y: T) -> T {
    -x.sin()
}

/// Rule of `x.tan()`: `1 + y²` (= `1 / cos² x`). Ignores `x`.
#[inline(always)]
pub fn tan<T: Float>(_x: T, y: T) -> T {
    T::ONE + y * y
}

/// Rule of `x.asin()`: `1 / √(1 − x²)`; `+∞` at `x = ±1`, NaN outside `[−1, 1]`. Ignores `y`.
#[inline(always)]
pub fn asin<T: Float>(x: T, _y: T) -> T {
    // (1 − x)(1 + x) instead of 1 − x²: exact near ±1, where the derivative is largest.
    ((T::ONE - x) * (T::ONE + x)).sqrt().recip()
}

/// Rule of `x.acos()`: `−1 / √(1 − x²)`; `−∞` at `x = ±1`, NaN outside `[−1, 1]`. Ignores `y`.
#[inline(always)]
pub fn acos<T: Float>(x: T, _y: T) -> T {
    -((T::ONE - x) * (T::ONE + x)).sqrt().recip()
}

/// Rule of `x.atan()`: `1 / (1 + x²)`. Ignores `y`.
#[inline(always)]
pub fn atan<T: Float>(x: T, _y: T) -> T {
    (T::ONE + x * x).recip()
}

/// Rule of `x.sinh()`: `cosh x`. Ignores `y`.
#[inline(always)]
pub fn sinh<T: Float>(x: T, _y: T) -> T {
    x.cosh()
}

/// Rule of `x.cosh()`: `sinh x`. Ignores `y`.
#[inline(always)]
pub fn cosh<T: Float>(x: T, _y: T) -> T {
    x.sinh()
}

/// Rule of `x.tanh()`: `1 − y² = (1 − |y|)(1 + |y|)`, which loses no digits to cancellation
/// (`1 − |y|` is exact). Where `tanh` has saturated (`|y|` within 10⁻⁶ of 1) the rounding of
/// `y` itself would dominate, so `sech² x = 4e/(1 + e)²` with `e = e^(−2|x|)` is used instead.
#[inline(always)]
pub fn tanh<T: Float>(x: T, y: T) -> T {
    let a = y.abs();
    if a < T::from_f64(0.999_999) {
        (T::ONE - a) * (T::ONE + a)
    } else {
        let e = (-(x.abs() + x.abs())).exp();
        let d = T::ONE + e;
        T::from_f64(4.0) * e / (d * d)
    }
}

/// Rule of `x.asinh()`: `1 / √(x² + 1)`. Ignores `y`.
#[inline(always)]
pub fn asinh<T: Float>(x: T, _y: T) -> T {
    (x * x + T::ONE).sqrt().recip()
}

/// Rule of `x.acosh()`: `1 / √(x² − 1)`; `+∞` at `x = 1`, NaN below 1. Ignores `y`.
#[inline(always)]
pub fn acosh<T: Float>(x: T, _y: T) -> T {
    ((x - T::ONE) * (x + T::ONE)).sqrt().recip()
}

/// Rule of `x.atanh()`: `1 / (1 − x²)`; `+∞` at `x = ±1`. Ignores `y`.
#[inline(always)]
pub fn atanh<T: Float>(x: T, _y: T) -> T {
    ((T::ONE - x) * (T::ONE + x)).recip()
}

/// Rule of `x.exp()`: `y`. Ignores `x`.
#[inline(always)]
pub fn exp<T: Float>(_x: T, y: T) -> T {
    y
}

/// Rule of `x.exp2()`: `y · ln 2`. Ignores `x`.
#[inline(always)]
pub fn exp2<T: Float>(_x: T, y: T) -> T {
    y * T::LN_2
}

/// Rule of `x.exp_m1()`: `eˣ`, as `y + 1` where that is exact enough and `x.exp()` where
/// `y` is close to −1 (the sum would cancel).
#[inline(always)]
pub fn exp_m1<T: Float>(x: T, y: T) -> T {
    if y > -T::HALF {
        y + T::ONE
    } else {
        x.exp()
    }
}

/// Rule of `x.ln()`: `1 / x`; `+∞` at `+0`. Ignores `y`.
#[inline(always)]
pub fn ln<T: Float>(x: T, _y: T) -> T {
    x.recip()
}

/// Rule of `x.log2()`: `1 / (x · ln 2)`. Ignores `y`.
#[inline(always)]
pub fn log2<T: Float>(x: T, _y: T) -> T {
    (x * T::LN_2).recip()
}

/// Rule of `x.log10()`: `1 / (x · ln 10)`. Ignores `y`.
#[inline(always)]
pub fn log10<T: Float>(x: T, _y: T) -> T {
    (x * T::LN_10).recip()
}

/// Rule of `x.ln_1p()`: `1 / (1 + x)`. Ignores `y`.
#[inline(always)]
pub fn ln_1p<T: Float>(x: T, _y: T) -> T {
    (T::ONE + x).recip()
}

/// Rule of `x.sqrt()`: `0.5 / y`. At `x = 0` this is `+∞`, the limit of the derivative from the
/// right (convention: the derivative does not exist there). Ignores `x`.
#[inline(always)]
pub fn sqrt<T: Float>(_x: T, y: T) -> T {
    T::HALF / y
}

/// Rule of `x.cbrt()`: `1 / (3 y²)`. At `x = 0` this is `+∞`, the limit of the derivative
/// (convention: the derivative does not exist there). Ignores `x`.
#[inline(always)]
pub fn cbrt<T: Float>(_x: T, y: T) -> T {
    ((T::ONE + T::TWO) * y * y).recip()
}

/// Rule of `x.recip()` (and of `1.0 / x`): `−y²`. Ignores `x`.
#[inline(always)]
pub fn recip<T: Float>(_x: T, y: T) -> T {
    -(y * y)
}

/// Rule of `x.abs()`: `sign(x)`, with the convention **`abs'(0) = 0`** (for `+0` and `−0`).
/// NaN for NaN `x`. Ignores `y`.
#[inline(always)]
pub fn abs<T: Float>(x: T, _y: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else if x < T::ZERO {
        -T::ONE
    } else if x == T::ZERO {
        T::ZERO
    } else {
        x // NaN
    }
}

/// Rule of `x.signum()`: **`0` everywhere**, including at `0` where `signum` jumps (convention).
/// Ignores `x` and `y`.
#[inline(always)]
pub fn signum<T: Float>(_x: T, _y: T) -> T {
    T::ZERO
}

/// Rule of `x.to_radians()`: `π / 180`. Ignores `x` and `y`.
#[inline(always)]
pub fn to_radians<T: Float>(_x: T, _y: T) -> T {
    T::from_f64(core::f64::consts::PI / 180.0)
}

/// Rule of `x.to_degrees()`: `180 / π`. Ignores `x` and `y`.
#[inline(always)]
pub fn to_degrees<T: Float>(_x: T, _y: T) -> T {
    T::from_f64(180.0 / core::f64::consts::PI)
}

/// Rule of `x.floor()`: **`0` everywhere**, also at the integers where `floor` jumps
/// (convention). Ignores `x` and `y`.
#[inline(always)]
pub fn floor<T: Float>(_x: T, _y: T) -> T {
    T::ZERO
}

/// Rule of `x.ceil()`: **`0` everywhere**, also at the integers where `ceil` jumps (convention).
/// Ignores `x` and `y`.
#[inline(always)]
pub fn ceil<T: Float>(_x: T, _y: T) -> T {
    T::ZERO
}

/// Rule of `x.round()`: **`0` everywhere**, also at the half-integers where `round` jumps
/// (convention). Ignores `x` and `y`.
#[inline(always)]
pub fn round<T: Float>(_x: T, _y: T) -> T {
    T::ZERO
}

/// Rule of `x.trunc()`: **`0` everywhere**, also at the integers where `trunc` jumps
/// (convention). Ignores `x` and `y`.
#[inline(always)]
pub fn trunc<T: Float>(_x: T, _y: T) -> T {
    T::ZERO
}

/// Rule of `x.fract()` (`x − x.trunc()`): **`1` everywhere**, also at the integers where `fract`
/// jumps (convention). Ignores `x` and `y`.
#[inline(always)]
pub fn fract<T: Float>(_x: T, _y: T) -> T {
    T::ONE
}

/// Rule of `x.powi(n)`: `n · x^(n−1)`. Ignores `y`.
///
/// For `n == 0` the result is `0` everywhere, also at `x = 0` (where `x.powi(0) == 1`
/// identically). At `x = 0` it is the limit: `0` for `n > 1`, `1` for `n == 1`, `∓∞` for `n < 0`.
#[inline(always)]
pub fn powi<T: Float>(x: T, n: i32, _y: T) -> T {
    match n {
        0 => T::ZERO,
        1 => T::ONE,
        2 => T::TWO * x,
        // `n - 1` overflows only for i32::MIN; its powf is still exact in f64.
        i32::MIN => T::from_i32(n) * x.powf(T::from_f64(f64::from(n) - 1.0)),
        _ => T::from_i32(n) * x.powi(n - 1),
    }
}

// ---------------------------------------------------------------------------------------------
// Binary rules: `fn NAME(a, b, y) -> (∂y/∂a, ∂y/∂b)`.
// ---------------------------------------------------------------------------------------------

/// Rule of `a + b`: `(1, 1)`. Ignores all arguments.
#[inline(always)]
pub fn add<T: Float>(_a: T, _b: T, _y: T) -> (T, T) {
    (T::ONE, T::ONE)
}

/// Rule of `a - b`: `(1, −1)`. Ignores all arguments.
#[inline(always)]
pub fn sub<T: Float>(_a: T, _b: T, _y: T) -> (T, T) {
    (T::ONE, -T::ONE)
}

/// Rule of `a * b`: `(b, a)`. Ignores `y`.
#[inline(always)]
pub fn mul<T: Float>(a: T, b: T, _y: T) -> (T, T) {
    (b, a)
}

/// Rule of `a / b`: `(1 / b, −y / b)`. Ignores `a`.
#[inline(always)]
pub fn div<T: Float>(_a: T, b: T, y: T) -> (T, T) {
    let r = b.recip();
    (r, -y * r)
}

/// Rule of the float remainder `a % b` (`a − b·trunc(a/b)`): `(1, −trunc(a / b))`.
///
/// Convention: at the jumps (where `a / b` is an integer) the same formula applies, i.e. the
/// derivative of the piece the point belongs to. The quotient is recovered as
/// `round((a − y) / b)`, which is the integer `trunc(a / b)` the remainder actually used even
/// when `a / b` rounds up to the next integer in floating point.
#[inline(always)]
pub fn rem<T: Float>(a: T, b: T, y: T) -> (T, T) {
    (T::ONE, -((a - y) / b).round())
}

/// Rule of `a.atan2(b)` (`a` is the y-coordinate, `b` the x-coordinate):
/// `(b / (a² + b²), −a / (a² + b²))`.
///
/// Convention: at the origin `(0, 0)`, where `atan2` is discontinuous, the result is `(0, 0)`.
/// Ignores `y`.
#[inline(always)]
pub fn atan2<T: Float>(a: T, b: T, _y: T) -> (T, T) {
    let r2 = a * a + b * b;
    if r2 == T::ZERO {
        (T::ZERO, T::ZERO)
    } else {
        (b / r2, -a / r2)
    }
}

/// Rule of `a.powf(b)` (`a` the base, `b` the exponent): `(b · a^(b−1), y · ln a)`.
///
/// * `∂/∂a` is computed as `b · y / a` when `y` is a normal number, otherwise (base 0,
///   overflow, underflow) as `b · a.powf(b − 1)`, which at `a = 0` is the limit as `a → 0⁺`: `0`
///   for `b > 1`, `1` for `b == 1`, `+∞` for `0 < b < 1`, `−∞` for `b < 0`. For `b == 0` it is
///   `0` everywhere (`a.powf(0.0) == 1` identically).
/// * `∂/∂b` is `y · ln a`, with the convention that it is `0` when `y == 0` (base 0 with a
///   positive exponent: `0^b` is constantly 0 for `b > 0`). For base 0 and `b ≤ 0` it is `−∞`,
///   the limit as `a → 0⁺`. For a negative base it is NaN: `a^b` is then not real-valued near
///   `b`, so only use it when the exponent is active.
#[inline(always)]
pub fn powf<T: Float>(a: T, b: T, y: T) -> (T, T) {
    let da = if b == T::ZERO {
        T::ZERO
    } else if y.is_normal() && a != T::ZERO {
        b * y / a
    } else {
        b * a.powf(b - T::ONE)
    };
    let db = if y == T::ZERO { T::ZERO } else { y * a.ln() };
    (da, db)
}

/// Rule of `a.hypot(b)`: `(a / y, b / y)`.
///
/// Convention: at `(0, 0)`, where the function has a cone point, the result is `(0, 0)`.
#[inline(always)]
pub fn hypot<T: Float>(a: T, b: T, y: T) -> (T, T) {
    if y == T::ZERO {
        (T::ZERO, T::ZERO)
    } else {
        (a / y, b / y)
    }
}

/// Rule of `a.log(b)` (`a` the argument, `b` the base; `y = ln a / ln b`):
/// `(1 / (a · ln b), −y / (b · ln b))`.
#[inline(always)]
pub fn log<T: Float>(a: T, b: T, y: T) -> (T, T) {
    let ln_b = b.ln();
    ((a * ln_b).recip(), -y / (b * ln_b))
}

/// Rule of `a.max(b)`: `(1, 0)` when `a` is returned, `(0, 1)` when `b` is.
///
/// Conventions: on a tie (`a == b`) the whole derivative goes to the first argument `a`. When
/// one argument is NaN, `max` returns the other, so the whole derivative goes to the other.
/// (Both NaN: `(1, 0)`.) Ignores `y`.
#[inline(always)]
pub fn max<T: Float>(a: T, b: T, _y: T) -> (T, T) {
    if a >= b || b.is_nan() {
        (T::ONE, T::ZERO)
    } else {
        (T::ZERO, T::ONE)
    }
}

/// Rule of `a.min(b)`: `(1, 0)` when `a` is returned, `(0, 1)` when `b` is.
///
/// Conventions: on a tie (`a == b`) the whole derivative goes to the first argument `a`. When
/// one argument is NaN, `min` returns the other, so the whole derivative goes to the other.
/// (Both NaN: `(1, 0)`.) Ignores `y`.
#[inline(always)]
pub fn min<T: Float>(a: T, b: T, _y: T) -> (T, T) {
    if a <= b || b.is_nan() {
        (T::ONE, T::ZERO)
    } else {
        (T::ZERO, T::ONE)
    }
}

/// Rule of `a.copysign(b)`: `(±1, 0)`.
///
/// `∂/∂a` is `1` when the sign bit of `a` was kept and `−1` when it was flipped (also at `a = ±0`,
/// by the same rule); `∂/∂b` is `0` everywhere (convention at `b = ±0`, where the result jumps).
/// Ignores `b`'s value except through `y`.
#[inline(always)]
pub fn copysign<T: Float>(a: T, _b: T, y: T) -> (T, T) {
    if a.is_sign_negative() == y.is_sign_negative() {
        (T::ONE, T::ZERO)
    } else {
        (-T::ONE, T::ZERO)
    }
}

// ---------------------------------------------------------------------------------------------
// Ternary rules.
// ---------------------------------------------------------------------------------------------

/// Rule of `a.mul_add(b, c)` (`y = a·b + c`, one rounding): `(b, a, 1)`. Ignores `c` and `y`.
#[inline(always)]
pub fn mul_add<T: Float>(a: T, b: T, _c: T, _y: T) -> (T, T, T) {
    (b, a, T::ONE)
}

/// Rule of `x.clamp(lo, hi)`: `(1, 0, 0)` when `x` is returned, `(0, 1, 0)` when `lo` is,
/// `(0, 0, 1)` when `hi` is.
///
/// Convention: at `x == lo` or `x == hi` the whole derivative goes to `x`. A NaN `x` (returned
/// unchanged by `clamp`) also gets `(1, 0, 0)`. Ignores `y`.
#[inline(always)]
pub fn clamp<T: Float>(x: T, lo: T, hi: T, _y: T) -> (T, T, T) {
    if x < lo {
        (T::ZERO, T::ONE, T::ZERO)
    } else if x > hi {
        (T::ZERO, T::ZERO, T::ONE)
    } else {
        (T::ONE, T::ZERO, T::ZERO)
    }
}
