//! Extended (chained) Rosenbrock, f(x) = Σᵢ 100 (xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)², i = 0 … n−2.
//!
//! The form of DESIGN.md's illustration: `x` is only read and the sum is linear in its terms, so
//! the generated reverse loop should recompute everything and tape nothing.

use super::data::Rng;
use super::Problem;
use nalgebra::DVector;
use num_dual::DualDVec64;
use reverse::{Gradient, Tape, Var};

/// As the user writes it.
#[ad::gradient]
pub fn rosenbrock(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    s
}

/// Hand-derived adjoint, one fused forward pass: term i contributes −400 xᵢ aᵢ − 2 bᵢ to gᵢ and
/// 200 aᵢ to gᵢ₊₁, which is carried to the next iteration, so each gᵢ is written once.
pub fn rosenbrock_hand(x: &[f64], g: &mut [f64]) -> f64 {
    assert_eq!(g.len(), x.len(), "gradient buffer has the wrong length");
    assert!(x.len() >= 2, "Rosenbrock needs at least two variables");
    let mut s = 0.0;
    let mut carry = 0.0;
    for (w, gi) in x.windows(2).zip(g.iter_mut()) {
        let (xi, xj) = (w[0], w[1]);
        let a = xj - xi * xi;
        let b = 1.0 - xi;
        s += 100.0 * a * a + b * b;
        *gi = carry - 400.0 * xi * a - 2.0 * b;
        carry = 200.0 * a;
    }
    g[x.len() - 1] = carry;
    s
}

/// For `num-dual`: the same loop over dual numbers (each carries a length-n derivative vector).
pub fn rosenbrock_num_dual(x: &[DualDVec64]) -> DualDVec64 {
    let n = x.len();
    let mut s = DualDVec64::from(0.0);
    for i in 0..n - 1 {
        let a = &x[i + 1] - &(&x[i] * &x[i]);
        let b = -&x[i] + 1.0;
        s += (&a * &a) * 100.0 + &b * &b;
    }
    s
}

/// For `reverse`.
pub fn rosenbrock_reverse<'a>(x: &[Var<'a>]) -> Var<'a> {
    let n = x.len();
    let mut s = x[0].tape.add_var(0.0);
    for i in 0..n - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s = s + 100.0 * a * a + b * b;
    }
    s
}

pub struct Rosenbrock {
    pub x: Vec<f64>,
    tape: Tape,
}

impl Rosenbrock {
    /// `n` inputs, uniform in [−2, 2).
    pub fn new(n: usize, seed: u64) -> Self {
        Rosenbrock {
            x: Rng::new(seed).uniforms(n, -2.0, 2.0),
            tape: Tape::new(),
        }
    }
}

impl Problem for Rosenbrock {
    fn name(&self) -> String {
        format!("Rosenbrock n={}", self.x.len())
    }

    fn n_params(&self) -> usize {
        self.x.len()
    }

    #[inline]
    fn value(&self) -> f64 {
        rosenbrock(&self.x)
    }

    #[inline]
    fn generated(&self, g: &mut [f64]) -> Option<f64> {
        {
            let (v, []) = rosenbrock_grad(&self.x, g);
            Some(v)
        }
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        rosenbrock_hand(&self.x, g)
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = num_dual::gradient(
            |x: DVector<DualDVec64>| rosenbrock_num_dual(x.as_slice()),
            &DVector::from_column_slice(&self.x),
        );
        g.copy_from_slice(grad.as_slice());
        v
    }

    fn reverse_tape_nodes(&self) -> usize {
        self.tape.len()
    }

    fn reverse(&self, g: &mut [f64]) -> f64 {
        self.tape.clear();
        let x = self.tape.add_vars(&self.x);
        let f = rosenbrock_reverse(&x);
        let grad = f.grad();
        for (gi, xi) in g.iter_mut().zip(&x) {
            *gi = grad.wrt(xi);
        }
        f.val()
    }

    /// A call costs n² derivative operations: about 10 ms at n = 1,000, minutes at 100,000.
    fn num_dual_feasible(&self) -> bool {
        self.x.len() <= 10_000
    }
}
