#![allow(clippy::needless_range_loop)] // The functions are written as users write them.

//! Control flow that the reverse sweep must replay: early exits in loops, `while` on active
//! conditions, buffers declared inside loops, calls with slices. Each checked against central
//! finite differences.

use ad::gradient;

fn check(f: impl Fn(&[f64]) -> f64, x: &[f64], grad: &[f64]) {
    ad::check_gradient(f, x, grad, 1e-6).unwrap_or_else(|e| panic!("{e} at {x:?}: {grad:?}"));
}

#[gradient]
fn first_big(x: &[f64], t: f64) -> f64 {
    let mut acc = 0.0;
    for i in 0..x.len() {
        if x[i] * t > 2.0 {
            return acc * x[i];
        }
        acc += x[i].sin() * t;
    }
    acc
}

#[test]
fn early_return_inside_a_loop() {
    for x in [[0.5, 0.9, 3.0, 0.1], [0.1, 0.2, 0.3, 0.4]] {
        let t = 1.1;
        let mut gx = [0.0; 4];
        let (v, [gt]) = first_big_grad(&x, &mut gx, t);
        assert_eq!(v, first_big(&x, t));
        let mut all = x.to_vec();
        all.push(t);
        let mut g = gx.to_vec();
        g.push(gt);
        check(|z| first_big(&z[..4], z[4]), &all, &g);
    }
}

#[gradient]
fn euler(y0: f64, k: f64, t_end: f64) -> f64 {
    let mut t = 0.0;
    let mut y = y0;
    let dt = 0.01;
    while t < t_end {
        y += dt * (-k * y * y + t.sin());
        t += dt;
    }
    y
}

#[test]
fn while_loop_on_an_active_condition() {
    let (v, g) = euler_grad(1.0, 0.7, 1.3);
    assert_eq!(v, euler(1.0, 0.7, 1.3));
    // t_end only moves the trip count: its derivative is zero almost everywhere.
    check(|z| euler(z[0], z[1], 1.3), &[1.0, 0.7], &g[..2]);
    assert_eq!(g[2], 0.0);
}

#[gradient]
fn skip_and_stop(x: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut i = 0;
    loop {
        if i >= x.len() {
            break;
        }
        i += 1;
        if x[i - 1] < 0.0 {
            continue;
        }
        s = s * 0.5 + x[i - 1].powi(2);
    }
    s
}

#[test]
fn loop_break_continue() {
    let x = [0.3, -0.2, 1.5, 0.7, -1.0, 0.2];
    let mut g = [0.0; 6];
    let (v, []) = skip_and_stop_grad(&x, &mut g);
    assert_eq!(v, skip_and_stop(&x));
    check(skip_and_stop, &x, &g);
}

#[gradient]
fn smooth(x: &[f64], passes: usize) -> f64 {
    let n = x.len();
    let mut total = 0.0;
    for p in 0..passes {
        let mut buf = vec![0.0; n];
        for i in 0..n {
            buf[i] = x[i] * (p as f64 + 1.0);
        }
        for i in 1..n - 1 {
            buf[i] = 0.25 * buf[i - 1] + 0.5 * buf[i] + 0.25 * buf[i + 1];
        }
        for i in 0..n {
            total += buf[i] * buf[i];
        }
    }
    total
}

#[test]
fn buffer_declared_in_a_loop_and_overwritten_in_place() {
    let x = [0.3, -0.2, 1.5, 0.7, -1.0];
    let mut g = [0.0; 5];
    let (v, []) = smooth_grad(&x, &mut g, 3);
    assert_eq!(v, smooth(&x, 3));
    check(|z| smooth(z, 3), &x, &g);
}

#[gradient]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..a.len() {
        s += a[i] * b[i];
    }
    s
}

#[gradient]
fn uses_dot(a: &[f64], w: f64) -> f64 {
    let mut buf = [0.0; 3];
    for i in 0..3 {
        buf[i] = a[i] * w;
    }
    dot(a, &buf).sqrt() + w * dot(&buf, &buf)
}

#[test]
fn calls_with_slices() {
    let a = [0.3, 0.8, 1.5];
    let mut ga = [0.0; 3];
    let (v, [gw]) = uses_dot_grad(&a, &mut ga, 1.7);
    assert_eq!(v, uses_dot(&a, 1.7));
    let mut g = ga.to_vec();
    g.push(gw);
    check(|z| uses_dot(&z[..3], z[3]), &[0.3, 0.8, 1.5, 1.7], &g);
}
