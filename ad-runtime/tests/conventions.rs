//! The rules at the points where the derivative does not exist (or is infinite): each documented
//! convention, checked exactly.

use ad_runtime::rules;

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

#[test]
fn abs_at_zero_is_zero() {
    assert_eq!(rules::abs(0.0_f64, 0.0), 0.0);
    assert_eq!(rules::abs(-0.0_f64, 0.0), 0.0);
    assert_eq!(rules::abs(0.0_f32, 0.0), 0.0);
    assert_eq!(rules::abs(-2.0_f64, 2.0), -1.0);
    assert_eq!(rules::abs(2.0_f64, 2.0), 1.0);
    assert!(rules::abs(NAN, NAN).is_nan());
}

#[test]
fn signum_is_zero_everywhere() {
    for x in [0.0_f64, -0.0, 1.0, -3.0, INF, NAN] {
        assert_eq!(rules::signum(x, x.signum()), 0.0);
    }
    assert_eq!(rules::signum(0.0_f32, 1.0), 0.0);
}

#[test]
fn rounding_functions_are_flat_even_at_their_jumps() {
    for x in [-2.0_f64, -1.5, -0.5, -0.0, 0.0, 0.5, 1.0, 2.5, 3.0] {
        assert_eq!(rules::floor(x, x.floor()), 0.0, "floor at {x}");
        assert_eq!(rules::ceil(x, x.ceil()), 0.0, "ceil at {x}");
        assert_eq!(rules::round(x, x.round()), 0.0, "round at {x}");
        assert_eq!(rules::trunc(x, x.trunc()), 0.0, "trunc at {x}");
        assert_eq!(rules::fract(x, x.fract()), 1.0, "fract at {x}");
    }
    assert_eq!(rules::floor(1.0_f32, 1.0), 0.0);
    assert_eq!(rules::fract(1.0_f32, 0.0), 1.0);
}

#[test]
fn rem_at_its_jumps_uses_the_quotient_it_used() {
    // a / b an integer: the piece the point belongs to, quotient trunc(a / b).
    assert_eq!(rules::rem(6.0_f64, 2.0, 6.0 % 2.0), (1.0, -3.0));
    assert_eq!(rules::rem(-6.0_f64, 2.0, -6.0 % 2.0), (1.0, 3.0));
    assert_eq!(rules::rem(-6.0_f64, 4.0, -6.0 % 4.0), (1.0, 1.0));
    assert_eq!(rules::rem(0.0_f64, 4.0, 0.0), (1.0, 0.0));
    assert_eq!(rules::rem(6.0_f32, 2.0, 0.0), (1.0, -3.0));
    // 1.0 / 0.1 rounds to 10.0, but 0.1 is slightly above 1/10, so `%` used quotient 9:
    // y = 1 − 9·b, whose derivative in b is −9.
    let y = 1.0_f64 % 0.1;
    assert_eq!((1.0_f64 / 0.1).trunc(), 10.0);
    assert_eq!(rules::rem(1.0_f64, 0.1, y), (1.0, -9.0));
    // A divisor that dwarfs the dividend: quotient 0.
    assert_eq!(rules::rem(3.0_f64, INF, 3.0), (1.0, 0.0));
}

#[test]
fn max_and_min_ties_go_to_the_first_argument() {
    assert_eq!(rules::max(2.0_f64, 2.0, 2.0), (1.0, 0.0));
    assert_eq!(rules::min(2.0_f64, 2.0, 2.0), (1.0, 0.0));
    assert_eq!(rules::max(0.0_f64, -0.0, 0.0), (1.0, 0.0));
    assert_eq!(rules::min(-0.0_f64, 0.0, -0.0), (1.0, 0.0));
    assert_eq!(rules::max(1.5_f32, 1.5, 1.5), (1.0, 0.0));
    assert_eq!(rules::min(1.5_f32, 1.5, 1.5), (1.0, 0.0));
    // Away from ties, to whichever is returned.
    assert_eq!(rules::max(1.0_f64, 2.0, 2.0), (0.0, 1.0));
    assert_eq!(rules::min(1.0_f64, 2.0, 1.0), (1.0, 0.0));
}

#[test]
fn max_and_min_with_a_nan_go_to_the_other_argument() {
    // std returns the non-NaN argument ...
    assert_eq!(NAN.max(3.0), 3.0);
    assert_eq!(3.0_f64.max(NAN), 3.0);
    assert_eq!(NAN.min(3.0), 3.0);
    assert_eq!(3.0_f64.min(NAN), 3.0);
    // ... so it gets the derivative.
    assert_eq!(rules::max(NAN, 3.0, 3.0), (0.0, 1.0));
    assert_eq!(rules::max(3.0, NAN, 3.0), (1.0, 0.0));
    assert_eq!(rules::min(NAN, 3.0, 3.0), (0.0, 1.0));
    assert_eq!(rules::min(3.0, NAN, 3.0), (1.0, 0.0));
    assert_eq!(rules::max(f32::NAN, 3.0, 3.0), (0.0, 1.0));
    assert_eq!(rules::min(3.0, f32::NAN, 3.0), (1.0, 0.0));
    // Both NaN: documented as (1, 0).
    assert_eq!(rules::max(NAN, NAN, NAN), (1.0, 0.0));
    assert_eq!(rules::min(NAN, NAN, NAN), (1.0, 0.0));
}

#[test]
fn clamp_at_a_bound_goes_to_x() {
    assert_eq!(rules::clamp(-1.0_f64, -1.0, 2.0, -1.0), (1.0, 0.0, 0.0));
    assert_eq!(rules::clamp(2.0_f64, -1.0, 2.0, 2.0), (1.0, 0.0, 0.0));
    assert_eq!(rules::clamp(1.0_f64, 1.0, 1.0, 1.0), (1.0, 0.0, 0.0));
    assert_eq!(rules::clamp(2.0_f32, -1.0, 2.0, 2.0), (1.0, 0.0, 0.0));
    // Strictly outside: to the bound returned.
    assert_eq!(rules::clamp(-1.5_f64, -1.0, 2.0, -1.0), (0.0, 1.0, 0.0));
    assert_eq!(rules::clamp(2.5_f64, -1.0, 2.0, 2.0), (0.0, 0.0, 1.0));
    // A NaN x is returned unchanged by clamp.
    assert!(NAN.clamp(-1.0, 2.0).is_nan());
    assert_eq!(rules::clamp(NAN, -1.0, 2.0, NAN), (1.0, 0.0, 0.0));
}

#[test]
fn sqrt_and_cbrt_at_zero_are_plus_infinity() {
    assert_eq!(rules::sqrt(0.0_f64, 0.0), INF);
    assert_eq!(rules::sqrt(0.0_f32, 0.0), f32::INFINITY);
    assert_eq!(rules::cbrt(0.0_f64, 0.0), INF);
    assert_eq!(rules::cbrt(-0.0_f64, -0.0), INF);
    assert_eq!(rules::cbrt(0.0_f32, 0.0), f32::INFINITY);
    // Outside the domain of sqrt: NaN.
    assert!(rules::sqrt(-1.0_f64, (-1.0_f64).sqrt()).is_nan());
}

#[test]
fn hypot_and_atan2_at_the_origin_are_zero() {
    for (a, b) in [(0.0_f64, 0.0), (-0.0, 0.0), (0.0, -0.0), (-0.0, -0.0)] {
        assert_eq!(rules::hypot(a, b, a.hypot(b)), (0.0, 0.0));
        assert_eq!(rules::atan2(a, b, a.atan2(b)), (0.0, 0.0));
    }
    assert_eq!(rules::hypot(0.0_f32, 0.0, 0.0), (0.0, 0.0));
    assert_eq!(rules::atan2(0.0_f32, 0.0, 0.0), (0.0, 0.0));
    // On the axes (not the origin) the ordinary formula applies.
    assert_eq!(rules::hypot(0.0_f64, 2.0, 2.0), (0.0, 1.0));
    assert_eq!(rules::atan2(0.0_f64, 2.0, 0.0), (0.5, -0.0));
}

#[test]
fn powf_at_base_zero_takes_the_limit_from_the_right() {
    let at_zero = |b: f64| rules::powf(0.0, b, 0.0_f64.powf(b));
    // ∂/∂a: b·a^(b−1) as a → 0⁺.  ∂/∂b: 0 where y == 0 (0^b ≡ 0 for b > 0).
    assert_eq!(at_zero(3.0), (0.0, 0.0));
    assert_eq!(at_zero(2.0), (0.0, 0.0));
    assert_eq!(at_zero(1.5), (0.0, 0.0));
    assert_eq!(at_zero(1.0), (1.0, 0.0));
    assert_eq!(at_zero(0.5), (INF, 0.0));
    // Exponent 0: 0^0 == 1 ≡ a^0, flat in a; ∂/∂b is the limit of ln a, −∞.
    assert_eq!(at_zero(0.0), (0.0, -INF));
    // Negative exponent: y = +∞; both partials diverge like their limits.
    assert_eq!(at_zero(-1.0), (-INF, -INF));
    assert_eq!(rules::powf(0.0_f32, 2.0, 0.0), (0.0, 0.0));
    assert_eq!(rules::powf(0.0_f32, 1.0, 0.0), (1.0, 0.0));

    // The limits agree with the rule just to the right of 0.
    for b in [1.0_f64, 1.5, 2.0, 3.0] {
        let a = 1e-12;
        let (da, _) = rules::powf(a, b, a.powf(b));
        let (da0, _) = at_zero(b);
        assert!((da - da0).abs() < 1e-5, "b = {b}: {da} vs {da0}");
    }
}

#[test]
fn powf_with_exponent_zero_is_flat_in_the_base() {
    for a in [0.0_f64, -0.0, 2.0, -3.0, 0.5] {
        assert_eq!(rules::powf(a, 0.0, 1.0).0, 0.0, "base {a}");
    }
}

#[test]
fn powf_with_negative_base() {
    // Integer exponent: ∂/∂base is real, ∂/∂exponent is NaN (a^b is not real near b).
    let (da, db) = rules::powf(-2.0_f64, 3.0, -8.0);
    assert_eq!(da, 12.0);
    assert!(db.is_nan());
    // Non-integer exponent: the value is NaN already.
    let (da, db) = rules::powf(-2.0_f64, 0.5, NAN);
    assert!(da.is_nan() && db.is_nan());
}

#[test]
fn powf_when_the_value_overflows_or_underflows() {
    // y = +∞ or 0 (not normal): the rule falls back to b·a^(b−1) and stays finite when that is.
    let (a, b) = (2.0_f64, 1024.0);
    assert_eq!(a.powf(b), INF);
    assert_eq!(rules::powf(a, b, a.powf(b)).0, INF); // 1024·2^1023 overflows too
    let (a, b) = (2.0_f64, -1074.5);
    let (da, _) = rules::powf(a, b, a.powf(b));
    assert_eq!(da, b * a.powf(b - 1.0));
}

#[test]
fn powi_at_zero() {
    assert_eq!(rules::powi(0.0_f64, 0, 1.0), 0.0);
    assert_eq!(rules::powi(0.0_f64, 1, 0.0), 1.0);
    assert_eq!(rules::powi(0.0_f64, 2, 0.0), 0.0);
    assert_eq!(rules::powi(0.0_f64, 3, 0.0), 0.0);
    assert_eq!(rules::powi(0.0_f64, -1, INF), -INF);
    assert_eq!(rules::powi(0.0_f32, 0, 1.0), 0.0);
    assert_eq!(rules::powi(0.0_f32, 1, 0.0), 1.0);
}

#[test]
fn copysign_is_plus_or_minus_one_in_the_magnitude_and_flat_in_the_sign() {
    let rule = |a: f64, b: f64| rules::copysign(a, b, a.copysign(b));
    assert_eq!(rule(3.0, 2.0), (1.0, 0.0));
    assert_eq!(rule(3.0, -2.0), (-1.0, 0.0));
    assert_eq!(rule(-3.0, 2.0), (-1.0, 0.0));
    assert_eq!(rule(-3.0, -2.0), (1.0, 0.0));
    // At b = ±0 (where the result jumps) and a = ±0, by the same sign-bit rule.
    assert_eq!(rule(5.0, -0.0), (-1.0, 0.0));
    assert_eq!(rule(5.0, 0.0), (1.0, 0.0));
    assert_eq!(rule(0.0, -1.0), (-1.0, 0.0));
    assert_eq!(rule(-0.0, -1.0), (1.0, 0.0));
    assert_eq!(rules::copysign(3.0_f32, -1.0, -3.0), (-1.0, 0.0));
}

#[test]
fn infinite_derivatives_at_the_domain_boundary() {
    assert_eq!(rules::ln(0.0_f64, -INF), INF);
    assert_eq!(rules::asin(1.0_f64, 1.0_f64.asin()), INF);
    assert_eq!(rules::asin(-1.0_f64, (-1.0_f64).asin()), INF);
    assert_eq!(rules::acos(1.0_f64, 0.0), -INF);
    assert_eq!(rules::atanh(1.0_f64, INF), INF);
    assert_eq!(rules::acosh(1.0_f64, 0.0), INF);
    assert_eq!(rules::recip(0.0_f64, INF), -INF);
    assert!(rules::asin(1.5_f64, NAN).is_nan());
    assert!(rules::acosh(0.5_f64, NAN).is_nan());
}

/// Not a promise for every rule (domains are not checked, see the crate doc), but true of these.
#[test]
fn nan_inputs_give_nan_partials() {
    assert!(rules::sin(NAN, NAN).is_nan());
    assert!(rules::exp(NAN, NAN).is_nan());
    assert!(rules::tanh(NAN, NAN).is_nan());
    assert!(rules::sqrt(NAN, NAN).is_nan());
    assert!(rules::powi(NAN, 3, NAN).is_nan());
    let (da, db) = rules::div(NAN, 2.0, NAN);
    assert_eq!(da, 0.5);
    assert!(db.is_nan());
    let (da, db) = rules::hypot(NAN, 1.0, NAN);
    assert!(da.is_nan() && db.is_nan());
}

#[test]
fn constant_rules() {
    assert_eq!(rules::neg(1.0_f64, -1.0), -1.0);
    assert_eq!(rules::add(1.0_f64, 2.0, 3.0), (1.0, 1.0));
    assert_eq!(rules::sub(1.0_f32, 2.0, -1.0), (1.0, -1.0));
    assert_eq!(rules::mul_add(2.0_f64, 3.0, 4.0, 10.0), (3.0, 2.0, 1.0));
    assert_eq!(rules::to_radians(7.0_f64, 0.0), 1.0_f64.to_radians());
    assert_eq!(rules::to_degrees(7.0_f64, 0.0), 1.0_f64.to_degrees());
}
