//! The lecture's example, F(x, y) = x³(x + 3y): straight-line code, two scalar inputs.

use super::Problem;
use nalgebra::SVector;
use num_dual::{DualNum, DualSVec64};
use reverse::{Gradient, Tape, Var};

/// As the user writes it.
#[ad::gradient]
pub fn lecture(x: f64, y: f64) -> f64 {
    x.powi(3) * (x + 3.0 * y)
}

/// Hand-derived: ∂F/∂x = 3x²(x + 3y) + x³, ∂F/∂y = 3x³.
#[inline]
pub fn lecture_hand(x: f64, y: f64) -> (f64, [f64; 2]) {
    let x2 = x * x;
    let c = x2 * x;
    let s = x + 3.0 * y;
    (c * s, [3.0 * x2 * s + c, 3.0 * c])
}

/// For `num-dual`: a two-element static dual vector (no allocation).
pub fn lecture_num_dual(x: f64, y: f64) -> (f64, [f64; 2]) {
    let (v, g) = num_dual::gradient(
        |v: SVector<DualSVec64<2>, 2>| v[0].powi(3) * (v[0] + v[1] * 3.0),
        &SVector::from([x, y]),
    );
    (v, [g[0], g[1]])
}

/// For `reverse`.
pub fn lecture_reverse_fn<'a>(x: Var<'a>, y: Var<'a>) -> Var<'a> {
    x.powi(3) * (x + 3.0 * y)
}

pub struct Lecture {
    pub x: f64,
    pub y: f64,
    tape: Tape,
}

impl Lecture {
    pub fn new(x: f64, y: f64) -> Self {
        Lecture {
            x,
            y,
            tape: Tape::new(),
        }
    }
}

impl Problem for Lecture {
    fn name(&self) -> String {
        "lecture F(x, y) = x³(x + 3y)".to_string()
    }

    fn n_params(&self) -> usize {
        2
    }

    #[inline]
    fn value(&self) -> f64 {
        lecture(self.x, self.y)
    }

    #[inline]
    fn generated(&self, g: &mut [f64]) -> Option<f64> {
        {
            let (v, [gx, gy]) = lecture_grad(self.x, self.y);
            g[0] = gx;
            g[1] = gy;
            Some(v)
        }
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = lecture_hand(self.x, self.y);
        g.copy_from_slice(&grad);
        v
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = lecture_num_dual(self.x, self.y);
        g.copy_from_slice(&grad);
        v
    }

    fn reverse_tape_nodes(&self) -> usize {
        self.tape.len()
    }

    fn reverse(&self, g: &mut [f64]) -> f64 {
        self.tape.clear();
        let x = self.tape.add_var(self.x);
        let y = self.tape.add_var(self.y);
        let f = lecture_reverse_fn(x, y);
        let grad = f.grad();
        g[0] = grad.wrt(&x);
        g[1] = grad.wrt(&y);
        f.val()
    }
}
