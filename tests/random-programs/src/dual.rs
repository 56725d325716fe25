//! The oracle: forward-mode dual numbers, written here independently of `ad-runtime`.
//!
//! A [`Dual<N>`] carries a value, its gradient with respect to the `N` inputs of a generated
//! program, and a *magnitude* vector: the same forward propagation with every partial derivative
//! replaced by its absolute value. The magnitude bounds how much rounding the gradient can carry
//! (cancellation of large terms), so the comparison can use an honest absolute floor instead of
//! a guessed one.
//!
//! Every comparison and every non-differentiable intrinsic (`abs`, `max`, `min`, `cbrt`, `hypot`
//! and `atan2` at the origin) reports how far the inputs are from a point where the taken branch
//! flips; [`take_guard`] collects the closest call of an evaluation, so the harness can discard
//! input points that sit on a kink.
//!
//! The derivative formulas are written from the textbook here on purpose: the point of the oracle
//! is that it shares nothing with the code under test but the language.

use std::cell::Cell;
use std::cmp::Ordering;
use std::ops::{
    Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign,
};

/// A value with its gradient and its gradient magnitude with respect to `N` inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dual<const N: usize> {
    /// The value, computed by exactly the `f64` operations the plain program performs.
    pub v: f64,
    /// The gradient with respect to the `N` inputs.
    pub d: [f64; N],
    /// The gradient propagated with absolute values of every partial: a bound on the size of the
    /// terms summed into `d`, so `1e-16 * m` is the scale of its rounding error.
    pub m: [f64; N],
}

/// A constant: value `v`, zero gradient.
#[inline]
pub fn c<const N: usize>(v: f64) -> Dual<N> {
    Dual {
        v,
        d: [0.0; N],
        m: [0.0; N],
    }
}

/// Input number `i` of `N`, with value `v`: its gradient is the `i`-th unit vector.
#[inline]
pub fn var<const N: usize>(v: f64, i: usize) -> Dual<N> {
    let mut x = c::<N>(v);
    x.d[i] = 1.0;
    x.m[i] = 1.0;
    x
}

/// How close one evaluation came to a kink or a flipping comparison, and how large it got.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Guard {
    /// Smallest `|a - b| / max(1, |a|, |b|)` over the comparisons and kinks met.
    pub rel: f64,
    /// Smallest linearised distance, in the max-norm of the inputs, to a point where a
    /// comparison or kink flips: `|a - b| / ||grad(a - b)||_1`. Finite differences must step
    /// well inside it.
    pub dist: f64,
    /// Largest absolute value of any intermediate result or derivative.
    pub max_abs: f64,
    /// Number of comparisons and kinks met.
    pub events: u64,
}

impl Guard {
    const FRESH: Guard = Guard {
        rel: f64::INFINITY,
        dist: f64::INFINITY,
        max_abs: 0.0,
        events: 0,
    };
}

thread_local! {
    static GUARD: Cell<Guard> = const { Cell::new(Guard::FRESH) };
}

/// Starts a fresh record for one oracle evaluation on this thread.
pub fn reset_guard() {
    GUARD.with(|g| g.set(Guard::FRESH));
}

/// The record of the evaluation since the last [`reset_guard`].
pub fn take_guard() -> Guard {
    GUARD.with(|g| g.replace(Guard::FRESH))
}

/// Records that the program's control flow (or a one-sided derivative) depends on the sign of
/// `a - b`.
fn record_kink<const N: usize>(a: &Dual<N>, b: &Dual<N>) {
    let gap = (a.v - b.v).abs();
    let scale = 1.0f64.max(a.v.abs()).max(b.v.abs());
    let slope: f64 = a.d.iter().zip(&b.d).map(|(x, y)| (x - y).abs()).sum();
    let constant = |x: &Dual<N>| x.d.iter().all(|&g| g == 0.0);
    if constant(a) && constant(b) && !gap.is_nan() {
        // Neither side moves with the inputs (`1.0.floor()`, `(x - x).abs()`): the branch
        // taken is the same at every nearby point, whatever the gap. (Two sides that move
        // together, `x.exp().ln() < x`, are still recorded: rounding decides that branch.)
        return;
    }
    let dist = gap / slope;
    let rel = if gap.is_nan() { 0.0 } else { gap / scale };
    GUARD.with(|g| {
        let mut s = g.get();
        s.rel = s.rel.min(rel);
        s.dist = s.dist.min(if gap.is_nan() { 0.0 } else { dist });
        s.events += 1;
        g.set(s);
    });
}

/// A non-differentiable point reached exactly: the input point is discarded.
fn record_singular() {
    GUARD.with(|g| {
        let mut s = g.get();
        s.rel = 0.0;
        s.dist = 0.0;
        s.events += 1;
        g.set(s);
    });
}

fn record_size<const N: usize>(x: &Dual<N>) {
    let mut big = x.v.abs();
    for d in &x.d {
        big = big.max(d.abs());
    }
    if !big.is_finite() {
        big = f64::INFINITY;
    }
    GUARD.with(|g| {
        let mut s = g.get();
        s.max_abs = s.max_abs.max(big);
        g.set(s);
    });
}

impl<const N: usize> Dual<N> {
    /// The result of a one-argument function with value `v` and derivative `dv` at `self`.
    #[inline]
    fn chain(self, v: f64, dv: f64) -> Self {
        let mut r = c::<N>(v);
        for i in 0..N {
            r.d[i] = dv * self.d[i];
            r.m[i] = dv.abs() * self.m[i];
        }
        record_size(&r);
        r
    }

    /// The result of a two-argument function with value `v` and partials `da`, `db`.
    #[inline]
    fn chain2(a: Self, b: Self, v: f64, da: f64, db: f64) -> Self {
        let mut r = c::<N>(v);
        for i in 0..N {
            r.d[i] = da * a.d[i] + db * b.d[i];
            r.m[i] = da.abs() * a.m[i] + db.abs() * b.m[i];
        }
        record_size(&r);
        r
    }

    pub fn sin(self) -> Self {
        self.chain(self.v.sin(), self.v.cos())
    }
    pub fn cos(self) -> Self {
        self.chain(self.v.cos(), -self.v.sin())
    }
    pub fn tan(self) -> Self {
        let t = self.v.tan();
        // d tan = sec^2 = 1 / cos^2, written without `t` on purpose.
        let cs = self.v.cos();
        self.chain(t, 1.0 / (cs * cs))
    }
    pub fn asin(self) -> Self {
        self.chain(self.v.asin(), 1.0 / (1.0 - self.v * self.v).sqrt())
    }
    pub fn acos(self) -> Self {
        self.chain(self.v.acos(), -1.0 / (1.0 - self.v * self.v).sqrt())
    }
    pub fn atan(self) -> Self {
        self.chain(self.v.atan(), 1.0 / (1.0 + self.v * self.v))
    }
    pub fn sinh(self) -> Self {
        self.chain(self.v.sinh(), self.v.cosh())
    }
    pub fn cosh(self) -> Self {
        self.chain(self.v.cosh(), self.v.sinh())
    }
    pub fn tanh(self) -> Self {
        let ch = self.v.cosh();
        self.chain(self.v.tanh(), 1.0 / (ch * ch))
    }
    pub fn asinh(self) -> Self {
        self.chain(self.v.asinh(), 1.0 / (self.v * self.v + 1.0).sqrt())
    }
    pub fn exp(self) -> Self {
        let e = self.v.exp();
        self.chain(e, e)
    }
    pub fn exp2(self) -> Self {
        let e = self.v.exp2();
        self.chain(e, e * std::f64::consts::LN_2)
    }
    pub fn exp_m1(self) -> Self {
        self.chain(self.v.exp_m1(), self.v.exp())
    }
    pub fn ln(self) -> Self {
        self.chain(self.v.ln(), 1.0 / self.v)
    }
    pub fn ln_1p(self) -> Self {
        self.chain(self.v.ln_1p(), 1.0 / (1.0 + self.v))
    }
    pub fn log2(self) -> Self {
        self.chain(self.v.log2(), 1.0 / (self.v * std::f64::consts::LN_2))
    }
    pub fn log10(self) -> Self {
        self.chain(self.v.log10(), 1.0 / (self.v * std::f64::consts::LN_10))
    }
    pub fn sqrt(self) -> Self {
        let r = self.v.sqrt();
        self.chain(r, 0.5 / r)
    }
    pub fn cbrt(self) -> Self {
        record_kink(&self, &c(0.0));
        if self.v == 0.0 {
            // Exactly at the cusp: not differentiable even if the argument's first derivative
            // vanishes there (`x.hypot(1.0).ln().cbrt()` at `x = 0`), which `record_kink`
            // treats as a constant.
            record_singular();
        }
        let r = self.v.cbrt();
        self.chain(r, 1.0 / (3.0 * r * r))
    }
    pub fn recip(self) -> Self {
        self.chain(self.v.recip(), -1.0 / (self.v * self.v))
    }
    pub fn abs(self) -> Self {
        record_kink(&self, &c(0.0));
        let s = if self.v < 0.0 { -1.0 } else { 1.0 };
        self.chain(self.v.abs(), s)
    }
    pub fn powi(self, n: i32) -> Self {
        let dv = if n == 0 {
            0.0
        } else {
            f64::from(n) * self.v.powi(n - 1)
        };
        self.chain(self.v.powi(n), dv)
    }
    pub fn powf(self, y: impl Into<Self>) -> Self {
        let y = y.into();
        let p = self.v.powf(y.v);
        // d(x^y) = y x^(y-1) dx + x^y ln(x) dy; the generator keeps x > 0.
        let dx = y.v * self.v.powf(y.v - 1.0);
        let dy = if y.d.iter().all(|&g| g == 0.0) {
            0.0
        } else {
            p * self.v.ln()
        };
        Self::chain2(self, y, p, dx, dy)
    }
    pub fn atan2(self, x: impl Into<Self>) -> Self {
        let x = x.into();
        let y = self;
        // Discontinuous at the origin: the distance to it is the radius.
        record_kink(&y.hypot(x), &c(0.0));
        let r2 = x.v * x.v + y.v * y.v;
        Self::chain2(y, x, y.v.atan2(x.v), x.v / r2, -y.v / r2)
    }
    pub fn hypot(self, other: impl Into<Self>) -> Self {
        let b = other.into();
        let h = self.v.hypot(b.v);
        let r = Self::chain2(self, b, h, self.v / h, b.v / h);
        // A cone point at the origin.
        record_kink(&r, &c(0.0));
        r
    }
    pub fn max(self, other: impl Into<Self>) -> Self {
        let b = other.into();
        record_kink(&self, &b);
        let r = if self.v >= b.v { self } else { b };
        Dual {
            v: self.v.max(b.v),
            ..r
        }
    }
    pub fn min(self, other: impl Into<Self>) -> Self {
        let b = other.into();
        record_kink(&self, &b);
        let r = if self.v <= b.v { self } else { b };
        Dual {
            v: self.v.min(b.v),
            ..r
        }
    }
    pub fn acosh(self) -> Self {
        self.chain(self.v.acosh(), 1.0 / (self.v * self.v - 1.0).sqrt())
    }
    pub fn atanh(self) -> Self {
        self.chain(self.v.atanh(), 1.0 / (1.0 - self.v * self.v))
    }
    /// Piecewise constant: derivative 0, and a jump at 0.
    pub fn signum(self) -> Self {
        record_kink(&self, &c(0.0));
        self.chain(self.v.signum(), 0.0)
    }
    pub fn to_radians(self) -> Self {
        self.chain(self.v.to_radians(), std::f64::consts::PI / 180.0)
    }
    pub fn to_degrees(self) -> Self {
        self.chain(self.v.to_degrees(), 180.0 / std::f64::consts::PI)
    }
    /// Records the distance to the nearest jump of a step function whose jumps are at
    /// `jump + k` for integers `k`.
    fn record_steps(self, offset: f64) {
        let jump = (self.v - offset).round() + offset;
        record_kink(&self, &c(jump));
    }
    pub fn floor(self) -> Self {
        self.record_steps(0.0);
        self.chain(self.v.floor(), 0.0)
    }
    pub fn ceil(self) -> Self {
        self.record_steps(0.0);
        self.chain(self.v.ceil(), 0.0)
    }
    pub fn trunc(self) -> Self {
        self.record_steps(0.0);
        self.chain(self.v.trunc(), 0.0)
    }
    pub fn round(self) -> Self {
        self.record_steps(0.5);
        self.chain(self.v.round(), 0.0)
    }
    pub fn fract(self) -> Self {
        self.record_steps(0.0);
        self.chain(self.v.fract(), 1.0)
    }
    /// `log` in base `b`: `ln(x) / ln(b)`.
    pub fn log(self, b: impl Into<Self>) -> Self {
        let b = b.into();
        let (lx, lb) = (self.v.ln(), b.v.ln());
        Self::chain2(
            self,
            b,
            self.v.log(b.v),
            1.0 / (self.v * lb),
            -lx / (b.v * lb * lb),
        )
    }
    /// `|x|` with the sign of `b`: a kink at `x = 0` and a jump at `b = 0`.
    pub fn copysign(self, b: impl Into<Self>) -> Self {
        let b = b.into();
        record_kink(&self, &c(0.0));
        record_kink(&b, &c(0.0));
        // The sign bit, not the comparison: `copysign(x, -0.0)` is negative.
        let flip = self.v.is_sign_negative() != b.v.is_sign_negative();
        Self::chain2(
            self,
            b,
            self.v.copysign(b.v),
            if flip { -1.0 } else { 1.0 },
            0.0,
        )
    }
    pub fn clamp(self, lo: impl Into<Self>, hi: impl Into<Self>) -> Self {
        let (lo, hi) = (lo.into(), hi.into());
        record_kink(&self, &lo);
        record_kink(&self, &hi);
        let r = if self.v < lo.v {
            lo
        } else if self.v > hi.v {
            hi
        } else {
            self
        };
        Dual {
            v: self.v.clamp(lo.v, hi.v),
            ..r
        }
    }
    pub fn mul_add(self, a: impl Into<Self>, b: impl Into<Self>) -> Self {
        let (a, b) = (a.into(), b.into());
        let mut r = c::<N>(self.v.mul_add(a.v, b.v));
        for i in 0..N {
            r.d[i] = a.v * self.d[i] + self.v * a.d[i] + b.d[i];
            r.m[i] = a.v.abs() * self.m[i] + self.v.abs() * a.m[i] + b.m[i];
        }
        record_size(&r);
        r
    }
}

impl<const N: usize> From<f64> for Dual<N> {
    fn from(v: f64) -> Self {
        c(v)
    }
}

impl<const N: usize> Add for Dual<N> {
    type Output = Self;
    fn add(self, b: Self) -> Self {
        Self::chain2(self, b, self.v + b.v, 1.0, 1.0)
    }
}
impl<const N: usize> Sub for Dual<N> {
    type Output = Self;
    fn sub(self, b: Self) -> Self {
        Self::chain2(self, b, self.v - b.v, 1.0, -1.0)
    }
}
impl<const N: usize> Mul for Dual<N> {
    type Output = Self;
    fn mul(self, b: Self) -> Self {
        Self::chain2(self, b, self.v * b.v, b.v, self.v)
    }
}
impl<const N: usize> Div for Dual<N> {
    type Output = Self;
    fn div(self, b: Self) -> Self {
        Self::chain2(self, b, self.v / b.v, 1.0 / b.v, -self.v / (b.v * b.v))
    }
}
impl<const N: usize> Rem for Dual<N> {
    type Output = Self;
    /// `a % b = a - b * trunc(a / b)`: jumps where `a / b` crosses an integer.
    fn rem(self, b: Self) -> Self {
        let q = self / b;
        q.record_steps(0.0);
        Self::chain2(self, b, self.v % b.v, 1.0, -(self.v / b.v).trunc())
    }
}
impl<const N: usize> Neg for Dual<N> {
    type Output = Self;
    fn neg(self) -> Self {
        self.chain(-self.v, -1.0)
    }
}

macro_rules! assign_ops {
    ($($tr:ident $method:ident $op:tt;)*) => {$(
        impl<const N: usize> $tr for Dual<N> {
            fn $method(&mut self, b: Self) {
                *self = *self $op b;
            }
        }
    )*};
}
assign_ops! {
    AddAssign add_assign +;
    SubAssign sub_assign -;
    MulAssign mul_assign *;
    DivAssign div_assign /;
    RemAssign rem_assign %;
}

impl<const N: usize> PartialOrd for Dual<N> {
    /// Compares values, recording how close the comparison is to flipping.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        record_kink(self, other);
        self.v.partial_cmp(&other.v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central difference of a one-argument function, for checking the formulas above.
    fn fd(f: impl Fn(f64) -> f64, x: f64) -> f64 {
        let h = 1e-5;
        (-f(x + 2.0 * h) + 8.0 * f(x + h) - 8.0 * f(x - h) + f(x - 2.0 * h)) / (12.0 * h)
    }

    #[test]
    fn unary_rules_match_finite_differences() {
        type D = Dual<1>;
        type Case = (&'static str, fn(D) -> D, fn(f64) -> f64, f64);
        let cases: Vec<Case> = vec![
            ("sin", D::sin, f64::sin, 0.7),
            ("cos", D::cos, f64::cos, 0.7),
            ("tan", D::tan, f64::tan, 0.7),
            ("asin", D::asin, f64::asin, 0.3),
            ("acos", D::acos, f64::acos, 0.3),
            ("atan", D::atan, f64::atan, 0.7),
            ("sinh", D::sinh, f64::sinh, 0.7),
            ("cosh", D::cosh, f64::cosh, 0.7),
            ("tanh", D::tanh, f64::tanh, 0.7),
            ("asinh", D::asinh, f64::asinh, 0.7),
            ("exp", D::exp, f64::exp, 0.7),
            ("exp2", D::exp2, f64::exp2, 0.7),
            ("exp_m1", D::exp_m1, f64::exp_m1, 0.7),
            ("ln", D::ln, f64::ln, 0.7),
            ("ln_1p", D::ln_1p, f64::ln_1p, 0.7),
            ("log2", D::log2, f64::log2, 0.7),
            ("log10", D::log10, f64::log10, 0.7),
            ("sqrt", D::sqrt, f64::sqrt, 0.7),
            ("cbrt", D::cbrt, f64::cbrt, -0.7),
            ("recip", D::recip, f64::recip, 0.7),
            ("abs", D::abs, f64::abs, -0.7),
            ("acosh", D::acosh, f64::acosh, 1.7),
            ("atanh", D::atanh, f64::atanh, 0.3),
            ("signum", D::signum, f64::signum, 0.3),
            ("to_radians", D::to_radians, f64::to_radians, 0.3),
            ("to_degrees", D::to_degrees, f64::to_degrees, 0.3),
            ("floor", D::floor, f64::floor, 1.3),
            ("ceil", D::ceil, f64::ceil, 1.3),
            ("round", D::round, f64::round, 1.3),
            ("trunc", D::trunc, f64::trunc, -1.3),
            ("fract", D::fract, f64::fract, -1.3),
            ("powi3", |x| x.powi(3), |x| x.powi(3), -0.7),
            ("powi-2", |x| x.powi(-2), |x| x.powi(-2), 0.7),
            ("powf", |x| x.powf(2.5), |x| x.powf(2.5), 0.7),
            ("neg", |x| -x, |x| -x, 0.7),
        ];
        for (name, fd_rule, plain, x) in cases {
            let got = fd_rule(var(x, 0));
            assert_eq!(got.v, plain(x), "{name} value");
            let want = fd(plain, x);
            assert!(
                (got.d[0] - want).abs() <= 1e-8 * (1.0 + want.abs()),
                "{name}: {} vs {want}",
                got.d[0]
            );
        }
    }

    #[test]
    fn binary_rules_match_finite_differences() {
        type D = Dual<2>;
        type Case = (&'static str, fn(D, D) -> D, fn(f64, f64) -> f64);
        let cases: Vec<Case> = vec![
            ("add", |a, b| a + b, |a, b| a + b),
            ("sub", |a, b| a - b, |a, b| a - b),
            ("mul", |a, b| a * b, |a, b| a * b),
            ("div", |a, b| a / b, |a, b| a / b),
            ("powf", D::powf, f64::powf),
            ("atan2", D::atan2, f64::atan2),
            ("hypot", D::hypot, f64::hypot),
            ("max", D::max, f64::max),
            ("min", D::min, f64::min),
            ("mul_add", |a, b| a.mul_add(b, a), |a, b| a.mul_add(b, a)),
            ("rem", |a, b| a % b, |a, b| a % b),
            (
                "log",
                |a, b| a.abs().log(b.abs() + c(1.0)),
                |a, b| a.abs().log(b.abs() + 1.0),
            ),
            ("copysign", D::copysign, f64::copysign),
            (
                "clamp",
                |a, b| a.clamp(b, b + c(1.0)),
                |a, b| a.clamp(b, b + 1.0),
            ),
        ];
        for (name, rule, plain) in cases {
            for (a, b) in [(0.7, 1.3), (1.9, -0.4), (-0.8, -1.1)] {
                if name == "powf" && a < 0.0 {
                    continue;
                }
                let got = rule(var(a, 0), var(b, 1));
                assert_eq!(got.v, plain(a, b), "{name} value");
                let da = fd(|x| plain(x, b), a);
                let db = fd(|y| plain(a, y), b);
                for (g, w) in [(got.d[0], da), (got.d[1], db)] {
                    assert!(
                        (g - w).abs() <= 1e-8 * (1.0 + w.abs()),
                        "{name}({a}, {b}): {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn comparisons_record_their_margin() {
        reset_guard();
        let x = var::<1>(2.0, 0);
        assert!(x > c(1.5));
        let y = (x * c(0.5)).max(c(0.999_999_9));
        // Constants cannot flip: not recorded.
        let _ = c::<1>(1.0).floor();
        assert_eq!(y.d[0], 0.5);
        let g = take_guard();
        assert_eq!(g.events, 2);
        assert!(g.rel < 2e-7 && g.rel > 0.0, "{g:?}");
        assert!((g.dist - 2e-7).abs() < 1e-9, "{g:?}");
    }

    #[test]
    fn magnitude_bounds_cancellation() {
        let x = var::<1>(3.0, 0);
        let y = x * c(1e8) - x * c(1e8) + x;
        assert_eq!(y.d[0], 1.0);
        assert_eq!(y.m[0], 2e8 + 1.0);
    }
}
