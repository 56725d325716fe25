//! A nonlinear recurrence: `steps` iterations of the logistic map x ← r x (1 − x), differentiated
//! with respect to the start value and r. Every iterate is overwritten and needed by the reverse
//! sweep, so reverse mode must keep the trajectory: the one objective here that needs a tape.
//!
//! r = 3.2 lies in the map's stable period-2 window, so the derivatives stay finite over 10,000
//! steps (∂x/∂x₀ decays to zero; ∂x/∂r settles).

use super::Problem;
use nalgebra::SVector;
use num_dual::DualSVec64;
use reverse::{Gradient, Tape, Var};

/// As the user writes it.
#[ad::gradient]
pub fn logistic(x0: f64, r: f64, steps: usize) -> f64 {
    let mut x = x0;
    for _ in 0..steps {
        x = r * x * (1.0 - x);
    }
    x
}

/// Hand-derived adjoint: the forward sweep stores each iterate in a buffer sized once, the reverse
/// sweep uses ∂x'/∂x = r(1 − 2x) and ∂x'/∂r = x(1 − x).
///
/// The buffer is filled by index rather than by `push`: on this loop `Vec::push` (a capacity
/// check and a length update per step) made the whole adjoint 2.7× slower.
pub fn logistic_hand(x0: f64, r: f64, steps: usize) -> (f64, [f64; 2]) {
    let mut trajectory = vec![0.0; steps];
    let mut x = x0;
    for xk in trajectory.iter_mut() {
        *xk = x;
        x = r * x * (1.0 - x);
    }
    let mut x_bar = 1.0;
    let mut r_bar = 0.0;
    for &xk in trajectory.iter().rev() {
        r_bar += x_bar * xk * (1.0 - xk);
        x_bar *= r * (1.0 - 2.0 * xk);
    }
    (x, [x_bar, r_bar])
}

/// Forward-mode tangents carried along (two inputs, no trajectory): not an adjoint, kept to show
/// what the cheapest derivative of this objective costs; used in the tests only.
pub fn logistic_tangent(x0: f64, r: f64, steps: usize) -> (f64, [f64; 2]) {
    let (mut x, mut dx0, mut dr) = (x0, 1.0, 0.0);
    for _ in 0..steps {
        let slope = r * (1.0 - 2.0 * x);
        dr = slope * dr + x * (1.0 - x);
        dx0 *= slope;
        x = r * x * (1.0 - x);
    }
    (x, [dx0, dr])
}

/// For `num-dual`: a two-element static dual vector (no allocation).
pub fn logistic_num_dual(x0: f64, r: f64, steps: usize) -> (f64, [f64; 2]) {
    let (v, g) = num_dual::gradient(
        |v: SVector<DualSVec64<2>, 2>| {
            let r = v[1];
            let mut x = v[0];
            for _ in 0..steps {
                x = r * x * (-x + 1.0);
            }
            x
        },
        &SVector::from([x0, r]),
    );
    (v, [g[0], g[1]])
}

/// For `reverse`.
pub fn logistic_reverse<'a>(x0: Var<'a>, r: Var<'a>, steps: usize) -> Var<'a> {
    let mut x = x0;
    for _ in 0..steps {
        x = r * x * (1.0 - x);
    }
    x
}

pub struct Recurrence {
    pub x0: f64,
    pub r: f64,
    pub steps: usize,
    tape: Tape,
}

impl Recurrence {
    pub fn new(steps: usize) -> Self {
        Recurrence {
            x0: 0.3,
            r: 3.2,
            steps,
            tape: Tape::new(),
        }
    }
}

impl Problem for Recurrence {
    fn name(&self) -> String {
        format!("logistic map, {} steps", self.steps)
    }

    fn n_params(&self) -> usize {
        2
    }

    #[inline]
    fn value(&self) -> f64 {
        logistic(self.x0, self.r, self.steps)
    }

    #[inline]
    fn generated(&self, g: &mut [f64]) -> Option<f64> {
        {
            let (v, grad) = logistic_grad(self.x0, self.r, self.steps);
            g.copy_from_slice(&grad);
            Some(v)
        }
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = logistic_hand(self.x0, self.r, self.steps);
        g.copy_from_slice(&grad);
        v
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = logistic_num_dual(self.x0, self.r, self.steps);
        g.copy_from_slice(&grad);
        v
    }

    fn reverse_tape_nodes(&self) -> usize {
        self.tape.len()
    }

    fn reverse(&self, g: &mut [f64]) -> f64 {
        self.tape.clear();
        let x0 = self.tape.add_var(self.x0);
        let r = self.tape.add_var(self.r);
        let f = logistic_reverse(x0, r, self.steps);
        let grad = f.grad();
        g[0] = grad.wrt(&x0);
        g[1] = grad.wrt(&r);
        f.val()
    }
}
