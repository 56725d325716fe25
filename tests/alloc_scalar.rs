//! The gradients of scalar functions — straight-line, branching, with early returns, calling
//! other `#[gradient]` functions — do not touch the heap: a counting global allocator sees no
//! allocation over 1,000 calls of each `_grad`.
//!
//! The counter is per thread (the test harness runs tests on several threads and allocates on
//! its own), so each test only sees the allocations of the code it runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use ad::gradient;

struct CountingAllocator;

thread_local! {
    /// Allocations (`alloc`, `alloc_zeroed`, `realloc`) made by this thread.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only a `Cell<usize>` thread-local that needs no allocation or destructor.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The number of allocations this thread makes while running `f`.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Calls `grad` 1,000 times at varying points and asserts that nothing was allocated.
fn assert_no_allocation<const N: usize, G: Fn(f64) -> (f64, [f64; N])>(name: &str, grad: G) {
    // One call outside the measurement, so that nothing lazily initialised is counted.
    black_box(grad(black_box(0.5)));
    let count = allocations_in(|| {
        for i in 0..1000 {
            let x = -2.0 + f64::from(i) * 0.004;
            black_box(grad(black_box(x)));
        }
    });
    assert_eq!(
        count, 0,
        "{name}_grad allocated {count} times in 1,000 calls"
    );
}

// ------------------------------------------------------------------------------------------

#[gradient]
fn straight_line(x: f64, y: f64) -> f64 {
    let a = x.powi(3) * (x + 3.0 * y);
    let b = a.sin() * y.exp() / (1.0 + x * x);
    let c = b.hypot(x).atan2(y) + x.mul_add(y, 2.0).tanh();
    let mut s = a + b * c;
    s += x.max(y) - y.min(0.5).abs().sqrt();
    s *= 0.5;
    s - x.clamp(-1.0, 1.0).powf(2.0)
}

#[gradient]
fn branching(x: f64, y: f64, n: usize) -> f64 {
    let mut r = x * y;
    if x > y {
        r = r.sin();
    } else if x < -1.0 {
        r *= r;
    } else {
        r += y.exp();
    }
    let s = if r > 0.0 { r.sqrt() } else { -r };
    if n > 3 {
        return s * n as f64;
    }
    if s > 10.0 {
        return s.ln();
    }
    s + x
}

#[gradient]
fn callee(x: f64, k: i32) -> f64 {
    x.powi(k) + x.cos()
}

#[gradient]
fn caller(x: f64, y: f64) -> f64 {
    let a = callee(x * y, 2);
    if a > 1.0 {
        return callee(a, 3) - y;
    }
    a * callee(y, 1) + branching(x, y, 2)
}

#[gradient(wrt(y))]
fn subset(x: f64, y: f64, z: f64) -> f64 {
    x * y.sin() + z
}

#[gradient]
fn single_precision(x: f32, y: f32) -> f32 {
    let t = x.sin() * y + 2.0;
    if t > 1.0 {
        t.ln()
    } else {
        t * t
    }
}

#[gradient]
fn every_intrinsic(x: f64, y: f64) -> f64 {
    // x in (0, 1) and y > 1 keep every operation in its domain.
    let u = x.sin() + x.cos() + x.tan() + x.asin() + x.acos() + x.atan() + y.atan2(x);
    let v = x.sinh() + x.cosh() + x.tanh() + y.asinh() + y.acosh() + x.atanh();
    let w = x.exp() + x.exp2() + x.exp_m1() + y.ln() + y.log(3.0) + y.log2() + y.log10();
    let z = x.ln_1p() + y.sqrt() + x.cbrt() + x.powi(3) + y.powf(x) + y.recip() + x.abs();
    let s = x.signum() + x.hypot(y) + x.mul_add(y, 1.0) + x.max(y) + x.min(y) + x.clamp(0.2, 0.8);
    let r = y.to_radians() + y.to_degrees() + y.floor() + y.ceil() + y.round() + y.trunc();
    let p = f64::fract(y) + f64::copysign(x, -1.0) + f64::sin(y) * f64::exp(x);
    u + v + w + z + s + r + p
}

#[gradient]
#[allow(clippy::needless_return)]
fn syntax_mix(mut x: f64, y: f64) -> f64 {
    let x_1_bar = x * 2.0;
    let __g: f64 = y;
    let x2 = {
        let t = x_1_bar * __g;
        -t + 1.0
    };
    x += x2;
    x -= 0.5;
    x *= y;
    x /= 3.0;
    let x = x.sin();
    if x > 0.5 {
        if y < 0.0 {
            return x * y;
        }
        return x.powi(2);
    }
    let mut tape = 0.0;
    for i in 0..4 {
        tape += x * i as f64;
    }
    tape + std::f64::consts::PI
}

#[test]
fn the_counter_sees_allocations() {
    let count = allocations_in(|| {
        black_box(vec![black_box(1.0_f64); 4]);
    });
    assert!(count >= 1, "the counting allocator counted {count}");
}

#[test]
fn straight_line_gradient_does_not_allocate() {
    assert_eq!(straight_line_grad(0.3, 0.7).0, straight_line(0.3, 0.7));
    assert_no_allocation("straight_line", |x| straight_line_grad(x, 0.7));
}

#[test]
fn branching_gradient_does_not_allocate() {
    assert_eq!(branching_grad(0.3, 0.7, 2).0, branching(0.3, 0.7, 2));
    for n in [0, 5] {
        for y in [-1.5, 0.2, 3.0] {
            assert_no_allocation("branching", |x| branching_grad(x, y, n));
        }
    }
}

#[test]
fn calls_between_gradient_functions_do_not_allocate() {
    assert_eq!(caller_grad(0.3, 0.7).0, caller(0.3, 0.7));
    assert_eq!(callee_grad(0.3, 3).0, callee(0.3, 3));
    for y in [-2.0, 0.4, 1.5] {
        assert_no_allocation("caller", |x| caller_grad(x, y));
    }
}

#[test]
fn every_intrinsic_and_syntax_do_not_allocate() {
    let (value, gradient) = every_intrinsic_grad(0.3, 1.7);
    assert_eq!(value, every_intrinsic(0.3, 1.7));
    ad::check_gradient(
        |p| every_intrinsic(p[0], p[1]),
        &[0.3, 1.7],
        &gradient,
        1e-6,
    )
    .unwrap();
    assert_eq!(syntax_mix_grad(0.3, 1.7).0, syntax_mix(0.3, 1.7));
    assert_no_allocation("every_intrinsic", |x| {
        every_intrinsic_grad((x + 2.0) / 4.5 + 0.01, 1.7)
    });
    for y in [-1.0, 0.3, 2.0] {
        assert_no_allocation("syntax_mix", |x| syntax_mix_grad(x, y));
    }
}

#[test]
fn wrt_subset_and_f32_gradients_do_not_allocate() {
    assert_eq!(subset_grad(0.3, 0.7, 1.0).0, subset(0.3, 0.7, 1.0));
    assert_eq!(
        single_precision_grad(0.3, 0.7).0,
        single_precision(0.3, 0.7)
    );
    assert_no_allocation("subset", |y| subset_grad(0.3, y, 1.0));
    assert_no_allocation("single_precision", |x| {
        let (v, [a, b]) = single_precision_grad(x as f32, 0.7);
        (f64::from(v), [f64::from(a), f64::from(b)])
    });
}
