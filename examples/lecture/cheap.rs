//! The lecture's claim that all n partial derivatives cost a few times one evaluation of the
//! function ("100 variables ... in four or five times the cost"), tested on the extended
//! Rosenbrock function: the generated `rosenbrock_grad` (one reverse sweep) against n + 1
//! evaluations for forward differences.

#![allow(dead_code)] // Shared by an example and tests/lecture_examples.rs; each uses part.

use ad::gradient;

/// Extended Rosenbrock, (1 − x₀)² + Σᵢ₌₁ⁿ⁻¹ [100(xᵢ − xᵢ₋₁²)² + (1 − xᵢ)²], defined for every
/// n ≥ 1.
#[gradient]
pub fn rosenbrock(x: &[f64]) -> f64 {
    let n = x.len();
    let b0 = 1.0 - x[0];
    let mut s = b0 * b0;
    for i in 1..n {
        let a = x[i] - x[i - 1] * x[i - 1];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    s
}

/// The value and the whole gradient from one call of the generated `rosenbrock_grad`.
pub fn gradient_reverse(x: &[f64], gradient: &mut [f64]) -> f64 {
    let (value, []) = rosenbrock_grad(x, gradient);
    value
}

/// The value and the forward-difference gradient (f(x + h·eᵢ) − f(x))/h: n + 1 evaluations, the
/// "one chain per variable" cost of forward mode. `scratch` is x's copy, perturbed in place.
pub fn gradient_differences(x: &[f64], scratch: &mut Vec<f64>, gradient: &mut [f64]) -> f64 {
    scratch.clear();
    scratch.extend_from_slice(x);
    let value = rosenbrock(scratch);
    for i in 0..x.len() {
        let h = 1e-7 * x[i].abs().max(1.0);
        scratch[i] = x[i] + h;
        gradient[i] = (rosenbrock(scratch) - value) / h;
        scratch[i] = x[i];
    }
    value
}

/// A deterministic point with entries in [−1, 1], away from the minimiser (1, …, 1).
pub fn test_point(n: usize) -> Vec<f64> {
    (0..n).map(|i| (0.7 * i as f64 + 0.3).sin()).collect()
}

/// The gradient in closed form, for checking the other two.
pub fn gradient_closed_form(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut g: Vec<f64> = x.iter().map(|xi| -2.0 * (1.0 - xi)).collect();
    for i in 1..n {
        let a = x[i] - x[i - 1] * x[i - 1];
        g[i] += 200.0 * a;
        g[i - 1] -= 400.0 * a * x[i - 1];
    }
    g
}
