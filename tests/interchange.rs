//! Reductions down columns (`acc += a[i * n + k] * b[k * n + j]` in a loop over `j`), which the
//! macro sums for all `j` at once with `j` innermost (`ad-macro/src/interchange.rs`): the value
//! is the function's, to the bit, and the gradient matches central finite differences and the
//! closed forms, for the shapes the rewrite accepts (constant and non-constant resets,
//! subtractions, several increments, uses after the inner loop that change the accumulator,
//! bounds that do not start at zero, empty loops, `f32`) and for near misses it must leave as
//! written (a triangular inner loop, rows read along `k`).
#![allow(clippy::needless_range_loop, clippy::assign_op_pattern)]

use ad::gradient;

/// Σᵢⱼ (AB)ᵢⱼ² for n × n row-major A and B.
#[gradient]
fn product_loss(a: &[f64], b: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..n {
        for j in 0..n {
            let mut acc = 0.0;
            for k in 0..n {
                acc += a[i * n + k] * b[k * n + j];
            }
            s += acc * acc;
        }
    }
    s
}

/// Σⱼ tanh(cⱼ + Σᵢ aᵢⱼ xᵢ): Aᵀx down the columns of an m × n matrix, a bias as the reset.
#[gradient]
fn columns_with_bias(a: &[f64], x: &[f64], c: &[f64], m: usize, n: usize) -> f64 {
    let mut s = 0.0;
    for j in 0..n {
        let mut acc = c[j] * 0.5;
        for i in 0..m {
            acc += a[i * n + j] * x[i];
        }
        s += acc.tanh();
    }
    s
}

/// Two increments, one a subtraction; the use squares the accumulator in place, and the value
/// after the loop (the last column's) is read again.
#[gradient]
fn two_terms_then_changed(a: &[f64], x: &[f64], m: usize, n: usize) -> f64 {
    let mut s = 0.0;
    let mut acc = 1.0;
    for j in 1..n {
        acc = 0.25;
        for i in 2..m {
            acc -= a[i * n + j] * x[i];
            acc = (a[i * n + j] * x[i - 1]).sin() + acc;
        }
        acc = acc * acc;
        s += acc * x[0];
    }
    s + acc
}

/// As `product_loss`, in `f32`.
#[gradient]
fn product_loss_f32(a: &[f32], b: &[f32], n: usize) -> f32 {
    let mut s = 0.0;
    for i in 0..n {
        for j in 0..n {
            let mut acc = 0.0;
            for k in 0..n {
                acc += a[i * n + k] * b[k * n + j];
            }
            s += acc * acc;
        }
    }
    s
}

/// A triangular inner loop (bounds read `j`): not interchanged.
#[gradient]
fn triangular(a: &[f64], x: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for j in 0..n {
        let mut acc = 0.0;
        for i in 0..j {
            acc += a[i * n + j] * x[i];
        }
        s += acc * acc;
    }
    s
}

/// A row of `w` along `k` and a column of `b`: either order strides one of them; left as
/// written.
#[gradient]
fn row_and_column(w: &[f64], b: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for j in 0..n {
        let mut acc = 0.0;
        for k in 0..n {
            acc += w[j * n + k] * b[k * n + j];
        }
        s += acc.sin();
    }
    s
}

fn data(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        })
        .collect()
}

#[test]
fn product_matches_the_closed_form_and_the_function() {
    for n in [0, 1, 2, 3, 7, 16] {
        let a = data(n * n, 1 + n as u64);
        let b = data(n * n, 100 + n as u64);
        let (mut ga, mut gb) = (vec![f64::NAN; n * n], vec![f64::NAN; n * n]);
        let (v, _) = product_loss_grad(&a, &mut ga, &b, &mut gb, n);
        assert_eq!(v.to_bits(), product_loss(&a, &b, n).to_bits(), "n = {n}");
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                c[i * n + j] = (0..n).map(|k| a[i * n + k] * b[k * n + j]).sum();
            }
        }
        for i in 0..n {
            for k in 0..n {
                let da: f64 = 2.0 * (0..n).map(|j| c[i * n + j] * b[k * n + j]).sum::<f64>();
                let db: f64 = 2.0 * (0..n).map(|j| a[j * n + i] * c[j * n + k]).sum::<f64>();
                assert!((ga[i * n + k] - da).abs() <= 1e-12, "n = {n}: ∂A[{i},{k}]");
                assert!((gb[i * n + k] - db).abs() <= 1e-12, "n = {n}: ∂B[{i},{k}]");
            }
        }
    }
}

#[test]
fn product_in_f32_matches_f64() {
    let n = 6;
    let a = data(n * n, 3);
    let b = data(n * n, 4);
    let (a32, b32): (Vec<f32>, Vec<f32>) = (
        a.iter().map(|&v| v as f32).collect(),
        b.iter().map(|&v| v as f32).collect(),
    );
    let (mut ga, mut gb) = (vec![0.0f32; n * n], vec![0.0f32; n * n]);
    let (v, _) = product_loss_f32_grad(&a32, &mut ga, &b32, &mut gb, n);
    assert_eq!(v.to_bits(), product_loss_f32(&a32, &b32, n).to_bits());
    let a64: Vec<f64> = a32.iter().map(|&v| v as f64).collect();
    let b64: Vec<f64> = b32.iter().map(|&v| v as f64).collect();
    let (mut ha, mut hb) = (vec![0.0; n * n], vec![0.0; n * n]);
    product_loss_grad(&a64, &mut ha, &b64, &mut hb, n);
    for (g, h) in ga.iter().zip(&ha).chain(gb.iter().zip(&hb)) {
        assert!(
            (*g as f64 - h).abs() <= 1e-5 * h.abs().max(1.0),
            "{g} vs {h}"
        );
    }
}

/// The gradient of `f` over the concatenation of its inputs, against finite differences.
fn check(
    parts: &[usize],
    seed: u64,
    f: impl Fn(&[&[f64]]) -> f64,
    grad: impl Fn(&[&[f64]], &mut [Vec<f64>]) -> f64,
) {
    let x = data(parts.iter().sum(), seed);
    let split = |x: &[f64]| -> Vec<Vec<f64>> {
        let mut out = Vec::new();
        let mut at = 0;
        for &p in parts {
            out.push(x[at..at + p].to_vec());
            at += p;
        }
        out
    };
    let xs = split(&x);
    let refs: Vec<&[f64]> = xs.iter().map(|v| v.as_slice()).collect();
    let mut gs: Vec<Vec<f64>> = parts.iter().map(|&p| vec![f64::NAN; p]).collect();
    let v = grad(&refs, &mut gs);
    assert_eq!(
        v.to_bits(),
        f(&refs).to_bits(),
        "the value is the function's"
    );
    let g: Vec<f64> = gs.concat();
    let fx = |t: &[f64]| {
        let ts = split(t);
        let r: Vec<&[f64]> = ts.iter().map(|v| v.as_slice()).collect();
        f(&r)
    };
    if let Err(e) = ad::check_gradient(fx, &x, &g, 1e-6) {
        panic!("parts {parts:?}, seed {seed}: {e}");
    }
}

#[test]
fn columns_with_a_bias_match_finite_differences() {
    for (m, n) in [(0, 3), (3, 0), (1, 1), (4, 3), (5, 9)] {
        check(
            &[m * n, m, n],
            7 + m as u64,
            |p| columns_with_bias(p[0], p[1], p[2], m, n),
            |p, g| {
                let [ga, gx, gc] = g else { unreachable!() };
                columns_with_bias_grad(p[0], ga, p[1], gx, p[2], gc, m, n).0
            },
        );
    }
}

#[test]
fn two_terms_and_changed_uses_match_finite_differences() {
    for (m, n) in [(0, 4), (2, 4), (3, 1), (3, 2), (6, 5)] {
        check(
            &[m.max(1) * n, m.max(1)],
            11 + n as u64,
            |p| two_terms_then_changed(p[0], p[1], m, n),
            |p, g| {
                let [ga, gx] = g else { unreachable!() };
                two_terms_then_changed_grad(p[0], ga, p[1], gx, m, n).0
            },
        );
    }
}

#[test]
fn near_misses_match_finite_differences() {
    for n in [0, 1, 4, 7] {
        check(
            &[n * n, n],
            13 + n as u64,
            |p| triangular(p[0], p[1], n),
            |p, g| {
                let [ga, gx] = g else { unreachable!() };
                triangular_grad(p[0], ga, p[1], gx, n).0
            },
        );
        check(
            &[n * n, n * n],
            17 + n as u64,
            |p| row_and_column(p[0], p[1], n),
            |p, g| {
                let [gw, gb] = g else { unreachable!() };
                row_and_column_grad(p[0], gw, p[1], gb, n).0
            },
        );
    }
}

/// The gradient is the same, to rounding, whichever order the sums run in: the same product
/// written with the accumulator in a buffer by hand (which the rewrite does not touch).
#[test]
fn product_agrees_with_the_order_written_by_hand() {
    #[gradient]
    fn by_hand(a: &[f64], b: &[f64], n: usize) -> f64 {
        let mut s = 0.0;
        for i in 0..n {
            let mut accv = vec![0.0; n];
            for k in 0..n {
                for j in 0..n {
                    accv[j] += a[i * n + k] * b[k * n + j];
                }
            }
            for j in 0..n {
                s += accv[j] * accv[j];
            }
        }
        s
    }
    let n = 12;
    let a = data(n * n, 21);
    let b = data(n * n, 22);
    let (mut ga, mut gb) = (vec![0.0; n * n], vec![0.0; n * n]);
    let (mut ha, mut hb) = (vec![0.0; n * n], vec![0.0; n * n]);
    let (v, _) = product_loss_grad(&a, &mut ga, &b, &mut gb, n);
    let (w, _) = by_hand_grad(&a, &mut ha, &b, &mut hb, n);
    assert_eq!(v.to_bits(), w.to_bits());
    assert_eq!(w.to_bits(), by_hand(&a, &b, n).to_bits());
    for (g, h) in ga.iter().zip(&ha).chain(gb.iter().zip(&hb)) {
        assert!((g - h).abs() <= 1e-13 * h.abs().max(1.0), "{g} vs {h}");
    }
}
