//! Selection loops (`if x[i] > m { m = x[i]; }`: running maxima, minima, argmax): the macro
//! rewrites them to remember the position of the last copy instead of recording every decision.
//! Each function here has a twin, `*_taped`, whose copy is `x[i] + 0.0` (the same values, but
//! not a plain copy, so it is differentiated the general way, with its decisions recorded).
//! Checked: the same value (bit for bit) and the same gradient as the twin, the closed form
//! where there is one, and central finite differences (`ad::check_gradient`).
// The functions and their twins are called through their `_grad`s only.
#![allow(clippy::needless_range_loop, dead_code)]

use ad::gradient;
use proptest::prelude::*;

const FD_TOL: f64 = 1e-5;

#[gradient]
fn lse(x: &[f64]) -> f64 {
    let mut mx = x[0];
    for i in 1..x.len() {
        if x[i] > mx {
            mx = x[i];
        }
    }
    let mut s = 0.0;
    for i in 0..x.len() {
        s += (x[i] - mx).exp();
    }
    s.ln() + mx
}

#[gradient]
fn lse_taped(x: &[f64]) -> f64 {
    let mut mx = x[0];
    for i in 1..x.len() {
        if x[i] > mx {
            mx = x[i] + 0.0;
        }
    }
    let mut s = 0.0;
    for i in 0..x.len() {
        s += (x[i] - mx).exp();
    }
    s.ln() + mx
}

/// `>`: ties keep the first maximum.
#[gradient]
fn max_first_sq(x: &[f64]) -> f64 {
    let mut m = x[0];
    for i in 1..x.len() {
        if x[i] > m {
            m = x[i];
        }
    }
    m * m
}

/// `>=`: ties move to the last maximum.
#[gradient]
fn max_last_sq(x: &[f64]) -> f64 {
    let mut m = x[0];
    for i in 1..x.len() {
        if x[i] >= m {
            m = x[i];
        }
    }
    m * m
}

/// A minimum, over a reversed range, compared through an expression.
#[gradient]
fn min_rev(x: &[f64]) -> f64 {
    let n = x.len();
    let mut m = x[n - 1];
    for i in (0..n - 1).rev() {
        if x[i] - m < 0.0 {
            m = x[i];
        }
    }
    m.exp()
}

/// The start value comes from another active input; no element may beat it.
#[gradient]
fn floor_max(x: &[f64], floor: f64) -> f64 {
    let mut m = floor;
    for i in 0..x.len() {
        if x[i] > m {
            m = x[i];
        }
    }
    m * floor
}

#[gradient]
fn floor_max_taped(x: &[f64], floor: f64) -> f64 {
    let mut m = floor;
    for i in 0..x.len() {
        if x[i] > m {
            m = x[i] + 0.0;
        }
    }
    m * floor
}

/// Selection from inactive data: when an element beats the start value, the result no longer
/// depends on it.
#[gradient(wrt(w))]
fn data_max(d: &[f64], w: f64) -> f64 {
    let mut m = w;
    for i in 0..d.len() {
        if d[i] > m {
            m = d[i];
        }
    }
    m * w
}

/// An argmax: the position is used too, to index another active input.
#[gradient]
fn argmax_weight(x: &[f64], w: &[f64]) -> f64 {
    let mut m = x[0];
    let mut best = 0;
    for i in 1..x.len() {
        if x[i] > m {
            m = x[i];
            best = i;
        }
    }
    m * w[best] + m.sin()
}

/// Per row of a matrix: a local buffer, its maximum, and a log-sum-exp (the outer loop is a
/// sum over rows, reversed iteration by iteration).
#[gradient]
fn row_lse_sum(a: &[f64], cols: usize) -> f64 {
    let rows = a.len() / cols;
    let mut z = vec![0.0; cols];
    let mut total = 0.0;
    for r in 0..rows {
        for c in 0..cols {
            z[c] = a[r * cols + c] * (1.0 + 0.1 * c as f64);
        }
        let mut mx = z[0];
        for c in 1..cols {
            if z[c] > mx {
                mx = z[c];
            }
        }
        let mut s = 0.0;
        for c in 0..cols {
            s += (z[c] - mx).exp();
        }
        total += s.ln() + mx;
    }
    total
}

/// The maximum of each row feeds a recurrence (the outer loop is reversed as a whole, so each
/// row's position must be kept), and the buffer it selects from is overwritten by the next row.
#[gradient]
fn row_max_recurrence(a: &[f64], cols: usize) -> f64 {
    let rows = a.len() / cols;
    let mut z = vec![0.0; cols];
    let mut p = 1.0;
    for r in 0..rows {
        for c in 0..cols {
            z[c] = a[r * cols + c] * p;
        }
        let mut mx = z[0];
        for c in 1..cols {
            if z[c] > mx {
                mx = z[c];
            }
        }
        p = (p * mx).sin() + 0.5 * p;
    }
    p
}

#[gradient]
fn row_max_recurrence_taped(a: &[f64], cols: usize) -> f64 {
    let rows = a.len() / cols;
    let mut z = vec![0.0; cols];
    let mut p = 1.0;
    for r in 0..rows {
        for c in 0..cols {
            z[c] = a[r * cols + c] * p;
        }
        let mut mx = z[0];
        for c in 1..cols {
            if z[c] > mx {
                mx = z[c] + 0.0;
            }
        }
        p = (p * mx).sin() + 0.5 * p;
    }
    p
}

#[gradient]
fn max_f32(x: &[f32]) -> f32 {
    let mut m = x[0];
    for i in 1..x.len() {
        if x[i] > m {
            m = x[i];
        }
    }
    3.0 * m
}

type SliceGrad = fn(&[f64], &mut [f64]) -> (f64, [f64; 0]);

#[track_caller]
fn grad_of(grad: SliceGrad, x: &[f64]) -> (f64, Vec<f64>) {
    let mut g = vec![f64::NAN; x.len()];
    let (v, []) = grad(x, &mut g);
    (v, g)
}

#[track_caller]
fn check_fd(f: impl Fn(&[f64]) -> f64, x: &[f64], g: &[f64]) {
    if let Err(e) = ad::check_gradient(f, x, g, FD_TOL) {
        panic!("{e}\n  at x = {x:?}\n  gradient = {g:?}");
    }
}

fn one_hot(n: usize, at: usize, v: f64) -> Vec<f64> {
    let mut g = vec![0.0; n];
    g[at] = v;
    g
}

#[test]
fn log_sum_exp_is_the_softmax() {
    let x = [0.3, -1.2, 2.5, 0.7, 2.4];
    let (v, g) = grad_of(lse_grad, &x);
    assert_eq!(v, lse(&x));
    let s: f64 = x.iter().map(|xi| xi.exp()).sum();
    for (gi, xi) in g.iter().zip(&x) {
        approx::assert_relative_eq!(*gi, xi.exp() / s, max_relative = 1e-14);
    }
    assert_eq!(grad_of(lse_taped_grad, &x), (v, g.clone()));
    check_fd(lse, &x, &g);
}

#[test]
fn ties_go_where_the_last_copy_came_from() {
    let x = [1.0, 3.0, -2.0, 3.0, 2.0];
    assert_eq!(grad_of(max_first_sq_grad, &x), (9.0, one_hot(5, 1, 6.0)));
    assert_eq!(grad_of(max_last_sq_grad, &x), (9.0, one_hot(5, 3, 6.0)));
    // The first element wins when nothing beats it.
    let x = [4.0, 3.0, 4.0];
    assert_eq!(grad_of(max_first_sq_grad, &x), (16.0, one_hot(3, 0, 8.0)));
    assert_eq!(grad_of(max_last_sq_grad, &x), (16.0, one_hot(3, 2, 8.0)));
    // One element: the loop runs no iteration.
    assert_eq!(grad_of(max_first_sq_grad, &[-1.5]), (2.25, vec![-3.0]));
}

#[test]
fn minimum_over_a_reversed_range() {
    let x = [0.5, -0.25, 1.0, -0.25, 2.0];
    let (v, g) = grad_of(min_rev_grad, &x);
    assert_eq!(v, (-0.25f64).exp());
    // Scanning down from the end with `<`, the copy at index 3 is the last one made.
    assert_eq!(g, one_hot(5, 3, (-0.25f64).exp()));
    check_fd(
        min_rev,
        &[0.5, -0.3, 1.0, -0.2, 2.0],
        &grad_of(min_rev_grad, &[0.5, -0.3, 1.0, -0.2, 2.0]).1,
    );
}

#[test]
fn the_start_value_keeps_its_adjoint_when_nothing_beats_it() {
    let x = [0.5, -1.0, 0.25];
    for floor in [2.0, 0.4, -3.0] {
        let mut g = [f64::NAN; 3];
        let (v, [gf]) = floor_max_grad(&x, &mut g, floor);
        let mut gt = [f64::NAN; 3];
        let (vt, [gft]) = floor_max_taped_grad(&x, &mut gt, floor);
        assert_eq!((v, g, gf), (vt, gt, gft));
        let m = x.iter().copied().fold(floor, f64::max);
        assert_eq!(v, m * floor);
        if floor > 0.5 {
            assert_eq!((g, gf), ([0.0; 3], 2.0 * floor));
        } else {
            assert_eq!((g, gf), ([floor, 0.0, 0.0], m));
        }
    }
}

#[test]
fn selection_from_inactive_data() {
    let d = [0.5, 1.5, -1.0];
    assert_eq!(data_max_grad(&d, 2.0), (4.0, [4.0]));
    assert_eq!(data_max_grad(&d, 1.0), (1.5, [1.5]));
}

#[test]
fn argmax_position_and_value() {
    let x = [0.2, 1.5, -0.3, 1.1];
    let w = [2.0, -0.5, 3.0, 1.0];
    let (mut gx, mut gw) = ([f64::NAN; 4], [f64::NAN; 4]);
    let (v, []) = argmax_weight_grad(&x, &mut gx, &w, &mut gw);
    assert_eq!(v, argmax_weight(&x, &w));
    let m: f64 = 1.5;
    assert_eq!(gx.to_vec(), one_hot(4, 1, w[1] + m.cos()));
    assert_eq!(gw.to_vec(), one_hot(4, 1, m));
}

#[test]
fn per_row_selection_inside_a_sum() {
    let cols = 4;
    let a = [
        0.3, -0.2, 0.9, 0.1, //
        -1.0, 2.0, 1.9, 0.0, //
        0.5, 0.5, 0.4, -0.7,
    ];
    let mut g = vec![f64::NAN; a.len()];
    let (v, []) = row_lse_sum_grad(&a, &mut g, cols);
    assert_eq!(v, row_lse_sum(&a, cols));
    // Closed form: the softmax of each row's z, times dz/da.
    for row in a.chunks(cols).enumerate() {
        let (r, xs) = row;
        let z: Vec<f64> = (0..cols).map(|c| xs[c] * (1.0 + 0.1 * c as f64)).collect();
        let s: f64 = z.iter().map(|zc| zc.exp()).sum();
        for c in 0..cols {
            let want = z[c].exp() / s * (1.0 + 0.1 * c as f64);
            approx::assert_relative_eq!(g[r * cols + c], want, max_relative = 1e-13);
        }
    }
    check_fd(|a| row_lse_sum(a, cols), &a, &g);
}

#[test]
fn per_row_selection_inside_a_recurrence() {
    let cols = 3;
    let a = [
        0.3, -0.2, 0.9, 1.1, 0.4, -0.6, -0.5, 0.8, 0.75, 0.2, 0.1, 0.3,
    ];
    let mut g = vec![f64::NAN; a.len()];
    let (v, []) = row_max_recurrence_grad(&a, &mut g, cols);
    assert_eq!(v, row_max_recurrence(&a, cols));
    let mut gt = vec![f64::NAN; a.len()];
    let (vt, []) = row_max_recurrence_taped_grad(&a, &mut gt, cols);
    assert_eq!((v, &g), (vt, &gt));
    check_fd(|a| row_max_recurrence(a, cols), &a, &g);
}

#[test]
fn single_precision() {
    let x = [0.5f32, 2.0, -1.0, 1.5];
    let mut g = [f32::NAN; 4];
    let (v, []) = max_f32_grad(&x, &mut g);
    assert_eq!((v, g), (6.0, [0.0, 3.0, 0.0, 0.0]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Values on a coarse grid, so that ties are common.
    #[test]
    fn lse_matches_the_general_lowering(x in prop::collection::vec((-8i32..8).prop_map(|k| k as f64 * 0.5), 1..24)) {
        let (v, g) = grad_of(lse_grad, &x);
        let (vt, gt) = grad_of(lse_taped_grad, &x);
        prop_assert_eq!(v, vt);
        prop_assert_eq!(&g, &gt);
        let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = x.iter().map(|xi| (xi - m).exp()).sum();
        for (gi, xi) in g.iter().zip(&x) {
            prop_assert!((gi - (xi - m).exp() / s).abs() <= 1e-14);
        }
    }

    #[test]
    fn row_recurrence_matches_the_general_lowering(
        a in prop::collection::vec((-6i32..6).prop_map(|k| k as f64 * 0.25), 1..5usize).prop_flat_map(|row| {
            let cols = row.len();
            (prop::collection::vec((-6i32..6).prop_map(|k| k as f64 * 0.25), cols * 4), Just(cols))
        })
    ) {
        let (a, cols) = a;
        let mut g = vec![f64::NAN; a.len()];
        let (v, []) = row_max_recurrence_grad(&a, &mut g, cols);
        let mut gt = vec![f64::NAN; a.len()];
        let (vt, []) = row_max_recurrence_taped_grad(&a, &mut gt, cols);
        prop_assert_eq!(v, vt);
        prop_assert_eq!(g, gt);
    }
}
