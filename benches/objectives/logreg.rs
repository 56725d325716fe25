//! Logistic regression: the mean over N samples of ln(1 + exp(−yₛ (w·xₛ + b))), labels yₛ = ±1,
//! differentiated with respect to the D weights and the bias (D + 1 active inputs; the features
//! and labels are data).
//!
//! Each sample's inner product is a sum of products of an active and a constant input, and the
//! loss is a sum over samples, so nothing needs to be taped: the reverse pass can recompute z per
//! sample and accumulate straight into the gradient.

use super::data::Rng;
use super::Problem;
use nalgebra::DVector;
use num_dual::{DualDVec64, DualNum};
use reverse::{Gradient, Tape, Var};

/// As the user writes it.
#[ad::gradient(wrt(w, b))]
pub fn logreg_loss(w: &[f64], b: f64, xs: &[f64], ys: &[f64]) -> f64 {
    let d = w.len();
    let mut loss = 0.0;
    for s in 0..ys.len() {
        let mut z = b;
        for j in 0..d {
            z += w[j] * xs[s * d + j];
        }
        loss += (1.0 + (-ys[s] * z).exp()).ln();
    }
    loss / ys.len() as f64
}

/// Hand-derived adjoint, one fused pass per sample: z = b + w·x, e = exp(−y z), the loss term
/// ln(1 + e), then ∂/∂z = −y e / (1 + e) / N is added to the bias and, times x, to the weights.
/// Returns the loss and ∂/∂b; `g_w` is overwritten.
pub fn logreg_hand(w: &[f64], b: f64, xs: &[f64], ys: &[f64], g_w: &mut [f64]) -> (f64, f64) {
    let d = w.len();
    assert!(d >= 1, "logistic regression needs at least one weight");
    assert_eq!(xs.len(), ys.len() * d, "features do not match the labels");
    assert_eq!(g_w.len(), d, "gradient buffer has the wrong length");
    let n = ys.len() as f64;
    g_w.fill(0.0);
    let mut g_b = 0.0;
    let mut loss = 0.0;
    for (x, &y) in xs.chunks_exact(d).zip(ys) {
        let mut z = b;
        for (wj, xj) in w.iter().zip(x) {
            z += wj * xj;
        }
        let e = (-y * z).exp();
        loss += (1.0 + e).ln();
        let g_z = -y * e / (1.0 + e) / n;
        g_b += g_z;
        for (gj, xj) in g_w.iter_mut().zip(x) {
            *gj += g_z * xj;
        }
    }
    (loss / n, g_b)
}

/// For `num-dual`.
pub fn logreg_num_dual(w: &[DualDVec64], b: &DualDVec64, xs: &[f64], ys: &[f64]) -> DualDVec64 {
    let d = w.len();
    let mut loss = DualDVec64::from(0.0);
    for s in 0..ys.len() {
        let mut z = b.clone();
        for j in 0..d {
            z += w[j].clone() * xs[s * d + j];
        }
        loss += ((z * -ys[s]).exp() + 1.0).ln();
    }
    loss / ys.len() as f64
}

/// For `reverse`.
pub fn logreg_reverse<'a>(w: &[Var<'a>], b: Var<'a>, xs: &[f64], ys: &[f64]) -> Var<'a> {
    let d = w.len();
    let mut loss = b.tape.add_var(0.0);
    for s in 0..ys.len() {
        let mut z = b;
        for j in 0..d {
            z = z + w[j] * xs[s * d + j];
        }
        loss = loss + (1.0 + (-ys[s] * z).exp()).ln();
    }
    loss / ys.len() as f64
}

pub struct LogReg {
    pub d: usize,
    /// `w`, then `b`: the active inputs, in parameter order.
    pub theta: Vec<f64>,
    /// N samples of D features, row-major.
    pub xs: Vec<f64>,
    /// Labels, ±1.
    pub ys: Vec<f64>,
    tape: Tape,
}

impl LogReg {
    /// `d` standard normal features per sample; labels from a random linear teacher plus noise
    /// (so the classes overlap); weights and bias normal × 0.1.
    pub fn new(d: usize, samples: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let theta: Vec<f64> = rng.normals(d + 1).iter().map(|v| 0.1 * v).collect();
        let teacher = rng.normals(d);
        let xs = rng.normals(samples * d);
        let scale = 1.0 / (d as f64).sqrt();
        let ys = xs
            .chunks_exact(d)
            .map(|x| {
                let z: f64 = teacher.iter().zip(x).map(|(t, v)| t * v).sum();
                if z * scale + 0.5 * rng.normal() >= 0.0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        LogReg {
            d,
            theta,
            xs,
            ys,
            tape: Tape::new(),
        }
    }

    /// The loss at other parameters (for finite differences).
    pub fn value_at(&self, theta: &[f64]) -> f64 {
        let (w, b) = theta.split_at(self.d);
        logreg_loss(w, b[0], &self.xs, &self.ys)
    }
}

impl Problem for LogReg {
    fn name(&self) -> String {
        format!("logistic regression D={} N={}", self.d, self.ys.len())
    }

    fn n_params(&self) -> usize {
        self.d + 1
    }

    #[inline]
    fn value(&self) -> f64 {
        self.value_at(&self.theta)
    }

    #[inline]
    fn generated(&self, g: &mut [f64]) -> Option<f64> {
        {
            let (w, b) = self.theta.split_at(self.d);
            let (g_w, g_b) = g.split_at_mut(self.d);
            let (v, [db]) = logreg_loss_grad(w, g_w, b[0], &self.xs, &self.ys);
            g_b[0] = db;
            Some(v)
        }
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        let (w, b) = self.theta.split_at(self.d);
        let (g_w, g_b) = g.split_at_mut(self.d);
        let (v, db) = logreg_hand(w, b[0], &self.xs, &self.ys, g_w);
        g_b[0] = db;
        v
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = num_dual::gradient(
            |theta: DVector<DualDVec64>| {
                let (w, b) = theta.as_slice().split_at(self.d);
                logreg_num_dual(w, &b[0], &self.xs, &self.ys)
            },
            &DVector::from_column_slice(&self.theta),
        );
        g.copy_from_slice(grad.as_slice());
        v
    }

    fn reverse_tape_nodes(&self) -> usize {
        self.tape.len()
    }

    fn reverse(&self, g: &mut [f64]) -> f64 {
        self.tape.clear();
        let theta = self.tape.add_vars(&self.theta);
        let (w, b) = theta.split_at(self.d);
        let f = logreg_reverse(w, b[0], &self.xs, &self.ys);
        let grad = f.grad();
        for (gi, t) in g.iter_mut().zip(&theta) {
            *gi = grad.wrt(t);
        }
        f.val()
    }

    /// A call carries a (D + 1)-entry derivative vector through ~2 N D operations, so it costs
    /// about 2 N D² derivative operations: about 6 ms at D = 100, N = 1,000; skipped past 10⁹
    /// (half a second or more).
    fn num_dual_feasible(&self) -> bool {
        (self.d + 1) * self.d * self.ys.len() <= 1_000_000_000
    }
}
