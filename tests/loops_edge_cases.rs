//! Corner cases of loops, buffers and early exits under `#[gradient]`: loop bounds and integer
//! state that change while the loop runs, shadowing, index state carried across iterations,
//! `break`/`continue` in every kind of loop. Each gradient is checked against central finite
//! differences (`ad::check_gradient`, 1e-5 relative).
// Index loops and element-by-element copies are the subject under test: #[gradient] bodies
// index slices and buffers.
#![allow(
    clippy::needless_range_loop,
    clippy::manual_memcpy,
    clippy::assign_op_pattern
)]

use ad::gradient;

const FD_TOL: f64 = 1e-5;

/// The `f_grad` of a `#[gradient] fn f(x: &[f64]) -> f64`.
type SliceGrad = fn(&[f64], &mut [f64]) -> (f64, [f64; 0]);

/// Checks the gradient of a function of one slice at `x` against finite differences.
#[track_caller]
fn check_slice_fn(f: fn(&[f64]) -> f64, grad: SliceGrad, x: &[f64]) {
    let mut g = vec![f64::NAN; x.len()];
    let (v, []) = grad(x, &mut g);
    assert_eq!(v, f(x), "f_grad's value differs from f's");
    if let Err(e) = ad::check_gradient(f, x, &g, FD_TOL) {
        panic!("{e}\n  at x = {x:?}\n  gradient = {g:?}");
    }
}

const X: [f64; 7] = [0.7, -0.4, 1.3, 0.2, -1.1, 0.9, 0.5];

/// The range `0..m` is evaluated once, before the body grows `m`.
#[gradient]
#[allow(clippy::mut_range_bound)] // deliberately
fn bound_mutated_in_body(x: &[f64]) -> f64 {
    let mut m = 2;
    let mut s = 1.0;
    for i in 0..m {
        m += 2;
        s = s * x[i] + x[m];
    }
    s + m as f64
}

#[test]
fn loop_bound_mutated_in_the_body() {
    check_slice_fn(bound_mutated_in_body, bound_mutated_in_body_grad, &X);
}

/// An inner bound carried by the outer loop: the reverse sweep needs each outer iteration's `m`.
#[gradient]
fn inner_bound_carried(x: &[f64]) -> f64 {
    let mut m = 1;
    let mut s = 0.5;
    for k in 0..3 {
        for j in 0..m {
            s = s * x[j] + x[k];
        }
        m += 2;
    }
    s
}

#[test]
fn inner_loop_bound_carried_by_outer_loop() {
    check_slice_fn(inner_bound_carried, inner_bound_carried_grad, &X);
}

/// An index carried from one iteration to the next (a permutation walk).
#[gradient]
fn carried_index(x: &[f64]) -> f64 {
    let n = x.len();
    let mut idx = 0;
    let mut s = 1.0;
    for _ in 0..n {
        s = s * x[idx] + 0.5;
        idx = (idx + 3) % n;
    }
    s
}

#[test]
fn index_carried_across_iterations() {
    check_slice_fn(carried_index, carried_index_grad, &X);
}

/// A `while` whose counter indexes the slice.
#[gradient]
fn while_counter_index(x: &[f64]) -> f64 {
    let mut i = 0;
    let mut s = 1.0;
    while i < x.len() {
        s = s * x[i] + 1.0;
        i += 2;
    }
    s
}

#[test]
fn while_counter_used_as_index() {
    check_slice_fn(while_counter_index, while_counter_index_grad, &X);
}

/// `continue` inside a `while` (the counter is advanced before it).
#[gradient]
fn while_with_continue(x: &[f64]) -> f64 {
    let mut i = 0;
    let mut s = 0.0;
    while i < x.len() {
        i += 1;
        if x[i - 1] < 0.0 {
            continue;
        }
        s = s * 0.9 + x[i - 1].sqrt();
    }
    s
}

#[test]
fn continue_inside_while() {
    check_slice_fn(while_with_continue, while_with_continue_grad, &X);
}

/// `break` out of a `for` with a nonlinear state, on an active condition.
#[gradient]
fn for_with_break(x: &[f64]) -> f64 {
    let mut s = 1.0;
    for i in 0..x.len() {
        s = s * (1.0 + x[i]);
        if s < 0.5 {
            break;
        }
    }
    s
}

/// `break` out of the inner loop only.
#[gradient]
fn inner_break(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let mut p = 1.0;
        for j in i..x.len() {
            p = p * x[j];
            if p.abs() < 0.3 {
                break;
            }
        }
        s += p;
    }
    s
}

#[test]
fn break_out_of_for_loops() {
    check_slice_fn(for_with_break, for_with_break_grad, &X);
    check_slice_fn(inner_break, inner_break_grad, &X);
}

/// `loop` with an index counter, `break` in the middle of the body, state used after.
#[gradient]
fn loop_break_mid_body(x: &[f64]) -> f64 {
    let mut i = 0;
    let mut s = 0.3;
    loop {
        s = (s + x[i]).sin();
        if i + 1 == x.len() {
            break;
        }
        s = s * x[i + 1];
        i += 1;
    }
    s * i as f64
}

/// Early `return` from inside `loop`.
#[gradient]
fn loop_early_return(x: &[f64]) -> f64 {
    let mut i = 0;
    let mut s = 0.0;
    loop {
        s += x[i] * x[i];
        if s > 1.5 {
            return s.sqrt();
        }
        i += 1;
        if i == x.len() {
            return -s;
        }
    }
}

#[test]
fn loop_with_break_and_return() {
    check_slice_fn(loop_break_mid_body, loop_break_mid_body_grad, &X);
    check_slice_fn(loop_early_return, loop_early_return_grad, &X);
    check_slice_fn(loop_early_return, loop_early_return_grad, &[0.1, 0.2, 0.3]);
}

/// Shadowed loop index and shadowed floats inside the body.
#[gradient]
fn shadowing(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n {
        let i = n - 1 - i;
        let a = x[i];
        let a = a * a;
        let s2 = s * 0.5;
        let s = s2 + a;
        let _ = s;
    }
    for i in 0..n {
        let v = x[i];
        let v = v.sin() * v;
        s = s * 0.9 + v;
    }
    s
}

#[test]
fn shadowing_inside_loops() {
    check_slice_fn(shadowing, shadowing_grad, &X);
}

/// Argmax by index, then a read at the winner.
#[gradient]
fn argmax_read(x: &[f64]) -> f64 {
    let mut best = 0;
    for i in 1..x.len() {
        if x[i] > x[best] {
            best = i;
        }
    }
    let mut m = x[0];
    for i in 1..x.len() {
        m = m.max(x[i]);
    }
    x[best] * x[best] + 3.0 * m
}

#[test]
fn argmax_by_index_and_by_max() {
    check_slice_fn(argmax_read, argmax_read_grad, &X);
}

/// Conditional overwrite of a buffer element inside a loop.
#[gradient]
fn conditional_overwrite(x: &[f64]) -> f64 {
    let n = x.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = x[i];
    }
    for k in 0..3 {
        for i in 0..n {
            if b[i] > 0.0 {
                b[i] = b[i] * b[(i + k + 1) % n];
            }
        }
    }
    let mut s = 0.0;
    for i in 0..n {
        s += b[i];
    }
    s
}

#[test]
fn buffer_overwritten_under_a_condition() {
    check_slice_fn(conditional_overwrite, conditional_overwrite_grad, &X);
}

/// Swap-like update of two loop-carried floats.
#[gradient]
fn rotate_pair(x: &[f64]) -> f64 {
    let mut a = 1.0;
    let mut b = 0.0;
    for i in 0..x.len() {
        let t = a;
        a = b;
        b = t * b + x[i];
    }
    a * b
}

/// Running product with `*=`, and an in-place update sweeping backwards.
#[gradient]
fn product_and_backward_sweep(x: &[f64]) -> f64 {
    let n = x.len();
    let mut p = 1.0;
    for i in 0..n {
        p *= x[i];
    }
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = x[i];
    }
    for i in (1..n).rev() {
        b[i] = b[i] * b[i - 1];
    }
    for i in 1..n {
        b[i] = b[i] + b[i - 1] * b[i];
    }
    let mut s = p;
    for i in 0..n {
        s += b[i];
    }
    s
}

#[test]
fn carried_floats_and_backward_in_place_updates() {
    check_slice_fn(rotate_pair, rotate_pair_grad, &X);
    check_slice_fn(
        product_and_backward_sweep,
        product_and_backward_sweep_grad,
        &X,
    );
}

/// A variable assigned in some iterations only, read after the loop.
#[gradient]
fn last_positive(x: &[f64]) -> f64 {
    let mut last = 0.0;
    let mut acc = 0.0;
    for i in 0..x.len() {
        if x[i] > 0.0 {
            last = x[i] * x[i];
        }
        acc = acc * 0.5 + last;
    }
    acc + last
}

#[test]
fn variable_assigned_in_some_iterations() {
    check_slice_fn(last_positive, last_positive_grad, &X);
}

const N: usize = 4;

/// A buffer sized by a constant item, with `mut` parameters rebound in the body.
#[gradient]
fn const_sized_buffer(x: &[f64]) -> f64 {
    let mut b = [0.0; N];
    for i in 0..N {
        b[i] = x[i] * x[N - 1 - i];
    }
    let mut s = 0.0;
    for i in 0..N {
        s = s * b[i] + 1.0;
    }
    s
}

#[gradient]
fn mut_params(mut a: f64, mut n: usize) -> f64 {
    while n > 0 {
        a = a * a * 0.5 + 0.1;
        n -= 1;
    }
    a
}

#[test]
fn const_sized_buffers_and_mut_params() {
    check_slice_fn(const_sized_buffer, const_sized_buffer_grad, &X);
    let (v, [g]) = mut_params_grad(0.9, 4);
    assert_eq!(v, mut_params(0.9, 4));
    ad::check_gradient(|p| mut_params(p[0], 4), &[0.9], &[g], FD_TOL).unwrap();
}

#[gradient]
fn norm_sq(v: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        s += v[i] * v[i];
    }
    s
}

/// Calls in a `while` on an active condition, on the parameter and on a buffer being updated.
#[gradient]
fn normalise_until_small(x: &[f64]) -> f64 {
    let n = x.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = x[i];
    }
    let mut steps = 0;
    while norm_sq(&b) > 0.1 {
        for i in 0..n {
            b[i] = 0.6 * b[i] + 0.01 * b[(i + 1) % n];
        }
        steps += 1;
    }
    norm_sq(&b) + norm_sq(x) * steps as f64
}

#[test]
fn calls_in_a_while_condition() {
    check_slice_fn(normalise_until_small, normalise_until_small_grad, &X);
}

/// Hygiene: user names that look like generated ones.
#[gradient]
fn generated_looking_names(x: &[f64]) -> f64 {
    let mut __s0 = 0.0;
    let mut __d0 = 1.0;
    for __a in 0..x.len() {
        let __b = x[__a];
        __s0 += norm_sq(x) * __b;
        __d0 = __d0 * __b;
    }
    __s0 + __d0
}

#[test]
fn generated_looking_user_names() {
    check_slice_fn(generated_looking_names, generated_looking_names_grad, &X);
}

/// An unused slice gets a zero gradient; a slice read only through its length too.
#[gradient]
fn unused_slices(x: &[f64], y: &[f64], _z: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..y.len() {
        s += x[i % x.len()] * i as f64;
    }
    s
}

#[test]
fn unused_slices_get_zero_gradients() {
    let (mut gx, mut gy, mut gz) = ([f64::NAN; 2], [f64::NAN; 3], [f64::NAN; 4]);
    let (v, []) = unused_slices_grad(&[1.0, 2.0], &mut gx, &[0.0; 3], &mut gy, &[5.0; 4], &mut gz);
    assert_eq!(v, unused_slices(&[1.0, 2.0], &[0.0; 3], &[5.0; 4]));
    assert_eq!(gx, [2.0, 1.0]);
    assert_eq!(gy, [0.0; 3]);
    assert_eq!(gz, [0.0; 4]);
}

/// Buffers declared inside a loop body, compound assignments on elements, 2-D indexing.
#[gradient]
fn buffers_in_the_body(x: &[f64]) -> f64 {
    let n = x.len();
    let mut grid = vec![0.0; n * n];
    let mut s = 0.0;
    for k in 0..3 {
        let mut tmp = [0.0; 3];
        let mut row = vec![1.0; n];
        for i in 0..n {
            tmp[i % 3] += x[i] * (k + 1) as f64;
            row[i] *= x[(i + k) % n];
            row[i] -= 0.1 * tmp[i % 3];
            row[i] /= 1.0 + x[i] * x[i];
            grid[k * n + i] = row[i];
        }
        for j in 0..row.len() {
            s = s * 0.5 + row[j] * tmp[j % 3];
        }
    }
    for i in 0..n * n {
        s += grid[i].cos();
    }
    s
}

#[test]
fn buffers_declared_in_a_loop_body() {
    check_slice_fn(buffers_in_the_body, buffers_in_the_body_grad, &X);
}

/// Blocks and `if` used as values inside loops, reads at computed indices.
#[gradient]
fn values_from_blocks(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n {
        // A block whose tail names a block-local (`{ let t = ..; t * t }`) is refused: see the
        // report. A block with a plain tail is fine.
        let a = { x[n - 1 - i] * x[n - 1 - i] };
        s += if x[i] > 0.0 { a * x[i] } else { -a };
        s *= 0.8;
    }
    s
}

#[test]
fn blocks_and_ifs_as_values_in_loops() {
    check_slice_fn(values_from_blocks, values_from_blocks_grad, &X);
}

/// An index computed from an active value by a cast (piecewise constant).
#[gradient]
fn index_from_cast(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n {
        let j = ((x[i].abs() * 7.3) as usize) % n;
        s += x[j] * x[i];
    }
    s
}

#[test]
fn index_computed_from_an_active_value() {
    check_slice_fn(index_from_cast, index_from_cast_grad, &X);
}

/// `step_by` with a runtime step, empty ranges with a nonlinear recurrence.
#[gradient]
fn runtime_step(x: &[f64], step: usize, start: usize) -> f64 {
    let mut s = 0.5;
    for i in (start..x.len()).step_by(step) {
        s = 0.5 * s * s + x[i];
    }
    for i in (start..x.len()).rev().step_by(step + 1) {
        s = s.tanh() * x[i];
    }
    s
}

#[test]
fn runtime_steps_and_empty_ranges() {
    for (step, start) in [(1, 0), (2, 1), (3, 0), (4, 2), (1, 7), (2, 9)] {
        let mut g = [f64::NAN; 7];
        let (v, []) = runtime_step_grad(&X, &mut g, step, start);
        assert_eq!(v, runtime_step(&X, step, start));
        ad::check_gradient(|p| runtime_step(p, step, start), &X, &g, FD_TOL)
            .unwrap_or_else(|e| panic!("step {step}, start {start}: {e}"));
    }
}

/// Recursion through `_grad` with a slice.
#[gradient]
fn recursive_sum(x: &[f64], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    x[n - 1] * x[n - 1] + 0.5 * recursive_sum(x, n - 1)
}

#[test]
fn recursion_with_slices() {
    let mut g = [f64::NAN; 7];
    let (v, []) = recursive_sum_grad(&X, &mut g, 5);
    assert_eq!(v, recursive_sum(&X, 5));
    ad::check_gradient(|p| recursive_sum(p, 5), &X, &g, FD_TOL).unwrap();
}

/// A long taped recurrence.
#[gradient]
fn long_recurrence(x0: f64, r: f64, steps: usize) -> f64 {
    let mut x = x0;
    for _ in 0..steps {
        x = r * x * (1.0 - x);
    }
    x
}

#[test]
fn long_recurrence_runs() {
    // r = 2.5 converges to the fixed point 0.6, whose derivative in r is 1 / r².
    let (v, [gx0, gr]) = long_recurrence_grad(0.3, 2.5, 100_000);
    assert_eq!(v, long_recurrence(0.3, 2.5, 100_000));
    assert!((v - 0.6).abs() < 1e-12);
    assert!(gx0.abs() < 1e-12);
    assert!((gr - 1.0 / 6.25).abs() < 1e-9, "{gr}");
}

/// Passing a `&Vec<f64>` and an array to slice-taking functions, and `&x` of a slice.
#[gradient]
#[allow(clippy::ptr_arg)] // `&Vec<f64>` parameters are under test
fn passes_on(v: &Vec<f64>, a: &[f64; 3]) -> f64 {
    let mut s = norm_sq(v) * norm_sq(a);
    let mut b = [0.0; 3];
    for i in 0..3 {
        b[i] = a[i] * v[i];
    }
    s += norm_sq(&b);
    s
}

#[test]
fn passing_vec_and_array_params_on() {
    let v = vec![0.5, -1.0, 2.0, 0.3];
    let a = [1.5, 0.2, -0.7];
    let (mut gv, mut ga) = (vec![f64::NAN; 4], [f64::NAN; 3]);
    let (val, []) = passes_on_grad(&v, &mut gv, &a, &mut ga);
    assert_eq!(val, passes_on(&v, &a));
    let theta: Vec<f64> = v.iter().chain(&a).copied().collect();
    let grad: Vec<f64> = gv.iter().chain(&ga).copied().collect();
    let f = |t: &[f64]| passes_on(&t[..4].to_vec(), &[t[4], t[5], t[6]]);
    ad::check_gradient(f, &theta, &grad, FD_TOL).unwrap();
}

/// Sum of squares of the k largest entries, by bubble sort on a local copy: elements are
/// swapped through a temporary under active comparisons.
#[gradient]
#[allow(clippy::manual_swap)] // `.swap()` is not supported in #[gradient] bodies
fn top_k_energy(x: &[f64], k: usize) -> f64 {
    let n = x.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = x[i];
    }
    for i in 0..n {
        for j in 0..n - 1 - i {
            if b[j] > b[j + 1] {
                let t = b[j];
                b[j] = b[j + 1];
                b[j + 1] = t;
            }
        }
    }
    let mut s = 0.0;
    for i in n - k..n {
        s += b[i] * b[i] * b[i];
    }
    s
}

#[test]
fn bubble_sort_with_swaps() {
    let x = [2.0, -1.0, 3.0, 0.5, 1.5];
    let mut g = [f64::NAN; 5];
    let (v, []) = top_k_energy_grad(&x, &mut g, 3);
    assert_eq!(v, top_k_energy(&x, 3));
    assert_eq!(v, 8.0 + 27.0 + 1.5 * 1.5 * 1.5);
    assert_eq!(g, [12.0, 0.0, 27.0, 0.0, 3.0 * 1.5 * 1.5]);
    check_slice_fn(
        |p| top_k_energy(p, 2),
        |p, g| top_k_energy_grad(p, g, 2),
        &X,
    );
}

/// Early exits out of loops whose state is taped: the reverse sweep must pop only what the
/// forward sweep pushed before leaving.
#[gradient]
fn taped_early_return(x: &[f64]) -> f64 {
    let mut s = 1.0;
    for i in 0..x.len() {
        s = s * x[i] + 0.5 * s.sin();
        if s.abs() > 1.2 {
            return s * s;
        }
    }
    s
}

#[gradient]
fn taped_continue_and_break(x: &[f64]) -> f64 {
    let mut s = 0.3;
    let mut outer = 0.0;
    for k in 0..4 {
        for i in 0..x.len() {
            if x[i] < -0.5 {
                continue;
            }
            s = (s * x[(i + k) % x.len()]).cos() + s * 0.5;
            if s > 1.3 {
                break;
            }
        }
        outer = outer * s + 1.0;
    }
    outer
}

#[gradient]
fn taped_while_break(x: &[f64]) -> f64 {
    let mut s = 0.1;
    let mut i = 0;
    while s < 2.0 {
        s = s * (1.0 + x[i % x.len()] * x[i % x.len()]) + 0.05;
        i += 1;
        if i > 40 {
            break;
        }
    }
    s
}

#[test]
fn early_exits_from_taped_loops() {
    check_slice_fn(taped_early_return, taped_early_return_grad, &X);
    check_slice_fn(
        taped_early_return,
        taped_early_return_grad,
        &[0.5, 0.6, 0.7],
    );
    check_slice_fn(taped_continue_and_break, taped_continue_and_break_grad, &X);
    check_slice_fn(taped_while_break, taped_while_break_grad, &X);
    check_slice_fn(taped_while_break, taped_while_break_grad, &[0.01, 0.02]);
}

/// Names that shadow parameters: a loop variable named like the slice parameter, and a local
/// buffer named like it.
#[gradient]
fn loop_var_shadows_param(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for x in 0..y.len() {
        s += y[x] * y[x];
    }
    s + x[0]
}

#[gradient]
fn local_shadows_param(x: &[f64]) -> f64 {
    let first = x[0];
    let x = [first * 2.0, first + 1.0];
    let mut s = 0.0;
    for i in 0..2 {
        s += x[i] * x[i];
    }
    s
}

#[test]
fn names_shadowing_parameters() {
    let (mut gx, mut gy) = ([f64::NAN; 2], [f64::NAN; 3]);
    let y = [1.0, -2.0, 0.5];
    let (v, []) = loop_var_shadows_param_grad(&[4.0, 5.0], &mut gx, &y, &mut gy);
    assert_eq!(v, loop_var_shadows_param(&[4.0, 5.0], &y));
    assert_eq!(gx, [1.0, 0.0]);
    assert_eq!(gy, [2.0, -4.0, 1.0]);

    let mut g = [f64::NAN; 3];
    let (v, []) = local_shadows_param_grad(&[1.5, 9.0, 9.0], &mut g);
    assert_eq!(v, local_shadows_param(&[1.5, 9.0, 9.0]));
    // (2a)² + (a + 1)²  ⇒  8a + 2(a + 1)
    assert_eq!(g, [8.0 * 1.5 + 2.0 * 2.5, 0.0, 0.0]);
}

// ---- Aliases: `let b = x;` / `let c = &buf;` / `let c = buf;` ----
// Reads through a second name for a slice or buffer, and a copy of a local array, are active.
// (Before 51de3db they were treated as inactive data: right values, wrong gradients.)

#[gradient]
fn alias_of_slice_param(x: &[f64]) -> f64 {
    let b = x;
    let mut s = 0.0;
    for i in 0..x.len() {
        s += b[i] * x[i];
    }
    s
}

#[gradient]
fn alias_of_local_buffer(x: &[f64]) -> f64 {
    let mut buf = vec![0.0; x.len()];
    for i in 0..x.len() {
        buf[i] = x[i] * x[i];
    }
    let c = &buf;
    let mut s = 0.0;
    for i in 0..x.len() {
        s += c[i] * x[i];
    }
    s
}

#[gradient]
fn copy_of_local_array(x: &[f64]) -> f64 {
    let mut b = [0.0; 3];
    for i in 0..3 {
        b[i] = x[i];
    }
    let c = b;
    for i in 0..3 {
        b[i] = b[i] * 2.0;
    }
    let mut s = 0.0;
    for i in 0..3 {
        s += c[i] * b[i];
    }
    s
}

#[test]
fn alias_of_a_slice_parameter() {
    let mut g = [f64::NAN; 3];
    let (v, []) = alias_of_slice_param_grad(&[1.0, 2.0, 3.0], &mut g);
    assert_eq!(v, alias_of_slice_param(&[1.0, 2.0, 3.0]));
    assert_eq!(v, 14.0);
    assert_eq!(g, [2.0, 4.0, 6.0]);
}

#[test]
fn alias_of_a_local_buffer() {
    let mut g = [f64::NAN; 3];
    let (v, []) = alias_of_local_buffer_grad(&[1.0, 2.0, 3.0], &mut g);
    assert_eq!(v, alias_of_local_buffer(&[1.0, 2.0, 3.0]));
    assert_eq!(v, 36.0);
    assert_eq!(g, [3.0, 12.0, 27.0]);
}

#[test]
fn copy_of_a_local_array() {
    let mut g = [f64::NAN; 3];
    let (v, []) = copy_of_local_array_grad(&[1.0, 2.0, 3.0], &mut g);
    assert_eq!(v, copy_of_local_array(&[1.0, 2.0, 3.0]));
    assert_eq!(v, 28.0);
    assert_eq!(g, [4.0, 8.0, 12.0]);
}

// ---- Float side effects inside a block or `if` whose value is an integer ----
// The active update of `s` inside the integer-valued expression is differentiated. (Before
// 51de3db the expression was copied as inactive code and the update was lost.)

/// A `while` that advances its index by an `if` expression that also accumulates.
#[gradient]
fn accumulate_in_int_if(x: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut i = 0;
    while i < x.len() {
        i = if x[i] > 0.0 {
            s += x[i] * x[i];
            i + 1
        } else {
            i + 2
        };
    }
    s + x[0]
}

#[gradient]
fn accumulate_in_int_block(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for k in 0..x.len() {
        let j = {
            s += x[k] * x[k];
            (k + 1) % x.len()
        };
        s += x[j];
    }
    s
}

#[test]
fn float_update_inside_an_integer_if() {
    let x = [1.0, -1.0, 3.0, 4.0];
    let mut g = [f64::NAN; 4];
    let (v, []) = accumulate_in_int_if_grad(&x, &mut g);
    assert_eq!(v, accumulate_in_int_if(&x));
    // Visits i = 0 (s = 1), 1 (skipped by 2), 3 (s = 17).
    assert_eq!(v, 1.0 + 16.0 + 1.0);
    assert_eq!(g, [3.0, 0.0, 0.0, 8.0]);
}

#[test]
fn float_update_inside_an_integer_block() {
    check_slice_fn(accumulate_in_int_block, accumulate_in_int_block_grad, &X);
}

// ---- Everyday syntax around loops ----

/// Typed buffer declarations, suffixed literals, consts, a ReLU written into a buffer.
#[gradient]
fn typed_buffers(x: &[f64]) -> f64 {
    let n = x.len();
    let mut a: Vec<f64> = vec![0.0; n];
    let mut b: [f64; 3] = [0.0_f64; 3];
    let mut c = vec![0.0f64; n];
    for i in 0..n {
        a[i] = x[i] * 2.0;
        b[i % 3] += a[i];
        c[i] = b[i % 3].max(0.0);
    }
    let mut s: f64 = 0.0f64;
    for i in 0..n {
        let y: f64 = c[i];
        s += y * a[i] * std::f64::consts::PI + f64::EPSILON;
    }
    s
}

/// A loop over an `i32` parameter, indices cast with `as usize`.
#[gradient]
fn int_param_loop(x: &[f64], n: i32) -> f64 {
    let mut s = 0.0;
    for i in 0..n {
        s = s * x[i as usize] + (i + 1) as f64;
    }
    s
}

/// A `while` with a compound condition mixing an index test and an active comparison, and a
/// `break` on a bool computed from active values.
#[gradient]
fn compound_condition(x: &[f64]) -> f64 {
    let mut i = 0;
    let mut s = 0.0;
    while i < x.len() && x[i] > -1.0 {
        s = s * 0.5 + x[i] * x[i];
        let done = s > 2.0;
        if done {
            break;
        }
        i += 1;
    }
    s
}

/// `assert!`/`debug_assert!` inside the body, `sum_sq(&x)` with a reference to the parameter.
#[gradient]
#[allow(clippy::needless_borrow)] // `&x` of a slice parameter is under test
fn with_macros(x: &[f64]) -> f64 {
    let mut s = 0.0;
    assert!(x.len() > 1, "need two values");
    for i in 0..x.len() {
        s += x[i] * x[i];
        debug_assert!(s.is_finite());
    }
    s + norm_sq(&x)
}

#[test]
fn everyday_syntax() {
    check_slice_fn(typed_buffers, typed_buffers_grad, &X);
    check_slice_fn(
        |p| int_param_loop(p, 5),
        |p, g| int_param_loop_grad(p, g, 5),
        &X,
    );
    check_slice_fn(compound_condition, compound_condition_grad, &X);
    check_slice_fn(
        compound_condition,
        compound_condition_grad,
        &[0.5, 0.3, 1.9, 0.2],
    );
    check_slice_fn(with_macros, with_macros_grad, &X);
}

// ---- Accumulators (`let mut acc = ..; for .. { acc += .. }`) whose inputs change later ----
// If the reverse sweep recomputes such an accumulator instead of storing it, it must see the
// inputs as they were when the accumulator was computed.

/// The accumulator reads a buffer that the same outer iteration overwrites afterwards.
#[gradient]
fn accumulator_over_changing_buffer(x: &[f64]) -> f64 {
    let n = x.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = x[i];
    }
    let mut loss = 0.0;
    for _ in 0..3 {
        let mut acc = 0.0;
        for j in 0..n {
            acc += b[j] * x[j];
        }
        loss += acc * acc;
        for j in 0..n {
            b[j] = b[j] * 0.5 + acc * 0.01;
        }
    }
    loss
}

/// The accumulator reads a loop-carried scalar that changes after it, and starts from one.
#[gradient]
fn accumulator_over_changing_scalar(x: &[f64]) -> f64 {
    let mut c = 1.0;
    let mut start = 0.1;
    let mut loss = 0.0;
    for k in 0..4 {
        let mut acc = start;
        for j in 0..x.len() {
            acc += c * x[j];
            acc -= 0.1 * x[(j + k) % x.len()];
        }
        loss += acc.sin() * acc;
        c = c * 0.7 + acc * 0.2;
        start = start * acc;
    }
    loss
}

/// The accumulator's inner bound changes between outer iterations.
#[gradient]
fn accumulator_with_growing_bound(x: &[f64]) -> f64 {
    let mut m = 1;
    let mut loss = 0.0;
    while m <= x.len() {
        let mut acc = 0.0;
        for j in 0..m {
            acc += x[j] * x[m - 1 - j];
        }
        loss += acc.tanh();
        m += 2;
    }
    loss
}

#[test]
fn accumulators_with_changing_inputs() {
    check_slice_fn(
        accumulator_over_changing_buffer,
        accumulator_over_changing_buffer_grad,
        &X,
    );
    check_slice_fn(
        accumulator_over_changing_scalar,
        accumulator_over_changing_scalar_grad,
        &X,
    );
    check_slice_fn(
        accumulator_with_growing_bound,
        accumulator_with_growing_bound_grad,
        &X,
    );
}

// ---- Chains of calls ----

#[gradient]
fn smooth_max(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Calls a function that itself calls another in a loop.
#[gradient]
fn log_sum_exp(v: &[f64]) -> f64 {
    let mut acc = v[0];
    for i in 1..v.len() {
        acc = smooth_max(acc, v[i]);
    }
    acc
}

/// A `while` whose condition calls a #[gradient] function on an active scalar, and a loop
/// calling a function with an early `return` inside its own loop.
#[gradient]
fn chained_calls(x: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut k = 0;
    while smooth_max(s, 0.0) < 3.0 {
        s += x[k % x.len()] * x[k % x.len()] + 0.1;
        k += 1;
    }
    for i in 0..x.len() {
        s += log_sum_exp(x) * x[i] + loop_early_return(x);
    }
    s
}

#[test]
fn chains_of_calls() {
    let x = [0.3, -1.2, 2.0, 0.7];
    let mut g = [f64::NAN; 4];
    let (v, []) = log_sum_exp_grad(&x, &mut g);
    assert_eq!(v, log_sum_exp(&x));
    let lse = x.iter().map(|a| a.exp()).sum::<f64>().ln();
    assert!((v - lse).abs() < 1e-14);
    for i in 0..4 {
        assert!((g[i] - (x[i] - lse).exp()).abs() < 1e-14, "{g:?}");
    }
    check_slice_fn(chained_calls, chained_calls_grad, &X);
}

/// Increments of buffer elements in every spelling, some reading the element again, one
/// reading a neighbour instead: the reverse of `b[i] = b[i] + e` leaves `b[i]`'s adjoint as it
/// is (partial 1) instead of zeroing it and adding it back; the others must not.
#[gradient]
fn increments(x: &[f64]) -> f64 {
    let n = x.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = x[i].sin();
    }
    for r in 0..3 {
        for i in 0..n {
            b[i] += x[(i + r) % n] * b[i];
            b[i] = 0.5 * x[i] + b[i];
            b[i] = b[i] + b[i] * 0.25;
        }
        for i in 1..n {
            b[i] = b[i - 1] + 0.3 * b[i];
        }
    }
    let mut s = 0.0;
    for i in 0..n {
        s += b[i] * b[i];
    }
    s
}

#[test]
fn increments_of_buffer_elements() {
    for n in [1, 2, 5, 7] {
        check_slice_fn(increments, increments_grad, &X[..n]);
    }
}

// A buffer filled at the top of a loop body from values the body keeps, and read only after
// the fill, is filled again by the reverse iteration instead of taped (`analyse::cheap_fill`).
// The variants below either qualify or must not.

/// Qualifies: filled in a loop nested in another, read by a nonlinear function after the fill.
#[gradient]
fn refilled(x: &[f64]) -> f64 {
    let n = 3;
    let mut buf = vec![0.0; n];
    let mut s = 0.25;
    for r in 0..2 {
        for c in 0..4 {
            let q = x[c] * x[r];
            for j in 0..n {
                buf[j] = x[j + c] - q;
            }
            for j in 0..n {
                s += (buf[j] * x[6 - j]).sin();
            }
            s = s * 0.9 + buf[0] * buf[n - 1];
        }
    }
    s
}

/// Does not qualify: the fill reads `a`, which the body writes after it.
#[gradient]
fn refill_reads_a_later_write(x: &[f64]) -> f64 {
    let mut buf = [0.0; 3];
    let mut s = 0.0;
    let mut a = 1.0;
    for c in 0..4 {
        for j in 0..3 {
            buf[j] = x[j + c] * a;
        }
        for j in 0..3 {
            s += buf[j] * buf[j] * x[6 - c];
        }
        a = a * 0.5 + s * x[c];
    }
    s + a
}

/// Does not qualify: the body reads the buffer (the previous iteration's values) before the fill.
#[gradient]
fn read_before_the_fill(x: &[f64]) -> f64 {
    let mut buf = [0.0; 3];
    let mut s = 0.0;
    for c in 0..4 {
        s += buf[1] * x[c] * s;
        for j in 0..3 {
            buf[j] = x[j + c] + x[c];
        }
        for j in 0..3 {
            s += buf[j].cos();
        }
    }
    s + buf[2] * buf[0]
}

/// Does not qualify: the buffer is also read after the loop, and the reverse of that read needs
/// the last fill's values.
#[gradient]
fn refill_in_while_read_after(x: &[f64]) -> f64 {
    let mut buf = [0.0; 2];
    let mut s = 0.0;
    let mut c = 0;
    while c < 3 {
        for j in 0..2 {
            buf[j] = x[j + c] * x[c + 1];
        }
        s = s * buf[0] + buf[1].exp();
        c += 1;
    }
    s * buf[1]
}

/// Qualifies, in a `while` body (the counter moves before the fill).
#[gradient]
fn refill_in_while(x: &[f64]) -> f64 {
    let mut buf = [0.0; 2];
    let mut s = 0.0;
    let mut c = 0;
    while c < 4 {
        c += 1;
        for j in 0..2 {
            buf[j] = x[j + c] * x[c - 1];
        }
        s = s * buf[0] + buf[1].exp();
    }
    s
}

#[test]
fn buffers_filled_again_by_the_reverse_sweep() {
    check_slice_fn(refilled, refilled_grad, &X);
    check_slice_fn(
        refill_reads_a_later_write,
        refill_reads_a_later_write_grad,
        &X,
    );
    check_slice_fn(read_before_the_fill, read_before_the_fill_grad, &X);
    check_slice_fn(
        refill_in_while_read_after,
        refill_in_while_read_after_grad,
        &X,
    );
    check_slice_fn(refill_in_while, refill_in_while_grad, &X);
}

#[gradient]
fn taped_reads_past_the_end(x: &[f64], m: usize) -> f64 {
    let mut s = 0.5;
    for i in 0..m {
        s = (s + x[i] * x[i + 1]).sin();
    }
    s
}

/// A loop that is replayed (its forward tapes `s`) checks the last iteration's loads before it
/// starts: `f_grad` panics for exactly the ranges `f` panics for, and agrees elsewhere.
#[test]
fn replayed_loads_past_the_end_panic_as_in_the_function() {
    let x = [0.3, -0.7, 1.1, 0.4, -0.2];
    for m in 0..=6 {
        let f = std::panic::catch_unwind(|| taped_reads_past_the_end(&x, m));
        let grad = std::panic::catch_unwind(|| {
            let mut g = vec![f64::NAN; x.len()];
            let (v, _) = taped_reads_past_the_end_grad(&x, &mut g, m);
            (v, g)
        });
        match (f, grad) {
            (Ok(v), Ok((w, g))) => {
                assert_eq!(v, w);
                if let Err(e) =
                    ad::check_gradient(|x| taped_reads_past_the_end(x, m), &x, &g, FD_TOL)
                {
                    panic!("m = {m}: {e}");
                }
            }
            (Err(_), Err(_)) => assert!(m >= 5, "m = {m}"),
            (f, _) => panic!("m = {m}: only one panicked (f: {})", f.is_err()),
        }
    }
}

#[gradient]
fn fibonacci_indices(x: &[f64]) -> f64 {
    let mut i = 0usize;
    let mut j = 1usize;
    let mut s = 0.0;
    while j < x.len() {
        s += x[i] * x[j];
        // Integers only: kept as written (a float destructuring assignment is refused).
        (i, j) = (j, i + j);
    }
    s
}

/// A destructuring assignment of integers (index state) is kept as written.
#[test]
fn destructuring_assignment_of_integers() {
    let x: Vec<f64> = (0..9).map(|k| 0.3 + 0.1 * k as f64).collect();
    let mut g = vec![f64::NAN; x.len()];
    let (v, []) = fibonacci_indices_grad(&x, &mut g);
    assert_eq!(v, fibonacci_indices(&x));
    // Pairs (0,1), (1,1), (1,2), (2,3), (3,5), (5,8).
    let pairs = [(0, 1), (1, 1), (1, 2), (2, 3), (3, 5), (5, 8)];
    let want: f64 = pairs.iter().map(|&(i, j)| x[i] * x[j]).sum();
    assert!((v - want).abs() < 1e-15);
    let mut expected = vec![0.0; x.len()];
    for (i, j) in pairs {
        expected[i] += x[j];
        expected[j] += x[i];
    }
    for (a, b) in g.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-15, "{g:?} vs {expected:?}");
    }
}

#[gradient]
fn gates_overwritten_each_step(x: &[f64]) -> f64 {
    let mut g = [0.0; 3];
    let mut s = 0.5;
    for t in 0..x.len() {
        for i in 0..3 {
            g[i] = (x[t] * s + i as f64 * 0.1).tanh();
        }
        for i in 0..3 {
            s = (s + g[i]).sin();
        }
        // Written a second time in the step, from its first value.
        for i in 0..3 {
            g[i] = (g[i] * x[t]).exp();
        }
        s += g[0] * g[2];
    }
    s
}

/// A replayed loop that overwrites a buffer it saves (an LSTM's gates) reads `tanh`'s and
/// `exp`'s results back from the element before restoring it, instead of recomputing them:
/// the element holds them then, as every later write has been undone.
#[test]
fn results_read_back_from_saved_buffers() {
    for n in [0, 1, 2, 5, 12] {
        let x: Vec<f64> = (0..n).map(|k| 0.4 * ((k as f64) * 1.7).sin()).collect();
        check_slice_fn(
            gates_overwritten_each_step,
            gates_overwritten_each_step_grad,
            &x,
        );
    }
}

// ----- variables private to the iterations of a replayed loop -----
//
// A variable defined at the top of a loop body and touched nowhere else (`let mut acc = 0.0;`
// before an inner loop adds to it) saves its final value at the end of each iteration, and
// the reverse iteration loads it first, instead of the definition saving the previous
// iteration's value (`analyse::end_saves`). The slot path (plain ranges) and the push/pop
// path (steps, saves in nested statements, `break`) are both exercised, and variables that
// look private but are not.

const M: usize = 3;

/// A matrix product's loss, `Σ (AB)ᵢⱼ²`, with A and B (3 × 3) in one slice.
#[gradient]
fn product_loss(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..M {
        for j in 0..M {
            let mut acc = 0.0;
            for k in 0..M {
                acc += x[i * M + k] * x[M * M + k * M + j];
            }
            s += acc * acc;
        }
    }
    s
}

/// The same product inside a loop that is not fused (its state `t` is carried non-linearly),
/// with the private accumulator used non-linearly.
#[gradient]
fn product_in_replayed_loop(x: &[f64]) -> f64 {
    let mut t = 0.3;
    for i in 0..M {
        for j in 0..M {
            let mut acc = t;
            for k in 0..M {
                acc += x[i * M + k] * x[M * M + k * M + j];
            }
            t = (t + acc.sin() * acc).cos();
        }
    }
    t
}

/// A private variable redefined in the body and in an inner loop, both saving (their rules
/// read the old value): its tape is pushed and popped, the end save last.
#[gradient]
fn private_redefined(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let mut v = x[i] + s * 0.1;
        v = v.sin() * v;
        for k in 0..x.len() {
            v = v * x[k] + 0.2;
        }
        s += v.exp() * 0.01;
        s = s * s.cos();
    }
    s
}

/// Stepped and reversed ranges (push and pop, no slots).
#[gradient]
fn private_in_stepped_loops(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.5;
    for i in (0..n).step_by(2) {
        let mut acc = 1.0;
        for k in 0..n {
            acc = acc * x[k] + x[i];
        }
        s = s * (1.0 + 0.5 * acc.tanh());
    }
    for i in (0..n).rev() {
        let w = x[i] * s;
        s = (s + w * w).sqrt();
    }
    s
}

/// Left early: the private product of the last iteration that ran is loaded back. (Started
/// from `s`, which the body changes later, it is saved rather than recomputed.)
#[gradient]
fn private_with_break(x: &[f64]) -> f64 {
    let mut s = 0.1;
    for i in 0..x.len() {
        let mut acc = s;
        for k in 0..x.len() {
            acc *= x[k] + x[i];
        }
        s = s * s + acc * acc;
        if s > 3.0 {
            break;
        }
    }
    s
}

/// An integer private to the iteration, used as an index before and after it changes.
#[gradient]
fn private_index(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.2;
    for i in 0..n {
        let mut m = (i * 5) % n;
        s = s * x[m] + x[m] * x[m];
        m = (m + 1) % n;
        s = (s * x[m]).sin();
    }
    s
}

/// A `while` loop updating the private variable, after a `continue` and inside its guard.
#[gradient]
fn private_with_while_and_continue(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let mut acc = x[i] * x[i] + 0.5;
        let mut steps = 0;
        while acc < 4.0 && steps < 20 {
            acc = acc * 1.5 + x[i] * x[i];
            steps += 1;
        }
        s = (s + acc.ln()) * 0.9;
        if x[i] < 0.0 {
            continue;
        }
        let mut b = x[i];
        for k in 0..x.len() {
            b = b * x[k].cos();
        }
        s = s * b.exp();
    }
    s
}

/// Not private: `acc` is declared before the loop and read after it, so its definition keeps
/// saving the value it overwrites.
#[gradient]
fn defined_in_loop_read_after(x: &[f64]) -> f64 {
    let mut acc = 0.0;
    let mut s = 0.0;
    for i in 0..x.len() {
        acc = x[i] * 2.0;
        for k in 0..x.len() {
            acc = acc * x[k];
        }
        s += acc.sin();
    }
    s * acc
}

/// Checks at lengths 1, 2, 5 and 7, and at `X` (mixed signs).
#[track_caller]
fn check_at_lengths(f: fn(&[f64]) -> f64, grad: SliceGrad) {
    for n in [1, 2, 5, 7] {
        let x: Vec<f64> = (0..n)
            .map(|k| 0.3 + 0.5 * ((k as f64) * 1.3).cos())
            .collect();
        check_slice_fn(f, grad, &x);
    }
    check_slice_fn(f, grad, &X);
}

#[test]
fn private_accumulators_of_products() {
    let x18: Vec<f64> = (0..18).map(|k| 0.6 * ((k as f64) * 0.9).sin()).collect();
    check_slice_fn(product_loss, product_loss_grad, &x18);
    check_slice_fn(
        product_in_replayed_loop,
        product_in_replayed_loop_grad,
        &x18,
    );
}

#[test]
fn private_variables_redefined_and_saved_in_inner_loops() {
    check_at_lengths(private_redefined, private_redefined_grad);
}

#[test]
fn private_variables_in_stepped_and_reversed_loops() {
    check_at_lengths(private_in_stepped_loops, private_in_stepped_loops_grad);
}

#[test]
fn private_variables_in_loops_left_early() {
    check_at_lengths(private_with_break, private_with_break_grad);
}

#[test]
fn private_integer_indices() {
    check_at_lengths(private_index, private_index_grad);
}

#[test]
fn private_variables_with_while_and_continue() {
    check_at_lengths(
        private_with_while_and_continue,
        private_with_while_and_continue_grad,
    );
}

#[test]
fn variables_defined_in_loops_and_read_after_them() {
    check_at_lengths(defined_in_loop_read_after, defined_in_loop_read_after_grad);
}

/// Expensive intermediate results (`exp`, `tanh`, `sin`, `sqrt` inside larger expressions) in
/// loops that replay are kept on a tape by the forward sweep and read back by the reverse one
/// instead of being recomputed: in a recomputed definition, a `while` loop, a branch taken in
/// some iterations only, and an inner loop left early.
#[gradient]
fn expensive_intermediates_in_replayed_loops(x: &[f64]) -> f64 {
    let mut s = 0.3;
    for i in 0..x.len() {
        let a = x[i].exp() * x[i];
        let mut k = 0;
        while k < 2 {
            s = (s * a).sin() * x[i].tanh() + s.cos().exp() * 0.5;
            k += 1;
        }
        if x[i] > 0.0 {
            s = s * (x[i] * s * s + 1.0).sqrt() + (1.0 + s * s).ln();
        }
        for j in 0..i {
            s = s + (x[j] * s).tanh() * 0.1;
            if s > 2.0 {
                break;
            }
        }
    }
    s
}

#[test]
fn expensive_intermediates_kept_by_replayed_loops() {
    check_at_lengths(
        expensive_intermediates_in_replayed_loops,
        expensive_intermediates_in_replayed_loops_grad,
    );
}

/// A helper of three floats for the calls below.
#[gradient]
fn blend(a: f64, b: f64, c: f64) -> f64 {
    a * b.sin() + c * c * a
}

/// Calls of a `#[gradient]` helper of floats in loops: the forward sweep calls its `_grad` and
/// keeps the partials, the reverse reads them (in a loop that replays, in a branch, inside a
/// loop nested in a fused loop, with constant arguments); where the reverse also reads the
/// call's value (a product's other factor), the call is made again in the reverse instead.
#[gradient]
fn calls_kept_in_loops(x: &[f64]) -> f64 {
    let mut s = 0.4;
    for i in 0..x.len() {
        s = blend(s, x[i], 0.5) + blend(x[i], 2.0, s) * 0.1;
        if x[i] > 0.0 {
            s = blend(x[i], s, x[i]).tanh() * 0.3;
        }
        s = s * blend(s, 0.7, x[i]) * 0.5;
    }
    let mut t = 0.0;
    for i in 0..x.len() {
        let mut u = x[i];
        for _ in 0..2 {
            u = blend(u, x[i], 0.3);
        }
        t += u * u;
    }
    s + t + s * blend(s, s, 1.0)
}

#[test]
fn helper_calls_in_loops_keep_their_partials() {
    check_at_lengths(calls_kept_in_loops, calls_kept_in_loops_grad);
}
