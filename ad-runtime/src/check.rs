//! A central finite-difference gradient checker for users' own functions.

use core::fmt;

/// The gradient of `f` at `x` by central finite differences.
///
/// Component `i` is `(f(x + h·eᵢ) − f(x − h·eᵢ)) / (2h)` with the step
/// `h = max(1, |xᵢ|) · ∛ε` (ε = `f64::EPSILON`), which balances the truncation error
/// `O(h²)` against the rounding error `O(ε/h)`: expect about 10 correct significant digits for a
/// smooth, well-scaled function. The divisor is the distance between the two points actually
/// evaluated, so the rounding of `xᵢ ± h` does not bias the result. Calls `f` `2·x.len()` times.
///
/// ```
/// use ad_runtime::finite_difference_gradient;
///
/// let f = |x: &[f64]| x[0] * x[0] * x[1];
/// let g = finite_difference_gradient(f, &[3.0, 2.0]);
/// assert!((g[0] - 12.0).abs() < 1e-8);
/// assert!((g[1] - 9.0).abs() < 1e-8);
/// ```
pub fn finite_difference_gradient<F: FnMut(&[f64]) -> f64>(mut f: F, x: &[f64]) -> Vec<f64> {
    let cbrt_eps = f64::EPSILON.cbrt();
    let mut point = x.to_vec();
    (0..x.len())
        .map(|i| {
            let xi = x[i];
            let h = cbrt_eps * xi.abs().max(1.0);
            let (hi, lo) = (xi + h, xi - h);
            point[i] = hi;
            let f_hi = f(&point);
            point[i] = lo;
            let f_lo = f(&point);
            point[i] = xi;
            (f_hi - f_lo) / (hi - lo)
        })
        .collect()
}

/// Checks `gradient` against the central finite-difference gradient of `f` at `x`.
///
/// Component `i` passes when its relative error
/// `|gradient[i] − fd[i]| / max(1, |fd[i]|)` is at most `rel_tol`, where `fd` is
/// [`finite_difference_gradient`]`(f, x)`. The denominator is at least 1, so components near
/// zero are compared absolutely (finite differences cannot resolve them more finely). A
/// component where both values are NaN, or both the same infinity, passes; any other NaN fails.
/// `rel_tol = 1e-6` suits smooth functions of moderate size.
///
/// On failure, returns the component with the largest relative error.
///
/// # Panics
///
/// If `gradient.len() != x.len()`.
///
/// ```
/// use ad_runtime::check_gradient;
///
/// let f = |x: &[f64]| x[0].sin() * x[1];
/// let x = [0.5, 2.0];
/// let right = [0.5_f64.cos() * 2.0, 0.5_f64.sin()];
/// assert!(check_gradient(f, &x, &right, 1e-6).is_ok());
///
/// let wrong = [0.5_f64.cos(), 0.5_f64.sin()];
/// let err = check_gradient(f, &x, &wrong, 1e-6).unwrap_err();
/// assert_eq!(err.index, 0);
/// println!("{err}"); // gradient component 0: expected 1.755…, got 0.877…
/// ```
pub fn check_gradient<F: FnMut(&[f64]) -> f64>(
    f: F,
    x: &[f64],
    gradient: &[f64],
    rel_tol: f64,
) -> Result<(), GradientMismatch> {
    assert_eq!(
        gradient.len(),
        x.len(),
        "check_gradient: the gradient has {} components but x has {}",
        gradient.len(),
        x.len()
    );
    let expected = finite_difference_gradient(f, x);
    let mut worst: Option<GradientMismatch> = None;
    for (index, (&expected, &actual)) in expected.iter().zip(gradient).enumerate() {
        let same_special = (expected.is_nan() && actual.is_nan())
            || (expected.is_infinite() && expected == actual);
        if same_special {
            continue;
        }
        let relative_error = (actual - expected).abs() / expected.abs().max(1.0);
        if relative_error.is_nan() || relative_error > rel_tol {
            let rank = |e: f64| if e.is_nan() { f64::INFINITY } else { e };
            let is_worse = match &worst {
                None => true,
                Some(w) => rank(relative_error) > rank(w.relative_error),
            };
            if is_worse {
                worst = Some(GradientMismatch {
                    index,
                    expected,
                    actual,
                    relative_error,
                });
            }
        }
    }
    match worst {
        None => Ok(()),
        Some(w) => Err(w),
    }
}

/// A gradient component that disagrees with central finite differences, from
/// [`check_gradient`].
///
/// ```
/// use ad_runtime::check_gradient;
///
/// let err = check_gradient(|x: &[f64]| x[0] * x[0], &[3.0], &[5.0], 1e-6).unwrap_err();
/// assert_eq!(err.index, 0);
/// assert!((err.expected - 6.0).abs() < 1e-8);
/// assert_eq!(err.actual, 5.0);
/// assert!((err.relative_error - 1.0 / 6.0).abs() < 1e-8);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradientMismatch {
    /// Which component of the gradient is wrong.
    pub index: usize,
    /// The finite-difference estimate.
    pub expected: f64,
    /// The value that was checked.
    pub actual: f64,
    /// `|actual − expected| / max(1, |expected|)`.
    pub relative_error: f64,
}

impl fmt::Display for GradientMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradient component {}: expected {} (central finite difference), got {} \
             (relative error {:.3e})",
            self.index, self.expected, self.actual, self.relative_error
        )
    }
}

impl std::error::Error for GradientMismatch {}
