//! Adjacent loops over the same range whose reverses run as one loop (`jam.rs`): GMM's
//! `xc[j] = x[j] - mu[j]` then `y[j] = q[j] * xc[j]`, three stages in a row, a loop that
//! overwrites what the one before it read, an inner loop in a jammed body, an MLP's `out = b2`
//! between its two loops, loops over `2..n + 2`; and near misses left as separate loops (a
//! neighbour's element, a scalar carried from one loop to the next, different bounds, memory
//! both loops write). The value is the function's, to the bit, and the gradient matches
//! central finite differences, for lengths 0 to 7 (empty ranges included).
#![allow(clippy::needless_range_loop, clippy::assign_op_pattern)]

mod common;

use ad::gradient;
use common::data;

/// GMM's inner loops: centre a point, scale it, sum its squares; `p` holds the n points of
/// dimension d, then μ, then q.
#[gradient]
fn centred_norms(p: &[f64], d: usize) -> f64 {
    let n = (p.len() - 2 * d) / d;
    let mut xc = vec![0.0; d];
    let mut y = vec![0.0; d];
    let mut total = 0.0;
    for i in 0..n {
        for j in 0..d {
            xc[j] = p[i * d + j] - p[n * d + j];
        }
        for j in 0..d {
            y[j] = p[n * d + d + j].exp() * xc[j];
        }
        let mut s = 0.0;
        for j in 0..d {
            s += y[j] * y[j];
        }
        total += (-0.5 * s).exp();
    }
    total.ln()
}

/// Three elementwise stages in a row, the last summed.
#[gradient]
fn three_stages(x: &[f64]) -> f64 {
    let n = x.len();
    let mut a = vec![0.0; n];
    let mut b = vec![0.0; n];
    let mut c = vec![0.0; n];
    let mut s = 0.0;
    for r in 0..3 {
        for j in 0..n {
            a[j] = x[j] * (r as f64 + 0.5) + c[j];
        }
        for j in 0..n {
            b[j] = a[j] * a[j] + 0.25;
        }
        for j in 0..n {
            c[j] = b[j].sqrt() * a[j];
        }
        for j in 0..n {
            s += c[j];
        }
    }
    s
}

/// The second loop overwrites the elements the first read: the reverse of each iteration
/// restores `y[j]` before the first body's reverse reads it.
#[gradient]
fn overwrite_after_read(x: &[f64]) -> f64 {
    let n = x.len();
    let mut y = vec![0.0; n];
    let mut a = vec![0.0; n];
    let mut s = 0.0;
    for j in 0..n {
        y[j] = x[j].sin();
    }
    for r in 0..2 {
        for j in 0..n {
            a[j] = y[j] * x[j] + r as f64;
        }
        for j in 0..n {
            y[j] = (a[j] * 0.5).cos();
        }
        for j in 0..n {
            s += a[j] * y[j];
        }
    }
    s
}

/// A hidden layer and its activation: the first body sums a row in an inner loop.
#[gradient]
fn layer(p: &[f64], m: usize) -> f64 {
    // p: x (m), then W (m × m), then v (m).
    let mut h = vec![0.0; m];
    let mut o = vec![0.0; m];
    let mut total = 0.0;
    for _ in 0..2 {
        for j in 0..m {
            let mut t = 0.0;
            for k in 0..m {
                t += p[m + j * m + k] * p[k];
            }
            h[j] = t;
        }
        for j in 0..m {
            o[j] = h[j].tanh() * p[m + m * m + j];
        }
        for j in 0..m {
            total += o[j] * o[j];
        }
    }
    total
}

/// An MLP over samples: `out = b2` between the hidden layer's loop and the output's sum moves
/// before both (their reverse is one loop); `out0 = h[0]`, which reads the layer, does not.
#[gradient]
fn mlp_like(p: &[f64], m: usize) -> f64 {
    // p: W1 (m × 3), b1 (m), w2 (m), b2, then 4 samples of 3 inputs and a target each.
    let mut h = vec![0.0; m];
    let mut loss = 0.0;
    for s in 0..4 {
        let x = 5 * m + 1 + 4 * s;
        for j in 0..m {
            let mut z = p[3 * m + j];
            for i in 0..3 {
                z += p[j * 3 + i] * p[x + i];
            }
            h[j] = z.tanh();
        }
        let mut out = p[5 * m];
        for j in 0..m {
            out += p[4 * m + j] * h[j];
        }
        let e = out - p[x + 3];
        loss += e * e;
        if m > 0 {
            let out0 = h[0] * 0.5;
            for j in 0..m {
                h[j] = h[j] * out0;
            }
            loss += h[m - 1];
        }
    }
    loss
}

/// Loops over `2..n + 2` (empty when `x` is), reading the input two elements back.
#[gradient]
fn offset_range(x: &[f64]) -> f64 {
    let n = x.len();
    let mut a = vec![0.0; n + 2];
    let mut s = 0.0;
    for r in 0..2 {
        for j in 2..n + 2 {
            a[j] = x[j - 2] * x[j - 2] + 0.5 * a[j] + r as f64;
        }
        for j in 2..n + 2 {
            s += a[j].sin() * x[j - 2];
        }
    }
    s
}

/// A logistic function, called per hidden unit (a `#[gradient]` function, differentiated
/// through its `_grad`).
#[gradient]
fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Σ v[i]² of a slice: a call reading memory at every index.
#[gradient]
fn sum_sq(v: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        s += v[i] * v[i];
    }
    s
}

/// A layer of `sigmoid`s and the output's sum, jammed; the second layer's loop passes the
/// weights (read-only) to a call, and still jams with the loop after it.
#[gradient]
fn calls_in_jams(w: &[f64], xs: &[f64]) -> f64 {
    let m = w.len();
    let mut h = vec![0.0; m];
    let mut g = vec![0.0; m];
    let mut loss = 0.0;
    for s in 0..xs.len() {
        for j in 0..m {
            h[j] = sigmoid(w[j] * xs[s] + 0.25);
        }
        let mut out = 0.0;
        for j in 0..m {
            out += w[j] * h[j];
        }
        for j in 0..m {
            g[j] = h[j] * sum_sq(w) * 0.1;
        }
        for j in 0..m {
            loss += g[j] * out;
        }
    }
    loss
}

/// Near misses, each left as two loops: a neighbour's element, a scalar carried into the next
/// loop, different bounds, memory written by both.
#[gradient]
fn near_misses(x: &[f64]) -> f64 {
    let n = x.len();
    let mut a = vec![0.0; n];
    let mut b = vec![0.0; n];
    let mut s = 0.0;
    for j in 0..n {
        a[j] = x[j] * x[j];
    }
    for j in 0..n {
        b[j] = a[(j + 1) % n] * x[j];
    }
    let mut t = 0.0;
    for j in 0..n {
        t += b[j];
    }
    for j in 0..n {
        a[j] = b[j] * t;
    }
    for j in 1..n {
        b[j] = a[j - 1].sin();
    }
    for j in 1..n {
        b[j] = b[j] * a[j];
    }
    for j in 0..n {
        s += a[j] + b[j];
    }
    s
}

/// Two such loops inside a branch taken by some iterations only: there the bounds are taped
/// (their `Set`s have a reverse), so the loops stay apart; the sum after the branch does not
/// jam with them either.
#[gradient]
fn in_a_branch(x: &[f64]) -> f64 {
    let n = x.len();
    let mut a = vec![0.0; n];
    let mut b = vec![0.0; n];
    let mut s = 0.0;
    for r in 0..3 {
        if r != 1 {
            for j in 0..n {
                a[j] = x[j] + b[j];
            }
            for j in 0..n {
                b[j] = (a[j] * x[j]).exp() * 0.5;
            }
        }
        for j in 0..n {
            s += b[j] * a[j];
        }
    }
    s
}

#[test]
fn gmm_inner_loops_match_finite_differences() {
    for d in 1..=4 {
        for n in [0, 1, 3] {
            let p = data(n * d + 2 * d, 10 * d as u64 + n as u64);
            let f = |p: &[f64]| centred_norms(p, d);
            let mut g = vec![f64::NAN; p.len()];
            let (v, []) = centred_norms_grad(&p, &mut g, d);
            if n == 0 {
                // ln 0: the value is −∞ and the gradient is not finite.
                assert_eq!(v, f(&p));
                continue;
            }
            common::check(f, &g, v, &p, "centred_norms");
        }
    }
}

#[test]
fn jammed_stages_match_finite_differences() {
    for n in 0..=7 {
        let x = data(n, 30 + n as u64);
        let mut g = vec![f64::NAN; n];
        let (v, []) = three_stages_grad(&x, &mut g);
        common::check(three_stages, &g, v, &x, "three_stages");
        let mut g = vec![f64::NAN; n];
        let (v, []) = offset_range_grad(&x, &mut g);
        common::check(offset_range, &g, v, &x, "offset_range");
        let mut g = vec![f64::NAN; n];
        let (v, []) = overwrite_after_read_grad(&x, &mut g);
        common::check(overwrite_after_read, &g, v, &x, "overwrite_after_read");
        // (Small inputs: exp of exp grows past what finite differences resolve.)
        let small: Vec<f64> = x.iter().map(|v| 0.25 * v).collect();
        let mut g = vec![f64::NAN; n];
        let (v, []) = in_a_branch_grad(&small, &mut g);
        common::check(in_a_branch, &g, v, &small, "in_a_branch");
        if n > 0 {
            let mut g = vec![f64::NAN; n];
            let (v, []) = near_misses_grad(&x, &mut g);
            common::check(near_misses, &g, v, &x, "near_misses");
        }
    }
}

#[test]
fn moved_statements_match_finite_differences() {
    for m in 0..=5 {
        let p: Vec<f64> = data(5 * m + 1 + 16, 70 + m as u64)
            .into_iter()
            .map(|v| 0.5 * v)
            .collect();
        let f = |p: &[f64]| mlp_like(p, m);
        let mut g = vec![f64::NAN; p.len()];
        let (v, []) = mlp_like_grad(&p, &mut g, m);
        common::check(f, &g, v, &p, "mlp_like");
    }
}

#[test]
fn calls_in_jammed_loops_match_finite_differences() {
    for m in 0..=5 {
        let p: Vec<f64> = data(m + 3, 90 + m as u64);
        let f = |p: &[f64]| calls_in_jams(&p[..m], &p[m..]);
        let mut g = vec![f64::NAN; p.len()];
        let (gw, gx) = g.split_at_mut(m);
        let (v, []) = calls_in_jams_grad(&p[..m], gw, &p[m..], gx);
        common::check(f, &g, v, &p, "calls_in_jams");
    }
}

#[test]
fn jammed_layer_matches_finite_differences() {
    for m in 0..=5 {
        let p = data(m + m * m + m, 50 + m as u64)
            .into_iter()
            .map(|v| 0.5 * v)
            .collect::<Vec<_>>();
        let f = |p: &[f64]| layer(p, m);
        let mut g = vec![f64::NAN; p.len()];
        let (v, []) = layer_grad(&p, &mut g, m);
        common::check(f, &g, v, &p, "layer");
    }
}
