//! A 10-32-1 multilayer perceptron with a tanh hidden layer: its mean squared loss over a batch of
//! 256 samples, differentiated with respect to all 385 weights and biases.

use super::data::Rng;
use super::Problem;
use nalgebra::DVector;
use num_dual::{DualDVec64, DualNum};
use reverse::{Gradient, Tape, Var};

/// Inputs per sample.
pub const IN: usize = 10;
/// Hidden units.
pub const HIDDEN: usize = 32;
/// Number of weights and biases: `w1` (HIDDEN·IN, row per hidden unit), `b1`, `w2`, `b2`.
pub const N_PARAMS: usize = HIDDEN * IN + HIDDEN + HIDDEN + 1;

/// As the user writes it.
#[ad::gradient(wrt(w1, b1, w2, b2))]
pub fn mlp_loss(w1: &[f64], b1: &[f64], w2: &[f64], b2: f64, xs: &[f64], ys: &[f64]) -> f64 {
    let n = ys.len();
    let mut h = [0.0; HIDDEN];
    let mut loss = 0.0;
    for s in 0..n {
        for j in 0..HIDDEN {
            let mut z = b1[j];
            for i in 0..IN {
                z += w1[j * IN + i] * xs[s * IN + i];
            }
            h[j] = z.tanh();
        }
        let mut out = b2;
        for j in 0..HIDDEN {
            out += w2[j] * h[j];
        }
        let e = out - ys[s];
        loss += e * e;
    }
    loss / n as f64
}

/// Hand-derived adjoint, fused per sample: the forward pass keeps the 32 activations in a stack
/// array, the reverse pass uses ∂tanh = 1 − h² and accumulates straight into the gradient.
#[allow(clippy::too_many_arguments)]
pub fn mlp_hand(
    w1: &[f64],
    b1: &[f64],
    w2: &[f64],
    b2: f64,
    xs: &[f64],
    ys: &[f64],
    g_w1: &mut [f64],
    g_b1: &mut [f64],
    g_w2: &mut [f64],
) -> (f64, f64) {
    assert_eq!(w1.len(), HIDDEN * IN);
    assert_eq!(b1.len(), HIDDEN);
    assert_eq!(w2.len(), HIDDEN);
    assert_eq!(xs.len(), ys.len() * IN);
    assert_eq!(g_w1.len(), HIDDEN * IN);
    assert_eq!(g_b1.len(), HIDDEN);
    assert_eq!(g_w2.len(), HIDDEN);
    let scale = 2.0 / ys.len() as f64;
    g_w1.fill(0.0);
    g_b1.fill(0.0);
    g_w2.fill(0.0);
    let mut g_b2 = 0.0;
    let mut loss = 0.0;
    let mut h = [0.0; HIDDEN];
    for (x, &y) in xs.chunks_exact(IN).zip(ys) {
        let x: &[f64; IN] = x.try_into().unwrap();
        for ((hj, row), bj) in h.iter_mut().zip(w1.chunks_exact(IN)).zip(b1) {
            let row: &[f64; IN] = row.try_into().unwrap();
            let mut z = *bj;
            for i in 0..IN {
                z += row[i] * x[i];
            }
            *hj = z.tanh();
        }
        let mut out = b2;
        for (w, hj) in w2.iter().zip(&h) {
            out += w * hj;
        }
        let e = out - y;
        loss += e * e;

        let out_bar = scale * e;
        g_b2 += out_bar;
        for j in 0..HIDDEN {
            let hj = h[j];
            g_w2[j] += out_bar * hj;
            let z_bar = out_bar * w2[j] * (1.0 - hj * hj);
            g_b1[j] += z_bar;
            let g_row: &mut [f64; IN] = (&mut g_w1[j * IN..(j + 1) * IN]).try_into().unwrap();
            for i in 0..IN {
                g_row[i] += z_bar * x[i];
            }
        }
    }
    (loss / ys.len() as f64, g_b2)
}

/// For `num-dual`.
pub fn mlp_num_dual(
    w1: &[DualDVec64],
    b1: &[DualDVec64],
    w2: &[DualDVec64],
    b2: &DualDVec64,
    xs: &[f64],
    ys: &[f64],
) -> DualDVec64 {
    let n = ys.len();
    let mut h = vec![DualDVec64::from(0.0); HIDDEN];
    let mut loss = DualDVec64::from(0.0);
    for s in 0..n {
        for j in 0..HIDDEN {
            let mut z = b1[j].clone();
            for i in 0..IN {
                z += w1[j * IN + i].clone() * xs[s * IN + i];
            }
            h[j] = z.tanh();
        }
        let mut out = b2.clone();
        for j in 0..HIDDEN {
            out += &w2[j] * &h[j];
        }
        let e = out - ys[s];
        loss += &e * &e;
    }
    loss / n as f64
}

/// For `reverse`.
pub fn mlp_reverse<'a>(
    w1: &[Var<'a>],
    b1: &[Var<'a>],
    w2: &[Var<'a>],
    b2: Var<'a>,
    xs: &[f64],
    ys: &[f64],
) -> Var<'a> {
    let n = ys.len();
    let mut loss = b2.tape.add_var(0.0);
    let mut h = vec![loss; HIDDEN];
    for s in 0..n {
        for j in 0..HIDDEN {
            let mut z = b1[j];
            for i in 0..IN {
                z = z + w1[j * IN + i] * xs[s * IN + i];
            }
            h[j] = z.tanh();
        }
        let mut out = b2;
        for j in 0..HIDDEN {
            out = out + w2[j] * h[j];
        }
        let e = out - ys[s];
        loss = loss + e * e;
    }
    loss / n as f64
}

pub struct Mlp {
    /// `w1`, `b1`, `w2`, `b2`: the active inputs, in parameter order.
    pub theta: Vec<f64>,
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    tape: Tape,
}

impl Mlp {
    /// Weights uniform in ±1/√fan-in, inputs standard normal, targets a smooth function of them.
    pub fn new(samples: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let a1 = 1.0 / (IN as f64).sqrt();
        let a2 = 1.0 / (HIDDEN as f64).sqrt();
        let mut theta = rng.uniforms(HIDDEN * IN + HIDDEN, -a1, a1);
        theta.extend(rng.uniforms(HIDDEN + 1, -a2, a2));
        let xs = rng.normals(samples * IN);
        let ys = xs
            .chunks_exact(IN)
            .map(|x| (x[0] - 0.5 * x[1]).sin() + 0.1 * x[2] * x[3])
            .collect();
        Mlp {
            theta,
            xs,
            ys,
            tape: Tape::new(),
        }
    }

    /// `(w1, b1, w2, b2)`.
    pub fn split<'s>(&self, theta: &'s [f64]) -> (&'s [f64], &'s [f64], &'s [f64], f64) {
        let (w1, rest) = theta.split_at(HIDDEN * IN);
        let (b1, rest) = rest.split_at(HIDDEN);
        let (w2, b2) = rest.split_at(HIDDEN);
        (w1, b1, w2, b2[0])
    }

    /// The loss at other parameters (for finite differences).
    pub fn value_at(&self, theta: &[f64]) -> f64 {
        let (w1, b1, w2, b2) = self.split(theta);
        mlp_loss(w1, b1, w2, b2, &self.xs, &self.ys)
    }
}

/// `(w1, b1, w2, b2)` of a gradient buffer.
fn split_mut(g: &mut [f64]) -> (&mut [f64], &mut [f64], &mut [f64], &mut f64) {
    let (w1, rest) = g.split_at_mut(HIDDEN * IN);
    let (b1, rest) = rest.split_at_mut(HIDDEN);
    let (w2, b2) = rest.split_at_mut(HIDDEN);
    (w1, b1, w2, &mut b2[0])
}

impl Problem for Mlp {
    fn name(&self) -> String {
        format!("MLP {IN}-{HIDDEN}-1 tanh, {} samples", self.ys.len())
    }

    fn n_params(&self) -> usize {
        N_PARAMS
    }

    #[inline]
    fn value(&self) -> f64 {
        self.value_at(&self.theta)
    }

    #[inline]
    fn generated(&self, g: &mut [f64]) -> Option<f64> {
        {
            let (w1, b1, w2, b2) = self.split(&self.theta);
            let (g_w1, g_b1, g_w2, g_b2) = split_mut(g);
            let (v, [db2]) = mlp_loss_grad(w1, g_w1, b1, g_b1, w2, g_w2, b2, &self.xs, &self.ys);
            *g_b2 = db2;
            Some(v)
        }
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        let (w1, b1, w2, b2) = self.split(&self.theta);
        let (g_w1, g_b1, g_w2, g_b2) = split_mut(g);
        let (v, db2) = mlp_hand(w1, b1, w2, b2, &self.xs, &self.ys, g_w1, g_b1, g_w2);
        *g_b2 = db2;
        v
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = num_dual::gradient(
            |theta: DVector<DualDVec64>| {
                let (w1, rest) = theta.as_slice().split_at(HIDDEN * IN);
                let (b1, rest) = rest.split_at(HIDDEN);
                let (w2, b2) = rest.split_at(HIDDEN);
                mlp_num_dual(w1, b1, w2, &b2[0], &self.xs, &self.ys)
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
        let (w1, rest) = theta.split_at(HIDDEN * IN);
        let (b1, rest) = rest.split_at(HIDDEN);
        let (w2, b2) = rest.split_at(HIDDEN);
        let f = mlp_reverse(w1, b1, w2, b2[0], &self.xs, &self.ys);
        let grad = f.grad();
        for (gi, t) in g.iter_mut().zip(&theta) {
            *gi = grad.wrt(t);
        }
        f.val()
    }
}
