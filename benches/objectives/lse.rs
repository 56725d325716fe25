//! Log-sum-exp of a vector, ln Σᵢ exp(xᵢ), computed stably as ln Σᵢ exp(xᵢ − m) + m with m the
//! largest entry; all n entries are active. Its gradient is the softmax.
//!
//! The sum is used non-linearly after its loop (`s.ln()`), so the reverse pass must either keep
//! the exponentials or recompute them once s is known.

use super::data::Rng;
use super::Problem;
use nalgebra::DVector;
use num_dual::{DualDVec64, DualNum};
use reverse::{Gradient, Tape, Var};

/// As the user writes it.
#[ad::gradient]
pub fn log_sum_exp(x: &[f64]) -> f64 {
    let mut mx = x[0];
    for i in 1..x.len() {
        if x[i] > mx {
            mx = x[i];
        }
    }
    let mut s = 0.0;
    for i in 0..x.len() {
        s += (x[i] - mx).exp();
    }
    s.ln() + mx
}

/// Hand-derived adjoint: the max pass, one pass writing eᵢ = exp(xᵢ − m) into `g` while summing
/// them (in the function's order), then `g` scaled by 1/s: the softmax. (The max's own adjoint,
/// 1 − Σᵢ eᵢ/s, is zero.)
pub fn log_sum_exp_hand(x: &[f64], g: &mut [f64]) -> f64 {
    assert_eq!(g.len(), x.len(), "gradient buffer has the wrong length");
    assert!(!x.is_empty(), "log-sum-exp needs at least one entry");
    let mut mx = x[0];
    for &v in &x[1..] {
        if v > mx {
            mx = v;
        }
    }
    let mut s = 0.0;
    for (gi, &xi) in g.iter_mut().zip(x) {
        let e = (xi - mx).exp();
        *gi = e;
        s += e;
    }
    let inv = 1.0 / s;
    for gi in g.iter_mut() {
        *gi *= inv;
    }
    s.ln() + mx
}

/// For `num-dual`: the max is chosen on the values, as the function does.
pub fn log_sum_exp_num_dual(x: &[DualDVec64]) -> DualDVec64 {
    let mut mx = x[0].clone();
    for i in 1..x.len() {
        if x[i].re > mx.re {
            mx = x[i].clone();
        }
    }
    let mut s = DualDVec64::from(0.0);
    for i in 0..x.len() {
        s += (&x[i] - &mx).exp();
    }
    s.ln() + mx
}

/// For `reverse`: the max is chosen on the values, so it is the same element as the function's.
pub fn log_sum_exp_reverse<'a>(x: &[Var<'a>]) -> Var<'a> {
    let mut mx = x[0];
    for i in 1..x.len() {
        if x[i].val() > mx.val() {
            mx = x[i];
        }
    }
    let mut s = x[0].tape.add_var(0.0);
    for i in 0..x.len() {
        s = s + (x[i] - mx).exp();
    }
    s.ln() + mx
}

pub struct Lse {
    pub x: Vec<f64>,
    tape: Tape,
}

impl Lse {
    /// `n` inputs, normal × 3.
    pub fn new(n: usize, seed: u64) -> Self {
        Lse {
            x: Rng::new(seed).normals(n).iter().map(|v| 3.0 * v).collect(),
            tape: Tape::new(),
        }
    }
}

impl Problem for Lse {
    fn name(&self) -> String {
        format!("log-sum-exp n={}", self.x.len())
    }

    fn n_params(&self) -> usize {
        self.x.len()
    }

    #[inline]
    fn value(&self) -> f64 {
        log_sum_exp(&self.x)
    }

    #[inline]
    fn generated(&self, g: &mut [f64]) -> Option<f64> {
        {
            let (v, []) = log_sum_exp_grad(&self.x, g);
            Some(v)
        }
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        log_sum_exp_hand(&self.x, g)
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = num_dual::gradient(
            |x: DVector<DualDVec64>| log_sum_exp_num_dual(x.as_slice()),
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
        let f = log_sum_exp_reverse(&x);
        let grad = f.grad();
        for (gi, xi) in g.iter_mut().zip(&x) {
            *gi = grad.wrt(xi);
        }
        f.val()
    }

    /// A call costs ~3 n² derivative operations: about a millisecond at n = 1,000, a minute at
    /// 100,000.
    fn num_dual_feasible(&self) -> bool {
        self.x.len() <= 10_000
    }
}
