//! Replayed loops whose reverse iterations commute (`fuse::reverse_commutes`: accumulators,
//! private scalars and loop indices, buffers written and read at the loop's index) run their
//! reverse in ascending order when they touch only slice parameters at `i ± k`
//! (`Emitter::runs_forward`), with loads carried in registers from one iteration to the next.
//! Each gradient is checked against central finite differences, next to look-alikes that do
//! not qualify and still run descending.
// Index loops are the subject under test.
#![allow(clippy::needless_range_loop)]

use ad::gradient;

const FD_TOL: f64 = 1e-6;

const X: [f64; 7] = [0.7, -0.4, 1.3, 0.2, -1.1, 0.9, 0.5];

#[track_caller]
fn check(f: &dyn Fn(&[f64]) -> f64, value: f64, grad: &[f64], x: &[f64]) {
    assert_eq!(value, f(x), "f_grad's value differs from f's");
    if let Err(e) = ad::check_gradient(f, x, grad, FD_TOL) {
        panic!("{e}\n  at x = {x:?}\n  gradient = {grad:?}");
    }
}

/// Extended Rosenbrock under a square root, plus `x[0]`: the sum is not linear after the loop
/// and `x` is read again, so the loop replays; `x[i]` and `x[i + 1]` are carried in registers,
/// ascending.
#[gradient]
fn rosenbrock_norm(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    s.sqrt() + x[0]
}

#[test]
fn carried_loads_in_an_ascending_reverse() {
    let mut g = vec![f64::NAN; X.len()];
    let (v, []) = rosenbrock_norm_grad(&X, &mut g);
    check(&rosenbrock_norm, v, &g, &X);
    // Two elements: one iteration; the carry is flushed into the last element.
    let mut g = [f64::NAN; 2];
    let (v, []) = rosenbrock_norm_grad(&X[..2], &mut g);
    check(&rosenbrock_norm, v, &g, &X[..2]);
}

/// A logistic regression's loss: the inner product's reverse (`w_bar[j] += g * x[j]`) runs
/// ascending inside the fused loop over samples.
#[gradient(wrt(w, b))]
fn logistic_loss(w: &[f64], b: f64, xs: &[f64], ys: &[f64]) -> f64 {
    let d = w.len();
    let mut loss = 0.0;
    for s in 0..ys.len() {
        let mut z = b;
        for j in 0..d {
            z += w[j] * xs[s * d + j];
        }
        loss += (1.0 + (-ys[s] * z).exp()).ln();
    }
    loss / ys.len() as f64
}

#[test]
fn inner_products_in_a_fused_loop() {
    let xs: Vec<f64> = (0..5 * 3)
        .map(|k| ((k * 7 % 11) as f64) / 5.0 - 1.0)
        .collect();
    let ys = [1.0, -1.0, 1.0, 1.0, -1.0];
    let w = [0.3, -0.8, 0.5];
    let mut g = [f64::NAN; 3];
    let (v, [db]) = logistic_loss_grad(&w, &mut g, 0.2, &xs, &ys);
    check(&|w| logistic_loss(w, 0.2, &xs, &ys), v, &g, &w);
    let fb = |b: &[f64]| logistic_loss(&w, b[0], &xs, &ys);
    ad::check_gradient(fb, &[0.2], &[db], FD_TOL).unwrap();
}

/// A buffer filled at the loop's index inside a fused loop and read back by the next loop
/// (an MLP's hidden layer). The iterations of both reverses commute, but they touch a local
/// buffer's adjoint, which the reverse of the code before reads back descending: they stay
/// descending, which measured faster (`Emitter::runs_forward`).
#[gradient(wrt(w, v))]
fn hidden_layer(w: &[f64], v: &[f64], xs: &[f64]) -> f64 {
    let m = w.len();
    let mut h = vec![0.0; m];
    let mut loss = 0.0;
    for s in 0..xs.len() {
        for j in 0..m {
            h[j] = (w[j] * xs[s]).sin() + w[j] * xs[s] * 0.5;
        }
        let mut out = 0.0;
        for j in 0..m {
            out += h[j] * v[j];
        }
        loss += out * out;
    }
    loss
}

#[test]
fn buffers_written_at_the_index() {
    let (w, v) = (&X[..4], &X[3..]);
    let xs = [0.3, -1.2, 0.8];
    let (mut gw, mut gv) = ([f64::NAN; 4], [f64::NAN; 4]);
    let (value, []) = hidden_layer_grad(w, &mut gw, v, &mut gv, &xs);
    check(&|w| hidden_layer(w, v, &xs), value, &gw, w);
    check(&|v| hidden_layer(w, v, &xs), value, &gv, v);
}

/// Private scalars (`a`, `b`) and an active scalar read in a replayed loop (`x[0]` after the
/// loop keeps it from being fused); a nested loop over `k` whose reverse runs ascending inside
/// a descending one (`w[k]` is not at the outer loop's index).
#[gradient]
fn private_scalars(x: &[f64], c: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let a = x[i] * c;
        let b = a * a + x[i];
        s += (a * b).tanh();
    }
    s * s + x[0]
}

#[gradient(wrt(x, w))]
fn nested_inner_product(x: &[f64], w: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let xi = x[i];
        let mut z = xi;
        for k in 0..w.len() {
            z += w[k] * xi;
        }
        s += z.tanh();
    }
    s * s + x[0]
}

#[test]
fn private_scalars_and_nested_loops() {
    let mut g = vec![f64::NAN; X.len()];
    let (v, [dc]) = private_scalars_grad(&X, &mut g, 0.8);
    check(&|x| private_scalars(x, 0.8), v, &g, &X);
    let fc = |c: &[f64]| private_scalars(&X, c[0]);
    ad::check_gradient(fc, &[0.8], &[dc], FD_TOL).unwrap();
    let w = [0.4, -0.2, 0.7];
    let (mut gx, mut gw) = (vec![f64::NAN; X.len()], [f64::NAN; 3]);
    let (v, []) = nested_inner_product_grad(&X, &mut gx, &w, &mut gw);
    check(&|x| nested_inner_product(x, &w), v, &gx, &X);
    check(&|w| nested_inner_product(&X, w), v, &gw, &w);
}

/// Rows of a matrix times a vector (a classifier's scores): the inner reverse stores at
/// `c * d + j`, not the loop's index plus a constant, so the last iteration's bounds are checked
/// once before the ascending loop; `d` may be 0 (empty inner loops, no check).
#[gradient(wrt(w))]
fn row_scores(w: &[f64], xs: &[f64], d: usize, k: usize) -> f64 {
    let mut loss = 0.0;
    for c in 0..k {
        let mut acc = 0.0;
        for j in 0..d {
            acc += w[c * d + j] * xs[j];
        }
        loss += acc.tanh();
    }
    loss
}

#[test]
fn other_indices_are_checked_once_before_the_loop() {
    let xs = [0.3, -0.7, 1.1];
    let w: Vec<f64> = X.iter().chain(&X[..5]).map(|v| v * 0.5).collect();
    let mut g = vec![f64::NAN; w.len()];
    let (v, []) = row_scores_grad(&w, &mut g, &xs, 3, 4);
    check(&|w| row_scores(w, &xs, 3, 4), v, &g, &w);
    let (v, []) = row_scores_grad(&w, &mut g, &xs, 0, 4);
    assert_eq!((v, g.iter().all(|d| *d == 0.0)), (0.0, true));
}

/// An index the body computes (`k`): evaluated before the loop it would hold another
/// iteration's value, so it is not checked there.
#[gradient(wrt(w))]
fn computed_index(w: &[f64], xs: &[f64], d: usize) -> f64 {
    let mut loss = 0.0;
    for s in 0..xs.len() / d {
        let mut acc = 0.0;
        for j in 0..d {
            let k = s * d + (d - 1 - j);
            acc += w[j] * xs[k] + w[d - 1 - j] * 0.5;
        }
        loss += acc.tanh();
    }
    loss
}

#[test]
fn computed_indices_are_not_checked_before_the_loop() {
    let xs: Vec<f64> = (0..12).map(|k| (k as f64 * 0.37).sin()).collect();
    let w = [0.4, -0.3, 0.9];
    let mut g = [f64::NAN; 3];
    let (v, []) = computed_index_grad(&w, &mut g, &xs, 3);
    check(&|w| computed_index(w, &xs, 3), v, &g, &w);
}

/// An index variable set again after the loop, and read by nothing the reverse sweep needs
/// (`m`): it is not restored, so `xs[m + j]` must not be checked before the ascending reverse
/// (it would be out of bounds there).
#[gradient(wrt(w))]
fn index_set_again_after(w: &[f64], xs: &[f64]) -> f64 {
    let mut m = 0;
    let mut s = 0.0;
    for j in 0..w.len() {
        s += w[j] * 2.0 + xs[m + j];
    }
    m = 1000;
    s * s + m as f64 * w[0]
}

#[test]
fn indices_not_restored_are_not_checked_before_the_loop() {
    let w = [0.4, -0.3, 0.9];
    let xs = [0.1, 0.2, 0.3];
    let mut g = [f64::NAN; 3];
    let (v, []) = index_set_again_after_grad(&w, &mut g, &xs);
    check(&|w| index_set_again_after(w, &xs), v, &g, &w);
}

/// Look-alikes that keep a descending reverse: the last iteration's private value read after
/// the loop, a buffer element written at another iteration's index, a recurrence.
#[gradient]
fn private_read_after(x: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut t = 0.0;
    for i in 0..x.len() {
        t = x[i] * 2.0;
        s += t * t;
    }
    (s + t * t).sqrt()
}

#[gradient]
fn neighbour_written(x: &[f64]) -> f64 {
    let n = x.len();
    let mut h = vec![1.0; n + 1];
    let mut s = 0.0;
    for j in 0..n {
        h[j + 1] = h[j] * x[j].cos();
        s += h[j + 1];
    }
    s.ln()
}

#[gradient]
fn recurrence(x: &[f64]) -> f64 {
    let mut s = 1.0;
    for i in 0..x.len() {
        s = s * x[i].sin() + x[i];
    }
    s.sqrt()
}

#[test]
fn look_alikes_that_stay_descending() {
    let mut g = vec![f64::NAN; X.len()];
    let (v, []) = private_read_after_grad(&X, &mut g);
    check(&private_read_after, v, &g, &X);
    let x: Vec<f64> = X.iter().map(|v| v * 0.5).collect();
    let (v, []) = neighbour_written_grad(&x, &mut g);
    check(&neighbour_written, v, &g, &x);
    let x: Vec<f64> = X.iter().map(|v| v.abs() + 0.5).collect();
    let (v, []) = recurrence_grad(&x, &mut g);
    check(&recurrence, v, &g, &x);
}

mod random_inputs {
    use super::*;
    use proptest::prelude::*;

    fn fd(f: impl FnMut(&[f64]) -> f64, x: &[f64], g: &[f64]) -> Result<(), TestCaseError> {
        ad::check_gradient(f, x, g, 1e-5)
            .map_err(|e| TestCaseError::fail(format!("{e}\n  at {x:?}\n  gradient {g:?}")))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Lengths from 2 (one iteration, its carry flushed after the loop) up; empty inner
        /// products (`w` of length 0) included.
        #[test]
        fn ascending_reverses_at_random_points(
            x in prop::collection::vec(-1.5..1.5f64, 2..12),
            w in prop::collection::vec(-1.0..1.0f64, 0..5),
            c in 0.2..1.5f64,
        ) {
            let mut gx = vec![f64::NAN; x.len()];
            let (v, []) = rosenbrock_norm_grad(&x, &mut gx);
            prop_assert_eq!(v.to_bits(), rosenbrock_norm(&x).to_bits());
            fd(rosenbrock_norm, &x, &gx)?;
            let (v, [dc]) = private_scalars_grad(&x, &mut gx, c);
            prop_assert_eq!(v.to_bits(), private_scalars(&x, c).to_bits());
            fd(|x| private_scalars(x, c), &x, &gx)?;
            fd(|p| private_scalars(&x, p[0]), &[c], &[dc])?;
            let mut gw = vec![f64::NAN; w.len()];
            let (v, []) = nested_inner_product_grad(&x, &mut gx, &w, &mut gw);
            prop_assert_eq!(v.to_bits(), nested_inner_product(&x, &w).to_bits());
            fd(|x| nested_inner_product(x, &w), &x, &gx)?;
            fd(|w| nested_inner_product(&x, w), &w, &gw)?;
            let ys: Vec<f64> = x.iter().map(|v| v.signum()).collect();
            let d = w.len().max(1);
            let xs: Vec<f64> = (0..ys.len() * d).map(|k| x[k % x.len()] * 0.7).collect();
            let wd: Vec<f64> = (0..d).map(|j| w.get(j).copied().unwrap_or(0.3)).collect();
            let mut gwd = vec![f64::NAN; d];
            let (v, [db]) = logistic_loss_grad(&wd, &mut gwd, c, &xs, &ys);
            prop_assert_eq!(v.to_bits(), logistic_loss(&wd, c, &xs, &ys).to_bits());
            fd(|w| logistic_loss(w, c, &xs, &ys), &wd, &gwd)?;
            fd(|b| logistic_loss(&wd, b[0], &xs, &ys), &[c], &[db])?;
        }
    }
}
