//! Correctness of the ADBench LSTM objective in `benches/objectives/lstm.rs`, at small sizes and
//! at ADBench's (l = 2, c = 1024, b = 14): the hand-written adjoint against central finite
//! differences of the user-written function and against a closed form at zero parameters, and
//! every other tool (`num-dual`, `reverse` and the generated `lstm_objective_grad`) against the
//! hand-written adjoint. Nothing here is timed.

#[path = "../benches/objectives/mod.rs"]
mod objectives;

use objectives::lstm::{self, Lstm};
use objectives::{check_agreement, fd_gradient, hand_gradient, rel_err, Problem, Tool};

#[test]
fn lstm_matches_finite_differences() {
    for (l, c, b) in [
        (1, 2, 1),
        (1, 3, 3),
        (2, 4, 4),
        (2, 5, 3),
        (3, 4, 2),
        (1, 5, 4),
    ] {
        let p = Lstm::new(l, c, b, 17 + (l * 100 + c * 10 + b) as u64);
        let fd = fd_gradient(|t| p.value_at(t), &p.theta);
        let err = rel_err(&hand_gradient(&p), &fd);
        assert!(
            err < 1e-7,
            "(l, c, b) = ({l}, {c}, {b}): relative error {err:e}"
        );
    }
}

/// At zero parameters every sigmoid is ½ and every change gate tanh 0 = 0, so each cell halves
/// per step and the predictions are 0: the loss is ln(b + 2) times the mean of the sequence after
/// its first vector. The output layer's gradient follows from ∂y = −(ygold − G/(b + 2))/n per step
/// (G the step's Σ ygold, n = (c − 1) b): the biases get Σ_t ∂y, the weights Σ_t ∂y h_t, with the
/// top layer's h_t = ½ tanh(c₀ / 2^(t+1)).
#[test]
fn lstm_at_zero_is_the_closed_form() {
    for (l, c, b) in [(1, 3, 3), (2, 5, 4), (2, 1024, 14)] {
        let mut p = Lstm::new(l, c, b, 5);
        p.theta.iter_mut().for_each(|v| *v = 0.0);
        let n = ((c - 1) * b) as f64;
        let gold = &p.sequence[b..];
        let expected = ((b + 2) as f64).ln() * gold.iter().sum::<f64>() / n;
        let mut g = vec![f64::NAN; p.n_params()];
        let value = p.hand(&mut g);
        assert!((value - expected).abs() < 1e-12, "{value} vs {expected}");
        assert!((p.value() - expected).abs() < 1e-12);
        let cell0 = &p.state[(2 * l - 1) * b..2 * l * b];
        let (mut g_w_out, mut g_b_out) = (vec![0.0; b], vec![0.0; b]);
        for (t, yg) in gold.chunks_exact(b).enumerate() {
            let big_g: f64 = yg.iter().sum();
            for j in 0..b {
                let y_bar = -(yg[j] - big_g / (b + 2) as f64) / n;
                let h = 0.5 * (cell0[j] / 2f64.powi(t as i32 + 1)).tanh();
                g_b_out[j] += y_bar;
                g_w_out[j] += y_bar * h;
            }
        }
        let g_extra = &g[8 * l * b..];
        assert!(rel_err(&g_extra[2 * b..], &g_b_out) < 1e-12);
        assert!(rel_err(&g_extra[b..2 * b], &g_w_out) < 1e-12);
        check_agreement(&p, 1e-12);
    }
}

#[test]
fn lstm_helpers_are_adbenchs() {
    assert_eq!(lstm::logsumexp(&[0.0; 3]), 5f64.ln());
    let v = [0.3, -1.2, 0.8];
    let mut g = [f64::NAN; 3];
    let (value, []) = lstm::logsumexp_grad(&v, &mut g);
    let denominator: f64 = v.iter().map(|x| x.exp()).sum::<f64>() + 2.0;
    assert!((value - denominator.ln()).abs() < 1e-15);
    for (gi, x) in g.iter().zip(&v) {
        assert!((gi - x.exp() / denominator).abs() < 1e-15);
    }
    assert_eq!(lstm::sigmoid(0.0), 0.5);
    let (v, [d]) = lstm::sigmoid_grad(0.3);
    assert_eq!(v, lstm::sigmoid(0.3));
    assert!((d - v * (1.0 - v)).abs() < 1e-15);
}

#[test]
fn lstm_tools_agree() {
    for (l, c, b) in [(1, 2, 1), (1, 3, 3), (2, 4, 4), (2, 5, 3), (3, 6, 5)] {
        check_agreement(&Lstm::new(l, c, b, 3 + b as u64), 1e-12);
    }
    let p = Lstm::new(2, 1024, 14, 1);
    assert!(Tool::Generated.available(&p));
    check_agreement(&p, 1e-10);
}
