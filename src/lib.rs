//! `ad`: compile-time reverse-mode automatic differentiation for Rust.
//!
//! Put `#[gradient]` on an ordinary function over `f32`/`f64` values; beside it the macro emits
//! `<name>_grad`, which returns the function's value and its whole gradient from one reverse
//! sweep, with no tape for straight-line and branching code.
//!
//! ```
//! use ad::gradient;
//!
//! #[gradient]
//! fn f(x: f64, y: f64) -> f64 {
//!     x.powi(3) * (x + 3.0 * y)
//! }
//!
//! let (value, [dfdx, dfdy]) = f_grad(2.0, 3.0);
//! assert_eq!((value, dfdx, dfdy), (88.0, 140.0, 24.0));
//! ```
//!
//! See the README for the supported syntax and `ad_runtime` (re-exported here) for the
//! derivative rules, their conventions at non-differentiable points, and the gradient checker.

pub use ad_macro::gradient;
pub use ad_runtime::*;

/// Items the generated code refers to by absolute path (`::ad::__private::...`). Not public API.
#[doc(hidden)]
pub mod __private {
    pub use ad_runtime::rules;
    pub use ad_runtime::{Buffer, Tape};
}

/// The README's examples are tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
