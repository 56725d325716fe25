//! Softmax cross-entropy: the mean over N samples of ln Σ_c exp(z_c) − z_{yₛ}, with z = W xₛ the K
//! class scores of sample s (W is K×D, row-major) and yₛ in 0..K its label; the log-sum-exp is
//! computed stably with the largest score subtracted. Differentiated with respect to the K·D
//! weights (the features and labels are data).
//!
//! It combines the two previous objectives: each score is an inner product of an active and a
//! constant row, as in logistic regression, and the per-sample loss is a log-sum-exp of the
//! scores, whose sum is used non-linearly (`se.ln()`) after its loop. The reverse pass needs each
//! sample's K scores (or exponentials) once the sum is known, then spreads the softmax minus the
//! label's indicator over the weights.

use super::data::Rng;
use super::Problem;
use nalgebra::DVector;
use num_dual::{DualDVec64, DualNum};
use reverse::{Gradient, Tape, Var};

/// As the user writes it.
#[ad::gradient(wrt(w))]
pub fn softmax_ce(w: &[f64], xs: &[f64], labels: &[usize], d: usize, k: usize) -> f64 {
    let mut z = vec![0.0; k];
    let mut loss = 0.0;
    for s in 0..labels.len() {
        for c in 0..k {
            let mut acc = 0.0;
            for j in 0..d {
                acc += w[c * d + j] * xs[s * d + j];
            }
            z[c] = acc;
        }
        let mut mx = z[0];
        for c in 1..k {
            if z[c] > mx {
                mx = z[c];
            }
        }
        let mut se = 0.0;
        for c in 0..k {
            se += (z[c] - mx).exp();
        }
        loss += se.ln() + mx - z[labels[s]];
    }
    loss / labels.len() as f64
}

/// Hand-derived adjoint, one fused pass per sample with one K-length buffer: the scores
/// z = W x into the buffer, their max m, the label's score, then e_c = exp(z_c − m) over the
/// scores while summing se (in the function's order), the loss term ln se + m − z_y, and finally
/// ∂/∂z_c = (e_c / se − [c = y]) / N added, times x, to row c of the gradient. (The max's own
/// adjoint, 1 − Σ_c e_c / se, is zero.) Returns the loss; `g_w` is overwritten.
pub fn softmax_ce_hand(
    w: &[f64],
    xs: &[f64],
    labels: &[usize],
    d: usize,
    k: usize,
    g_w: &mut [f64],
) -> f64 {
    assert!(
        d >= 1 && k >= 1,
        "softmax needs at least one feature and one class"
    );
    assert_eq!(w.len(), k * d, "weights are not K×D");
    assert_eq!(
        xs.len(),
        labels.len() * d,
        "features do not match the labels"
    );
    assert_eq!(g_w.len(), k * d, "gradient buffer has the wrong length");
    let n = labels.len() as f64;
    g_w.fill(0.0);
    let mut buf = vec![0.0; k];
    let mut loss = 0.0;
    for (x, &y) in xs.chunks_exact(d).zip(labels) {
        for (zc, row) in buf.iter_mut().zip(w.chunks_exact(d)) {
            let mut acc = 0.0;
            for (wj, xj) in row.iter().zip(x) {
                acc += wj * xj;
            }
            *zc = acc;
        }
        let mut mx = buf[0];
        for &zc in &buf[1..] {
            if zc > mx {
                mx = zc;
            }
        }
        let z_y = buf[y];
        let mut se = 0.0;
        for e in buf.iter_mut() {
            *e = (*e - mx).exp();
            se += *e;
        }
        loss += se.ln() + mx - z_y;
        for (c, (e, g_row)) in buf.iter().zip(g_w.chunks_exact_mut(d)).enumerate() {
            let p = e / se - if c == y { 1.0 } else { 0.0 };
            let g_z = p / n;
            for (gj, xj) in g_row.iter_mut().zip(x) {
                *gj += g_z * xj;
            }
        }
    }
    loss / n
}

/// For `num-dual`: the max is chosen on the values, as the function does.
pub fn softmax_ce_num_dual(
    w: &[DualDVec64],
    xs: &[f64],
    labels: &[usize],
    d: usize,
    k: usize,
) -> DualDVec64 {
    let mut z = vec![DualDVec64::from(0.0); k];
    let mut loss = DualDVec64::from(0.0);
    for s in 0..labels.len() {
        for c in 0..k {
            let mut acc = DualDVec64::from(0.0);
            for j in 0..d {
                acc += w[c * d + j].clone() * xs[s * d + j];
            }
            z[c] = acc;
        }
        let mut mx = z[0].clone();
        for c in 1..k {
            if z[c].re > mx.re {
                mx = z[c].clone();
            }
        }
        let mut se = DualDVec64::from(0.0);
        for c in 0..k {
            se += (&z[c] - &mx).exp();
        }
        loss += se.ln() + mx - &z[labels[s]];
    }
    loss / labels.len() as f64
}

/// For `reverse`: the max is chosen on the values, so it is the same score as the function's.
pub fn softmax_ce_reverse<'a>(
    w: &[Var<'a>],
    xs: &[f64],
    labels: &[usize],
    d: usize,
    k: usize,
) -> Var<'a> {
    let tape = w[0].tape;
    let mut z = vec![tape.add_var(0.0); k];
    let mut loss = tape.add_var(0.0);
    for s in 0..labels.len() {
        for c in 0..k {
            let mut acc = tape.add_var(0.0);
            for j in 0..d {
                acc = acc + w[c * d + j] * xs[s * d + j];
            }
            z[c] = acc;
        }
        let mut mx = z[0];
        for c in 1..k {
            if z[c].val() > mx.val() {
                mx = z[c];
            }
        }
        let mut se = tape.add_var(0.0);
        for c in 0..k {
            se = se + (z[c] - mx).exp();
        }
        loss = loss + (se.ln() + mx - z[labels[s]]);
    }
    loss / labels.len() as f64
}

pub struct Softmax {
    pub d: usize,
    pub k: usize,
    /// W, K×D row-major: the active inputs, in parameter order.
    pub w: Vec<f64>,
    /// N samples of D features, row-major.
    pub xs: Vec<f64>,
    /// Labels, in 0..K.
    pub labels: Vec<usize>,
    tape: Tape,
}

impl Softmax {
    /// `d` standard normal features per sample; each label is the argmax of a random linear
    /// teacher's K scores plus noise (so the classes overlap); weights normal × 0.1.
    pub fn new(d: usize, k: usize, samples: usize, seed: u64) -> Self {
        assert!(
            d >= 1 && k >= 1,
            "softmax needs at least one feature and one class"
        );
        let mut rng = Rng::new(seed);
        let w: Vec<f64> = rng.normals(k * d).iter().map(|v| 0.1 * v).collect();
        let teacher = rng.normals(k * d);
        let xs = rng.normals(samples * d);
        let scale = 1.0 / (d as f64).sqrt();
        let labels = xs
            .chunks_exact(d)
            .map(|x| {
                let mut best = (0, f64::NEG_INFINITY);
                for (c, row) in teacher.chunks_exact(d).enumerate() {
                    let z: f64 = row.iter().zip(x).map(|(t, v)| t * v).sum();
                    let score = z * scale + 0.5 * rng.normal();
                    if score > best.1 {
                        best = (c, score);
                    }
                }
                best.0
            })
            .collect();
        Softmax {
            d,
            k,
            w,
            xs,
            labels,
            tape: Tape::new(),
        }
    }

    /// The loss at other weights (for finite differences).
    pub fn value_at(&self, w: &[f64]) -> f64 {
        softmax_ce(w, &self.xs, &self.labels, self.d, self.k)
    }
}

impl Problem for Softmax {
    fn name(&self) -> String {
        format!(
            "softmax cross-entropy D={} K={} N={}",
            self.d,
            self.k,
            self.labels.len()
        )
    }

    fn n_params(&self) -> usize {
        self.k * self.d
    }

    #[inline]
    fn value(&self) -> f64 {
        self.value_at(&self.w)
    }

    #[inline]
    fn generated(&self, g: &mut [f64]) -> Option<f64> {
        {
            let (v, []) = softmax_ce_grad(&self.w, g, &self.xs, &self.labels, self.d, self.k);
            Some(v)
        }
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        softmax_ce_hand(&self.w, &self.xs, &self.labels, self.d, self.k, g)
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = num_dual::gradient(
            |w: DVector<DualDVec64>| {
                softmax_ce_num_dual(w.as_slice(), &self.xs, &self.labels, self.d, self.k)
            },
            &DVector::from_column_slice(&self.w),
        );
        g.copy_from_slice(grad.as_slice());
        v
    }

    fn reverse_tape_nodes(&self) -> usize {
        self.tape.len()
    }

    fn reverse(&self, g: &mut [f64]) -> f64 {
        self.tape.clear();
        let w = self.tape.add_vars(&self.w);
        let f = softmax_ce_reverse(&w, &self.xs, &self.labels, self.d, self.k);
        let grad = f.grad();
        for (gi, wi) in g.iter_mut().zip(&w) {
            *gi = grad.wrt(wi);
        }
        f.val()
    }

    /// A call carries a K·D-entry derivative vector through ~2 N K D operations, so it costs about
    /// 2 N (K D)² derivative operations: about 12 ms at D = 20, K = 10, N = 500; skipped past 10⁹
    /// (half a second or more).
    fn num_dual_feasible(&self) -> bool {
        let kd = self.k * self.d;
        kd * kd * self.labels.len() <= 1_000_000_000
    }
}
