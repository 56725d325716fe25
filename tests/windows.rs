//! Loads `x[a + i]` of a slice parameter inside a loop over `i` read through a window,
//! `&x[a + lo..a + hi]`, taken once before the loop (see `Emitter::open_windows`). Checked here:
//! gradients against finite differences, every kind of range, loads the window must not cover
//! (under a branch, with a base the body changes), and loops whose window would be out of
//! bounds: empty ones run as before, the others panic as the function does.
// `empty_far` is only called through its `_grad`.
#![allow(clippy::needless_range_loop, clippy::manual_memcpy, dead_code)]

use ad::gradient;

const FD_TOL: f64 = 1e-5;

/// A matrix–vector product and a nonlinearity: rows at `r * n + j`.
#[gradient]
fn rows_tanh(a: &[f64], v: &[f64]) -> f64 {
    let n = v.len();
    let m = a.len() / n;
    let mut s = 0.0;
    for r in 0..m {
        let mut z = 0.0;
        for j in 0..n {
            z += a[r * n + j] * v[j];
        }
        s += z.tanh();
    }
    s
}

/// The same over reversed and stepped ranges, and with the base written after the index.
#[gradient]
fn ranges(x: &[f64], b: usize) -> f64 {
    let mut s = 0.5;
    for j in (1..4).rev() {
        s = s * 0.75 + x[b + j] * x[j + b];
    }
    for j in (0..5).step_by(2) {
        s += (x[j + 2 * b] * s).sin();
    }
    s
}

/// Loads the window must not cover: under a branch (the range is longer than the slice), and
/// with a base that the body changes.
#[gradient]
fn uncovered(x: &[f64], b: usize) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for j in 0..n + 3 {
        if j < n {
            s += x[b + j] * x[j];
        }
    }
    let mut off = 0;
    for j in 0..2 {
        s = s * x[off + j] + 1.0;
        off += j % 2 + 1;
    }
    s
}

/// An empty loop whose window would be far out of bounds.
#[gradient]
fn empty_far(x: &[f64], k: usize) -> f64 {
    let mut s = x[0];
    for j in k..k {
        s += x[1000 + j];
    }
    for j in k + 3..k + 1 {
        s += x[2000 + j];
    }
    s * s
}

/// Out of bounds in the last iteration.
#[gradient]
fn overrun(x: &[f64], b: usize) -> f64 {
    let mut s = 0.0;
    for j in 0..3 {
        s += x[b + j] * x[b + j];
    }
    s
}

/// The reverse of a loop that reads a row at `r * n + j` and also the element at `j`: the
/// shadow, touched at two indices, cannot be windowed (only the slice can).
#[gradient]
fn two_indices(a: &[f64], n: usize) -> f64 {
    let m = a.len() / n;
    let mut s = 0.0;
    for r in 1..m {
        let mut z = 0.5;
        for j in 0..n {
            z = z * a[r * n + j] + a[j];
        }
        s += z.sin();
    }
    s
}

/// A recurrence over a row (its reverse runs descending) and a window both forward and
/// reverse, in a loop over rows that is itself reversed as a whole.
#[gradient]
fn rows_recurrence(a: &[f64], n: usize) -> f64 {
    let m = a.len() / n;
    let mut p = 1.0;
    for r in 0..m {
        let mut z = p;
        for j in 0..n {
            z = (z * a[r * n + j]).sin() + a[r * n + j];
        }
        p = p * 0.5 + z * z;
    }
    p
}

/// Rows of local buffers: one declared once (windowed, and its adjoint too), one declared in
/// each iteration with a length that changes (not windowed).
#[gradient]
fn buffer_rows(a: &[f64], n: usize) -> f64 {
    let m = a.len() / n;
    let mut e = vec![0.0; a.len()];
    for k in 0..a.len() {
        e[k] = (0.5 * a[k]).exp();
    }
    let mut s = 0.0;
    for r in 0..m {
        let mut t = vec![0.0; n + r];
        for j in 0..n + r {
            t[j] = a[(j + r) % a.len()];
        }
        let mut z = 0.0;
        for j in 0..n {
            z += e[r * n + j] * t[r + j];
        }
        s += z.sin();
    }
    s
}

/// A packed lower triangle read through a counter the body sets first (GMM's inverse-Cholesky
/// factor), a local buffer written at the inner loop's index, and a counter set after its
/// use (read the previous iteration's value: no window).
#[gradient]
fn packed_lower(l: &[f64], x: &[f64]) -> f64 {
    let d = x.len();
    let mut y = vec![0.0; d];
    for j in 0..d {
        y[j] = x[j];
    }
    for j in 0..d {
        for r in j + 1..d {
            let k = j * (2 * d - j - 1) / 2 + (r - j - 1);
            y[r] += l[k] * x[j];
        }
    }
    let mut s = 0.0;
    let mut k = 0;
    for j in 0..d {
        s += y[j] * y[j] + l[k];
        k = j + 1;
    }
    s
}

#[track_caller]
fn check(f: impl Fn(&[f64]) -> f64, x: &[f64], g: &[f64]) {
    if let Err(e) = ad::check_gradient(f, x, g, FD_TOL) {
        panic!("{e}\n  at x = {x:?}\n  gradient = {g:?}");
    }
}

#[test]
fn matrix_rows() {
    let a = [0.3, -0.2, 0.9, 0.1, -1.0, 0.5, 0.7, 0.2, -0.4];
    let v = [0.6, -0.8, 0.25];
    let (mut ga, mut gv) = ([f64::NAN; 9], [f64::NAN; 3]);
    let (val, []) = rows_tanh_grad(&a, &mut ga, &v, &mut gv);
    assert_eq!(val, rows_tanh(&a, &v));
    check(|a| rows_tanh(a, &v), &a, &ga);
    check(|v| rows_tanh(&a, v), &v, &gv);
}

#[test]
fn shadows_touched_twice_and_descending_reverses() {
    let a = [0.3, -0.2, 0.9, 0.1, -1.0, 0.5, 0.7, 0.2, -0.4];
    let mut g = [f64::NAN; 9];
    let (v, []) = two_indices_grad(&a, &mut g, 3);
    assert_eq!(v, two_indices(&a, 3));
    check(|a| two_indices(a, 3), &a, &g);
    let mut g = [f64::NAN; 9];
    let (v, []) = rows_recurrence_grad(&a, &mut g, 3);
    assert_eq!(v, rows_recurrence(&a, 3));
    check(|a| rows_recurrence(a, 3), &a, &g);
}

#[test]
fn rows_of_local_buffers() {
    let a = [0.3, -0.2, 0.9, 0.1, -1.0, 0.5, 0.7, 0.2, -0.4];
    let mut g = [f64::NAN; 9];
    let (v, []) = buffer_rows_grad(&a, &mut g, 3);
    assert_eq!(v, buffer_rows(&a, 3));
    check(|a| buffer_rows(a, 3), &a, &g);
}

#[test]
fn a_packed_triangle_through_a_counter() {
    let x = [0.3, -0.2, 0.9, 0.5];
    let l = [0.5, -0.25, 0.75, 1.0, -0.5, 0.25];
    let (mut gl, mut gx) = ([f64::NAN; 6], [f64::NAN; 4]);
    let (v, []) = packed_lower_grad(&l, &mut gl, &x, &mut gx);
    assert_eq!(v, packed_lower(&l, &x));
    check(|l| packed_lower(l, &x), &l, &gl);
    check(|x| packed_lower(&l, x), &x, &gx);
}

#[test]
fn reversed_and_stepped_ranges() {
    let x = [0.3, -0.2, 0.9, 0.1, -1.0, 0.5, 0.7, 0.2, -0.4];
    for b in [0, 1, 2] {
        let mut g = [f64::NAN; 9];
        let (v, []) = ranges_grad(&x, &mut g, b);
        assert_eq!(v, ranges(&x, b));
        check(|x| ranges(x, b), &x, &g);
    }
}

#[test]
fn branches_and_changing_bases_are_not_windowed() {
    let x = [0.3, -0.2, 0.9, 0.1];
    let mut g = [f64::NAN; 4];
    let (v, []) = uncovered_grad(&x, &mut g, 0);
    assert_eq!(v, uncovered(&x, 0));
    check(|x| uncovered(x, 0), &x, &g);
}

#[test]
fn empty_loops_take_no_window() {
    let x = [1.5, 2.0];
    let mut g = [f64::NAN; 2];
    assert_eq!(empty_far_grad(&x, &mut g, 7), (2.25, []));
    assert_eq!(g, [3.0, 0.0]);
}

/// A stepped range stops short of its end: `x[b + 5]` is never read.
#[gradient]
fn stepped_short(x: &[f64], b: usize) -> f64 {
    let mut s = 0.0;
    for j in (0..6).step_by(2) {
        s += x[b + j] * x[b + j];
    }
    s
}

#[test]
fn a_stepped_range_reads_only_what_it_visits() {
    let x = [0.3, -0.2, 0.9, 0.1, -1.0, 0.5];
    let mut g = [f64::NAN; 6];
    let (v, []) = stepped_short_grad(&x, &mut g, 1);
    assert_eq!(v, stepped_short(&x, 1));
    assert_eq!(g, [0.0, -0.4, 0.0, 0.2, 0.0, 1.0]);
}

#[test]
fn an_overrun_panics_as_the_function_does() {
    let x = [0.3, -0.2, 0.9, 0.1];
    let mut g = [f64::NAN; 4];
    assert_eq!(overrun_grad(&x, &mut g, 1).0, overrun(&x, 1));
    let f = std::panic::catch_unwind(|| overrun(&x, 2));
    let grad = std::panic::catch_unwind(|| {
        let mut g = [0.0; 4];
        overrun_grad(&x, &mut g, 2)
    });
    assert!(f.is_err() && grad.is_err());
}
