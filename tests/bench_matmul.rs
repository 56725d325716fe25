//! Correctness of the matrix-product loss in `benches/objectives/matmul.rs`: the hand-written
//! adjoint against central finite differences of the user-written function and against the closed
//! form ∂f/∂A = 2 C Bᵀ, ∂f/∂B = 2 Aᵀ C computed naively, and every other tool (`num-dual`,
//! `reverse` and the generated `matmul_loss_grad`) against the hand-written adjoint, including at
//! the benchmark's n = 64. Nothing here is timed.

#[path = "../benches/objectives/mod.rs"]
mod objectives;

use objectives::matmul::MatMul;
use objectives::{check_agreement, fd_gradient, hand_gradient, rel_err, Problem, Tool};

#[test]
fn matmul_matches_finite_differences() {
    for n in [1, 2, 3, 5, 8] {
        let p = MatMul::new(n, 40 + n as u64);
        let fd = fd_gradient(|t| p.value_at(t), &p.theta);
        let err = rel_err(&hand_gradient(&p), &fd);
        assert!(err < 1e-7, "n = {n}: relative error {err:e}");
    }
}

/// Naive triple loops for C = AB, f = Σ C², 2 C Bᵀ and 2 Aᵀ C, independent of the hand
/// adjoint's loop orders and buffers.
#[test]
fn matmul_is_the_closed_form() {
    for n in [1, 3, 7] {
        let p = MatMul::new(n, 90 + n as u64);
        let (a, b) = p.theta.split_at(n * n);
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                c[i * n + j] = (0..n).map(|k| a[i * n + k] * b[k * n + j]).sum();
            }
        }
        let f: f64 = c.iter().map(|x| x * x).sum();
        let mut want = vec![0.0; 2 * n * n];
        for i in 0..n {
            for k in 0..n {
                // ∂f/∂A_ik = 2 Σ_j C_ij B_kj; ∂f/∂B_ik = 2 Σ_j A_ji C_jk.
                want[i * n + k] = 2.0 * (0..n).map(|j| c[i * n + j] * b[k * n + j]).sum::<f64>();
                want[n * n + i * n + k] =
                    2.0 * (0..n).map(|j| a[j * n + i] * c[j * n + k]).sum::<f64>();
            }
        }
        let mut g = vec![f64::NAN; 2 * n * n];
        let v = p.hand(&mut g);
        assert!((v - f).abs() <= 1e-12 * f.max(1.0), "n = {n}: {v} vs {f}");
        assert!(rel_err(&g, &want) < 1e-12, "n = {n}: hand adjoint");
        let mut g = vec![f64::NAN; 2 * n * n];
        let v = Tool::Generated.run(&p, &mut g);
        assert!((v - f).abs() <= 1e-12 * f.max(1.0), "n = {n}: {v} vs {f}");
        assert!(rel_err(&g, &want) < 1e-12, "n = {n}: generated gradient");
    }
}

#[test]
fn matmul_tools_agree() {
    for n in [1, 2, 4, 5] {
        check_agreement(&MatMul::new(n, 7 + n as u64), 1e-10);
    }
}

/// At the benchmark's size `num-dual` is infeasible; the generated gradient and `reverse` must
/// still match the hand-written adjoint there.
#[test]
fn matmul_at_benchmark_size() {
    let p = MatMul::new(64, 12);
    assert!(!p.num_dual_feasible());
    let hand = hand_gradient(&p);
    for tool in [Tool::Generated, Tool::Reverse] {
        let mut g = vec![f64::NAN; p.n_params()];
        tool.run(&p, &mut g);
        let err = rel_err(&g, &hand);
        assert!(err < 1e-10, "{tool:?}: relative error {err:e}");
    }
}
