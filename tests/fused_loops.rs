//! Loops whose iterations meet only through sums run each iteration's reverse right after its
//! forward ("fused", `ad-macro/src/fuse.rs`), and the adjoints of `x[i + k]` loads are carried in
//! registers from one iteration to the next. These tests check the gradients of such loops, of
//! their near misses (which must replay as before), and of the edge cases of the carries: empty
//! loops, loads under branches beyond the slice, offsets up to the limit and past it.
#![allow(
    clippy::needless_range_loop,
    clippy::assign_op_pattern,
    clippy::useless_vec,
    // `let y;` assigned in each branch, as bundle adjustment's projection is written.
    clippy::needless_late_init
)]

use ad::gradient;

#[track_caller]
fn assert_fd(f: impl FnMut(&[f64]) -> f64, x: &[f64], grad: &[f64]) {
    if let Err(e) = ad::check_gradient(f, x, grad, 1e-6) {
        panic!("{e}\n  at x = {x:?}\n  gradient = {grad:?}");
    }
}

fn data(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.731 + seed as f64 * 0.177).sin() * 0.9)
        .collect()
}

/// Gradient of a slice function through its `_grad`, then checked by finite differences.
macro_rules! check_slice_fn {
    ($f:ident, $grad:ident, $x:expr) => {{
        let x: Vec<f64> = $x;
        let mut g = vec![f64::NAN; x.len()];
        let (v, _) = $grad(&x, &mut g);
        assert_eq!(
            v.to_bits(),
            $f(&x).to_bits(),
            "value differs from the function's"
        );
        assert_fd(|x| $f(x), &x, &g);
        g
    }};
}

#[gradient]
fn shifted(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 2 {
        let a = x[i + 2] - x[i + 1] * x[i];
        s += a * a + x[i + 1].sin() + (2 + i) as f64 * x[i + 2];
    }
    s
}

#[test]
fn loads_ahead_of_the_index_are_carried() {
    for n in [2, 3, 4, 10, 101] {
        check_slice_fn!(shifted, shifted_grad, data(n, n as u64));
    }
}

#[gradient]
fn offsets(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 6 {
        s += x[i] * x[i + 4] + x[1 + i] * x[i + 5] - x[i + 6].cos() + x[i + 3];
    }
    s
}

#[test]
fn offsets_up_to_and_past_the_carried_limit() {
    for n in [6, 7, 12, 40] {
        check_slice_fn!(offsets, offsets_grad, data(n, 3));
    }
}

#[gradient]
fn branchy(x: &[f64], m: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..m {
        if i + 1 < x.len() {
            s += x[i] * x[i + 1];
        } else {
            s -= 0.5 * (i as f64);
        }
    }
    s
}

#[test]
fn loads_under_a_branch_beyond_the_slice() {
    let x = data(5, 1);
    for m in [0, 1, 3, 4, 5, 9] {
        let mut g = vec![f64::NAN; x.len()];
        let (v, _) = branchy_grad(&x, &mut g, m);
        assert_eq!(v, branchy(&x, m));
        assert_fd(|x| branchy(x, m), &x, &g);
    }
}

#[gradient]
fn reads_past_the_end(x: &[f64], m: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..m {
        s += x[i] * x[i + 1] - x[i].sin();
    }
    s
}

/// The last iteration's bounds check runs before a fused loop: the gradient panics for exactly
/// the ranges the function panics for.
#[test]
fn loads_past_the_end_panic_as_in_the_function() {
    let x = data(5, 3);
    for m in 0..=6 {
        let f = std::panic::catch_unwind(|| reads_past_the_end(&x, m));
        let grad = std::panic::catch_unwind(|| {
            let mut g = vec![f64::NAN; x.len()];
            let (v, _) = reads_past_the_end_grad(&x, &mut g, m);
            (v, g)
        });
        match (f, grad) {
            (Ok(v), Ok((w, g))) => {
                assert_eq!(v, w);
                assert_fd(|x| reads_past_the_end(x, m), &x, &g);
            }
            (Err(_), Err(_)) => assert!(m >= 5),
            (f, _) => panic!("m = {m}: the function panicked: {}", f.is_err()),
        }
    }
}

#[gradient]
fn two_passes(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        s += x[i] * x[i + 1];
    }
    let mut t = x[0] * 0.5;
    for i in 1..x.len() {
        t += (x[i] - x[i - 1]).powi(2) + x[i].sin();
    }
    s * 0.25 + t
}

/// The first fused loop over a slice stores each element of its shadow once; a later one, and
/// the reverse of code outside them, add to it.
#[test]
fn later_loops_add_to_the_shadow_the_first_stored() {
    for n in [1, 2, 3, 7] {
        check_slice_fn!(two_passes, two_passes_grad, data(n, 40 + n as u64));
    }
}

#[gradient]
fn inner_loop_reads(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        for j in 0..2 {
            s += (0.5 - x[j]).tanh();
        }
        s += x[i].sin();
    }
    s
}

/// An inner loop of a fused loop carries its own adjoints of `x[j]` into the same shadow: the
/// fused loop's stores add to it (random program 417 of seed 20240917).
#[test]
fn inner_loops_write_the_shadow_too() {
    for n in [2, 3, 6] {
        check_slice_fn!(inner_loop_reads, inner_loop_reads_grad, data(n, 50));
    }
}

#[gradient]
fn skips_the_first(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 1..x.len() - 1 {
        s += x[i] * x[i + 1];
    }
    s
}

#[gradient]
fn shortened(x: &[f64]) -> f64 {
    let mut n = x.len();
    n -= 1;
    let mut s = 0.0;
    for i in 0..n {
        s += x[i].cos();
    }
    s
}

/// A shadow the first fused loop stores entirely is not filled with zeros first (Rosenbrock's
/// `0..n - 1` with `x[i]`, `x[i + 1]`); these loops leave elements out, which must still be zero
/// (the gradient buffers start as NaN).
#[test]
fn elements_a_loop_does_not_store_are_zero() {
    for n in [2, 3, 6] {
        let g = check_slice_fn!(skips_the_first, skips_the_first_grad, data(n, 60));
        assert_eq!(g[0], 0.0);
        let g = check_slice_fn!(shortened, shortened_grad, data(n, 61));
        assert_eq!(g[n - 1], 0.0);
    }
}

#[gradient]
fn empty_range(x: &[f64], lo: usize) -> f64 {
    let mut s = x[0];
    for i in lo..x.len() - 1 {
        s += x[i] * x[i + 1];
    }
    s
}

#[test]
fn loops_that_never_run_carry_nothing() {
    let x = data(4, 2);
    for lo in [0, 2, 3, 7] {
        let mut g = vec![f64::NAN; x.len()];
        empty_range_grad(&x, &mut g, lo);
        assert_fd(|x| empty_range(x, lo), &x, &g);
    }
}

#[gradient]
fn two_sums(x: &[f64], c: f64) -> f64 {
    let n = x.len();
    let k = 2.5;
    let mut s = 0.0;
    let mut t = 1.0;
    for i in 0..n {
        s += x[i].sin() * c;
        t -= x[i] * x[i];
        t = t + c;
    }
    let mean = (s - k * t) / n as f64;
    -mean * 3.0 + c * c + s
}

#[test]
fn sums_used_linearly_after_the_loop() {
    for n in [1, 2, 9] {
        let mut x = data(n, 5);
        x.push(0.7);
        let f = |z: &[f64]| two_sums(&z[..n], z[n]);
        let mut g = vec![0.0; n];
        let (_, [gc]) = two_sums_grad(&x[..n], &mut g, x[n]);
        g.push(gc);
        assert_fd(f, &x, &g);
    }
}

#[gradient]
fn squared_sum(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i];
    }
    s.sqrt() * s
}

/// Fused with a deferred seed: the shadow is scaled when the reverse sweep reaches the loop
/// (more cases in `fused_deferred.rs`).
#[test]
fn sums_used_non_linearly() {
    check_slice_fn!(squared_sum, squared_sum_grad, data(7, 8));
}

const M: usize = 4;

#[gradient(wrt(w))]
fn mlp_like(w: &[f64], xs: &[f64]) -> f64 {
    let n = xs.len();
    let mut h = [0.0; M];
    let mut q = vec![0.0; M];
    let mut loss = 0.0;
    for s in 0..n {
        for j in 0..M {
            let mut z = w[j];
            for i in 0..M {
                z += w[M + j * M + i] * xs[s] * (i as f64 + 1.0);
            }
            h[j] = z.tanh();
        }
        for j in 0..M {
            q[j] = h[j] * w[j];
        }
        for j in 0..M {
            for r in j + 1..M {
                q[r] += h[j] * q[j];
            }
        }
        let mut mx = q[0];
        for j in 1..M {
            if q[j] > mx {
                mx = q[j];
            }
        }
        let mut e = 0.0;
        for j in 0..M {
            e += (q[j] - mx).exp();
        }
        loss += e.ln() + mx;
    }
    loss / n as f64
}

#[test]
fn private_buffers_filled_every_iteration() {
    let w = data(M + M * M, 4);
    let xs = data(6, 9);
    let mut g = vec![0.0; w.len()];
    mlp_like_grad(&w, &mut g, &xs);
    assert_fd(|w| mlp_like(w, &xs), &w, &g);
}

#[gradient]
fn carried_buffer(x: &[f64]) -> f64 {
    let mut h = [1.0; 2];
    let mut s = 0.0;
    for i in 0..x.len() {
        let prev = h[0];
        h[0] = x[i] * prev + h[1];
        h[1] = x[i];
        s += h[0];
    }
    s
}

#[test]
fn buffers_carried_between_iterations_are_replayed() {
    check_slice_fn!(carried_buffer, carried_buffer_grad, data(6, 6));
}

#[gradient]
fn overwritten_before(x: &[f64]) -> f64 {
    let mut z = x[0] * x[0];
    let y = z.sin();
    let mut s = 0.0;
    for i in 0..x.len() {
        z = x[i];
        s += z * z;
    }
    s + y
}

#[test]
fn values_earlier_statements_need_are_not_overwritten() {
    check_slice_fn!(overwritten_before, overwritten_before_grad, data(5, 7));
}

#[gradient]
fn backwards(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in (0..x.len() - 1).rev() {
        s += x[i] * x[i + 1].exp();
    }
    s
}

#[test]
fn reversed_ranges() {
    check_slice_fn!(backwards, backwards_grad, data(8, 2));
}

#[gradient]
fn rosenbrock32(x: &[f32]) -> f32 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    s
}

#[test]
fn single_precision() {
    let x = [0.5f32, -0.25, 1.5, 0.75];
    let mut g = [0.0f32; 4];
    let (v, _) = rosenbrock32_grad(&x, &mut g);
    assert_eq!(v, rosenbrock32(&x));
    // Closed form.
    let mut want = [0.0f32; 4];
    for i in 0..3 {
        let a = x[i + 1] - x[i] * x[i];
        want[i] += -400.0 * x[i] * a - 2.0 * (1.0 - x[i]);
        want[i + 1] += 200.0 * a;
    }
    for (g, w) in g.iter().zip(want) {
        assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
    }
}

#[gradient]
fn two_loops(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i].powi(3);
    }
    let mut t = 0.0;
    for i in 0..x.len() - 1 {
        t += s * x[i] * x[i + 1];
    }
    t + s
}

#[test]
fn a_sum_used_by_a_later_loop() {
    check_slice_fn!(two_loops, two_loops_grad, data(6, 11));
}

/// A fill followed by updates inside the filled range (the GMM's `Q (x − μ)`), in a loop that is
/// replayed (the `carry` recurrence): the updates save nothing, the fill's saves restore.
#[gradient(wrt(x))]
fn fill_then_update(x: &[f64], m: usize, outside: bool) -> f64 {
    let mut q = vec![0.0; m + 1];
    let mut s = 0.0;
    let mut carry = 1.0;
    for k in 0..x.len() {
        for j in 0..m {
            q[j] = x[k] * (j as f64 + carry);
        }
        for j in 0..m {
            for r in j + 1..m {
                q[r] += x[k] * 0.25;
            }
        }
        if outside {
            q[m] = x[k] * 2.0;
        }
        for j in 0..m + 1 {
            s += q[j] * q[j];
        }
        carry = carry * 0.5 + s * 0.01;
    }
    s + carry
}

/// A fill whose reverse reads its results back (`exp`), then updated, in a fused loop.
#[gradient(wrt(x))]
fn fill_read_back(x: &[f64], m: usize) -> f64 {
    let mut h = vec![0.0; m];
    let mut s = 0.0;
    for i in 0..x.len() {
        for j in 0..m {
            h[j] = (x[i] * j as f64 * 0.3).exp();
        }
        for j in 0..m {
            h[j] += x[i] * 0.5;
        }
        for j in 0..m {
            s += h[j] * x[i];
        }
    }
    s
}

#[test]
fn buffers_filled_then_updated() {
    let x = data(4, 12);
    for m in [0, 1, 3] {
        for outside in [false, true] {
            let mut g = vec![0.0; x.len()];
            let (v, _) = fill_then_update_grad(&x, &mut g, m, outside);
            assert_eq!(v, fill_then_update(&x, m, outside));
            assert_fd(|x| fill_then_update(x, m, outside), &x, &g);
        }
        let mut g = vec![0.0; x.len()];
        fill_read_back_grad(&x, &mut g, m);
        assert_fd(|x| fill_read_back(x, m), &x, &g);
    }
}

/// An element read in every iteration of an inner loop (`x[j]`, `j` fixed while `r` runs) has
/// its adjoint summed in a register and added once after the loop; a loop that never runs adds
/// nothing, even where the index would be out of bounds.
#[gradient(wrt(x))]
fn invariant_element(x: &[f64], m: usize, j: usize) -> f64 {
    let mut s = 0.0;
    let mut p = 1.0;
    for k in 0..x.len() {
        for r in 0..m {
            s += x[j] * (r as f64 + 1.0) * p + x[k] * x[j];
        }
        p = p * 0.5 + s * 0.1;
    }
    s + p
}

#[test]
fn elements_invariant_in_an_inner_loop() {
    let x = data(5, 13);
    for (m, j) in [(0, 100), (1, 0), (3, 2), (4, 4)] {
        let mut g = vec![0.0; x.len()];
        let (v, _) = invariant_element_grad(&x, &mut g, m, j);
        assert_eq!(v, invariant_element(&x, m, j));
        if m == 0 {
            assert_eq!(g, vec![0.0; x.len()]);
        } else {
            assert_fd(|x| invariant_element(x, m, j), &x, &g);
        }
    }
}

#[gradient]
fn behind(x: &[f64]) -> f64 {
    let mut s = x[0] * x[0];
    for i in 2..x.len() {
        s += x[i] * x[i - 1] - (x[i - 2] - x[i]).powi(2) + x[i - 1].sin();
    }
    s
}

#[gradient]
fn behind_and_ahead(x: &[f64], lo: usize) -> f64 {
    let mut s = 0.0;
    for i in lo..x.len() - 1 {
        if i >= 1 {
            s += x[i - 1] * x[i + 1];
        }
        s += x[i].cos();
    }
    s
}

#[test]
fn loads_behind_the_index_are_carried() {
    for n in [2, 3, 4, 9] {
        check_slice_fn!(behind, behind_grad, data(n, 21));
    }
    let x = data(6, 22);
    for lo in [0, 1, 4, 5, 9] {
        let mut g = vec![f64::NAN; x.len()];
        behind_and_ahead_grad(&x, &mut g, lo);
        assert_fd(|x| behind_and_ahead(x, lo), &x, &g);
    }
}

/// A fill whose reverse reads `tanh` back from the buffer saves nothing of its own (iteration `j`
/// does not overwrite `h[j]` of another); an update that reads the element it writes, and reads
/// its result back too, still saves.
#[gradient(wrt(w))]
fn read_back_fills(w: &[f64], xs: &[f64]) -> f64 {
    let m = w.len();
    let mut h = vec![0.0; m];
    let mut s = 0.0;
    for k in 0..xs.len() {
        for j in 0..m {
            h[j] = w[j] * xs[k] + 0.25;
        }
        for j in 0..m {
            h[j] = (h[j] * 0.5 + w[j]).exp();
        }
        for j in 0..m {
            s += h[j] * xs[k];
        }
    }
    s
}

#[test]
fn fills_read_back() {
    let w = data(4, 31);
    let xs = data(3, 32);
    let mut g = vec![0.0; w.len()];
    let (v, _) = read_back_fills_grad(&w, &mut g, &xs);
    assert_eq!(v, read_back_fills(&w, &xs));
    assert_fd(|w| read_back_fills(w, &xs), &w, &g);
}

/// Values defined in both branches of an `if`, and fills bounded by the buffer's own length,
/// stay private to the iteration (the loop fuses); a value defined in one branch only is carried
/// from the previous iteration (the loop replays).
#[gradient(wrt(x))]
fn branchy_private(x: &[f64], m: usize) -> f64 {
    let mut h = vec![0.0; m];
    let mut s = 0.0;
    for i in 0..x.len() {
        let a = if x[i] > 0.0 { x[i] * 2.0 } else { -x[i] * x[i] };
        for j in 0..h.len() {
            h[j] = a * (j as f64 + 1.0);
        }
        for j in 0..h.len() {
            s += h[j] * h[j].sin();
        }
    }
    s / x.len() as f64
}

#[gradient]
fn one_branch(x: &[f64]) -> f64 {
    let mut a = 0.5;
    let mut s = 0.0;
    for i in 0..x.len() {
        if x[i] > 0.0 {
            a = x[i];
        }
        s += a * x[i];
    }
    s
}

#[test]
fn branches_inside_fused_loops() {
    let x = data(7, 41);
    for m in [0, 1, 3] {
        let mut g = vec![0.0; x.len()];
        let (v, _) = branchy_private_grad(&x, &mut g, m);
        assert_eq!(v, branchy_private(&x, m));
        assert_fd(|x| branchy_private(x, m), &x, &g);
    }
    check_slice_fn!(one_branch, one_branch_grad, data(7, 42));
}

/// A sum used non-linearly after the loop: the loop replays backwards, and the adjoints of
/// `x[i - 1]` and `x[i + 1]` are carried in registers from one reverse iteration to the next.
#[gradient]
fn replayed_offsets(x: &[f64], lo: usize) -> f64 {
    let mut s = 0.0;
    for i in lo..x.len() - 1 {
        if i >= 1 {
            s += x[i - 1] * x[i + 1];
        }
        s += x[i].sin() * x[i + 1] + x[i + 1];
    }
    (s * s + 1.0).sqrt()
}

#[test]
fn replayed_loops_carry_too() {
    let x = data(7, 51);
    for lo in [0, 1, 5, 6, 9] {
        let mut g = vec![f64::NAN; x.len()];
        let (v, _) = replayed_offsets_grad(&x, &mut g, lo);
        assert_eq!(v, replayed_offsets(&x, lo));
        assert_fd(|x| replayed_offsets(x, lo), &x, &g);
    }
}

#[gradient]
fn branch_local_lets(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let a = x[i];
        let y;
        if a * a > 0.1 {
            let theta = (a * a).sqrt();
            let c = theta.cos();
            let sn = theta.sin();
            let w = a / theta;
            y = c * w + sn * a;
        } else {
            let t = a.exp();
            y = t - a;
        }
        s += y * y;
    }
    s
}

#[gradient]
fn branch_local_and_state(x: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut m = 1.0;
    for i in 0..x.len() {
        let a = x[i];
        if a > 0.0 {
            let t = a.sin();
            // `m` is the loop's state, written in this branch only: not private.
            m = m * (1.0 + t * t);
            s += t * m;
        } else {
            let u = a.cosh();
            s += u;
        }
    }
    s + m
}

/// `let`s inside one branch of an `if` (bundle adjustment's rotation where θ² ≠ 0, a small-angle
/// form otherwise) leave the loop fused; next to state the branch writes, it replays. Both
/// branches run in each input.
#[test]
fn branch_local_lets_match_finite_differences() {
    for n in [0, 1, 2, 7, 20] {
        let x: Vec<f64> = data(n, 5).iter().map(|v| v * 1.3).collect();
        check_slice_fn!(branch_local_lets, branch_local_lets_grad, x.clone());
        check_slice_fn!(branch_local_and_state, branch_local_and_state_grad, x);
    }
    let x = data(20, 5);
    assert!(x.iter().any(|a| a * a > 0.1) && x.iter().any(|a| a * a <= 0.1));
    assert!(x.iter().any(|a| *a > 0.0) && x.iter().any(|a| *a <= 0.0));
}

#[gradient]
fn stencil_energy(u: &[f64]) -> f64 {
    let n = u.len();
    let mut e = 0.0;
    for i in 1..n - 1 {
        let d = u[i + 1] - 2.0 * u[i] + u[i - 1];
        e += d * d;
    }
    for i in 0..n {
        let w = u[i] * u[i] - 1.0;
        e += w * w;
    }
    e
}

#[gradient]
fn sum_then_scaled_sum(u: &[f64]) -> f64 {
    let mut e = 0.0;
    for i in 0..u.len() {
        e += u[i].sin();
    }
    let mut t = 0.0;
    for i in 0..u.len() {
        e -= 0.5 * u[i] * u[i];
        t += u[i].exp();
    }
    3.0 * e + t * e
}

#[gradient]
fn sum_then_read_in_a_loop(u: &[f64]) -> f64 {
    let mut e = 0.0;
    for i in 0..u.len() {
        e += u[i] * u[i];
    }
    for i in 0..u.len() {
        // Reads `e` for more than adding to it: its adjoint changes through this loop.
        e = e + u[i] * e;
    }
    e
}

/// A sum that later loops only add to (a stencil energy's second term) has the adjoint it has
/// after them: the first loop is fused too. Near misses: the sum used non-linearly after the
/// second loop, or read inside it.
#[test]
fn sums_continued_by_later_loops() {
    for n in [2, 3, 4, 9, 30] {
        let u: Vec<f64> = data(n, 8).iter().map(|v| v * 1.1).collect();
        check_slice_fn!(stencil_energy, stencil_energy_grad, u.clone());
        check_slice_fn!(sum_then_scaled_sum, sum_then_scaled_sum_grad, u.clone());
        check_slice_fn!(sum_then_read_in_a_loop, sum_then_read_in_a_loop_grad, u);
    }
    // E = Σ (uᵢ₊₁ − 2uᵢ + uᵢ₋₁)² + Σ (uᵢ² − 1)², exactly.
    let u = data(6, 2);
    let mut g = vec![f64::NAN; 6];
    stencil_energy_grad(&u, &mut g);
    let mut want = vec![0.0; 6];
    for i in 1..5 {
        let d = u[i + 1] - 2.0 * u[i] + u[i - 1];
        want[i + 1] += 2.0 * d;
        want[i] -= 4.0 * d;
        want[i - 1] += 2.0 * d;
    }
    for i in 0..6 {
        want[i] += 4.0 * u[i] * (u[i] * u[i] - 1.0);
    }
    for (a, b) in g.iter().zip(&want) {
        assert!((a - b).abs() < 1e-14, "{g:?} vs {want:?}");
    }
}
