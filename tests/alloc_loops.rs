//! Heap use of generated gradients with loops, measured by a counting global allocator.
//!
//! Loops whose reverse sweep can recompute everything it needs (extended Rosenbrock, dot
//! products, least squares over data) must not touch the heap at all. A nonlinear recurrence
//! tapes exactly one value per iteration, in one buffer sized once from the trip count.
//!
//! The counters are thread-local, so the test harness's own allocations on other threads (and
//! tests running in parallel) do not disturb a measurement.
#![allow(clippy::needless_range_loop)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use ad::gradient;

struct Counting;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static REALLOCS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize, is_realloc: bool) {
    // `try_with`: the allocator can run while thread-locals are being torn down.
    let _ = ACTIVE.try_with(|active| {
        if active.get() {
            if is_realloc {
                REALLOCS.with(|c| c.set(c.get() + 1));
            } else {
                ALLOCS.with(|c| c.set(c.get() + 1));
            }
            BYTES.with(|c| c.set(c.get() + size));
            LARGEST.with(|c| c.set(c.get().max(size)));
        }
    });
}

// SAFETY: every method forwards to `System` unchanged; the bookkeeping touches only
// const-initialised thread-local `Cell`s, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size(), false);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size(), false);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size, true);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What the allocator saw on this thread while `f` ran.
#[derive(Debug, PartialEq, Eq)]
struct Usage {
    allocs: usize,
    reallocs: usize,
    bytes: usize,
    largest: usize,
}

fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    for c in [&ALLOCS, &REALLOCS, &BYTES, &LARGEST] {
        c.with(|c| c.set(0));
    }
    ACTIVE.with(|a| a.set(true));
    let r = f();
    ACTIVE.with(|a| a.set(false));
    let usage = Usage {
        allocs: ALLOCS.with(Cell::get),
        reallocs: REALLOCS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
        largest: LARGEST.with(Cell::get),
    };
    (r, usage)
}

const NONE: Usage = Usage {
    allocs: 0,
    reallocs: 0,
    bytes: 0,
    largest: 0,
};

#[gradient]
fn rosenbrock(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    s
}

#[gradient]
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * y[i];
    }
    s
}

#[gradient(wrt(w, b))]
fn least_squares(w: &[f64], b: f64, a: &[f64], y: &[f64]) -> f64 {
    let p = w.len();
    let mut loss = 0.0;
    for i in 0..y.len() {
        let mut pred = b;
        for j in 0..p {
            pred += w[j] * a[i * p + j];
        }
        let r = pred - y[i];
        loss += r * r;
    }
    loss / y.len() as f64
}

/// The same loss for two features, the inner product written out: nothing to tape.
#[gradient(wrt(w, b))]
fn least_squares_two_features(w: &[f64; 2], b: f64, a: &[f64], y: &[f64]) -> f64 {
    let mut loss = 0.0;
    for i in 0..y.len() {
        let r = w[0] * a[2 * i] + w[1] * a[2 * i + 1] + b - y[i];
        loss += r * r;
    }
    loss / y.len() as f64
}

#[gradient]
fn logistic(x0: f64, r: f64, steps: usize) -> f64 {
    let mut x = x0;
    for _ in 0..steps {
        x = r * x * (1.0 - x);
    }
    x
}

/// The allocator is live: a `Vec` is seen.
#[test]
fn the_counter_counts() {
    let (v, usage) = measure(|| black_box(vec![0.0_f64; 10]));
    assert_eq!(v.len(), 10);
    assert_eq!(
        usage,
        Usage {
            allocs: 1,
            reallocs: 0,
            bytes: 80,
            largest: 80
        }
    );
}

#[test]
fn rosenbrock_gradient_does_not_allocate() {
    let x: Vec<f64> = (0..100).map(|i| (i as f64 * 0.37).sin()).collect();
    let mut g = vec![0.0; 100];
    let value = rosenbrock(&x);
    let ((), usage) = measure(|| {
        for _ in 0..1000 {
            let (v, []) = rosenbrock_grad(black_box(&x), black_box(&mut g));
            assert_eq!(v, value);
        }
    });
    assert_eq!(usage, NONE, "rosenbrock_grad allocated");
}

#[test]
fn dot_gradient_does_not_allocate() {
    let x: Vec<f64> = (0..64).map(|i| i as f64 * 0.5).collect();
    let y: Vec<f64> = (0..64).map(|i| 1.0 - i as f64 * 0.25).collect();
    let (mut gx, mut gy) = (vec![0.0; 64], vec![0.0; 64]);
    let ((), usage) = measure(|| {
        for _ in 0..1000 {
            black_box(dot_grad(black_box(&x), &mut gx, black_box(&y), &mut gy));
        }
    });
    assert_eq!(usage, NONE, "dot_grad allocated");
    assert_eq!(dot_grad(&x, &mut gx, &y, &mut gy).0, dot(&x, &y));
    assert_eq!(gx, y);
    assert_eq!(gy, x);
}

/// The loss with an inner loop over features, as a user writes it for any number of features.
#[test]
fn least_squares_gradient_does_not_allocate() {
    let (n, p) = (50, 4);
    let a: Vec<f64> = (0..n * p).map(|i| (i as f64 * 0.11).cos()).collect();
    let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
    let w = [0.1, -0.2, 0.3, 0.4];
    let mut gw = [0.0; 4];
    let value = least_squares(&w, 0.5, &a, &y);
    let ((), usage) = measure(|| {
        for _ in 0..1000 {
            let (v, _) = least_squares_grad(black_box(&w), &mut gw, 0.5, black_box(&a), &y);
            assert_eq!(v, value);
        }
    });
    assert_eq!(usage, NONE, "least_squares_grad allocated");
}

#[test]
fn least_squares_with_written_out_inner_product_does_not_allocate() {
    let n = 50;
    let a: Vec<f64> = (0..2 * n).map(|i| (i as f64 * 0.11).cos()).collect();
    let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
    let w = [0.1, -0.2];
    let mut gw = [0.0; 2];
    let value = least_squares_two_features(&w, 0.5, &a, &y);
    let ((), usage) = measure(|| {
        for _ in 0..1000 {
            let (v, _) = least_squares_two_features_grad(black_box(&w), &mut gw, 0.5, &a, &y);
            assert_eq!(v, value);
        }
    });
    assert_eq!(usage, NONE, "least_squares_two_features_grad allocated");
}

/// Measures the first call of `logistic_grad` on a thread (whose tape cache is empty) for each
/// step count; returns those whose tape was not one buffer of `steps · 8` bytes, allocated once.
/// A tape of 4 KiB or more is kept by the thread's cache when dropped: the cache's bookkeeping
/// (its two lists, and a box per buffer) is the only other allocation allowed.
fn logistic_tape_mismatches(step_counts: &[usize]) -> Vec<(usize, Usage)> {
    let mut wrong = Vec::new();
    for &steps in step_counts {
        let usage = std::thread::spawn(move || {
            let ((v, g), usage) =
                measure(|| logistic_grad(black_box(0.3), black_box(2.9), black_box(steps)));
            assert_eq!(v, logistic(0.3, 2.9, steps));
            assert!(g.iter().all(|d| d.is_finite()));
            usage
        })
        .join()
        .expect("the measuring thread panicked");
        let tape = steps * 8;
        let exact = if tape < 4096 {
            usage.allocs == 1 && usage.bytes == tape
        } else {
            usage.allocs <= 4 && usage.bytes - tape <= 512
        };
        if !(exact && usage.reallocs == 0 && usage.largest == tape) {
            wrong.push((steps, usage));
        }
    }
    wrong
}

/// One tape of `steps` f64 values, allocated once at its final size.
#[test]
fn logistic_recurrence_tapes_one_buffer_of_exact_size() {
    let wrong = logistic_tape_mismatches(&[4, 5, 10, 100, 1000, 12345]);
    assert!(
        wrong.is_empty(),
        "expected one allocation of steps·8 bytes; measured {wrong:#?}"
    );
}

/// The calls after the first reuse the tape the first one grew: no allocation at all.
#[test]
fn later_calls_reuse_the_tape_of_the_first() {
    for steps in [1000, 12345] {
        std::thread::spawn(move || {
            logistic_grad(0.3, 2.9, steps);
            let ((v, _), usage) = measure(|| {
                let mut last = (0.0, [0.0; 2]);
                for _ in 0..10 {
                    last = logistic_grad(black_box(0.3), black_box(2.9), black_box(steps));
                }
                last
            });
            assert_eq!(v, logistic(0.3, 2.9, steps));
            assert_eq!(usage, NONE, "{steps} steps: later calls allocated");
        })
        .join()
        .expect("the measuring thread panicked");
    }
}

/// Below 4 steps, amortised `Vec` growth would round the tape up to 4 values (32 bytes).
#[test]
fn logistic_recurrence_with_few_steps_tapes_exactly_steps_values() {
    let wrong = logistic_tape_mismatches(&[1, 2, 3]);
    assert!(
        wrong.is_empty(),
        "expected one allocation of steps·8 bytes; measured {wrong:#?}"
    );
}

/// With no iterations there is nothing to tape.
#[test]
fn logistic_recurrence_with_zero_steps_does_not_allocate() {
    let ((v, g), usage) = measure(|| logistic_grad(black_box(0.3), black_box(2.9), black_box(0)));
    assert_eq!((v, g), (0.3, [1.0, 0.0]));
    assert_eq!(usage, NONE);
}

/// A discrete energy through a local buffer: the Laplacian of `u`, then a sum over it.
#[gradient]
fn stencil_energy(u: &[f64]) -> f64 {
    let n = u.len();
    let mut lap = vec![0.0; n];
    for i in 1..n - 1 {
        lap[i] = u[i - 1] - 2.0 * u[i] + u[i + 1];
    }
    let mut e = 0.0;
    for i in 0..n {
        e += lap[i] * lap[i] + 0.1 * u[i] * u[i];
    }
    e
}

/// The adjoint of a local buffer of 4 KiB or more comes from the thread's tape cache: after the
/// first call, each call allocates the function's own buffer only (one allocation of n · 8
/// bytes), and the gradient is the same every time.
#[test]
fn adjoints_of_local_buffers_are_reused_by_later_calls() {
    for n in [600, 20_000] {
        std::thread::spawn(move || {
            let u: Vec<f64> = (0..n)
                .map(|i| ((i * 37) % 11) as f64 / 11.0 - 0.4)
                .collect();
            let mut first = vec![0.0; n];
            let (v0, _) = stencil_energy_grad(&u, &mut first);
            let mut g = vec![0.0; n];
            let ((v, _), usage) = measure(|| {
                let mut last = (0.0, []);
                for _ in 0..10 {
                    last = stencil_energy_grad(black_box(&u), &mut g);
                }
                last
            });
            assert_eq!(v, stencil_energy(&u));
            assert_eq!((v, &g), (v0, &first));
            if n <= 600 {
                ad::check_gradient(stencil_energy, &u, &g, 1e-6).expect("finite differences");
            }
            let own = Usage {
                allocs: 10,
                reallocs: 0,
                bytes: 10 * n * 8,
                largest: n * 8,
            };
            assert_eq!(usage, own, "n = {n}: calls after the first");
        })
        .join()
        .expect("the measuring thread panicked");
    }
}

/// Below 4 KiB the adjoint is an ordinary allocation, freed at the end of the call.
#[test]
fn small_local_buffers_allocate_their_adjoint() {
    let n = 100;
    let u: Vec<f64> = (0..n).map(|i| i as f64 / 50.0 - 1.0).collect();
    let mut g = vec![0.0; n];
    let (_, usage) = measure(|| stencil_energy_grad(black_box(&u), &mut g));
    assert_eq!(usage.allocs, 2, "{usage:?}");
    assert_eq!(usage.bytes, 2 * n * 8, "{usage:?}");
}
