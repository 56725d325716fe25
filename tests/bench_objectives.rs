//! Correctness of the benchmark objectives in `benches/objectives/`, at small sizes: every
//! hand-written adjoint against central finite differences of the user-written function, and every
//! other tool (`num-dual`, `reverse` and the generated `*_grad`) against the
//! hand-written adjoint. Nothing here is timed.

#[path = "../benches/objectives/mod.rs"]
mod objectives;

use objectives::gmm::{self, Gmm};
use objectives::lecture::{self, Lecture};
use objectives::logreg::{self, LogReg};
use objectives::lse::{self, Lse};
use objectives::mlp::Mlp;
use objectives::recurrence::{self, Recurrence};
use objectives::rosenbrock::{self, Rosenbrock};
use objectives::softmax::{self, Softmax};
use objectives::{check_agreement, fd_gradient, hand_gradient, rel_err, Tool};

#[test]
fn lecture_gradient_is_the_closed_form() {
    assert_eq!(lecture::lecture(2.0, 3.0), 88.0);
    assert_eq!(lecture::lecture_hand(2.0, 3.0), (88.0, [140.0, 24.0]));
    assert_eq!(lecture::lecture_num_dual(2.0, 3.0), (88.0, [140.0, 24.0]));
    check_agreement(&Lecture::new(2.0, 3.0), 1e-14);
    check_agreement(&Lecture::new(-0.7, 1.9), 1e-14);
}

#[test]
fn lecture_matches_finite_differences() {
    let p = Lecture::new(-0.7, 1.9);
    let fd = fd_gradient(|v| lecture::lecture(v[0], v[1]), &[p.x, p.y]);
    assert!(rel_err(&hand_gradient(&p), &fd) < 1e-8);
}

#[test]
fn rosenbrock_matches_finite_differences() {
    for n in [2, 3, 10, 11] {
        let p = Rosenbrock::new(n, 7 + n as u64);
        let fd = fd_gradient(rosenbrock::rosenbrock, &p.x);
        let err = rel_err(&hand_gradient(&p), &fd);
        assert!(err < 1e-7, "n = {n}: relative error {err:e}");
    }
}

#[test]
fn rosenbrock_minimum_has_zero_gradient() {
    let x = vec![1.0; 5];
    let mut g = vec![f64::NAN; 5];
    assert_eq!(rosenbrock::rosenbrock_hand(&x, &mut g), 0.0);
    assert_eq!(g, vec![0.0; 5]);
}

#[test]
fn rosenbrock_tools_agree() {
    for n in [2, 10, 1000] {
        check_agreement(&Rosenbrock::new(n, 1), 1e-12);
    }
}

/// One point in one dimension with one component: the objective is the Gaussian
/// log-density with precision exp(2q), plus the prior.
#[test]
fn gmm_is_the_gaussian_log_likelihood_in_one_dimension() {
    let (alpha, mu, q, x) = (0.4, 0.3, -0.2, 1.7);
    let (gamma, m) = (1.3, 2);
    let value = gmm::gmm_objective(&[alpha], &[mu], &[q], &[x], 1, 1, gamma, m);
    let log_density =
        -0.5 * (2.0 * std::f64::consts::PI).ln() + q - 0.5 * (2.0 * q).exp() * (x - mu) * (x - mu);
    // Wishart prior for p = 1: ½γ² e^{2q} − m q − C, C = n(ln γ − ½ ln 2) − ln Γ(n/2), n = m + 2.
    let wn = (m + 2) as f64;
    let c = wn * (gamma.ln() - 0.5 * 2f64.ln()) - gmm::log_gamma_distrib(0.5 * wn, 1);
    let prior = 0.5 * gamma * gamma * (2.0 * q).exp() - m as f64 * q - c;
    assert!((value - (log_density + prior)).abs() < 1e-12);
    // ln Γ(2) = 0, ln Γ(5/2) = ln(3√π/4).
    assert!(gmm::log_gamma_distrib(2.0, 1).abs() < 1e-15);
    let expected = (0.75 * std::f64::consts::PI.sqrt()).ln();
    assert!((gmm::log_gamma_distrib(2.5, 1) - expected).abs() < 1e-14);
}

/// Two dimensions, written out: Q = [[e^{q0}, 0], [l, e^{q1}]].
#[test]
fn gmm_uses_the_lower_triangular_inverse_cholesky_factor() {
    let (q0, q1, l) = (0.1, -0.3, 0.7);
    let mu = [0.2, -0.4];
    let x = [1.1, 0.5];
    let value = gmm::gmm_objective(&[0.0], &mu, &[q0, q1, l], &x, 2, 1, 1.0, 0);
    let xc = [x[0] - mu[0], x[1] - mu[1]];
    let y = [q0.exp() * xc[0], l * xc[0] + q1.exp() * xc[1]];
    let log_density =
        -(2.0 * std::f64::consts::PI).ln() + q0 + q1 - 0.5 * (y[0] * y[0] + y[1] * y[1]);
    let frobenius = (2.0 * q0).exp() + (2.0 * q1).exp() + l * l;
    let wn = 3.0;
    let c = wn * 2.0 * (-0.5 * 2f64.ln()) - gmm::log_gamma_distrib(0.5 * wn, 2);
    let prior = 0.5 * frobenius - c;
    assert!((value - (log_density + prior)).abs() < 1e-12);
}

#[test]
fn gmm_matches_finite_differences() {
    for (d, k, n, gamma, m) in [
        (1, 1, 3, 1.0, 0),
        (2, 3, 20, 1.0, 0),
        (3, 4, 15, 1.3, 2),
        (5, 2, 10, 0.8, 1),
    ] {
        let p = Gmm::with_wishart(d, k, n, gamma, m, 11 + d as u64);
        let fd = fd_gradient(|t| p.value_at(t), &p.theta);
        let err = rel_err(&hand_gradient(&p), &fd);
        assert!(err < 1e-6, "d = {d}, K = {k}: relative error {err:e}");
    }
}

#[test]
fn gmm_tools_agree() {
    check_agreement(&Gmm::with_wishart(3, 4, 15, 1.3, 2, 5), 1e-10);
    check_agreement(&Gmm::new(2, 5, 1000, 1), 1e-10);
}

#[test]
fn mlp_matches_finite_differences() {
    let p = Mlp::new(8, 3);
    let fd = fd_gradient(|t| p.value_at(t), &p.theta);
    let err = rel_err(&hand_gradient(&p), &fd);
    assert!(err < 1e-7, "relative error {err:e}");
}

#[test]
fn mlp_tools_agree() {
    check_agreement(&Mlp::new(8, 3), 1e-12);
    check_agreement(&Mlp::new(256, 4), 1e-12);
}

#[test]
fn logreg_matches_finite_differences() {
    for (d, n) in [(1, 1), (3, 5), (4, 17), (20, 50)] {
        let p = LogReg::new(d, n, 13 + d as u64);
        let fd = fd_gradient(|t| p.value_at(t), &p.theta);
        let err = rel_err(&hand_gradient(&p), &fd);
        assert!(err < 1e-7, "D = {d}, N = {n}: relative error {err:e}");
    }
}

/// At w = 0, b = 0 every sample costs ln 2 and has ∂/∂z = −y/2, so the gradient is
/// −(1/2N) Σₛ yₛ (xₛ, 1).
#[test]
fn logreg_at_zero_is_the_closed_form() {
    let (d, n) = (3, 5);
    let p = LogReg::new(d, n, 2);
    let (w, b) = (vec![0.0; d], 0.0);
    let mut g_w = vec![f64::NAN; d];
    let (v, g_b) = logreg::logreg_hand(&w, b, &p.xs, &p.ys, &mut g_w);
    let ln2 = std::f64::consts::LN_2;
    assert!((v - ln2).abs() < 1e-15);
    assert!((logreg::logreg_loss(&w, b, &p.xs, &p.ys) - ln2).abs() < 1e-15);
    let mut expected = vec![0.0; d + 1];
    for (x, y) in p.xs.chunks_exact(d).zip(&p.ys) {
        for j in 0..d {
            expected[j] -= 0.5 * y * x[j] / n as f64;
        }
        expected[d] -= 0.5 * y / n as f64;
    }
    g_w.push(g_b);
    assert!(rel_err(&g_w, &expected) < 1e-14, "{g_w:?} vs {expected:?}");
}

#[test]
fn logreg_tools_agree() {
    check_agreement(&LogReg::new(3, 5, 1), 1e-12);
    check_agreement(&LogReg::new(20, 1000, 5), 1e-12);
    check_agreement(&LogReg::new(100, 1000, 5), 1e-12);
}

#[test]
fn lse_matches_finite_differences() {
    for n in [1, 2, 7, 30] {
        let p = Lse::new(n, 17 + n as u64);
        let fd = fd_gradient(lse::log_sum_exp, &p.x);
        let err = rel_err(&hand_gradient(&p), &fd);
        assert!(err < 1e-7, "n = {n}: relative error {err:e}");
    }
}

/// The value is ln Σ exp xᵢ and the gradient is the softmax exp(xᵢ − lse).
#[test]
fn lse_gradient_is_the_softmax() {
    for n in [1, 7, 1000] {
        let p = Lse::new(n, 6);
        let naive = p.x.iter().map(|v| v.exp()).sum::<f64>().ln();
        let mut g = vec![f64::NAN; n];
        let v = lse::log_sum_exp_hand(&p.x, &mut g);
        assert!((v - naive).abs() < 1e-12 * naive.abs().max(1.0), "n = {n}");
        assert_eq!(v, lse::log_sum_exp(&p.x));
        let softmax: Vec<f64> = p.x.iter().map(|xi| (xi - v).exp()).collect();
        assert!(rel_err(&g, &softmax) < 1e-14, "n = {n}");
        assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-13, "n = {n}");
    }
    // Stable where the naive formula overflows; equal entries share the weight.
    let x = [1000.0, 1000.0, 1000.0, 1000.0];
    let mut g = [f64::NAN; 4];
    let v = lse::log_sum_exp_hand(&x, &mut g);
    assert!((v - (1000.0 + 4f64.ln())).abs() < 1e-12);
    assert_eq!(g, [0.25; 4]);
}

#[test]
fn lse_tools_agree() {
    check_agreement(&Lse::new(7, 6), 1e-12);
    check_agreement(&Lse::new(1000, 6), 1e-12);
    check_agreement(&Lse::new(100_000, 6), 1e-12);
}

#[test]
fn softmax_matches_finite_differences() {
    for (d, k, n) in [(1, 2, 1), (3, 4, 5), (1, 1, 3), (5, 3, 17)] {
        let p = Softmax::new(d, k, n, 19 + (d * k) as u64);
        let fd = fd_gradient(|t| p.value_at(t), &p.w);
        let err = rel_err(&hand_gradient(&p), &fd);
        assert!(
            err < 1e-7,
            "D = {d}, K = {k}, N = {n}: relative error {err:e}"
        );
    }
}

/// At W = 0 every score is 0, so every sample costs ln K and has ∂/∂z_c = 1/K − [c = yₛ]: the
/// gradient is (1/N) Σₛ (1/K − [c = yₛ]) xₛ.
#[test]
fn softmax_at_zero_is_the_closed_form() {
    let (d, k, n) = (3, 4, 5);
    let p = Softmax::new(d, k, n, 2);
    let w = vec![0.0; k * d];
    let mut g = vec![f64::NAN; k * d];
    let v = softmax::softmax_ce_hand(&w, &p.xs, &p.labels, d, k, &mut g);
    let ln_k = (k as f64).ln();
    assert!((v - ln_k).abs() < 1e-15);
    assert!((softmax::softmax_ce(&w, &p.xs, &p.labels, d, k) - ln_k).abs() < 1e-15);
    let mut expected = vec![0.0; k * d];
    for (x, &y) in p.xs.chunks_exact(d).zip(&p.labels) {
        for c in 0..k {
            let p_c = 1.0 / k as f64 - if c == y { 1.0 } else { 0.0 };
            for j in 0..d {
                expected[c * d + j] += p_c * x[j] / n as f64;
            }
        }
    }
    assert!(rel_err(&g, &expected) < 1e-14, "{g:?} vs {expected:?}");
    // Each column of the gradient sums to zero over the classes (the softmax sums to one).
    for j in 0..d {
        let col: f64 = (0..k).map(|c| g[c * d + j]).sum();
        assert!(col.abs() < 1e-15, "column {j}: {col:e}");
    }
}

#[test]
fn softmax_tools_agree() {
    check_agreement(&Softmax::new(3, 4, 5, 1), 1e-12);
    check_agreement(&Softmax::new(20, 10, 500, 7), 1e-12);
}

#[test]
fn logistic_adjoint_matches_tangents_and_finite_differences() {
    for steps in [0, 1, 7, 40] {
        let p = Recurrence::new(steps);
        let g = hand_gradient(&p);
        let (v, tangent) = recurrence::logistic_tangent(p.x0, p.r, steps);
        assert_eq!(v, recurrence::logistic(p.x0, p.r, steps));
        assert!(rel_err(&g, &tangent) < 1e-12, "steps = {steps}");
        let fd = fd_gradient(|t| recurrence::logistic(t[0], t[1], steps), &[p.x0, p.r]);
        assert!(rel_err(&g, &fd) < 1e-6, "steps = {steps}: {g:?} vs {fd:?}");
    }
    // The benchmarked size: adjoint and tangents agree, and the derivatives stay finite.
    let (_, tangent) = recurrence::logistic_tangent(0.3, 3.2, 10_000);
    let g = hand_gradient(&Recurrence::new(10_000));
    assert!(g.iter().all(|v| v.is_finite()));
    assert!(rel_err(&g, &tangent) < 1e-12);
}

#[test]
fn logistic_tools_agree() {
    check_agreement(&Recurrence::new(40), 1e-12);
    check_agreement(&Recurrence::new(10_000), 1e-12);
}

/// Every objective has its generated row.
#[test]
fn generated_rows_are_available() {
    assert!(Tool::Generated.available(&Rosenbrock::new(4, 2)));
    assert!(Tool::Generated.available(&Lecture::new(1.0, 2.0)));
    assert!(Tool::Generated.available(&LogReg::new(3, 5, 1)));
    assert!(Tool::Generated.available(&Lse::new(7, 6)));
    assert!(Tool::Generated.available(&Softmax::new(3, 4, 5, 1)));
}
