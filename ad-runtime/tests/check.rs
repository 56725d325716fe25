//! The finite-difference gradient checker: accuracy, acceptance, rejection, reporting.

use ad_runtime::{check_gradient, finite_difference_gradient, GradientMismatch};
use approx::assert_relative_eq;

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2)
        .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
        .sum()
}

fn rosenbrock_gradient(x: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; x.len()];
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        g[i] += -400.0 * x[i] * a - 2.0 * (1.0 - x[i]);
        g[i + 1] += 200.0 * a;
    }
    g
}

const X: [f64; 5] = [-1.2, 1.0, 0.3, 2.5, -0.7];

#[test]
fn finite_differences_are_accurate() {
    let fd = finite_difference_gradient(rosenbrock, &X);
    for (fd, exact) in fd.iter().zip(rosenbrock_gradient(&X)) {
        assert_relative_eq!(*fd, exact, epsilon = 1e-7, max_relative = 1e-8);
    }
    // Large coordinates: the step scales with |x_i|.
    let f = |x: &[f64]| x[0].ln() * x[1];
    let g = finite_difference_gradient(f, &[1e6, 3.0]);
    assert_relative_eq!(g[0], 3e-6, max_relative = 1e-8);
    assert_relative_eq!(g[1], 1e6_f64.ln(), max_relative = 1e-8);
}

#[test]
fn finite_differences_leave_the_point_unchanged_and_call_f_twice_per_coordinate() {
    let mut calls = 0;
    let x = [0.1, 0.2, 0.3];
    let g = finite_difference_gradient(
        |p: &[f64]| {
            calls += 1;
            p.iter().sum()
        },
        &x,
    );
    assert_eq!(calls, 6);
    for gi in g {
        assert_relative_eq!(gi, 1.0, max_relative = 1e-10);
    }
}

#[test]
fn accepts_the_right_gradient() {
    check_gradient(rosenbrock, &X, &rosenbrock_gradient(&X), 1e-6).unwrap();
}

#[test]
fn rejects_a_wrong_gradient_and_reports_the_worst_component() {
    let mut g = rosenbrock_gradient(&X);
    g[1] *= 1.001;
    g[3] += 0.5 * g[3].abs().max(1.0);
    let err = check_gradient(rosenbrock, &X, &g, 1e-6).unwrap_err();
    assert_eq!(err.index, 3);
    assert_eq!(err.actual, g[3]);
    assert_relative_eq!(
        err.expected,
        rosenbrock_gradient(&X)[3],
        max_relative = 1e-8
    );
    assert_relative_eq!(err.relative_error, 0.5, max_relative = 1e-6);
}

#[test]
fn rejects_nan_and_accepts_matching_special_values() {
    let f = |x: &[f64]| x[0] * x[1];
    let err = check_gradient(f, &[2.0, 3.0], &[3.0, f64::NAN], 1e-6).unwrap_err();
    assert_eq!(err.index, 1);
    assert!(err.relative_error.is_nan());

    // Both NaN: the function itself is NaN there.
    let g = |x: &[f64]| (x[0] - 5.0).sqrt();
    check_gradient(g, &[0.0], &[f64::NAN], 1e-6).unwrap();
}

#[test]
fn near_zero_components_are_compared_absolutely() {
    let f = |x: &[f64]| x[0] * x[0];
    check_gradient(f, &[0.0], &[1e-9], 1e-6).unwrap();
    assert!(check_gradient(f, &[0.0], &[1e-3], 1e-6).is_err());
}

#[test]
fn empty_input() {
    assert!(finite_difference_gradient(|_: &[f64]| 1.0, &[]).is_empty());
    check_gradient(|_: &[f64]| 1.0, &[], &[], 1e-6).unwrap();
}

#[test]
#[should_panic(expected = "the gradient has 1 components but x has 2")]
fn length_mismatch_panics() {
    let _ = check_gradient(|x: &[f64]| x[0] + x[1], &[1.0, 2.0], &[1.0], 1e-6);
}

#[test]
fn mismatch_is_an_error_with_a_readable_message() {
    let err = GradientMismatch {
        index: 2,
        expected: 1.5,
        actual: 2.0,
        relative_error: 1.0 / 3.0,
    };
    assert_eq!(
        err.to_string(),
        "gradient component 2: expected 1.5 (central finite difference), got 2 \
         (relative error 3.333e-1)"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(boxed.to_string().starts_with("gradient component 2"));
}
