//! Two changes to what fused loops emit, checked here against closed forms and central finite
//! differences:
//!
//! - **Kept partials** (`Emitter::kept_partials`): in a branch of a fused loop, the partial of
//!   `x.sin()` (`cos x`), `x.cos()`, `x.sinh()` and `x.cosh()` is computed by the forward
//!   sweep and kept in a local for the reverse, where the user's `x.cos()` beside it makes it
//!   free. The shapes: both of a pair in one branch (bundle adjustment's Rodrigues rotation), one
//!   alone, the value read by another rule of the same statement, the operand overwritten by
//!   the statement itself, the other branch, nested branches, `f32`.
//! - **Windows for carried adjoints** (`Emitter::windows`): the store of an adjoint summed in a
//!   register, `w_bar.get_mut(j)` (or at `j + k`), goes through a window of the shadow taken
//!   before the loop (an inner product's scatter `w_bar[j] += ..` was checked in every
//!   iteration).
// Written as users write them for `#[gradient]`: index loops, `let y;` set in both branches.
#![allow(clippy::needless_range_loop, clippy::needless_late_init)]

mod common;

use ad::gradient;
use common::{check, data};

/// A rotation by angle θ = |r| when θ ≠ 0, as bundle adjustment's: `cos θ` and `sin θ` side
/// by side in one branch.
#[gradient]
fn rotations(r: &[f64], p: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..p.len() / 2 {
        let a = r[i];
        let sq = a * a;
        let y;
        if sq != 0.0 {
            let theta = sq.sqrt();
            let c = theta.cos();
            let sn = theta.sin();
            y = c * p[2 * i] - sn * p[2 * i + 1] + (c + 1.0) * sn;
        } else {
            y = p[2 * i];
        }
        s += y * y;
    }
    s
}

/// One of the four alone per branch, the value read again by the statement's own product,
/// the operand overwritten by its own statement, nested branches.
#[gradient]
fn shapes(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let mut t = x[i] * 0.7;
        if x[i] > 0.5 {
            s += t.sinh();
        } else if x[i] > -0.5 {
            // sin's value is read by the product's rule: recomputed, its partial kept.
            s += t.sin() * t.cosh();
        } else {
            t = t.cos();
            if t > 0.0 {
                t = t.sin();
            }
            s += t * x[i];
        }
    }
    s
}

/// `f32`, and a branch on the accumulated value.
#[gradient]
fn waves(x: &[f32]) -> f32 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let u = x[i] * 1.3;
        if s < 1.0 {
            let c = u.cos();
            s += c * u.sin();
        } else {
            s += u.cosh() * 0.01;
        }
    }
    s
}

/// Huber regression: an inner product per sample, whose reverse scatters into `w_bar`.
#[gradient(wrt(w))]
fn huber(w: &[f64], x: &[f64], y: &[f64], delta: f64) -> f64 {
    let d = w.len();
    let mut s = 0.0;
    for i in 0..y.len() {
        let mut p = 0.0;
        for j in 0..d {
            p += w[j] * x[i * d + j];
        }
        let r = y[i] - p;
        if r.abs() < delta {
            s += 0.5 * r * r;
        } else {
            s += delta * (r.abs() - 0.5 * delta);
        }
    }
    s
}

/// The same scatter over part of the shadow only (`w[j]` for `j` in `lo..hi`).
#[gradient(wrt(w))]
fn partial_rows(w: &[f64], x: &[f64], lo: usize, hi: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let mut p = 0.0;
        for j in lo..hi {
            p += w[j] * x[i] * (j as f64);
        }
        s += p.tanh();
    }
    s
}

/// Weights at constant offsets in one slice (`w[1 + j]`): the carried store at `j + 1` goes
/// through a window too.
#[gradient(wrt(w))]
fn offset_weights(w: &[f64], x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() / 3 {
        let mut o = w[0];
        for j in 0..3 {
            o += w[1 + j] * x[i * 3 + j];
        }
        s += o.tanh() * w[4];
    }
    s
}

#[test]
fn rotations_match_the_closed_form() {
    for n in [0, 1, 2, 5, 12] {
        let mut r = data(n, 7 + n as u64);
        let p = data(2 * n, 70 + n as u64);
        // θ = 0 takes the other branch.
        if n > 1 {
            r[1] = 0.0;
        }
        let (mut gr, mut gp) = (vec![f64::NAN; n], vec![f64::NAN; 2 * n]);
        let (v, []) = rotations_grad(&r, &mut gr, &p, &mut gp);
        check(|r| rotations(r, &p), &gr, v, &r, "rotations, r");
        check(|p| rotations(&r, p), &gp, v, &p, "rotations, p");
        for i in 0..n {
            let (a, p0, p1) = (r[i], p[2 * i], p[2 * i + 1]);
            if a == 0.0 {
                assert_eq!(gr[i], 0.0);
                assert_eq!(gp[2 * i], 2.0 * p0);
                continue;
            }
            // y(θ) with θ = |a|: y' = −sin θ p₀ − cos θ p₁ + cos θ sin θ·… written out.
            let t = a.abs();
            let (s, c) = t.sin_cos();
            let y = c * p0 - s * p1 + (c + 1.0) * s;
            let dy = -s * p0 - c * p1 - s * s + (c + 1.0) * c;
            let want = 2.0 * y * dy * a.signum();
            assert!(
                (gr[i] - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{} vs {want}",
                gr[i]
            );
        }
    }
}

#[test]
fn shapes_match_finite_differences() {
    for n in [1, 2, 7, 30] {
        let x = data(n, 11 + n as u64);
        let mut g = vec![f64::NAN; n];
        let (v, []) = shapes_grad(&x, &mut g);
        check(shapes, &g, v, &x, "shapes");
        // Closed form, element by element.
        for i in 0..n {
            let (xi, t) = (x[i], x[i] * 0.7);
            let want = if xi > 0.5 {
                0.7 * t.cosh()
            } else if xi > -0.5 {
                0.7 * (t.cos() * t.cosh() + t.sin() * t.sinh())
            } else if t.cos() > 0.0 {
                let c = t.cos();
                c.sin() + xi * c.cos() * (-t.sin()) * 0.7
            } else {
                t.cos() + xi * (-t.sin()) * 0.7
            };
            assert!(
                (g[i] - want).abs() <= 1e-12 * want.abs().max(1.0),
                "x = {xi}: {} vs {want}",
                g[i]
            );
        }
    }
}

#[test]
fn f32_waves_match_f64_finite_differences() {
    let x: Vec<f32> = data(40, 5).iter().map(|&v| v as f32).collect();
    let mut g = vec![f32::NAN; x.len()];
    let (v, []) = waves_grad(&x, &mut g);
    assert_eq!(v.to_bits(), waves(&x).to_bits());
    // The same function in f64, differenced.
    let f64_waves = |x: &[f64]| {
        let mut s = 0.0;
        for &xi in x {
            let u = xi * 1.3;
            if s < 1.0 {
                s += u.cos() * u.sin();
            } else {
                s += u.cosh() * 0.01;
            }
        }
        s
    };
    let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let gd: Vec<f64> = g.iter().map(|&v| v as f64).collect();
    // The branch taken depends on the running sum: compare where no branch flips.
    if let Err(e) = ad::check_gradient(f64_waves, &xd, &gd, 1e-4) {
        panic!("waves: {e}");
    }
}

#[test]
fn scatters_through_windows_match_finite_differences() {
    for (d, n) in [(1, 1), (3, 10), (16, 40), (5, 0)] {
        let w = data(d, 3 + d as u64);
        let x = data(d * n, 30 + n as u64);
        let y = data(n, 300 + n as u64);
        let mut g = vec![f64::NAN; d];
        let (v, []) = huber_grad(&w, &mut g, &x, &y, 0.8);
        check(|w| huber(w, &x, &y, 0.8), &g, v, &w, "huber");
    }
    for n in [0, 1, 4] {
        let w = data(5, 9);
        let x = data(3 * n, 90 + n as u64);
        let mut g = vec![f64::NAN; 5];
        let (v, []) = offset_weights_grad(&w, &mut g, &x);
        check(|w| offset_weights(w, &x), &g, v, &w, "offset_weights");
    }
    let w = data(9, 1);
    let x = data(13, 2);
    for (lo, hi) in [(0, 9), (2, 7), (4, 4), (6, 3)] {
        let mut g = vec![f64::NAN; 9];
        let (v, []) = partial_rows_grad(&w, &mut g, &x, lo, hi);
        check(|w| partial_rows(w, &x, lo, hi), &g, v, &w, "partial_rows");
        for j in (0..9).filter(|j| *j < lo || *j >= hi) {
            assert_eq!(g[j], 0.0, "untouched element {j}");
        }
    }
}

#[test]
fn a_scatter_past_the_end_panics_as_the_function_does() {
    let w = data(4, 1);
    let x = data(3, 2);
    let f = std::panic::catch_unwind(|| partial_rows(&w, &x, 1, 6));
    let g = std::panic::catch_unwind(|| {
        let mut g = vec![0.0; 4];
        partial_rows_grad(&w, &mut g, &x, 1, 6)
    });
    assert!(f.is_err() && g.is_err());
}
