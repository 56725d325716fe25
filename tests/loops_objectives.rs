//! Loops, slices and local buffers under `#[gradient]`, written as a user would write them:
//! objectives over data slices, nested loops with local buffers, `while` loops on active
//! conditions, recurrences, early exits, and calls between `#[gradient]` functions with slice
//! arguments. Every gradient is checked against a closed form where one exists and against
//! central finite differences (`ad::check_gradient`, 1e-5 relative) everywhere.
// Index loops, element-by-element copies and `a = a * b` are the subject under test:
// #[gradient] bodies index slices and buffers, and both assignment forms are exercised.
#![allow(
    clippy::needless_range_loop,
    clippy::manual_memcpy,
    clippy::assign_op_pattern
)]

use ad::gradient;
use approx::assert_relative_eq;

/// Relative tolerance against central finite differences.
const FD_TOL: f64 = 1e-5;

/// Asserts that `grad` is the gradient of `f` at `x` by central finite differences.
#[track_caller]
fn assert_fd(f: impl FnMut(&[f64]) -> f64, x: &[f64], grad: &[f64]) {
    if let Err(e) = ad::check_gradient(f, x, grad, FD_TOL) {
        panic!("{e}\n  at x = {x:?}\n  gradient = {grad:?}");
    }
}

/// Asserts that two gradients agree componentwise to `rel` relative (absolute below 1).
#[track_caller]
fn assert_close(actual: &[f64], expected: &[f64], rel: f64) {
    assert_eq!(actual.len(), expected.len(), "lengths differ");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= rel * e.abs().max(1.0),
            "component {i}: got {a}, expected {e}\n  actual   = {actual:?}\n  expected = {expected:?}"
        );
    }
}

/// A deterministic pseudo-random vector in [lo, hi) (xorshift; no dependency needed).
fn pseudo_random(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Extended Rosenbrock
// ---------------------------------------------------------------------------------------------

#[gradient]
fn rosenbrock(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    s
}

fn rosenbrock_gradient(x: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; x.len()];
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        g[i] += -400.0 * x[i] * a - 2.0 * (1.0 - x[i]);
        g[i + 1] += 200.0 * a;
    }
    g
}

#[test]
fn rosenbrock_matches_closed_form_and_finite_differences() {
    for n in [2, 3, 5, 10, 33] {
        let x = pseudo_random(n, n as u64, -1.5, 1.5);
        let mut g = vec![f64::NAN; n];
        let (v, []) = rosenbrock_grad(&x, &mut g);
        assert_eq!(v, rosenbrock(&x));
        assert_close(&g, &rosenbrock_gradient(&x), 1e-12);
        assert_fd(rosenbrock, &x, &g);
    }
}

#[test]
fn rosenbrock_gradient_vanishes_at_the_minimum() {
    let x = [1.0; 6];
    let mut g = [7.0; 6]; // garbage: the shadow is overwritten, not accumulated into
    assert_eq!(rosenbrock_grad(&x, &mut g), (0.0, []));
    assert_eq!(g, [0.0; 6]);
}

#[test]
fn shadow_is_overwritten_on_every_call() {
    let x = [0.5, -0.3, 1.2];
    let mut g = [0.0; 3];
    rosenbrock_grad(&x, &mut g);
    let first = g;
    rosenbrock_grad(&x, &mut g);
    assert_eq!(g, first);
}

#[test]
#[should_panic(expected = "the shadow of `x` has length 2 but `x` has length 3")]
fn wrong_length_shadow_panics_naming_the_parameter() {
    let x = [0.5, -0.3, 1.2];
    let mut g = [0.0; 2];
    rosenbrock_grad(&x, &mut g);
}

#[test]
#[should_panic(expected = "the shadow of `y` has length 4 but `y` has length 3")]
fn wrong_length_of_second_shadow_names_it() {
    let x = [0.5, -0.3, 1.2];
    let (mut gx, mut gy) = ([0.0; 3], [0.0; 4]);
    dot_grad(&x, &mut gx, &x, &mut gy);
}

#[test]
#[should_panic(expected = "the shadow of `v` has length 2 but `v` has length 4")]
fn wrong_length_of_vec_shadow_names_it() {
    let v = vec![0.5, 2.0, -1.0, 3.5];
    let mut g = [0.0; 2];
    vec_mean_sq_dev_grad(&v, &mut g);
}

// ---------------------------------------------------------------------------------------------
// Dot products: both arguments active, or one of them data
// ---------------------------------------------------------------------------------------------

#[gradient]
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * y[i];
    }
    s
}

#[gradient(wrt(x))]
fn dot_wrt_x(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * y[i];
    }
    s
}

/// A scaled dot product: a scalar and a slice both active, the other slice data.
#[gradient(wrt(alpha, y))]
fn scaled_dot(alpha: f64, x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += alpha * x[i] * y[i];
    }
    s
}

#[test]
fn dot_gradient_is_the_other_vector() {
    let x = [1.0, -2.0, 3.5, 0.25];
    let y = [0.5, 4.0, -1.0, 2.0];
    let (mut gx, mut gy) = ([f64::NAN; 4], [f64::NAN; 4]);
    let (v, []) = dot_grad(&x, &mut gx, &y, &mut gy);
    assert_eq!(v, dot(&x, &y));
    assert_relative_eq!(v, 0.5 - 8.0 - 3.5 + 0.5);
    assert_eq!(gx, y);
    assert_eq!(gy, x);

    let mut gx = [f64::NAN; 4];
    let (v2, []) = dot_wrt_x_grad(&x, &mut gx, &y);
    assert_eq!(v2, dot_wrt_x(&x, &y));
    assert_eq!(v2, v);
    assert_eq!(gx, y);

    let mut gy = [f64::NAN; 4];
    let (v3, [galpha]) = scaled_dot_grad(2.0, &x, &y, &mut gy);
    assert_eq!(v3, scaled_dot(2.0, &x, &y));
    assert_relative_eq!(v3, 2.0 * v);
    assert_relative_eq!(galpha, v);
    for i in 0..4 {
        assert_relative_eq!(gy[i], 2.0 * x[i]);
    }
}

#[test]
fn dot_of_a_vector_with_itself() {
    // Passing the same slice twice: both shadows receive the other argument.
    let x = pseudo_random(7, 3, -2.0, 2.0);
    let (mut g1, mut g2) = (vec![0.0; 7], vec![0.0; 7]);
    let (v, []) = dot_grad(&x, &mut g1, &x, &mut g2);
    assert_relative_eq!(
        v,
        x.iter().map(|a| a * a).sum::<f64>(),
        max_relative = 1e-14
    );
    assert_eq!(g1, x);
    assert_eq!(g2, x);
}

#[test]
fn empty_dot_product_has_empty_gradient() {
    let (mut gx, mut gy) = ([0.0; 0], [0.0; 0]);
    assert_eq!(dot_grad(&[], &mut gx, &[], &mut gy), (0.0, []));
}

// ---------------------------------------------------------------------------------------------
// Least squares over data slices
// ---------------------------------------------------------------------------------------------

/// Mean squared residual of a linear model `w · a_i + b` on rows `a_i` of `a` (row-major,
/// `n_features` columns) against targets `y`.
#[gradient(wrt(w, b))]
fn least_squares(w: &[f64], b: f64, a: &[f64], y: &[f64], n_features: usize) -> f64 {
    let n = y.len();
    let mut loss = 0.0;
    for i in 0..n {
        let mut pred = b;
        for j in 0..n_features {
            pred += w[j] * a[i * n_features + j];
        }
        let r = pred - y[i];
        loss += r * r;
    }
    loss / n as f64
}

#[test]
fn least_squares_gradient_is_the_normal_equation_residual() {
    let (n, p) = (12, 3);
    let a = pseudo_random(n * p, 11, -1.0, 1.0);
    let y = pseudo_random(n, 12, -2.0, 2.0);
    let w = [0.3, -0.7, 1.1];
    let b = 0.2;
    let mut gw = [f64::NAN; 3];
    let (v, [gb]) = least_squares_grad(&w, &mut gw, b, &a, &y, p);
    assert_eq!(v, least_squares(&w, b, &a, &y, p));

    // Closed form: ∂/∂w = (2/n) Aᵀ r, ∂/∂b = (2/n) Σ r.
    let mut ew = [0.0; 3];
    let mut eb = 0.0;
    for i in 0..n {
        let r = b + (0..p).map(|j| w[j] * a[i * p + j]).sum::<f64>() - y[i];
        for j in 0..p {
            ew[j] += 2.0 * r * a[i * p + j] / n as f64;
        }
        eb += 2.0 * r / n as f64;
    }
    assert_close(&gw, &ew, 1e-12);
    assert_relative_eq!(gb, eb, max_relative = 1e-12);

    let mut theta = w.to_vec();
    theta.push(b);
    let mut grad = gw.to_vec();
    grad.push(gb);
    assert_fd(|t| least_squares(&t[..3], t[3], &a, &y, p), &theta, &grad);
}

// ---------------------------------------------------------------------------------------------
// A two-layer tanh MLP: weights flat in a slice, hidden activations in a local buffer
// ---------------------------------------------------------------------------------------------

/// Layout of `w`: W1 (n_hidden × n_in, row-major), b1 (n_hidden), w2 (n_hidden), b2 (1).
fn mlp_n_params(n_in: usize, n_hidden: usize) -> usize {
    n_hidden * n_in + 2 * n_hidden + 1
}

/// Mean squared error of `x ↦ w2 · tanh(W1 x + b1) + b2` over the samples (rows of `x`).
#[gradient(wrt(w))]
fn mlp_loss(w: &[f64], x: &[f64], y: &[f64], n_in: usize, n_hidden: usize) -> f64 {
    let n_samples = y.len();
    let b1 = n_hidden * n_in;
    let w2 = b1 + n_hidden;
    let b2 = w2 + n_hidden;
    let mut hidden = vec![0.0; n_hidden];
    let mut loss = 0.0;
    for s in 0..n_samples {
        for h in 0..n_hidden {
            let mut z = w[b1 + h];
            for i in 0..n_in {
                z += w[h * n_in + i] * x[s * n_in + i];
            }
            hidden[h] = z.tanh();
        }
        let mut out = w[b2];
        for h in 0..n_hidden {
            out += w[w2 + h] * hidden[h];
        }
        let e = out - y[s];
        loss += e * e;
    }
    loss / n_samples as f64
}

/// The same network with the hidden layer in a fixed-size array.
#[gradient(wrt(w))]
fn mlp_loss_array(w: &[f64], x: &[f64], y: &[f64]) -> f64 {
    let n_in = 2;
    let n_hidden = 4;
    let b1 = n_hidden * n_in;
    let w2 = b1 + n_hidden;
    let b2 = w2 + n_hidden;
    let mut hidden = [0.0; 4];
    let mut loss = 0.0;
    for s in 0..y.len() {
        for h in 0..n_hidden {
            let mut z = w[b1 + h];
            for i in 0..n_in {
                z += w[h * n_in + i] * x[s * n_in + i];
            }
            hidden[h] = z.tanh();
        }
        let mut out = w[b2];
        for h in 0..n_hidden {
            out += w[w2 + h] * hidden[h];
        }
        loss += (out - y[s]).powi(2);
    }
    loss / y.len() as f64
}

/// Hand-written backpropagation for [`mlp_loss`].
fn mlp_backprop(w: &[f64], x: &[f64], y: &[f64], n_in: usize, n_hidden: usize) -> Vec<f64> {
    let (b1, w2, b2) = (
        n_hidden * n_in,
        n_hidden * n_in + n_hidden,
        n_hidden * n_in + 2 * n_hidden,
    );
    let n = y.len();
    let mut g = vec![0.0; w.len()];
    for s in 0..n {
        let xs = &x[s * n_in..(s + 1) * n_in];
        let hid: Vec<f64> = (0..n_hidden)
            .map(|h| (w[b1 + h] + (0..n_in).map(|i| w[h * n_in + i] * xs[i]).sum::<f64>()).tanh())
            .collect();
        let out = w[b2] + (0..n_hidden).map(|h| w[w2 + h] * hid[h]).sum::<f64>();
        let e_bar = 2.0 * (out - y[s]) / n as f64;
        g[b2] += e_bar;
        for h in 0..n_hidden {
            g[w2 + h] += e_bar * hid[h];
            let z_bar = e_bar * w[w2 + h] * (1.0 - hid[h] * hid[h]);
            g[b1 + h] += z_bar;
            for i in 0..n_in {
                g[h * n_in + i] += z_bar * xs[i];
            }
        }
    }
    g
}

#[test]
fn mlp_gradient_is_backpropagation() {
    for (n_in, n_hidden, n_samples, seed) in [(2, 4, 6, 1), (3, 5, 10, 2), (1, 1, 1, 3)] {
        let w = pseudo_random(mlp_n_params(n_in, n_hidden), seed, -1.0, 1.0);
        let x = pseudo_random(n_samples * n_in, seed + 100, -2.0, 2.0);
        let y = pseudo_random(n_samples, seed + 200, -1.0, 1.0);
        let mut g = vec![f64::NAN; w.len()];
        let (v, []) = mlp_loss_grad(&w, &mut g, &x, &y, n_in, n_hidden);
        assert_eq!(v, mlp_loss(&w, &x, &y, n_in, n_hidden));
        assert_close(&g, &mlp_backprop(&w, &x, &y, n_in, n_hidden), 1e-12);
        assert_fd(|t| mlp_loss(t, &x, &y, n_in, n_hidden), &w, &g);
    }
}

#[test]
fn mlp_with_array_buffer_matches_vec_buffer() {
    let w = pseudo_random(mlp_n_params(2, 4), 9, -1.0, 1.0);
    let x = pseudo_random(16, 10, -2.0, 2.0);
    let y = pseudo_random(8, 11, -1.0, 1.0);
    let (mut g1, mut g2) = (vec![0.0; w.len()], vec![0.0; w.len()]);
    let (v1, []) = mlp_loss_grad(&w, &mut g1, &x, &y, 2, 4);
    let (v2, []) = mlp_loss_array_grad(&w, &mut g2, &x, &y);
    assert_relative_eq!(v1, v2, max_relative = 1e-14);
    assert_close(&g2, &g1, 1e-12);
    assert_fd(|t| mlp_loss_array(t, &x, &y), &w, &g2);
}

// ---------------------------------------------------------------------------------------------
// ADBench Gaussian mixture model (Šrajer, Kukelova, Fitzgibbon 2018)
// ---------------------------------------------------------------------------------------------

/// ln Γ(z) for z a positive multiple of ½ (all the Wishart constant needs): Γ(1) = 1,
/// Γ(½) = √π, Γ(t + 1) = t Γ(t). A plain function: called with data only, it needs no derivative.
fn ln_gamma_half(z: f64) -> f64 {
    let (mut acc, mut t) = if z.fract() == 0.0 {
        (0.0, 1.0)
    } else {
        (0.5 * std::f64::consts::PI.ln(), 0.5)
    };
    while t < z - 0.25 {
        acc += t.ln();
        t += 1.0;
    }
    acc
}

/// ln Γ_p(a), the log multivariate gamma function.
fn ln_multigamma(a: f64, p: usize) -> f64 {
    let mut out = 0.25 * (p * (p - 1)) as f64 * std::f64::consts::PI.ln();
    for j in 1..=p {
        out += ln_gamma_half(a + 0.5 * (1.0 - j as f64));
    }
    out
}

/// The GMM negative-free log-likelihood of ADBench: `alphas` (K), `means` (K·d), `icf`
/// (K·d(d+1)/2: log-diagonal of the inverse Cholesky factor Q, then its strictly lower part
/// column by column), data `x` (N·d), Wishart prior (γ, m).
#[gradient(wrt(alphas, means, icf))]
#[allow(clippy::too_many_arguments)]
fn gmm_objective(
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
    let mut sum_qs = vec![0.0; k];
    for c in 0..k {
        for j in 0..d {
            sum_qs[c] += icf[c * icf_sz + j];
        }
    }
    let mut xc = vec![0.0; d];
    let mut qxc = vec![0.0; d];
    let mut main_term = vec![0.0; k];
    let mut slse = 0.0;
    for i in 0..n {
        for c in 0..k {
            for j in 0..d {
                xc[j] = x[i * d + j] - means[c * d + j];
            }
            // Q (x − μ): diagonal exp(q), then the strictly lower part.
            for j in 0..d {
                qxc[j] = icf[c * icf_sz + j].exp() * xc[j];
            }
            let mut l = c * icf_sz + d;
            for j in 0..d {
                for r in j + 1..d {
                    qxc[r] += icf[l] * xc[j];
                    l += 1;
                }
            }
            let mut sqnorm = 0.0;
            for j in 0..d {
                sqnorm += qxc[j] * qxc[j];
            }
            main_term[c] = alphas[c] + sum_qs[c] - 0.5 * sqnorm;
        }
        // log-sum-exp, shifted by the maximum.
        let mut mx = main_term[0];
        for c in 1..k {
            mx = mx.max(main_term[c]);
        }
        let mut se = 0.0;
        for c in 0..k {
            se += (main_term[c] - mx).exp();
        }
        slse += se.ln() + mx;
    }
    let mut mx = alphas[0];
    for c in 1..k {
        if alphas[c] > mx {
            mx = alphas[c];
        }
    }
    let mut se = 0.0;
    for c in 0..k {
        se += (alphas[c] - mx).exp();
    }
    let lse_alphas = se.ln() + mx;

    // Wishart prior.
    let wn = d + wishart_m + 1;
    let ln2 = 2.0_f64.ln();
    let big_c =
        (wn * d) as f64 * (wishart_gamma.ln() - 0.5 * ln2) - ln_multigamma(0.5 * wn as f64, d);
    let mut prior = 0.0;
    for c in 0..k {
        let mut frob = 0.0;
        for j in 0..d {
            let q = icf[c * icf_sz + j].exp();
            frob += q * q;
        }
        for j in d..icf_sz {
            frob += icf[c * icf_sz + j] * icf[c * icf_sz + j];
        }
        prior += 0.5 * wishart_gamma * wishart_gamma * frob - wishart_m as f64 * sum_qs[c];
    }
    prior -= k as f64 * big_c;

    let constant = -((n * d) as f64) * 0.5 * (2.0 * std::f64::consts::PI).ln();
    constant + slse - n as f64 * lse_alphas + prior
}

struct GmmData {
    alphas: Vec<f64>,
    means: Vec<f64>,
    icf: Vec<f64>,
    x: Vec<f64>,
}

fn gmm_data(d: usize, k: usize, n: usize, seed: u64) -> GmmData {
    GmmData {
        alphas: pseudo_random(k, seed, -1.0, 1.0),
        means: pseudo_random(k * d, seed + 1, -1.0, 1.0),
        icf: pseudo_random(k * d * (d + 1) / 2, seed + 2, -0.5, 0.5),
        x: pseudo_random(n * d, seed + 3, -1.5, 1.5),
    }
}

fn gmm_grad_flat(p: &GmmData, d: usize, k: usize, gamma: f64, m: usize) -> (f64, Vec<f64>) {
    let mut ga = vec![f64::NAN; p.alphas.len()];
    let mut gm = vec![f64::NAN; p.means.len()];
    let mut gi = vec![f64::NAN; p.icf.len()];
    let (v, []) = gmm_objective_grad(
        &p.alphas, &mut ga, &p.means, &mut gm, &p.icf, &mut gi, &p.x, d, k, gamma, m,
    );
    (v, [ga, gm, gi].concat())
}

#[test]
fn gmm_matches_finite_differences() {
    let (d, k, n) = (2, 3, 10);
    for (seed, gamma, m) in [(1, 1.0, 0), (7, 0.6, 2), (13, 2.5, 1)] {
        let p = gmm_data(d, k, n, seed);
        let (v, g) = gmm_grad_flat(&p, d, k, gamma, m);
        assert_eq!(
            v,
            gmm_objective(&p.alphas, &p.means, &p.icf, &p.x, d, k, gamma, m)
        );
        let (na, nm) = (p.alphas.len(), p.means.len());
        let theta = [p.alphas.clone(), p.means.clone(), p.icf.clone()].concat();
        let f = |t: &[f64]| {
            gmm_objective(
                &t[..na],
                &t[na..na + nm],
                &t[na + nm..],
                &p.x,
                d,
                k,
                gamma,
                m,
            )
        };
        assert_fd(f, &theta, &g);
        // The objective only depends on the differences of the alphas.
        let sum: f64 = g[..na].iter().sum();
        assert!(sum.abs() < 1e-12, "Σ ∂f/∂α = {sum}");
    }
}

#[test]
fn gmm_in_three_dimensions_matches_finite_differences() {
    let (d, k, n) = (3, 2, 5);
    let p = gmm_data(d, k, n, 21);
    let (_, g) = gmm_grad_flat(&p, d, k, 1.0, 0);
    let (na, nm) = (p.alphas.len(), p.means.len());
    let theta = [p.alphas.clone(), p.means.clone(), p.icf.clone()].concat();
    let f = |t: &[f64]| gmm_objective(&t[..na], &t[na..na + nm], &t[na + nm..], &p.x, d, k, 1.0, 0);
    assert_fd(f, &theta, &g);
}

#[test]
fn gmm_with_one_component_is_a_gaussian() {
    // K = 1: ∂f/∂μ = Σᵢ QᵀQ (xᵢ − μ), which vanishes at the sample mean; ∂f/∂α = 0.
    let (d, k, n) = (2, 1, 10);
    let mut p = gmm_data(d, k, n, 5);
    for j in 0..d {
        p.means[j] = (0..n).map(|i| p.x[i * d + j]).sum::<f64>() / n as f64;
    }
    let (_, g) = gmm_grad_flat(&p, d, k, 1.0, 0);
    assert!(g[0].abs() < 1e-12, "∂f/∂α = {}", g[0]);
    assert!(
        g[1].abs() < 1e-12 && g[2].abs() < 1e-12,
        "∂f/∂μ = {:?}",
        &g[1..3]
    );

    // Value: the Gaussian log-density with precision QᵀQ, plus the prior.
    let q = &p.icf;
    let (l00, l11, l10) = (q[0].exp(), q[1].exp(), q[2]);
    let mut loglik = 0.0;
    for i in 0..n {
        let (a, b) = (p.x[2 * i] - p.means[0], p.x[2 * i + 1] - p.means[1]);
        let (y0, y1) = (l00 * a, l10 * a + l11 * b);
        loglik += q[0] + q[1] - 0.5 * (y0 * y0 + y1 * y1) - (2.0 * std::f64::consts::PI).ln();
    }
    let frob = l00 * l00 + l11 * l11 + l10 * l10;
    let wn = 3.0;
    let big_c = wn * 2.0 * (-0.5 * 2.0_f64.ln()) - ln_multigamma(1.5, 2);
    let expected = loglik + 0.5 * frob - big_c;
    let v = gmm_objective(&p.alphas, &p.means, &p.icf, &p.x, d, k, 1.0, 0);
    assert_relative_eq!(v, expected, max_relative = 1e-12);
}

// ---------------------------------------------------------------------------------------------
// `while` loops: explicit Euler integration to a final time
// ---------------------------------------------------------------------------------------------

/// y' = −k y by explicit Euler up to `t_end`; the time `t` is active (it depends on `dt`).
#[gradient]
fn euler_decay(k: f64, y0: f64, dt: f64, t_end: f64) -> f64 {
    let mut t = 0.0;
    let mut y = y0;
    while t < t_end {
        y += dt * (-k * y);
        t += dt;
    }
    y
}

/// The same with the time inactive: only the rate and initial value are differentiated.
#[gradient(wrt(k, y0))]
fn euler_decay_data_time(k: f64, y0: f64, dt: f64, t_end: f64) -> f64 {
    let mut t = 0.0;
    let mut y = y0;
    while t < t_end {
        y -= dt * k * y;
        t += dt;
    }
    y
}

/// Logistic growth y' = r y (1 − y) by Euler: a nonlinear loop-carried state.
#[gradient(wrt(r, y0))]
fn euler_logistic(r: f64, y0: f64, dt: f64, t_end: f64) -> f64 {
    let mut t = 0.0;
    let mut y = y0;
    while t < t_end {
        y = y + dt * r * y * (1.0 - y);
        t = t + dt;
    }
    y
}

/// The Euler step count the loops above take (t accumulates in floating point).
fn euler_steps(dt: f64, t_end: f64) -> i32 {
    let mut t = 0.0;
    let mut n = 0;
    while t < t_end {
        t += dt;
        n += 1;
    }
    n
}

#[test]
fn euler_decay_matches_closed_form() {
    let (k, y0, dt, t_end) = (0.8, 1.7, 0.013, 1.0);
    let n = euler_steps(dt, t_end);
    assert_eq!(n, 77);
    let f = 1.0 - k * dt;
    let (v, g) = euler_decay_grad(k, y0, dt, t_end);
    assert_eq!(v, euler_decay(k, y0, dt, t_end));
    assert_relative_eq!(v, y0 * f.powi(n), max_relative = 1e-12);
    let expected = [
        -y0 * n as f64 * f.powi(n - 1) * dt,
        f.powi(n),
        -y0 * n as f64 * f.powi(n - 1) * k,
        0.0, // the trip count is piecewise constant in t_end
    ];
    assert_close(&g, &expected, 1e-12);
    assert_fd(
        |p| euler_decay(p[0], p[1], p[2], p[3]),
        &[k, y0, dt, t_end],
        &g,
    );

    let (v2, g2) = euler_decay_data_time_grad(k, y0, dt, t_end);
    assert_eq!(v2, euler_decay_data_time(k, y0, dt, t_end));
    assert_close(&g2, &expected[..2], 1e-12);
}

#[test]
fn euler_with_zero_steps_is_the_identity() {
    let (v, g) = euler_decay_grad(0.8, 1.7, 0.1, -1.0);
    assert_eq!((v, g), (1.7, [0.0, 1.0, 0.0, 0.0]));
}

#[test]
fn euler_logistic_matches_finite_differences_and_tangents() {
    let (r, y0, dt, t_end) = (1.3, 0.1, 0.0123, 2.0);
    let (v, g) = euler_logistic_grad(r, y0, dt, t_end);
    assert_eq!(v, euler_logistic(r, y0, dt, t_end));
    assert_fd(|p| euler_logistic(p[0], p[1], dt, t_end), &[r, y0], &g);
    // Forward-mode tangents by hand.
    let (mut y, mut dr, mut dy0) = (y0, 0.0, 1.0);
    for _ in 0..euler_steps(dt, t_end) {
        let dfdy = 1.0 + dt * r * (1.0 - 2.0 * y);
        dr = dfdy * dr + dt * y * (1.0 - y);
        dy0 *= dfdy;
        y += dt * r * y * (1.0 - y);
    }
    assert_eq!(v, y);
    assert_close(&g, &[dr, dy0], 1e-12);
}

// ---------------------------------------------------------------------------------------------
// `while` on an active condition
// ---------------------------------------------------------------------------------------------

/// Halve until below 1, then a smooth function of what is left: piecewise smooth in x.
#[gradient]
fn halve_until_small(x: f64) -> f64 {
    let mut y = x;
    let mut scale = 1.0;
    while y > 1.0 {
        y = 0.5 * y;
        scale = scale * 1.1;
    }
    scale * y * y
}

/// Bisection-free Newton square root with a `while` on the residual (active condition).
#[gradient]
fn newton_sqrt(a: f64) -> f64 {
    let mut x = a.max(1.0);
    while (x * x - a).abs() > 1e-15 * a {
        x = 0.5 * (x + a / x);
    }
    x
}

#[test]
fn while_on_active_condition() {
    for x in [0.3, 1.7, 5.3, 100.7] {
        let (v, [g]) = halve_until_small_grad(x);
        assert_eq!(v, halve_until_small(x));
        let mut y = x;
        let mut k = 0;
        while y > 1.0 {
            y *= 0.5;
            k += 1;
        }
        // scale · (x / 2^k)²  ⇒  derivative 2 · scale · x / 4^k
        let expected = 2.0 * 1.1_f64.powi(k) * x / 4.0_f64.powi(k);
        assert_relative_eq!(g, expected, max_relative = 1e-12);
        assert_fd(|p| halve_until_small(p[0]), &[x], &[g]);
    }
}

#[test]
fn newton_sqrt_gradient_is_half_the_inverse_root() {
    for a in [0.25, 2.0, 9.0, 1e4] {
        let (v, [g]) = newton_sqrt_grad(a);
        assert_eq!(v, newton_sqrt(a));
        assert_relative_eq!(v, a.sqrt(), max_relative = 1e-14);
        assert_relative_eq!(g, 0.5 / a.sqrt(), max_relative = 1e-9);
    }
}

// ---------------------------------------------------------------------------------------------
// Recurrences
// ---------------------------------------------------------------------------------------------

#[gradient]
fn logistic_map(x0: f64, r: f64, steps: usize) -> f64 {
    let mut x = x0;
    for _ in 0..steps {
        x = r * x * (1.0 - x);
    }
    x
}

/// Forward-mode tangents of the logistic map, by hand.
fn logistic_tangents(x0: f64, r: f64, steps: usize) -> (f64, [f64; 2]) {
    let (mut x, mut dx0, mut dr) = (x0, 1.0, 0.0);
    for _ in 0..steps {
        let dfdx = r * (1.0 - 2.0 * x);
        dr = dfdx * dr + x * (1.0 - x);
        dx0 *= dfdx;
        x = r * x * (1.0 - x);
    }
    (x, [dx0, dr])
}

#[test]
fn logistic_map_matches_tangents_and_finite_differences() {
    for (x0, r, steps) in [
        (0.3, 2.5, 20),
        (0.7, 3.2, 15),
        (0.1, 1.5, 50),
        (0.4, 3.0, 0),
        (0.4, 3.0, 1),
    ] {
        let (v, g) = logistic_map_grad(x0, r, steps);
        assert_eq!(v, logistic_map(x0, r, steps));
        let (tv, tg) = logistic_tangents(x0, r, steps);
        assert_eq!(v, tv);
        assert_close(&g, &tg, 1e-12);
        assert_fd(|p| logistic_map(p[0], p[1], steps), &[x0, r], &g);
    }
}

/// A second-order linear recurrence with active coefficients: x_{k+1} = a x_k + b x_{k−1}.
#[gradient(wrt(a, b))]
fn fibonacci_like(a: f64, b: f64, n: usize) -> f64 {
    let mut prev = 0.0;
    let mut cur = 1.0;
    for _ in 0..n {
        let next = a * cur + b * prev;
        prev = cur;
        cur = next;
    }
    cur
}

#[test]
fn second_order_recurrence() {
    // a = b = 1: Fibonacci numbers.
    assert_eq!(fibonacci_like(1.0, 1.0, 10), 89.0);
    let (v, g) = fibonacci_like_grad(1.0, 1.0, 10);
    assert_eq!(v, 89.0);
    assert_fd(|p| fibonacci_like(p[0], p[1], 10), &[1.0, 1.0], &g);
    let (_, g) = fibonacci_like_grad(0.7, -0.4, 25);
    assert_fd(|p| fibonacci_like(p[0], p[1], 25), &[0.7, -0.4], &g);
}

// ---------------------------------------------------------------------------------------------
// Local buffers overwritten in place
// ---------------------------------------------------------------------------------------------

/// Prefix sums written into a local `Vec`, then a nonlinear read-back.
#[gradient]
fn prefix_sum_energy(x: &[f64]) -> f64 {
    let n = x.len();
    let mut c = vec![0.0; n];
    c[0] = x[0];
    for i in 1..n {
        c[i] = c[i - 1] + x[i];
    }
    let mut s = 0.0;
    for i in 0..n {
        s += c[i] * c[i];
    }
    s
}

#[test]
fn prefix_sum_gradient() {
    let x = [0.5, -1.0, 2.0, 0.25, -0.75];
    let mut g = [f64::NAN; 5];
    let (v, []) = prefix_sum_energy_grad(&x, &mut g);
    assert_eq!(v, prefix_sum_energy(&x));
    // ∂/∂x_j Σ_i c_i² = 2 Σ_{i ≥ j} c_i
    let mut c = x;
    for i in 1..5 {
        c[i] += c[i - 1];
    }
    let expected: Vec<f64> = (0..5).map(|j| 2.0 * c[j..].iter().sum::<f64>()).collect();
    assert_close(&g, &expected, 1e-14);
    assert_fd(prefix_sum_energy, &x, &g);
}

/// Gauss–Seidel smoothing passes on a fixed-size buffer, updated in place (each update reads an
/// element already overwritten in the same pass), then a nonlinear functional.
#[gradient]
fn smooth_in_place(x: &[f64; 6], passes: usize) -> f64 {
    let mut b = [0.0; 6];
    for i in 0..6 {
        b[i] = x[i];
    }
    for _ in 0..passes {
        for i in 1..5 {
            b[i] = 0.25 * b[i - 1] + 0.5 * b[i] + 0.25 * b[i + 1];
        }
    }
    let mut s = 0.0;
    for i in 0..6 {
        s += b[i].sin() * b[i];
    }
    s
}

/// Nonlinear in-place update: each element becomes a product with its (already updated) left
/// neighbour, so the overwritten values are needed by the reverse sweep.
#[gradient]
fn nonlinear_in_place(x: &[f64], passes: usize) -> f64 {
    let n = x.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = x[i];
    }
    for _ in 0..passes {
        for i in 1..n {
            b[i] = b[i] * (1.0 + 0.1 * b[i - 1]).tanh();
        }
        b[0] = b[0] * b[n - 1];
    }
    let mut s = 0.0;
    for i in 0..n {
        s += b[i];
    }
    s
}

#[test]
fn smoothing_passes_match_finite_differences() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4, 1.1];
    for passes in [0, 1, 3, 10] {
        let mut g = [f64::NAN; 6];
        let (v, []) = smooth_in_place_grad(&x, &mut g, passes);
        assert_eq!(v, smooth_in_place(&x, passes));
        let f = |p: &[f64]| smooth_in_place(p.try_into().unwrap(), passes);
        assert_fd(f, &x, &g);
    }
}

#[test]
fn nonlinear_in_place_matches_finite_differences() {
    let x = pseudo_random(7, 77, -1.0, 1.5);
    for passes in [1, 2, 5] {
        let mut g = vec![f64::NAN; 7];
        let (v, []) = nonlinear_in_place_grad(&x, &mut g, passes);
        assert_eq!(v, nonlinear_in_place(&x, passes));
        assert_fd(|p| nonlinear_in_place(p, passes), &x, &g);
    }
}

/// A small literal buffer `[a, b, c]` with active entries, overwritten and read back.
#[gradient]
fn literal_buffer(a: f64, b: f64, c: f64) -> f64 {
    let mut v = [a, b * b, c];
    for i in 0..3 {
        v[i] = v[i] * v[(i + 1) % 3];
    }
    v[0] + v[1] + v[2]
}

#[test]
fn literal_buffer_gradient() {
    let (a, b, c) = (0.7, -1.3, 2.1);
    let (v, g) = literal_buffer_grad(a, b, c);
    assert_eq!(v, literal_buffer(a, b, c));
    // v0 = a b², v1 = b² c, v2 = c · v0 = a b² c  ⇒  f = a b² + b² c + a b² c
    let b2 = b * b;
    assert_relative_eq!(v, a * b2 + b2 * c + a * b2 * c, max_relative = 1e-14);
    let expected = [b2 + b2 * c, 2.0 * b * (a + c + a * c), b2 + a * b2];
    assert_close(&g, &expected, 1e-14);
}

// ---------------------------------------------------------------------------------------------
// `loop` with `break`: a fixed-point iteration to a tolerance
// ---------------------------------------------------------------------------------------------

/// The fixed point of x = c cos x, iterated until the step is below a tolerance.
#[gradient]
fn cos_fixed_point(c: f64) -> f64 {
    let mut x: f64 = 0.0;
    loop {
        let next = c * x.cos();
        if (next - x).abs() < 1e-14 {
            break;
        }
        x = next;
    }
    x
}

/// `loop` with a counter and a `break` on a maximum count.
#[gradient]
fn damped_power(x: f64, n: usize) -> f64 {
    let mut k = 0;
    let mut y = 1.0;
    loop {
        if k == n {
            break;
        }
        y = y * x + 0.1 * y.sin();
        k += 1;
    }
    y
}

#[test]
fn fixed_point_gradient_is_the_implicit_derivative() {
    for c in [0.3, 0.5, 0.7] {
        let (x, [g]) = cos_fixed_point_grad(c);
        assert_eq!(x, cos_fixed_point(c));
        assert!((x - c * x.cos()).abs() < 1e-13);
        // x = c cos x  ⇒  dx/dc = cos x / (1 + c sin x)
        assert_relative_eq!(g, x.cos() / (1.0 + c * x.sin()), max_relative = 1e-10);
        assert_fd(|p| cos_fixed_point(p[0]), &[c], &[g]);
    }
}

#[test]
fn loop_with_counted_break() {
    for n in [0, 1, 4] {
        let (v, [g]) = damped_power_grad(0.9, n);
        assert_eq!(v, damped_power(0.9, n));
        assert_fd(|p| damped_power(p[0], n), &[0.9], &[g]);
    }
}

// ---------------------------------------------------------------------------------------------
// `continue`, early `return` and branches inside loops
// ---------------------------------------------------------------------------------------------

/// Negative log-likelihood of positive samples under an exponential distribution with rate
/// `exp(log_rate)`; non-positive samples (missing data) are skipped with `continue`.
#[gradient(wrt(log_rate))]
fn exp_nll_skipping(log_rate: f64, samples: &[f64]) -> f64 {
    let rate = log_rate.exp();
    let mut nll = 0.0;
    for i in 0..samples.len() {
        if samples[i] <= 0.0 {
            continue;
        }
        nll += rate * samples[i] - log_rate;
    }
    nll
}

/// `continue` on an active condition: only terms above a threshold contribute.
#[gradient]
fn sum_of_large_squares(x: &[f64], threshold: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        if x[i].abs() < threshold {
            continue;
        }
        s += x[i] * x[i] - threshold * x[i];
    }
    s
}

/// `continue` on the index: every third sample is held out.
#[gradient]
fn holdout_loss(w: f64, x: &[f64]) -> f64 {
    let mut loss = 0.0;
    for i in 0..x.len() {
        if i % 3 == 2 {
            continue;
        }
        let r = w * x[i] - 1.0;
        loss += r * r;
    }
    loss
}

#[test]
fn continue_skips_samples() {
    let samples = [0.5, -1.0, 2.0, 0.0, 1.5, -3.0, 0.25];
    let (v, [g]) = exp_nll_skipping_grad(0.3, &samples);
    assert_eq!(v, exp_nll_skipping(0.3, &samples));
    let kept: Vec<f64> = samples.iter().copied().filter(|&s| s > 0.0).collect();
    let expected = 0.3_f64.exp() * kept.iter().sum::<f64>() - kept.len() as f64;
    assert_relative_eq!(g, expected, max_relative = 1e-14);

    let x = [0.5, -2.0, 0.1, 3.0, -0.05, 1.2];
    let mut gx = [f64::NAN; 6];
    let (v, [gt]) = sum_of_large_squares_grad(&x, &mut gx, 0.3);
    assert_eq!(v, sum_of_large_squares(&x, 0.3));
    let mut ex = [0.0; 6];
    let mut et = 0.0;
    for i in 0..6 {
        if x[i].abs() >= 0.3 {
            ex[i] = 2.0 * x[i] - 0.3;
            et -= x[i];
        }
    }
    assert_close(&gx, &ex, 1e-14);
    assert_relative_eq!(gt, et, max_relative = 1e-14);
    let mut theta = x.to_vec();
    theta.push(0.3);
    let mut grad = gx.to_vec();
    grad.push(gt);
    assert_fd(|p| sum_of_large_squares(&p[..6], p[6]), &theta, &grad);

    let mut gh = [f64::NAN; 6];
    let (v, [gw]) = holdout_loss_grad(0.8, &x, &mut gh);
    assert_eq!(v, holdout_loss(0.8, &x));
    let mut theta = vec![0.8];
    theta.extend_from_slice(&x);
    let mut grad = vec![gw];
    grad.extend_from_slice(&gh);
    assert_fd(|p| holdout_loss(p[0], &p[1..]), &theta, &grad);
    assert_eq!(gh[2], 0.0);
    assert_eq!(gh[5], 0.0);
}

/// Accumulate squares until a budget is exceeded, returning early from inside the loop.
#[gradient]
fn budgeted_sum(x: &[f64], budget: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i];
        if s > budget {
            return 2.0 * s - budget;
        }
    }
    s
}

/// Early `return` from a nested loop, out of a `while`.
#[gradient]
fn first_crossing(x: &[f64], level: f64) -> f64 {
    let mut i = 0;
    while i < x.len() {
        for j in 0..i {
            if x[i] * x[j] > level {
                return x[i] * x[j] - level;
            }
        }
        i += 1;
    }
    level * level
}

#[test]
fn early_return_inside_a_loop() {
    let x = [0.5, 1.0, -1.5, 2.0, 0.3];
    // Budget exceeded at i = 2 (0.25 + 1 + 2.25 = 3.5 > 2).
    let mut g = [f64::NAN; 5];
    let (v, [gb]) = budgeted_sum_grad(&x, &mut g, 2.0);
    assert_eq!(v, budgeted_sum(&x, 2.0));
    assert_relative_eq!(v, 5.0);
    assert_close(&g, &[2.0, 4.0, -6.0, 0.0, 0.0], 1e-14);
    assert_eq!(gb, -1.0);
    // Never exceeded.
    let (v, [gb]) = budgeted_sum_grad(&x, &mut g, 100.0);
    assert_eq!(v, budgeted_sum(&x, 100.0));
    assert_close(&g, &[1.0, 2.0, -3.0, 4.0, 0.6], 1e-14);
    assert_eq!(gb, 0.0);

    // x[3] · x[1] = 2 > 1.5 is the first crossing.
    let (v, [gl]) = first_crossing_grad(&x, &mut g, 1.5);
    assert_eq!(v, first_crossing(&x, 1.5));
    assert_relative_eq!(v, 0.5);
    assert_close(&g, &[0.0, 2.0, 0.0, 1.0, 0.0], 1e-14);
    assert_eq!(gl, -1.0);
    let (v, [gl]) = first_crossing_grad(&x, &mut g, 10.0);
    assert_eq!(v, 100.0);
    assert_eq!(g, [0.0; 5]);
    assert_eq!(gl, 20.0);
}

/// Branches inside a loop, on active values: a Huber loss.
#[gradient(wrt(m))]
fn huber_loss(m: f64, y: &[f64], delta: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..y.len() {
        let r = m - y[i];
        if r.abs() <= delta {
            s += 0.5 * r * r;
        } else if r > 0.0 {
            s += delta * (r - 0.5 * delta);
        } else {
            s += delta * (-r - 0.5 * delta);
        }
    }
    s
}

#[test]
fn branches_inside_a_loop() {
    let y = [0.1, 0.5, 3.0, -2.0, 0.8];
    let (v, [g]) = huber_loss_grad(0.4, &y, 1.0);
    assert_eq!(v, huber_loss(0.4, &y, 1.0));
    // residuals 0.3, −0.1, −2.6, 2.4, −0.4 → clipped: 0.3 − 0.1 − 1 + 1 − 0.4
    assert_relative_eq!(g, -0.2, max_relative = 1e-12);
    assert_fd(|p| huber_loss(p[0], &y, 1.0), &[0.4], &[g]);
}

// ---------------------------------------------------------------------------------------------
// Nested loops with `j * n + i` indexing
// ---------------------------------------------------------------------------------------------

/// ‖A x‖² with A (m × n, row-major) and x both active.
#[gradient]
fn mat_vec_norm(a: &[f64], x: &[f64], m: usize) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for r in 0..m {
        let mut y = 0.0;
        for c in 0..n {
            y += a[r * n + c] * x[c];
        }
        s += y * y;
    }
    s
}

/// The same with Aᵀ stored column-major: the inner loop runs over rows, `a[j * m + i]`.
#[gradient(wrt(x))]
fn mat_t_vec_norm(a: &[f64], x: &[f64], m: usize) -> f64 {
    let n = x.len();
    let mut y = vec![0.0; m];
    for j in 0..n {
        for i in 0..m {
            y[i] += a[j * m + i] * x[j];
        }
    }
    let mut s = 0.0;
    for i in 0..m {
        s += y[i] * y[i];
    }
    s
}

#[test]
fn nested_loops_with_row_major_indexing() {
    let (m, n) = (3, 4);
    let a = pseudo_random(m * n, 31, -1.0, 1.0);
    let x = pseudo_random(n, 32, -1.0, 1.0);
    let (mut ga, mut gx) = (vec![f64::NAN; m * n], vec![f64::NAN; n]);
    let (v, []) = mat_vec_norm_grad(&a, &mut ga, &x, &mut gx, m);
    assert_eq!(v, mat_vec_norm(&a, &x, m));
    let y: Vec<f64> = (0..m)
        .map(|r| (0..n).map(|c| a[r * n + c] * x[c]).sum())
        .collect();
    let ex: Vec<f64> = (0..n)
        .map(|c| (0..m).map(|r| 2.0 * y[r] * a[r * n + c]).sum())
        .collect();
    let mut ea = vec![0.0; m * n];
    for r in 0..m {
        for c in 0..n {
            ea[r * n + c] = 2.0 * y[r] * x[c];
        }
    }
    assert_close(&gx, &ex, 1e-13);
    assert_close(&ga, &ea, 1e-13);

    // The transpose, stored column-major, gives the same function of x.
    let mut at = vec![0.0; m * n];
    for r in 0..m {
        for c in 0..n {
            at[c * m + r] = a[r * n + c];
        }
    }
    let mut gx2 = vec![f64::NAN; n];
    let (v2, []) = mat_t_vec_norm_grad(&at, &x, &mut gx2, m);
    assert_eq!(v2, mat_t_vec_norm(&at, &x, m));
    assert_relative_eq!(v2, v, max_relative = 1e-14);
    assert_close(&gx2, &ex, 1e-13);
}

/// A triangular double loop: the inner bound depends on the outer index.
#[gradient]
fn pairwise_energy(x: &[f64]) -> f64 {
    let mut e = 0.0;
    for i in 0..x.len() {
        for j in 0..i {
            let d = x[i] - x[j];
            e += 1.0 / (1.0 + d * d);
        }
    }
    e
}

#[test]
fn triangular_double_loop() {
    let x = pseudo_random(6, 41, -2.0, 2.0);
    let mut g = vec![f64::NAN; 6];
    let (v, []) = pairwise_energy_grad(&x, &mut g);
    assert_eq!(v, pairwise_energy(&x));
    assert_fd(pairwise_energy, &x, &g);
    // Translation invariance: the gradient sums to zero.
    assert!(g.iter().sum::<f64>().abs() < 1e-12);
}

// ---------------------------------------------------------------------------------------------
// Range forms: `.rev()`, `.step_by(k)`, `a..=b`
// ---------------------------------------------------------------------------------------------

/// Horner's rule: the coefficients are read from the highest degree down.
#[gradient]
fn horner(c: &[f64], t: f64) -> f64 {
    let mut acc = 0.0;
    for i in (0..c.len()).rev() {
        acc = acc * t + c[i];
    }
    acc
}

#[test]
fn reversed_range_horner() {
    let c = [1.0, -2.0, 0.5, 3.0]; // 1 − 2t + t²/2 + 3t³
    let t = 0.7;
    let mut gc = [f64::NAN; 4];
    let (v, [gt]) = horner_grad(&c, &mut gc, t);
    assert_eq!(v, horner(&c, t));
    assert_relative_eq!(
        v,
        1.0 - 2.0 * t + 0.5 * t * t + 3.0 * t * t * t,
        max_relative = 1e-14
    );
    assert_relative_eq!(gt, -2.0 + t + 9.0 * t * t, max_relative = 1e-14);
    assert_close(&gc, &[1.0, t, t * t, t * t * t], 1e-14);
}

/// Pairs (x[0]·x[1]) + (x[2]·x[3]) + …: `.step_by(2)`.
#[gradient]
fn pair_products(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in (0..x.len() - 1).step_by(2) {
        s += x[i] * x[i + 1];
    }
    s
}

/// A step that does not divide the range, in a nonlinear recurrence: the reverse sweep must
/// visit exactly the indices 1, 4, 7 backwards.
#[gradient]
fn strided_recurrence(x: &[f64]) -> f64 {
    let mut y = 1.0;
    for i in (1..x.len()).step_by(3) {
        y = (y * x[i]).sin() + x[i - 1];
    }
    y
}

/// Reversed and strided together: `(a..b).rev().step_by(k)`.
#[gradient]
fn reversed_strided(x: &[f64]) -> f64 {
    let mut y = 0.5;
    for i in (0..x.len()).rev().step_by(2) {
        y = y * y + x[i];
    }
    y
}

/// `a..=b`, also reversed: weights are the 1-based positions.
#[gradient]
fn weighted_positions(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 1..=n {
        s += i as f64 * x[i - 1];
    }
    let mut p = 1.0;
    for i in (1..=n).rev() {
        p = p * 0.5 + x[i - 1] * x[i - 1];
    }
    s + p
}

#[test]
fn strided_and_inclusive_ranges() {
    let x = [0.3, -1.1, 0.8, 2.0, -0.6, 1.4, 0.2, -0.9, 1.7, 0.4];
    let mut g = [f64::NAN; 10];

    let (v, []) = pair_products_grad(&x, &mut g);
    assert_eq!(v, pair_products(&x));
    let mut expected = [0.0; 10];
    for i in (0..9).step_by(2) {
        expected[i] = x[i + 1];
        expected[i + 1] = x[i];
    }
    assert_eq!(g, expected);
    // Odd length: the last element is left out.
    let mut g9 = [f64::NAN; 9];
    pair_products_grad(&x[..9], &mut g9);
    assert_eq!(g9[8], 0.0);
    assert_eq!(g9[..8], expected[..8]);

    let (v, []) = strided_recurrence_grad(&x, &mut g);
    assert_eq!(v, strided_recurrence(&x));
    assert_fd(strided_recurrence, &x, &g);
    for i in [2, 5, 8, 9] {
        assert_eq!(g[i], 0.0, "x[{i}] is never read");
    }

    for len in [9, 10] {
        let (v, []) = reversed_strided_grad(&x[..len], &mut g[..len]);
        assert_eq!(v, reversed_strided(&x[..len]));
        assert_fd(reversed_strided, &x[..len], &g[..len]);
    }

    let (v, []) = weighted_positions_grad(&x, &mut g);
    assert_eq!(v, weighted_positions(&x));
    assert_fd(weighted_positions, &x, &g);
}

#[test]
fn inclusive_range_edge_cases() {
    // 1..=0 is empty; 1..=1 has one iteration.
    let mut g0 = [0.0; 0];
    assert_eq!(weighted_positions_grad(&[], &mut g0), (1.0, []));
    let mut g1 = [f64::NAN];
    let (v, []) = weighted_positions_grad(&[3.0], &mut g1);
    assert_eq!(v, 3.0 + 0.5 + 9.0);
    assert_eq!(g1, [1.0 + 6.0]);
}

// ---------------------------------------------------------------------------------------------
// Calls to other #[gradient] functions, with slice and scalar arguments, inside loops
// ---------------------------------------------------------------------------------------------

#[gradient]
fn sum_sq(v: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        s += v[i] * v[i];
    }
    s
}

#[gradient]
fn softplus(z: f64) -> f64 {
    if z > 30.0 {
        z
    } else {
        z.exp().ln_1p()
    }
}

// Both slices active: a `wrt(...)` on a callee is not seen by its callers (see the report).
#[gradient]
fn weighted_sum(w: &[f64], data: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..w.len() {
        s += w[i] * data[i];
    }
    s
}

/// Logistic regression with an L2 penalty: calls with a scalar (`softplus`) inside a loop, with
/// the parameter slice (`sum_sq(w)`), with a local buffer (`sum_sq(&row)`) and with an active
/// slice next to a data slice (`weighted_sum(w, &row)`).
#[gradient(wrt(w, lambda))]
fn logistic_regression(w: &[f64], lambda: f64, x: &[f64], labels: &[f64]) -> f64 {
    let p = w.len();
    let n = labels.len();
    let mut row = vec![0.0; p];
    let mut loss = 0.0;
    for i in 0..n {
        for j in 0..p {
            row[j] = x[i * p + j];
        }
        let z = weighted_sum(w, &row);
        // log(1 + e^{−y z}) with labels ±1
        loss += softplus(-labels[i] * z);
    }
    loss / n as f64 + lambda * sum_sq(w)
}

/// A call whose slice argument is a local buffer overwritten after every call: the reverse
/// sweep must differentiate each call at the buffer's contents at the time of that call.
#[gradient]
fn calls_on_a_changing_buffer(x: &[f64]) -> f64 {
    let n = x.len();
    let mut buf = vec![0.0; n];
    let mut s = 0.0;
    for k in 0..3 {
        for i in 0..n {
            buf[i] = buf[i] * 0.5 + x[i] * (k + 1) as f64;
        }
        s += sum_sq(&buf) * softplus(buf[k % n]);
    }
    s
}

#[test]
fn calls_with_slices_inside_loops() {
    let (n, p) = (8, 3);
    let w = [0.4, -0.9, 0.2];
    let x = pseudo_random(n * p, 51, -2.0, 2.0);
    let labels: Vec<f64> = pseudo_random(n, 52, -1.0, 1.0)
        .iter()
        .map(|v| v.signum())
        .collect();
    let mut gw = [f64::NAN; 3];
    let (v, [gl]) = logistic_regression_grad(&w, &mut gw, 0.1, &x, &labels);
    assert_eq!(v, logistic_regression(&w, 0.1, &x, &labels));
    // Closed form: −(1/n) Σ y σ(−y z) xᵢ + 2 λ w; ∂/∂λ = ‖w‖².
    let sigmoid = |t: f64| 1.0 / (1.0 + (-t).exp());
    let mut ew = [0.0; 3];
    for i in 0..n {
        let z: f64 = (0..p).map(|j| w[j] * x[i * p + j]).sum();
        let c = -labels[i] * sigmoid(-labels[i] * z) / n as f64;
        for j in 0..p {
            ew[j] += c * x[i * p + j];
        }
    }
    for j in 0..p {
        ew[j] += 0.2 * w[j];
    }
    assert_close(&gw, &ew, 1e-12);
    assert_relative_eq!(
        gl,
        w.iter().map(|a| a * a).sum::<f64>(),
        max_relative = 1e-14
    );

    let y = pseudo_random(5, 53, -1.0, 1.0);
    let mut gy = [f64::NAN; 5];
    let (v, []) = calls_on_a_changing_buffer_grad(&y, &mut gy);
    assert_eq!(v, calls_on_a_changing_buffer(&y));
    assert_fd(calls_on_a_changing_buffer, &y, &gy);
}

// ---------------------------------------------------------------------------------------------
// `&[f64; N]` and `&Vec<f64>` parameters
// ---------------------------------------------------------------------------------------------

/// The triple product a · (b × c) = det[a b c].
#[gradient]
fn triple_product(a: &[f64; 3], b: &[f64; 3], c: &[f64; 3]) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        let j = (i + 1) % 3;
        let k = (i + 2) % 3;
        s += a[i] * (b[j] * c[k] - b[k] * c[j]);
    }
    s
}

fn cross(u: &[f64; 3], v: &[f64; 3]) -> [f64; 3] {
    [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ]
}

#[gradient]
#[allow(clippy::ptr_arg)] // `&Vec<f64>` parameters are under test
fn vec_mean_sq_dev(v: &Vec<f64>) -> f64 {
    let n = v.len();
    let mut mean = 0.0;
    for i in 0..n {
        mean += v[i];
    }
    mean /= n as f64;
    let mut s = 0.0;
    for i in 0..n {
        s += (v[i] - mean) * (v[i] - mean);
    }
    s / n as f64
}

/// An array parameter passed on to a slice-taking #[gradient] function.
#[gradient]
fn array_norm(a: &[f64; 3]) -> f64 {
    sum_sq(a).sqrt()
}

#[test]
fn array_and_vec_parameters() {
    let a = [1.0, 2.0, -0.5];
    let b = [0.3, -1.0, 2.0];
    let c = [-0.7, 0.4, 1.5];
    let (mut ga, mut gb, mut gc) = ([f64::NAN; 3], [f64::NAN; 3], [f64::NAN; 3]);
    let (v, []) = triple_product_grad(&a, &mut ga, &b, &mut gb, &c, &mut gc);
    assert_eq!(v, triple_product(&a, &b, &c));
    assert_close(&ga, &cross(&b, &c), 1e-14);
    assert_close(&gb, &cross(&c, &a), 1e-14);
    assert_close(&gc, &cross(&a, &b), 1e-14);

    let v = vec![0.5, 2.0, -1.0, 3.5];
    let mut gv = vec![f64::NAN; 4];
    let (val, []) = vec_mean_sq_dev_grad(&v, &mut gv);
    assert_eq!(val, vec_mean_sq_dev(&v));
    let mean = v.iter().sum::<f64>() / 4.0;
    let expected: Vec<f64> = v.iter().map(|x| 2.0 * (x - mean) / 4.0).collect();
    assert_close(&gv, &expected, 1e-14);
    // The shadow of a `&Vec<f64>` is any `&mut [f64]`: here part of an array.
    let mut buf = [f64::NAN; 6];
    vec_mean_sq_dev_grad(&v, &mut buf[1..5]);
    assert_close(&buf[1..5], &expected, 1e-14);

    let mut ga = [f64::NAN; 3];
    let (n, []) = array_norm_grad(&a, &mut ga);
    assert_eq!(n, array_norm(&a));
    assert_relative_eq!(n, 5.25_f64.sqrt(), max_relative = 1e-14);
    assert_close(&ga, &[a[0] / n, a[1] / n, a[2] / n], 1e-14);
}

// ---------------------------------------------------------------------------------------------
// f32
// ---------------------------------------------------------------------------------------------

#[gradient]
fn rosenbrock_f32(x: &[f32]) -> f32 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    s
}

#[gradient(wrt(w))]
fn mlp_loss_f32(w: &[f32], x: &[f32], y: &[f32], n_in: usize, n_hidden: usize) -> f32 {
    let b1 = n_hidden * n_in;
    let w2 = b1 + n_hidden;
    let b2 = w2 + n_hidden;
    let mut hidden = vec![0.0; n_hidden];
    let mut loss = 0.0;
    for s in 0..y.len() {
        for h in 0..n_hidden {
            let mut z = w[b1 + h];
            for i in 0..n_in {
                z += w[h * n_in + i] * x[s * n_in + i];
            }
            hidden[h] = z.tanh();
        }
        let mut out = w[b2];
        for h in 0..n_hidden {
            out += w[w2 + h] * hidden[h];
        }
        let e = out - y[s];
        loss += e * e;
    }
    loss / y.len() as f32
}

#[gradient]
fn logistic_map_f32(x0: f32, r: f32, steps: usize) -> f32 {
    let mut x = x0;
    for _ in 0..steps {
        x = r * x * (1.0 - x);
    }
    x
}

#[gradient]
fn euler_decay_f32(k: f32, y0: f32, dt: f32, t_end: f32) -> f32 {
    let mut t = 0.0;
    let mut y = y0;
    while t < t_end {
        y += dt * (-k * y);
        t += dt;
    }
    y
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

#[test]
fn f32_versions_agree_with_f64() {
    let x = to_f32(&pseudo_random(6, 61, -1.5, 1.5));
    let mut g = vec![f32::NAN; 6];
    let (v, []) = rosenbrock_f32_grad(&x, &mut g);
    assert_eq!(v, rosenbrock_f32(&x));
    assert_close(&to_f64(&g), &rosenbrock_gradient(&to_f64(&x)), 1e-5);

    let w = to_f32(&pseudo_random(mlp_n_params(2, 3), 62, -1.0, 1.0));
    let xs = to_f32(&pseudo_random(10, 63, -2.0, 2.0));
    let ys = to_f32(&pseudo_random(5, 64, -1.0, 1.0));
    let mut gw = vec![f32::NAN; w.len()];
    let (v, []) = mlp_loss_f32_grad(&w, &mut gw, &xs, &ys, 2, 3);
    assert_eq!(v, mlp_loss_f32(&w, &xs, &ys, 2, 3));
    let expected = mlp_backprop(&to_f64(&w), &to_f64(&xs), &to_f64(&ys), 2, 3);
    assert_close(&to_f64(&gw), &expected, 1e-5);

    let (v, g) = logistic_map_f32_grad(0.3, 2.5, 10);
    assert_eq!(v, logistic_map_f32(0.3, 2.5, 10));
    let (_, tg) = logistic_tangents(0.3_f32 as f64, 2.5, 10);
    assert_close(&to_f64(&g), &tg, 1e-4);

    let (v, g) = euler_decay_f32_grad(0.8, 1.7, 0.013, 1.0);
    assert_eq!(v, euler_decay_f32(0.8, 1.7, 0.013, 1.0));
    let (_, g64) = euler_decay_grad(0.8_f32 as f64, 1.7_f32 as f64, 0.013_f32 as f64, 1.0);
    assert_close(&to_f64(&g), &g64, 1e-4);
}
