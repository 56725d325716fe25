//! The [`Float`] trait: the operations the derivative rules need, for `f32` and `f64`.

use core::fmt::{Debug, Display};
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, Sub, SubAssign};

mod sealed {
    /// Prevents implementations outside this crate: the rules are only tested for `f32`/`f64`.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point scalar the derivative rules are generic over: `f32` or `f64`.
///
/// The methods mirror the inherent methods of the primitive types of the same name (and call
/// them), so a rule written for `T: Float` computes exactly what the same code over `f64` would.
/// The trait is sealed: it is implemented for `f32` and `f64` only.
///
/// ```
/// use ad_runtime::Float;
///
/// fn square_plus_one<T: Float>(x: T) -> T {
///     x * x + T::ONE
/// }
/// assert_eq!(square_plus_one(3.0_f64), 10.0);
/// assert_eq!(square_plus_one(3.0_f32), 10.0);
/// assert_eq!(<f32 as Float>::from_f64(0.5), 0.5_f32);
/// ```
pub trait Float:
    sealed::Sealed
    + Copy
    + PartialOrd
    + PartialEq
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Rem<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
{
    /// `0.0`
    const ZERO: Self;
    /// `1.0`
    const ONE: Self;
    /// `2.0`
    const TWO: Self;
    /// `0.5`
    const HALF: Self;
    /// π
    const PI: Self;
    /// ln 2
    const LN_2: Self;
    /// ln 10
    const LN_10: Self;
    /// Machine epsilon (`f64::EPSILON` or `f32::EPSILON`).
    const EPSILON: Self;
    /// +∞
    const INFINITY: Self;
    /// A quiet NaN.
    const NAN: Self;

    /// Converts from `f64`, rounding to nearest for `f32`.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Converts from `i32`, rounding to nearest for `f32`.
    fn from_i32(v: i32) -> Self;

    /// See `f64::abs`.
    fn abs(self) -> Self;
    /// See `f64::signum`.
    fn signum(self) -> Self;
    /// See `f64::is_nan`.
    fn is_nan(self) -> bool;
    /// See `f64::is_normal`.
    fn is_normal(self) -> bool;
    /// See `f64::is_sign_negative`.
    fn is_sign_negative(self) -> bool;
    /// See `f64::trunc`.
    fn trunc(self) -> Self;
    /// See `f64::round`.
    fn round(self) -> Self;
    /// See `f64::recip`.
    fn recip(self) -> Self;
    /// See `f64::sqrt`.
    fn sqrt(self) -> Self;
    /// See `f64::exp`.
    fn exp(self) -> Self;
    /// See `f64::ln`.
    fn ln(self) -> Self;
    /// See `f64::powi`.
    fn powi(self, n: i32) -> Self;
    /// See `f64::powf`.
    fn powf(self, n: Self) -> Self;
    /// See `f64::sin`.
    fn sin(self) -> Self;
    /// See `f64::cos`.
    fn cos(self) -> Self;
    /// See `f64::sinh`.
    fn sinh(self) -> Self;
    /// See `f64::cosh`.
    fn cosh(self) -> Self;
}

macro_rules! impl_float {
    ($t:ident) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const TWO: Self = 2.0;
            const HALF: Self = 0.5;
            const PI: Self = core::$t::consts::PI;
            const LN_2: Self = core::$t::consts::LN_2;
            const LN_10: Self = core::$t::consts::LN_10;
            const EPSILON: Self = $t::EPSILON;
            const INFINITY: Self = $t::INFINITY;
            const NAN: Self = $t::NAN;

            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
            #[inline(always)]
            fn from_i32(v: i32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn signum(self) -> Self {
                $t::signum(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            #[inline(always)]
            fn is_normal(self) -> bool {
                $t::is_normal(self)
            }
            #[inline(always)]
            fn is_sign_negative(self) -> bool {
                $t::is_sign_negative(self)
            }
            #[inline(always)]
            fn trunc(self) -> Self {
                $t::trunc(self)
            }
            #[inline(always)]
            fn round(self) -> Self {
                $t::round(self)
            }
            #[inline(always)]
            fn recip(self) -> Self {
                $t::recip(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline(always)]
            fn powi(self, n: i32) -> Self {
                $t::powi(self, n)
            }
            #[inline(always)]
            fn powf(self, n: Self) -> Self {
                $t::powf(self, n)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                $t::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                $t::cos(self)
            }
            #[inline(always)]
            fn sinh(self) -> Self {
                $t::sinh(self)
            }
            #[inline(always)]
            fn cosh(self) -> Self {
                $t::cosh(self)
            }
        }
    };
}

impl_float!(f32);
impl_float!(f64);
