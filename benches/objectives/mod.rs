//! The benchmark objectives of `ad`, each written once as a user would write it under
//! `#[gradient]`, and once by hand (the function and its hand-derived adjoint), plus the same
//! objective for the two peer crates: `num-dual` (forward mode, its vector `gradient`) and
//! `reverse` (an operator-overloading tape).
//!
//! This module is shared by `benches/gradients.rs` (criterion), `benches/summary.rs` (the one-table
//! runner) and `tests/bench_objectives.rs` (correctness of everything here, small sizes). Each
//! target uses a different part of it, hence the `dead_code` allowance.
//!
//! The user-written functions carry `#[ad::gradient(...)]`; `*_grad` is what the macro emits.
#![allow(dead_code)]
// The objectives are written with index loops, as `#[gradient]` users write them.
#![allow(clippy::needless_range_loop)]

pub mod ba;
pub mod data;
pub mod gmm;
pub mod lecture;
pub mod logreg;
pub mod lse;
pub mod lstm;
pub mod matmul;
pub mod mlp;
pub mod recurrence;
pub mod rosenbrock;
pub mod softmax;

/// One objective at one size with its inputs, evaluated by every tool.
///
/// Every gradient method **overwrites** `g` (length [`Problem::n_params`]) with the gradient of
/// all active inputs, concatenated in parameter order, and returns the function's value.
pub trait Problem {
    /// Row label, e.g. `Rosenbrock n=1000`.
    fn name(&self) -> String;
    /// Number of active inputs.
    fn n_params(&self) -> usize;
    /// The user-written function alone.
    fn value(&self) -> f64;
    /// The `#[gradient]`-generated `*_grad` (always available; `Option` keeps rows uniform).
    fn generated(&self, g: &mut [f64]) -> Option<f64>;
    /// The hand-derived adjoint.
    fn hand(&self, g: &mut [f64]) -> f64;
    /// `num-dual`'s `gradient` (forward mode with a dual vector of all inputs).
    fn num_dual(&self, g: &mut [f64]) -> f64;
    /// `reverse`'s tape (kept in the problem and cleared on each call, so its allocation is
    /// amortised, which favours the tape crate).
    fn reverse(&self, g: &mut [f64]) -> f64;
    /// Nodes on `reverse`'s tape after the last [`Problem::reverse`] call (32 bytes each; the
    /// tape's buffer is reused, so it does not show in a per-call heap count).
    fn reverse_tape_nodes(&self) -> usize;
    /// `false` where `num-dual` costs O(n²) and a single call would take minutes.
    fn num_dual_feasible(&self) -> bool {
        true
    }
}

/// The tools compared, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Function,
    Generated,
    Hand,
    NumDual,
    Reverse,
}

impl Tool {
    pub const ALL: [Tool; 5] = [
        Tool::Function,
        Tool::Generated,
        Tool::Hand,
        Tool::NumDual,
        Tool::Reverse,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Tool::Function => "function",
            Tool::Generated => "f_grad (ad)",
            Tool::Hand => "hand-written",
            Tool::NumDual => "num-dual gradient",
            Tool::Reverse => "reverse 0.2 tape",
        }
    }

    /// Whether this tool can run on `p` in this build.
    pub fn available<P: Problem>(self, p: &P) -> bool {
        match self {
            Tool::Generated => p.generated(&mut vec![0.0; p.n_params()]).is_some(),
            Tool::NumDual => p.num_dual_feasible(),
            _ => true,
        }
    }

    /// Runs the tool once; for [`Tool::Function`] `g` is left alone.
    #[inline(always)]
    pub fn run<P: Problem>(self, p: &P, g: &mut [f64]) -> f64 {
        match self {
            Tool::Function => p.value(),
            Tool::Generated => p.generated(g).unwrap_or(f64::NAN),
            Tool::Hand => p.hand(g),
            Tool::NumDual => p.num_dual(g),
            Tool::Reverse => p.reverse(g),
        }
    }
}

/// Central differences of `f` at `theta`, with a step scaled to each coordinate (the tests'
/// check of every hand-written adjoint).
pub fn fd_gradient(f: impl Fn(&[f64]) -> f64, theta: &[f64]) -> Vec<f64> {
    let mut t = theta.to_vec();
    (0..theta.len())
        .map(|i| {
            let h = 1e-6 * theta[i].abs().max(1.0);
            t[i] = theta[i] + h;
            let up = f(&t);
            t[i] = theta[i] - h;
            let down = f(&t);
            t[i] = theta[i];
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// The hand-written adjoint's gradient of `p`.
pub fn hand_gradient<P: Problem>(p: &P) -> Vec<f64> {
    let mut g = vec![f64::NAN; p.n_params()];
    p.hand(&mut g);
    g
}

/// Largest elementwise difference between `a` and `b`, relative to `max(1, |b|∞)`.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f64::max)
}

/// Checks that every available gradient tool agrees with the hand-written adjoint on `p`
/// (value and gradient, to `tol` relative to the gradient's largest entry). Panics otherwise.
/// The benchmarks call this before timing anything.
pub fn check_agreement<P: Problem>(p: &P, tol: f64) {
    let n = p.n_params();
    let mut reference = vec![0.0; n];
    let v_hand = p.hand(&mut reference);
    let v_fn = p.value();
    assert!(
        (v_fn - v_hand).abs() <= tol * v_fn.abs().max(1.0),
        "{}: value of the hand-written adjoint {v_hand} differs from the function's {v_fn}",
        p.name()
    );
    for tool in [Tool::Generated, Tool::NumDual, Tool::Reverse] {
        if !tool.available(p) {
            continue;
        }
        let mut g = vec![f64::NAN; n];
        let v = tool.run(p, &mut g);
        assert!(
            (v - v_fn).abs() <= tol * v_fn.abs().max(1.0),
            "{}: value from {} is {v}, the function gives {v_fn}",
            p.name(),
            tool.label()
        );
        let err = rel_err(&g, &reference);
        assert!(
            err <= tol,
            "{}: gradient from {} differs from the hand-written one by {err:e} (relative)",
            p.name(),
            tool.label()
        );
    }
}
