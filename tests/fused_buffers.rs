//! Loops whose body declares a local buffer (`let mut h = vec![0.0; m];` per sample) are fused
//! like the others (`fuse::plan`): the buffer is new in every iteration, so private to it; its
//! adjoint takes the declaration's length in each iteration (`Buffer::fit`) and is zeroed by the
//! declaration's reverse at the end of it. The shapes: a two-layer network with its activations
//! in per-sample buffers, a buffer whose length changes from one iteration to the next, one
//! read at the outer loop's own index, a fixed-size array, and a near miss (a buffer declared
//! inside an inner loop: replayed, as before). Each against central finite differences, the
//! value against the function's to the bit.
// `vec!` where an array would do: the per-sample `Vec` is the case tested.
#![allow(clippy::needless_range_loop, clippy::useless_vec)]

mod common;

use ad::gradient;
use common::{check, data};

/// 3-4-4-1 tanh network, squared loss; activations in buffers declared per sample.
#[gradient(wrt(w))]
fn mlp(w: &[f64], xs: &[f64], ys: &[f64]) -> f64 {
    let mut loss = 0.0;
    for s in 0..ys.len() {
        let mut h1 = vec![0.0; 4];
        for i in 0..4 {
            let mut z = w[12 + i];
            for j in 0..3 {
                z += w[i * 3 + j] * xs[s * 3 + j];
            }
            h1[i] = z.tanh();
        }
        let mut h2 = vec![0.0; 4];
        for i in 0..4 {
            let mut z = w[32 + i];
            for j in 0..4 {
                z += w[16 + i * 4 + j] * h1[j];
            }
            h2[i] = z.tanh();
        }
        let mut out = w[40];
        for j in 0..4 {
            out += w[36 + j] * h2[j];
        }
        let d = out - ys[s];
        loss += d * d;
    }
    loss
}

/// The buffer's length changes with the iteration; another is read at the loop's own index.
#[gradient]
fn ragged(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n {
        let m = i % 3 + 1;
        let mut h = vec![0.0; m];
        for j in 0..m {
            h[j] = (x[i] * (j as f64 + 1.0)).sin();
        }
        for j in 0..m {
            h[j] *= x[(i + j) % n];
        }
        let mut t = 0.0;
        for j in 0..m {
            t += h[j] * h[j];
        }
        let mut u = vec![0.0; n];
        u[i] = x[i] * t;
        s += (t + 1.0).sqrt() + u[i] * x[i];
    }
    s
}

/// A fixed-size array declared per iteration, written under a branch.
#[gradient]
fn arrays(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let mut a = [0.0; 3];
        a[0] = x[i];
        if x[i] > 0.0 {
            a[1] = x[i].exp();
        }
        a[2] = a[0] * a[1] + 1.0;
        s += a[2].ln() + a[1];
    }
    s
}

/// Near miss: declared inside an inner loop (the outer loop is replayed).
#[gradient]
fn nested_declaration(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        for k in 0..2 {
            let mut h = vec![0.0; 2];
            h[k] = x[i] * (k as f64 + 0.5);
            s += h[k].tanh() * h[1 - k].cos();
        }
    }
    s
}

#[test]
fn per_sample_buffers_match_finite_differences() {
    let w: Vec<f64> = data(41, 1).iter().map(|v| v * 0.5).collect();
    for n in [0, 1, 2, 9] {
        let xs = data(3 * n, 10 + n as u64);
        let ys = data(n, 20 + n as u64);
        let mut g = vec![f64::NAN; 41];
        let (v, []) = mlp_grad(&w, &mut g, &xs, &ys);
        check(|w| mlp(w, &xs, &ys), &g, v, &w, "mlp");
    }
}

#[test]
fn changing_lengths_arrays_and_near_misses_match_finite_differences() {
    for n in [1, 2, 3, 7] {
        let x = data(n, 30 + n as u64);
        let mut g = vec![f64::NAN; n];
        let (v, []) = ragged_grad(&x, &mut g);
        check(ragged, &g, v, &x, "ragged");
        let mut g = vec![f64::NAN; n];
        let (v, []) = arrays_grad(&x, &mut g);
        check(arrays, &g, v, &x, "arrays");
        let mut g = vec![f64::NAN; n];
        let (v, []) = nested_declaration_grad(&x, &mut g);
        check(nested_declaration, &g, v, &x, "nested_declaration");
    }
}
