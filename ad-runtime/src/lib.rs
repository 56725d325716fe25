//! Runtime support for the `ad` crate: the derivative rule of every intrinsic, the tape used by
//! the reverse sweep of loops, and a finite-difference gradient checker.
//!
//! The `#[gradient]` macro (crate `ad-macro`) generates plain Rust code that calls into this
//! crate through the facade (`::ad::__private::...`), so users depend on `ad` only. The crate has
//! no dependencies and no `unsafe`.
//!
//! # Derivative rules ([`rules`])
//!
//! Every differentiable float operation has one rule, an `#[inline(always)]` function generic
//! over [`Float`] (`f32` and `f64`). The signature convention is uniform:
//!
//! * the rule receives **all the float inputs of the operation, in order, followed by the
//!   forward result `y`** (the value the forward sweep already computed);
//! * it returns the **partial derivatives of `y` with respect to each float input**: a bare `T`
//!   for a unary operation, a tuple `(T, T)` or `(T, T, T)` otherwise.
//!
//! Non-float arguments sit where the method has them: `powi(x, n, y)` takes the `i32` exponent
//! between `x` and `y` and returns only `∂y/∂x`. Passing `y` lets a rule reuse the forward value
//! instead of recomputing it: `exp` returns `y`, `tanh` returns `1 − y²`, `sqrt` returns
//! `0.5 / y`. The reverse sweep multiplies these partials by the adjoint of `y`.
//!
//! ```
//! use ad_runtime::rules;
//!
//! // y = sin(x) * exp(x); reverse sweep by hand with the rules.
//! let x = 0.5_f64;
//! let (s, e) = (x.sin(), x.exp());
//! let y = s * e;
//! let (ds, de) = rules::mul(s, e, y);           // ∂y/∂s, ∂y/∂e
//! let x_bar = ds * rules::sin(x, s) + de * rules::exp(x, e);
//! assert!((x_bar - (x.cos() + x.sin()) * x.exp()).abs() < 1e-14);
//! ```
//!
//! # Conventions at non-differentiable points
//!
//! Where the mathematical derivative does not exist, the rules return the value below. Each
//! convention is documented on its rule and tested. Everywhere else in the operation's domain, a
//! rule returns the true derivative evaluated in floating point, which is `±∞` where the
//! derivative is infinite (`ln` at 0, `asin` at ±1, `sqrt` at 0). Rules do not check domains:
//! where the forward value `y` is already NaN (`ln` of a negative number, any NaN input), the
//! partials are whatever the formula gives, often NaN but not always (`ln`'s rule is `1 / x`);
//! the function value is NaN there anyway.
//!
//! | operation | point | derivative returned |
//! |---|---|---|
//! | `abs` | `x == 0` (either sign) | `0` |
//! | `signum` | everywhere | `0` |
//! | `floor`, `ceil`, `round`, `trunc` | everywhere (also at the jumps) | `0` |
//! | `fract` | everywhere (also at the jumps) | `1` |
//! | `rem` (`a % b`) | everywhere (also at the jumps) | `(1, −trunc(a / b))` |
//! | `max(a, b)` | `a == b` | `(1, 0)`: all to the first argument |
//! | `min(a, b)` | `a == b` | `(1, 0)`: all to the first argument |
//! | `max`, `min` | one argument NaN | all to the other (the one returned) |
//! | `clamp(x, lo, hi)` | `x == lo` or `x == hi` | `(1, 0, 0)`: all to `x` |
//! | `sqrt`, `cbrt` | `x == 0` | `+∞` (the limit) |
//! | `hypot(a, b)` | `(0, 0)` | `(0, 0)` |
//! | `atan2(a, b)` | `(0, 0)` | `(0, 0)` |
//! | `powf(a, b)` | `a == 0` | `∂/∂a`: the limit `a → 0⁺` of `b·a^(b−1)` (`0` for `b > 1`, `1` for `b == 1`, `+∞` for `0 < b < 1`); `∂/∂b`: `0` when `y == 0`, else the limit of `y·ln a` (`−∞`) |
//! | `powf(a, b)`, `powi(x, n)` | exponent `0` | `∂/∂base = 0` (also at base 0) |
//! | `copysign(a, b)` | everywhere | `(±1, 0)`: `−1` exactly when the sign of `a` was flipped |
//!
//! # Tape ([`Tape`])
//!
//! A stack of values the forward sweep of a loop overwrites but the reverse sweep needs. The
//! forward sweep pushes, the reverse sweep pops in the opposite order.
//!
//! # Gradient checker ([`check_gradient`], [`finite_difference_gradient`])
//!
//! Central finite differences, for checking a gradient (generated or hand-written) against the
//! function it claims to differentiate.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod float;
pub mod rules;
mod tape;

pub use check::{check_gradient, finite_difference_gradient, GradientMismatch};
pub use float::Float;
pub use tape::{release_tape_cache, tape_cache_bytes, Buffer, Tape};
