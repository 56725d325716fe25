//! Inner loops of a fused loop whose reverse runs in the same pass as their forward
//! (`Emitter::merged_loops`): `for i { for j in i + 1..n { e += φ(x[i], x[j]) } }` computes each
//! pair's term once and its adjoint right after, instead of a second loop computing every term
//! again. The value is the function's, to the bit, and the gradient matches central finite
//! differences and a hand-written adjoint, for the merged shapes (a pairwise sum, a seed known
//! only after the loop, a scalar defined before the inner loop, a second accumulator after it)
//! and for near misses left as two loops.
#![allow(clippy::needless_range_loop)]

mod common;

use ad::gradient;
use common::data;

/// Σ_{i<j} 1 / sqrt(|pᵢ − pⱼ|² + 0.1) over points in 3-D.
#[gradient]
fn pair_energy(p: &[f64]) -> f64 {
    let n = p.len() / 3;
    let mut e = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let dx = p[3 * i] - p[3 * j];
            let dy = p[3 * i + 1] - p[3 * j + 1];
            let dz = p[3 * i + 2] - p[3 * j + 2];
            let r2 = dx * dx + dy * dy + dz * dz + 0.1;
            e += 1.0 / r2.sqrt();
        }
    }
    e
}

/// The same sum's logarithm: the loop's seed is known only after it (deferred).
#[gradient]
fn log_pair_sum(x: &[f64]) -> f64 {
    let mut e = 0.0;
    for i in 0..x.len() {
        for j in 0..i {
            let d = x[i] - x[j];
            e += (d * d + 1.0).sqrt();
        }
    }
    e.ln()
}

/// A scalar defined before the inner loop, and a second sum after it.
#[gradient]
fn weighted_pairs(x: &[f64]) -> f64 {
    let mut e = 0.0;
    let mut f = 0.0;
    for i in 0..x.len() {
        let w = x[i].sin();
        for j in 0..i {
            let t = w * x[j].cos();
            e += t.tanh();
        }
        f += x[i] * x[i];
    }
    e * 0.5 + f
}

/// Near miss: the inner sum is used after the inner loop (its adjoint is set by what follows).
#[gradient]
fn inner_sum_used_after(x: &[f64]) -> f64 {
    let mut e = 0.0;
    for i in 0..x.len() {
        let mut s = 0.0;
        for j in 0..x.len() {
            s += (x[i] - x[j]).powi(2);
        }
        e += (s + 1.0).ln();
    }
    e
}

/// ½ xᵀAx − bᵀx + λ Σ ln(1 + xᵢ²): the inner sum `ax` used linearly after its loop, so its
/// adjoint is seeded before the loop and the two passes over the row merge.
#[gradient(wrt(x))]
fn quadratic(a: &[f64], b: &[f64], x: &[f64], lambda: f64) -> f64 {
    let n = x.len();
    let mut f = 0.0;
    for i in 0..n {
        let mut ax = 0.0;
        for j in 0..n {
            ax += a[i * n + j] * x[j];
        }
        f += 0.5 * x[i] * ax - b[i] * x[i] + lambda * (1.0 + x[i] * x[i]).ln();
    }
    f
}

/// Seeded shapes: the sum starts from an active value, two sums, the sum used twice (by two
/// accumulators), divided, negated; a scalar read by the use defined between the loop and it
/// (a near miss: not seeded), and the sum used non-linearly (a near miss).
#[gradient]
fn seeded_shapes(x: &[f64]) -> f64 {
    let n = x.len();
    let mut e = 0.0;
    let mut g = 0.0;
    for i in 0..n {
        let mut s = x[i] * 0.5;
        let mut t = 0.0;
        let w = x[i].cos();
        for j in 0..n {
            let d = x[i] - x[j];
            s += d * d;
            t += (d * 0.3).sin();
        }
        e += -(s / 3.0) * x[i] + t;
        g += w * t - s;
        let mut u = 0.0;
        for j in 0..i {
            u += x[j] * x[i];
        }
        let c = x[i] * 2.0;
        e += c * u;
        let mut v = 0.0;
        for j in 0..n {
            v += x[j];
        }
        g += v * v * 0.01;
    }
    e * 0.5 + g
}

/// Near miss: the use increments `w`, an accumulator of the first loop but private to the
/// second, whose adjoint is set by `s += w * w` after it: not seeded.
#[gradient]
fn private_target(x: &[f64]) -> f64 {
    let mut w = 0.0;
    for i in 0..x.len() {
        w += x[i];
    }
    let mut s = w;
    for i in 0..x.len() {
        w = x[i];
        let mut ax = 0.0;
        for j in 0..x.len() {
            ax += x[j] * 0.5;
        }
        w += 2.0 * ax;
        s += w * w;
    }
    s
}

fn pair_hand(p: &[f64], g: &mut [f64]) -> f64 {
    let n = p.len() / 3;
    g.fill(0.0);
    let mut e = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let d = [
                p[3 * i] - p[3 * j],
                p[3 * i + 1] - p[3 * j + 1],
                p[3 * i + 2] - p[3 * j + 2],
            ];
            let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + 0.1;
            let inv = 1.0 / r2.sqrt();
            e += inv;
            let c = -inv / r2;
            for k in 0..3 {
                g[3 * i + k] += c * d[k];
                g[3 * j + k] -= c * d[k];
            }
        }
    }
    e
}

/// Runs `grad` at `x` and checks it (`common::check`); the gradient.
fn check(
    f: impl Fn(&[f64]) -> f64,
    grad: impl Fn(&[f64], &mut [f64]) -> f64,
    x: &[f64],
    what: &str,
) -> Vec<f64> {
    let mut g = vec![f64::NAN; x.len()];
    let v = grad(x, &mut g);
    common::check(f, &g, v, x, what);
    g
}

#[test]
fn pairwise_energy_matches_the_hand_written_adjoint() {
    for n in [0, 1, 2, 3, 8, 20] {
        let p = data(3 * n, 3 + n as u64);
        let g = check(
            pair_energy,
            |x, g| pair_energy_grad(x, g).0,
            &p,
            "pair_energy",
        );
        let mut h = vec![0.0; 3 * n];
        let w = pair_hand(&p, &mut h);
        assert!((w - pair_energy(&p)).abs() <= 1e-12 * w.abs().max(1.0));
        for (a, b) in g.iter().zip(&h) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}

#[test]
fn merged_shapes_match_finite_differences() {
    for n in [1, 2, 3, 6, 11] {
        let x = data(n, 40 + n as u64);
        if n >= 2 {
            check(
                log_pair_sum,
                |x, g| log_pair_sum_grad(x, g).0,
                &x,
                "log_pair_sum",
            );
        }
        check(
            weighted_pairs,
            |x, g| weighted_pairs_grad(x, g).0,
            &x,
            "weighted_pairs",
        );
        check(
            inner_sum_used_after,
            |x, g| inner_sum_used_after_grad(x, g).0,
            &x,
            "inner_sum_used_after",
        );
    }
}

#[test]
fn linearly_used_sums_match_finite_differences() {
    for n in [1, 2, 5, 12] {
        let a = data(n * n, 50 + n as u64);
        let b = data(n, 60 + n as u64);
        let x = data(n, 70 + n as u64);
        let mut g = vec![f64::NAN; n];
        let (v, []) = quadratic_grad(&a, &b, &x, &mut g, 0.3);
        assert_eq!(v.to_bits(), quadratic(&a, &b, &x, 0.3).to_bits());
        if let Err(e) = ad::check_gradient(|x| quadratic(&a, &b, x, 0.3), &x, &g, 1e-6) {
            panic!("quadratic, n {n}: {e}");
        }
        // Closed form: ½ (A + Aᵀ) x − b + 2 λ x / (1 + x²).
        for k in 0..n {
            let mut want = -b[k] + 0.6 * x[k] / (1.0 + x[k] * x[k]);
            for j in 0..n {
                want += 0.5 * (a[k * n + j] + a[j * n + k]) * x[j];
            }
            assert!(
                (g[k] - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{} vs {want}",
                g[k]
            );
        }
        check(
            seeded_shapes,
            |x, g| seeded_shapes_grad(x, g).0,
            &x,
            "seeded_shapes",
        );
        check(
            private_target,
            |x, g| private_target_grad(x, g).0,
            &x,
            "private_target",
        );
    }
}
