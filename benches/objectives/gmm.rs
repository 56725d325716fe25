//! The ADBench GMM objective (Šrajer, Kukelova, Fitzgibbon 2018, "A benchmark of selected
//! algorithmic differentiation tools on some problems in computer vision and machine learning"):
//! the log-likelihood of N points under a K-component Gaussian mixture in d dimensions, plus a
//! Wishart prior, as ADBench's C++ reference `gmm_objective` computes it:
//!
//! - `alphas` (K): unnormalised log mixture weights;
//! - `means` (K·d): component means, row per component;
//! - `icf` (K·d(d+1)/2): per component, the log of the diagonal of the inverse-Cholesky factor Q,
//!   then its strictly lower part column by column;
//! - `x` (N·d): data, row per point; Wishart parameters γ and m.
//!
//! f = −N d/2 ln 2π + Σᵢ lse_k(α_k + Σ q_k − ½‖Q_k (xᵢ − μ_k)‖²) − N lse(α)
//!     + Σ_k (½ γ² ‖Q_k‖²_F − m Σ q_k) − K C(γ, m, d).

use super::data::Rng;
use super::Problem;
use nalgebra::DVector;
use num_dual::{DualDVec64, DualNum};
use reverse::{Gradient, Tape, Var};
use std::f64::consts::{LN_2, PI};

/// ln Γ_p(a), the log multivariate gamma function (ADBench's `log_gamma_distrib`). Only ever
/// called with data (d and m), so it needs no derivative.
pub fn log_gamma_distrib(a: f64, p: usize) -> f64 {
    let mut out = 0.25 * (p * (p - 1)) as f64 * PI.ln();
    for j in 1..=p {
        out += ln_gamma_half_integer(a + 0.5 * (1.0 - j as f64));
    }
    out
}

/// ln Γ(z) for a positive multiple z of ½, exact up to rounding: Γ(1) = 1, Γ(½) = √π and
/// Γ(t + 1) = t Γ(t). The Wishart constant only needs such arguments.
fn ln_gamma_half_integer(z: f64) -> f64 {
    let twice = (2.0 * z).round();
    assert!(
        twice >= 1.0 && (2.0 * z - twice).abs() < 1e-9,
        "ln Γ({z}): only positive multiples of 1/2 are supported"
    );
    let (mut acc, mut t) = if twice as u64 % 2 == 1 {
        (0.5 * PI.ln(), 0.5)
    } else {
        (0.0, 1.0)
    };
    while t < z - 0.25 {
        acc += t.ln();
        t += 1.0;
    }
    acc
}

/// The Wishart normalising constant C per component (inactive).
fn wishart_constant(d: usize, wishart_gamma: f64, wishart_m: usize) -> f64 {
    let wn = d + wishart_m + 1;
    (wn * d) as f64 * (wishart_gamma.ln() - 0.5 * LN_2) - log_gamma_distrib(0.5 * wn as f64, d)
}

/// As the user writes it: ADBench's reference, with its helpers inlined as index loops over
/// local buffers. The position of Q's entry (r, j), r > j, among the strictly lower part stored
/// column by column is `j (2d − j − 1)/2 + (r − j − 1)`.
#[ad::gradient(wrt(alphas, means, icf))]
#[allow(clippy::too_many_arguments)]
pub fn gmm_objective(
    alphas: &[f64],
    means: &[f64],
    icf: &[f64],
    x: &[f64],
    d: usize,
    k: usize,
    wishart_gamma: f64,
    wishart_m: usize,
) -> f64 {
    let n = x.len() / d;
    let icf_sz = d * (d + 1) / 2;

    let mut qdiags = vec![0.0; d * k];
    let mut sum_qs = vec![0.0; k];
    for c in 0..k {
        for j in 0..d {
            let q = icf[c * icf_sz + j];
            sum_qs[c] += q;
            qdiags[c * d + j] = q.exp();
        }
    }

    let mut xcentered = vec![0.0; d];
    let mut qxcentered = vec![0.0; d];
    let mut main_term = vec![0.0; k];
    let mut slse = 0.0;
    for i in 0..n {
        for c in 0..k {
            for j in 0..d {
                xcentered[j] = x[i * d + j] - means[c * d + j];
            }
            for j in 0..d {
                qxcentered[j] = qdiags[c * d + j] * xcentered[j];
            }
            for j in 0..d {
                for r in j + 1..d {
                    let l = c * icf_sz + d + j * (2 * d - j - 1) / 2 + (r - j - 1);
                    qxcentered[r] += icf[l] * xcentered[j];
                }
            }
            let mut sqnorm = 0.0;
            for j in 0..d {
                sqnorm += qxcentered[j] * qxcentered[j];
            }
            main_term[c] = alphas[c] + sum_qs[c] - 0.5 * sqnorm;
        }
        let mut mx = main_term[0];
        for c in 1..k {
            if main_term[c] > mx {
                mx = main_term[c];
            }
        }
        let mut semx = 0.0;
        for c in 0..k {
            semx += (main_term[c] - mx).exp();
        }
        slse += semx.ln() + mx;
    }

    let mut mx_alpha = alphas[0];
    for c in 1..k {
        if alphas[c] > mx_alpha {
            mx_alpha = alphas[c];
        }
    }
    let mut semx_alpha = 0.0;
    for c in 0..k {
        semx_alpha += (alphas[c] - mx_alpha).exp();
    }
    let lse_alphas = semx_alpha.ln() + mx_alpha;

    let mut prior = 0.0;
    for c in 0..k {
        let mut frobenius = 0.0;
        for j in 0..d {
            frobenius += qdiags[c * d + j] * qdiags[c * d + j];
        }
        for j in d..icf_sz {
            frobenius += icf[c * icf_sz + j] * icf[c * icf_sz + j];
        }
        prior += 0.5 * wishart_gamma * wishart_gamma * frobenius - wishart_m as f64 * sum_qs[c];
    }
    prior -= k as f64 * wishart_constant(d, wishart_gamma, wishart_m);

    let constant = -((n * d) as f64) * 0.5 * (2.0 * PI).ln();
    constant + slse - n as f64 * lse_alphas + prior
}

/// Hand-derived adjoint. With yᵢₖ = Q_k(xᵢ − μ_k), tᵢₖ the main term and wᵢₖ = softmax_k(tᵢₖ):
/// ∂f/∂α_k = Σᵢ wᵢₖ − N softmax(α)_k; ȳᵢₖ = −wᵢₖ yᵢₖ; ∂f/∂μ_k = −Σᵢ Q_kᵀ ȳᵢₖ;
/// ∂f/∂Q_k = Σᵢ ȳᵢₖ (xᵢ − μ_k)ᵀ on the lower triangle (times exp(q) on the diagonal), plus
/// Σᵢ wᵢₖ on the log-diagonal, plus the prior's γ² Q_k and −m.
///
/// Per point, one forward pass over the components keeps each yᵢₖ and xᵢ − μ_k in a K·d buffer,
/// and one reverse pass accumulates every gradient from them; the buffers are sized once.
#[allow(clippy::too_many_arguments)]
pub fn gmm_hand(
    alphas: &[f64],
    means: &[f64],
    icf: &[f64],
    x: &[f64],
    d: usize,
    k: usize,
    wishart_gamma: f64,
    wishart_m: usize,
    g_alphas: &mut [f64],
    g_means: &mut [f64],
    g_icf: &mut [f64],
) -> f64 {
    let icf_sz = d * (d + 1) / 2;
    assert_eq!(alphas.len(), k);
    assert_eq!(means.len(), k * d);
    assert_eq!(icf.len(), k * icf_sz);
    assert_eq!(g_alphas.len(), k);
    assert_eq!(g_means.len(), k * d);
    assert_eq!(g_icf.len(), k * icf_sz);
    let n = x.len() / d;

    let mut qdiags = vec![0.0; k * d];
    let mut sum_qs = vec![0.0; k];
    for c in 0..k {
        let q = &icf[c * icf_sz..c * icf_sz + d];
        sum_qs[c] = q.iter().sum();
        for (qd, qj) in qdiags[c * d..(c + 1) * d].iter_mut().zip(q) {
            *qd = qj.exp();
        }
    }

    g_alphas.fill(0.0);
    g_means.fill(0.0);
    g_icf.fill(0.0);
    let mut xc = vec![0.0; k * d];
    let mut y = vec![0.0; k * d];
    let mut e = vec![0.0; k];
    let mut slse = 0.0;
    for xi in x.chunks_exact(d) {
        // Forward: y = Q (x − μ) and the main term of every component.
        let mut mx = f64::NEG_INFINITY;
        for c in 0..k {
            let qd = &qdiags[c * d..(c + 1) * d];
            let ltri = &icf[c * icf_sz + d..(c + 1) * icf_sz];
            let mu = &means[c * d..(c + 1) * d];
            let xcc = &mut xc[c * d..(c + 1) * d];
            let yc = &mut y[c * d..(c + 1) * d];
            for j in 0..d {
                xcc[j] = xi[j] - mu[j];
                yc[j] = qd[j] * xcc[j];
            }
            let mut off = 0;
            for j in 0..d {
                let len = d - j - 1;
                let xj = xcc[j];
                for (yr, l) in yc[j + 1..].iter_mut().zip(&ltri[off..off + len]) {
                    *yr += l * xj;
                }
                off += len;
            }
            let sq: f64 = yc.iter().map(|v| v * v).sum();
            let t = alphas[c] + sum_qs[c] - 0.5 * sq;
            e[c] = t;
            mx = mx.max(t);
        }
        let mut se = 0.0;
        for ec in e.iter_mut() {
            *ec = (*ec - mx).exp();
            se += *ec;
        }
        slse += se.ln() + mx;

        // Reverse: w = softmax, ȳ = −w y, then Q's and μ's adjoints.
        let inv_se = 1.0 / se;
        for c in 0..k {
            let w = e[c] * inv_se;
            g_alphas[c] += w;
            let qd = &qdiags[c * d..(c + 1) * d];
            let ltri = &icf[c * icf_sz + d..(c + 1) * icf_sz];
            let xcc = &xc[c * d..(c + 1) * d];
            let yb = &mut y[c * d..(c + 1) * d];
            let (g_diag, g_ltri) = g_icf[c * icf_sz..(c + 1) * icf_sz].split_at_mut(d);
            let g_mu = &mut g_means[c * d..(c + 1) * d];
            for v in yb.iter_mut() {
                *v *= -w;
            }
            let mut off = 0;
            for j in 0..d {
                let len = d - j - 1;
                let xj = xcc[j];
                g_diag[j] += yb[j] * xj;
                let mut acc = qd[j] * yb[j];
                for ((gl, l), yr) in g_ltri[off..off + len]
                    .iter_mut()
                    .zip(&ltri[off..off + len])
                    .zip(&yb[j + 1..])
                {
                    *gl += yr * xj;
                    acc += l * yr;
                }
                g_mu[j] -= acc;
                off += len;
            }
        }
    }

    // log-sum-exp of the alphas and its softmax.
    let mx_alpha = alphas.iter().fold(f64::NEG_INFINITY, |m, &a| m.max(a));
    let se_alpha: f64 = alphas.iter().map(|a| (a - mx_alpha).exp()).sum();
    let lse_alphas = se_alpha.ln() + mx_alpha;
    let nf = n as f64;
    let g2 = wishart_gamma * wishart_gamma;
    let mf = wishart_m as f64;

    let mut prior = 0.0;
    for c in 0..k {
        let w_sum = g_alphas[c];
        g_alphas[c] = w_sum - nf * (alphas[c] - lse_alphas).exp();
        let qd = &qdiags[c * d..(c + 1) * d];
        let ltri = &icf[c * icf_sz + d..(c + 1) * icf_sz];
        let (g_diag, g_ltri) = g_icf[c * icf_sz..(c + 1) * icf_sz].split_at_mut(d);
        let mut frobenius = 0.0;
        for (gq, &qdj) in g_diag.iter_mut().zip(qd) {
            frobenius += qdj * qdj;
            *gq = *gq * qdj + w_sum + g2 * qdj * qdj - mf;
        }
        for (gl, &l) in g_ltri.iter_mut().zip(ltri) {
            frobenius += l * l;
            *gl += g2 * l;
        }
        prior += 0.5 * g2 * frobenius - mf * sum_qs[c];
    }
    prior -= k as f64 * wishart_constant(d, wishart_gamma, wishart_m);

    let constant = -((n * d) as f64) * 0.5 * (2.0 * PI).ln();
    constant + slse - nf * lse_alphas + prior
}

/// For `num-dual`: ADBench's structure over dual numbers (each carries the derivative vector of
/// all K + K·d + K·d(d+1)/2 inputs).
#[allow(clippy::too_many_arguments)]
pub fn gmm_num_dual(
    alphas: &[DualDVec64],
    means: &[DualDVec64],
    icf: &[DualDVec64],
    x: &[f64],
    d: usize,
    k: usize,
    wishart_gamma: f64,
    wishart_m: usize,
) -> DualDVec64 {
    let n = x.len() / d;
    let icf_sz = d * (d + 1) / 2;
    let zero = DualDVec64::from(0.0);
    let mut qdiags = vec![zero.clone(); d * k];
    let mut sum_qs = vec![zero.clone(); k];
    for c in 0..k {
        for j in 0..d {
            let q = &icf[c * icf_sz + j];
            sum_qs[c] += q.clone();
            qdiags[c * d + j] = q.exp();
        }
    }
    let mut xcentered = vec![zero.clone(); d];
    let mut qxcentered = vec![zero.clone(); d];
    let mut main_term = vec![zero.clone(); k];
    let mut slse = zero.clone();
    for i in 0..n {
        for c in 0..k {
            for j in 0..d {
                xcentered[j] = -&means[c * d + j] + x[i * d + j];
            }
            for j in 0..d {
                qxcentered[j] = &qdiags[c * d + j] * &xcentered[j];
            }
            for j in 0..d {
                for r in j + 1..d {
                    let l = c * icf_sz + d + j * (2 * d - j - 1) / 2 + (r - j - 1);
                    qxcentered[r] += &icf[l] * &xcentered[j];
                }
            }
            let mut sqnorm = zero.clone();
            for q in &qxcentered {
                sqnorm += q * q;
            }
            main_term[c] = &alphas[c] + &sum_qs[c] - sqnorm * 0.5;
        }
        slse += logsumexp_num_dual(&main_term);
    }
    let lse_alphas = logsumexp_num_dual(alphas);
    let mut prior = zero.clone();
    for c in 0..k {
        let mut frobenius = zero.clone();
        for q in &qdiags[c * d..(c + 1) * d] {
            frobenius += q * q;
        }
        for l in &icf[c * icf_sz + d..(c + 1) * icf_sz] {
            frobenius += l * l;
        }
        prior += frobenius * (0.5 * wishart_gamma * wishart_gamma)
            - sum_qs[c].clone() * wishart_m as f64;
    }
    let constant = -((n * d) as f64) * 0.5 * (2.0 * PI).ln()
        - k as f64 * wishart_constant(d, wishart_gamma, wishart_m);
    slse - lse_alphas * n as f64 + prior + constant
}

fn logsumexp_num_dual(v: &[DualDVec64]) -> DualDVec64 {
    let mut mx = v[0].clone();
    for t in &v[1..] {
        if t.re > mx.re {
            mx = t.clone();
        }
    }
    let mut se = DualDVec64::from(0.0);
    for t in v {
        se += (t - &mx).exp();
    }
    se.ln() + mx
}

/// For `reverse`.
#[allow(clippy::too_many_arguments)]
pub fn gmm_reverse<'a>(
    alphas: &[Var<'a>],
    means: &[Var<'a>],
    icf: &[Var<'a>],
    x: &[f64],
    d: usize,
    k: usize,
    wishart_gamma: f64,
    wishart_m: usize,
) -> Var<'a> {
    let tape = alphas[0].tape;
    let n = x.len() / d;
    let icf_sz = d * (d + 1) / 2;
    let zero = tape.add_var(0.0);
    let mut qdiags = vec![zero; d * k];
    let mut sum_qs = vec![zero; k];
    for c in 0..k {
        for j in 0..d {
            let q = icf[c * icf_sz + j];
            sum_qs[c] = sum_qs[c] + q;
            qdiags[c * d + j] = q.exp();
        }
    }
    let mut xcentered = vec![zero; d];
    let mut qxcentered = vec![zero; d];
    let mut main_term = vec![zero; k];
    let mut slse = zero;
    for i in 0..n {
        for c in 0..k {
            for j in 0..d {
                xcentered[j] = x[i * d + j] - means[c * d + j];
            }
            for j in 0..d {
                qxcentered[j] = qdiags[c * d + j] * xcentered[j];
            }
            for j in 0..d {
                for r in j + 1..d {
                    let l = c * icf_sz + d + j * (2 * d - j - 1) / 2 + (r - j - 1);
                    qxcentered[r] = qxcentered[r] + icf[l] * xcentered[j];
                }
            }
            let mut sqnorm = zero;
            for q in &qxcentered {
                sqnorm = sqnorm + *q * *q;
            }
            main_term[c] = alphas[c] + sum_qs[c] - 0.5 * sqnorm;
        }
        slse = slse + logsumexp_reverse(&main_term);
    }
    let lse_alphas = logsumexp_reverse(alphas);
    let mut prior = zero;
    for c in 0..k {
        let mut frobenius = zero;
        for q in &qdiags[c * d..(c + 1) * d] {
            frobenius = frobenius + *q * *q;
        }
        for l in &icf[c * icf_sz + d..(c + 1) * icf_sz] {
            frobenius = frobenius + *l * *l;
        }
        prior =
            prior + 0.5 * wishart_gamma * wishart_gamma * frobenius - wishart_m as f64 * sum_qs[c];
    }
    let constant = -((n * d) as f64) * 0.5 * (2.0 * PI).ln()
        - k as f64 * wishart_constant(d, wishart_gamma, wishart_m);
    slse - n as f64 * lse_alphas + prior + constant
}

fn logsumexp_reverse<'a>(v: &[Var<'a>]) -> Var<'a> {
    let mut mx = v[0];
    for t in &v[1..] {
        if *t > mx {
            mx = *t;
        }
    }
    let mut se = (v[0] - mx).exp();
    for t in &v[1..] {
        se = se + (*t - mx).exp();
    }
    se.ln() + mx
}

pub struct Gmm {
    pub d: usize,
    pub k: usize,
    pub n: usize,
    /// `alphas`, then `means`, then `icf`: the active inputs, in parameter order.
    pub theta: Vec<f64>,
    pub x: Vec<f64>,
    pub wishart_gamma: f64,
    pub wishart_m: usize,
    tape: Tape,
}

impl Gmm {
    /// Inputs drawn as ADBench's generator draws them (α, icf and x standard normal, μ uniform
    /// in [0, 1)), from our own generator; γ = 1, m = 0 as in ADBench's data files.
    pub fn new(d: usize, k: usize, n: usize, seed: u64) -> Self {
        Self::with_wishart(d, k, n, 1.0, 0, seed)
    }

    pub fn with_wishart(
        d: usize,
        k: usize,
        n: usize,
        wishart_gamma: f64,
        wishart_m: usize,
        seed: u64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let icf_sz = d * (d + 1) / 2;
        let mut theta = rng.normals(k);
        theta.extend(rng.uniforms(k * d, 0.0, 1.0));
        theta.extend(rng.normals(k * icf_sz));
        Gmm {
            d,
            k,
            n,
            theta,
            x: rng.normals(n * d),
            wishart_gamma,
            wishart_m,
            tape: Tape::new(),
        }
    }

    /// `(alphas, means, icf)`.
    pub fn split<'s>(&self, theta: &'s [f64]) -> (&'s [f64], &'s [f64], &'s [f64]) {
        let (alphas, rest) = theta.split_at(self.k);
        let (means, icf) = rest.split_at(self.k * self.d);
        (alphas, means, icf)
    }

    /// `(alphas, means, icf)` of a gradient buffer.
    pub fn split_mut<'s>(&self, g: &'s mut [f64]) -> (&'s mut [f64], &'s mut [f64], &'s mut [f64]) {
        let (alphas, rest) = g.split_at_mut(self.k);
        let (means, icf) = rest.split_at_mut(self.k * self.d);
        (alphas, means, icf)
    }

    /// The objective at other parameters (for finite differences).
    pub fn value_at(&self, theta: &[f64]) -> f64 {
        let (alphas, means, icf) = self.split(theta);
        gmm_objective(
            alphas,
            means,
            icf,
            &self.x,
            self.d,
            self.k,
            self.wishart_gamma,
            self.wishart_m,
        )
    }
}

impl Problem for Gmm {
    fn name(&self) -> String {
        format!("GMM d={} K={} N={}", self.d, self.k, self.n)
    }

    fn n_params(&self) -> usize {
        self.theta.len()
    }

    #[inline]
    fn value(&self) -> f64 {
        self.value_at(&self.theta)
    }

    #[inline]
    fn generated(&self, g: &mut [f64]) -> Option<f64> {
        {
            let (alphas, means, icf) = self.split(&self.theta);
            let (g_alphas, g_means, g_icf) = self.split_mut(g);
            let (v, []) = gmm_objective_grad(
                alphas,
                g_alphas,
                means,
                g_means,
                icf,
                g_icf,
                &self.x,
                self.d,
                self.k,
                self.wishart_gamma,
                self.wishart_m,
            );
            Some(v)
        }
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        let (alphas, means, icf) = self.split(&self.theta);
        let (g_alphas, g_means, g_icf) = self.split_mut(g);
        gmm_hand(
            alphas,
            means,
            icf,
            &self.x,
            self.d,
            self.k,
            self.wishart_gamma,
            self.wishart_m,
            g_alphas,
            g_means,
            g_icf,
        )
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = num_dual::gradient(
            |theta: DVector<DualDVec64>| {
                let (alphas, rest) = theta.as_slice().split_at(self.k);
                let (means, icf) = rest.split_at(self.k * self.d);
                gmm_num_dual(
                    alphas,
                    means,
                    icf,
                    &self.x,
                    self.d,
                    self.k,
                    self.wishart_gamma,
                    self.wishart_m,
                )
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
        let (alphas, rest) = theta.split_at(self.k);
        let (means, icf) = rest.split_at(self.k * self.d);
        let f = gmm_reverse(
            alphas,
            means,
            icf,
            &self.x,
            self.d,
            self.k,
            self.wishart_gamma,
            self.wishart_m,
        );
        let grad = f.grad();
        for (gi, t) in g.iter_mut().zip(&theta) {
            *gi = grad.wrt(t);
        }
        f.val()
    }

    /// Forward mode carries a derivative vector of every input through every operation: at
    /// d = 10, K = 25 that is 1,650 entries through ~10⁷ operations, seconds per call.
    fn num_dual_feasible(&self) -> bool {
        self.theta.len() <= 200
    }
}
