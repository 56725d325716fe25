//! The macro never panics: mutated and random inputs all give an expansion or `compile_error!`.
//!
//! The inputs are the `#[gradient]` functions of the test suite ([`CORPUS`]), mutated by
//! deterministic token-level [`Mutation`]s (a small PRNG with fixed seeds, so every failure is
//! reproducible from its label), random token soup, bodies nested 200 deep, bodies of 5,000
//! statements, and garbage in the attribute position. Each input goes through the raw pipeline
//! ([`expand_inner`], without the `catch_unwind` of `expand`) and [`check`] asserts that it
//!
//! - does not panic,
//! - takes less than [`TIME_LIMIT`],
//! - keeps the original item first in its output, and
//! - either refuses with `compile_error!` or emits Rust that parses, with `<name>_grad` in it.
//!
//! A campaign runs on a worker thread with rustc's stack size ([`STACK`]) under a watchdog, so a
//! hang fails the test with the input that hung instead of blocking it. A failing input is shrunk
//! ([`minimise`]) before it is reported. [`KNOWN`] lists the inputs that break the contract
//! today, each with its finding and a minimal reproducer: the tests skip them, and two ignored
//! tests run them. The fuzz crate (`fuzz/` at the workspace root) includes
//! this file by path and runs the same generators for as long as it is asked to.

use std::any::Any;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proc_macro2::{Delimiter, Group, Spacing, TokenStream, TokenTree};
use syn::ext::IdentExt as _;

use crate::expand::expand_inner;

/// Every expansion must finish within this time (debug build). A guard against blow-ups, not a
/// benchmark: the slowest accepted input (5,000 reassignments) takes about 1.2 s alone, and
/// `cargo test` runs other tests beside it on two cores.
pub const TIME_LIMIT: Duration = Duration::from_secs(4);

/// The stack a campaign runs on: rustc runs proc macros on its main thread, whose stack is 8 MiB.
pub const STACK: usize = 8 << 20;

/// With no progress for this long, the watchdog declares the current input a hang.
const HANG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_B00C)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `1 / n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus: `#[gradient]` functions of the test suite
// ---------------------------------------------------------------------------------------------

/// `(attribute, function)` pairs from `tests/*.rs`, `ad-macro/src/analyse.rs` and the expansion
/// snapshots: scalars, branches, early returns, `for`/`while`/`loop`, buffers, slices, arrays,
/// calls between `#[gradient]` functions, intrinsics in method and path form, `f32`.
pub const CORPUS: &[(&str, &str)] = &[
    (
        "",
        "fn f(x: f64, y: f64) -> f64 { x.powi(3) * (x + 3.0 * y) }",
    ),
    (
        "",
        r"fn logistic(x0: f64, r: f64, steps: usize) -> f64 {
            let mut x = x0;
            for _ in 0..steps {
                x = r * x * (1.0 - x);
            }
            x
        }",
    ),
    (
        "",
        r"fn rosen(x: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..x.len() - 1 {
                let a = x[i + 1] - x[i] * x[i];
                let b = 1.0 - x[i];
                s += 100.0 * a * a + b * b;
            }
            s
        }",
    ),
    (
        "",
        r"fn branchy(x: f64, y: f64) -> f64 {
            if x > y {
                return x * y;
            }
            let z = if y > 0.0 { y.sin() } else { y.cos() };
            x * z
        }",
    ),
    (
        "",
        r"fn first_big(x: &[f64], t: f64) -> f64 {
            let mut acc = 0.0;
            for i in 0..x.len() {
                if x[i] * t > 2.0 {
                    return acc * x[i];
                }
                acc += x[i].sin() * t;
            }
            acc
        }",
    ),
    (
        "",
        r"fn euler(y0: f64, k: f64, t_end: f64) -> f64 {
            let mut t = 0.0;
            let mut y = y0;
            let dt = 0.01;
            while t < t_end {
                y += dt * (-k * y * y + t.sin());
                t += dt;
            }
            y
        }",
    ),
    (
        "",
        r"fn skip_and_stop(x: &[f64]) -> f64 {
            let mut s = 0.0;
            let mut i = 0;
            loop {
                if i >= x.len() {
                    break;
                }
                i += 1;
                if x[i - 1] < 0.0 {
                    continue;
                }
                s = s * 0.5 + x[i - 1].powi(2);
            }
            s
        }",
    ),
    (
        "",
        r"fn smooth(x: &[f64], passes: usize) -> f64 {
            let n = x.len();
            let mut total = 0.0;
            for p in 0..passes {
                let mut buf = vec![0.0; n];
                for i in 0..n {
                    buf[i] = x[i] * (p as f64 + 1.0);
                }
                for i in 1..n - 1 {
                    buf[i] = 0.25 * buf[i - 1] + 0.5 * buf[i] + 0.25 * buf[i + 1];
                }
                for i in 0..n {
                    total += buf[i] * buf[i];
                }
            }
            total
        }",
    ),
    (
        "",
        r"fn uses_dot(a: &[f64], w: f64) -> f64 {
            let mut buf = [0.0; 3];
            for i in 0..3 {
                buf[i] = a[i] * w;
            }
            dot(a, &buf).sqrt() + w * dot(&buf, &buf)
        }",
    ),
    (
        "wrt(x)",
        r"fn dot_wrt_x(x: &[f64], y: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..x.len() {
                s += x[i] * y[i];
            }
            s
        }",
    ),
    (
        "wrt(alpha, y)",
        r"fn scaled_dot(alpha: f64, x: &[f64], y: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..x.len() {
                s += alpha * x[i] * y[i];
            }
            s
        }",
    ),
    (
        "wrt(w, b)",
        r"fn least_squares(w: &[f64], b: f64, a: &[f64], y: &[f64], n_features: usize) -> f64 {
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
        }",
    ),
    (
        "wrt(w)",
        r"fn mlp_loss(w: &[f64], x: &[f64], y: &[f64], n_in: usize, n_hidden: usize) -> f64 {
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
        }",
    ),
    (
        "wrt(w)",
        r"fn mlp_loss_array(w: &[f64], x: &[f64], y: &[f64]) -> f64 {
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
        }",
    ),
    (
        "wrt(alphas, means, icf)",
        r"fn gmm_objective(
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
            let wn = d + wishart_m + 1;
            let ln2 = 2.0_f64.ln();
            let big_c = (wn * d) as f64 * (wishart_gamma.ln() - 0.5 * ln2)
                - ln_multigamma(0.5 * wn as f64, d);
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
        }",
    ),
    (
        "wrt(k, y0)",
        r"fn euler_decay_data_time(k: f64, y0: f64, dt: f64, t_end: f64) -> f64 {
            let mut t = 0.0;
            let mut y = y0;
            while t < t_end {
                y -= dt * k * y;
                t += dt;
            }
            y
        }",
    ),
    (
        "wrt(r, y0)",
        r"fn euler_logistic(r: f64, y0: f64, dt: f64, t_end: f64) -> f64 {
            let mut t = 0.0;
            let mut y = y0;
            while t < t_end {
                y = y + dt * r * y * (1.0 - y);
                t = t + dt;
            }
            y
        }",
    ),
    (
        "",
        r"fn halve_until_small(x: f64) -> f64 {
            let mut y = x;
            let mut scale = 1.0;
            while y > 1.0 {
                y = 0.5 * y;
                scale = scale * 1.1;
            }
            scale * y * y
        }",
    ),
    (
        "",
        r"fn newton_sqrt(a: f64) -> f64 {
            let mut x = a.max(1.0);
            while (x * x - a).abs() > 1e-15 * a {
                x = 0.5 * (x + a / x);
            }
            x
        }",
    ),
    (
        "wrt(a, b)",
        r"fn fibonacci_like(a: f64, b: f64, n: usize) -> f64 {
            let mut prev = 0.0;
            let mut cur = 1.0;
            for _ in 0..n {
                let next = a * cur + b * prev;
                prev = cur;
                cur = next;
            }
            cur
        }",
    ),
    (
        "",
        r"fn prefix_sum_energy(x: &[f64]) -> f64 {
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
        }",
    ),
    (
        "",
        r"fn smooth_in_place(x: &[f64; 6], passes: usize) -> f64 {
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
        }",
    ),
    (
        "",
        r"fn nonlinear_in_place(x: &[f64], passes: usize) -> f64 {
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
        }",
    ),
    (
        "",
        r"fn literal_buffer(a: f64, b: f64, c: f64) -> f64 {
            let mut v = [a, b * b, c];
            for i in 0..3 {
                v[i] = v[i] * v[(i + 1) % 3];
            }
            v[0] + v[1] + v[2]
        }",
    ),
    (
        "",
        r"fn cos_fixed_point(c: f64) -> f64 {
            let mut x: f64 = 0.0;
            loop {
                let next = c * x.cos();
                if (next - x).abs() < 1e-14 {
                    break;
                }
                x = next;
            }
            x
        }",
    ),
    (
        "",
        r"fn damped_power(x: f64, n: usize) -> f64 {
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
        }",
    ),
    (
        "wrt(log_rate)",
        r"fn exp_nll_skipping(log_rate: f64, samples: &[f64]) -> f64 {
            let rate = log_rate.exp();
            let mut nll = 0.0;
            for i in 0..samples.len() {
                if samples[i] <= 0.0 {
                    continue;
                }
                nll += rate * samples[i] - log_rate;
            }
            nll
        }",
    ),
    (
        "",
        r"fn holdout_loss(w: f64, x: &[f64]) -> f64 {
            let mut loss = 0.0;
            for i in 0..x.len() {
                if i % 3 == 2 {
                    continue;
                }
                let r = w * x[i] - 1.0;
                loss += r * r;
            }
            loss
        }",
    ),
    (
        "",
        r"fn budgeted_sum(x: &[f64], budget: f64) -> f64 {
            let mut s = 0.0;
            for i in 0..x.len() {
                s += x[i] * x[i];
                if s > budget {
                    return 2.0 * s - budget;
                }
            }
            s
        }",
    ),
    (
        "",
        r"fn first_crossing(x: &[f64], level: f64) -> f64 {
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
        }",
    ),
    (
        "wrt(m)",
        r"fn huber_loss(m: f64, y: &[f64], delta: f64) -> f64 {
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
        }",
    ),
    (
        "wrt(x)",
        r"fn mat_t_vec_norm(a: &[f64], x: &[f64], m: usize) -> f64 {
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
        }",
    ),
    (
        "",
        r"fn pairwise_energy(x: &[f64]) -> f64 {
            let mut e = 0.0;
            for i in 0..x.len() {
                for j in 0..i {
                    let d = x[i] - x[j];
                    e += 1.0 / (1.0 + d * d);
                }
            }
            e
        }",
    ),
    (
        "",
        r"fn horner(c: &[f64], t: f64) -> f64 {
            let mut acc = 0.0;
            for i in (0..c.len()).rev() {
                acc = acc * t + c[i];
            }
            acc
        }",
    ),
    (
        "",
        r"fn strided_recurrence(x: &[f64]) -> f64 {
            let mut y = 1.0;
            for i in (1..x.len()).step_by(3) {
                y = (y * x[i]).sin() + x[i - 1];
            }
            y
        }",
    ),
    (
        "",
        r"fn reversed_strided(x: &[f64]) -> f64 {
            let mut y = 0.5;
            for i in (0..x.len()).rev().step_by(2) {
                y = y * y + x[i];
            }
            y
        }",
    ),
    (
        "",
        r"fn weighted_positions(x: &[f64]) -> f64 {
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
        }",
    ),
    (
        "",
        r"fn softplus(z: f64) -> f64 {
            if z > 30.0 {
                z
            } else {
                z.exp().ln_1p()
            }
        }",
    ),
    (
        "wrt(w, lambda)",
        r"fn logistic_regression(w: &[f64], lambda: f64, x: &[f64], labels: &[f64]) -> f64 {
            let p = w.len();
            let n = labels.len();
            let mut row = vec![0.0; p];
            let mut loss = 0.0;
            for i in 0..n {
                for j in 0..p {
                    row[j] = x[i * p + j];
                }
                let z = weighted_sum(w, &row);
                loss += softplus(-labels[i] * z);
            }
            loss / n as f64 + lambda * sum_sq(w)
        }",
    ),
    (
        "",
        r"fn calls_on_a_changing_buffer(x: &[f64]) -> f64 {
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
        }",
    ),
    (
        "",
        r"fn triple_product(a: &[f64; 3], b: &[f64; 3], c: &[f64; 3]) -> f64 {
            let mut s = 0.0;
            for i in 0..3 {
                let j = (i + 1) % 3;
                let k = (i + 2) % 3;
                s += a[i] * (b[j] * c[k] - b[k] * c[j]);
            }
            s
        }",
    ),
    (
        "",
        r"fn vec_mean_sq_dev(v: &Vec<f64>) -> f64 {
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
        }",
    ),
    (
        "",
        "fn array_norm(a: &[f64; 3]) -> f64 { sum_sq(a).sqrt() }",
    ),
    (
        "",
        r"fn rosenbrock_f32(x: &[f32]) -> f32 {
            let mut s = 0.0;
            for i in 0..x.len() - 1 {
                let a = x[i + 1] - x[i] * x[i];
                let b = 1.0 - x[i];
                s += 100.0 * a * a + b * b;
            }
            s
        }",
    ),
    (
        "",
        r"fn euler_decay_f32(k: f32, y0: f32, dt: f32, t_end: f32) -> f32 {
            let mut t = 0.0;
            let mut y = y0;
            while t < t_end {
                y += dt * (-k * y);
                t += dt;
            }
            y
        }",
    ),
    (
        "",
        r"fn constant_arguments(x: f64) -> f64 {
            x.powf(2.5) + 2.0_f64.powf(x) + x.atan2(2.0) + 3.0_f64.hypot(x) + x.max(1.0)
                + x.log(10.0) - x.mul_add(2.0, 1.0) + x.clamp(-1.0, 1.0) + 0.5_f64.min(x)
        }",
    ),
    (
        "",
        r"fn other_path_spellings(x: f64, y: f64) -> f64 {
            core::primitive::f64::sin(x) * std::primitive::f64::exp(y) + f64::powi(x, 2)
        }",
    ),
    (
        "",
        r"fn composed(x: f64, y: f64) -> f64 {
            (x * y).sin().exp() + (x / y).ln_1p().sqrt() * f64::atan2(x - y, x + y).tanh()
        }",
    ),
    (
        "",
        "fn clamp_p(x: f64, lo: f64, hi: f64) -> f64 { f64::clamp(x, lo, hi) }",
    ),
    ("", "fn powi_m(x: f64, n: i32) -> f64 { x.powi(n) }"),
    (
        "",
        r"fn g(x: f64) -> f64 {
            let mut y = x * x;
            y = y.sin();
            y = y * x;
            y
        }",
    ),
    (
        "",
        r"fn g(x: f64, n: usize) -> f64 {
            let c = n as f64;
            let mut s = 0.0;
            for _ in 0..n {
                s += 2.0 * x + c;
            }
            s
        }",
    ),
    (
        "",
        r"fn g(x: f64, n: usize) -> f64 {
            let mut y = x;
            for _ in 0..n {
                if y > 1.0 {
                    y = y * 0.5;
                } else {
                    y = y + 1.0;
                }
            }
            y
        }",
    ),
];

/// Expressions and statements the macro does not differentiate (or that are not even Rust), to
/// be inserted anywhere: closures, `match`, `unsafe`, `?`, `async`, references, tuples, struct
/// literals, methods and functions with no rule, macros, items, labels, patterns.
const UNSUPPORTED: &[&str] = &[
    "|t: f64| t * x",
    "move || x",
    "(|t| t)(x)",
    "match x { _ => x }",
    "match n { 0 => x, _ => 1.0 }",
    "unsafe { x }",
    "x?",
    "x.sin()?",
    "async { x }",
    "async move { x }",
    "x.await",
    "&x",
    "&mut x",
    "*x",
    "**x",
    "(x, x)",
    "(x, x).0",
    "x.0",
    "x.0.1",
    "Point { x: x, y: 1.0 }",
    "Point { x, ..Default::default() }",
    "x.frobnicate()",
    "x.frobnicate(x, 1.0)",
    "x.sin(x)",
    "f64::sin()",
    "f64::sin(x, x)",
    "x.powi()",
    "x.powf(x, x)",
    "x.mul_add(x)",
    "x.clamp(x)",
    "<f64 as Float>::sin(x)",
    "<f64>::sin(x)",
    "f64::consts::PI",
    "std::f64::consts::PI * x",
    "f64::MAX",
    "f64::NAN + x",
    "println!(\"{}\", x)",
    "vec![x; 3]",
    "vec![x, x]",
    "vec![]",
    "vec!()",
    "format!(\"{x}\")",
    "assert!(x > 0.0)",
    "todo!()",
    "unreachable!()",
    "m!{ x }",
    "[x, x][0]",
    "[x; 3][1]",
    "[]",
    "[0.0; 0]",
    "[[0.0; 2]; 2]",
    "x as f32",
    "x as i32 as f64",
    "x as usize as f64",
    "x as u8",
    "x..x",
    "x..=x",
    "..",
    "|| {}",
    "loop { break x }",
    "'a: loop { break 'a x; }",
    "'a: { x }",
    "while let Some(v) = None::<f64> { }",
    "if let Some(v) = Some(x) { v } else { x }",
    "if x > 0.0 { x }",
    "if x { x } else { x }",
    "for i in x { }",
    "for i in x.iter() { }",
    "for (i, v) in x.iter().enumerate() { }",
    "for _ in 0.. { }",
    "for _ in ..3 { }",
    "for _ in (0..3).step_by() { }",
    "for _ in (0..3).rev(1) { }",
    "while x { }",
    "loop {}",
    "box x",
    "yield x",
    "try { x }",
    "const { x }",
    "return",
    "return x",
    "break",
    "break x",
    "continue",
    "{ x }",
    "{}",
    "()",
    "_",
    "x.len() as f64",
    "x.iter().sum::<f64>()",
    "x.iter().map(|v| v * v).sum::<f64>()",
    "1.0_f64.sin()",
    "-x",
    "!x",
    "x % 2.0",
    "x & 1",
    "x << 2",
    "x ^ 2.0",
    "x == x",
    "x != x && x < x || x > x",
    "x.max(x).min(x)",
    "x.abs().sqrt().powf(x).exp()",
    "self.x",
    "self",
    "Self::f(x)",
    "super::f(x)",
    "crate::f(x)",
    "f(x)",
    "f_grad(x)",
    "f(x, x, x, x)",
    "dot(x, x)",
    "dot(&x, &x)",
    "dot(&mut x, x)",
    "dot(&x[1..], &x)",
    "dot(&&x, x.as_slice())",
    "x[1..].len()",
    "x[..]",
    "x[i][j]",
    "x[x]",
    "x[1.0]",
    "x[i as usize]",
    "x[-1]",
    "x[18446744073709551615]",
    "x.powi(2147483648)",
    "x.powi(-2147483648)",
    "x.powi(1e9)",
    "[0.0; 18446744073709551615]",
    "vec![0.0; 18446744073709551615]",
    "1e999 * x",
    "99999999999999999999999999999999999999999 * x",
    "x = x",
    "x += x",
    "x -= 1",
    "x *= x",
    "x /= 0.0",
    "x %= 2.0",
    "x ^= 1",
    "x <<= 1",
    "(x) = 1.0",
    "(x, y) = (y, x)",
    "x[0] = 1.0",
    "x[0] += x[1]",
    "x[0][1] = 2.0",
    "x.0 = 1.0",
    "*x = 1.0",
    "_ = x",
    "x.y.z = 1.0",
    "let a = x",
    "let mut a",
    "let a: f64",
    "let a: f64 = x else { return x }",
    "let Some(a) = Some(x) else { return x }",
    "let (a, b) = (x, x)",
    "let [a, b] = [x, x]",
    "let Point { x, y } = p",
    "let _ = x",
    "let ref a = x",
    "let a @ _ = x",
    "let a: i32 = x",
    "let a: [f64; 2] = [x, x]",
    "let a: Vec<f64> = vec![x]",
    "let a: &[f64] = &[x]",
    "let mut b = [0.0; 3]; b = [1.0; 3]",
    "let mut b = vec![0.0; 3]; b.push(x)",
    "let mut b = vec![0.0; 3]; b[0] = x; b.len() as f64",
    "let mut b = [x; 3]",
    "let b = x; let b = b * b; let b = b.sin()",
    "static S: f64 = 1.0",
    "const C: f64 = 2.0",
    "fn inner(t: f64) -> f64 { t }",
    "struct S",
    "impl S {}",
    "use std::f64::consts::PI",
    "macro_rules! m { () => {} }",
    "#[allow(unused)] let a = x",
    "#[cfg(any())] let a = x",
    "#![allow(unused)]",
    "#[inline] x",
    "extern crate core",
    "mod m {}",
    "type T = f64",
    "trait T {}",
    "enum E {}",
    "union U { a: f64 }",
];

/// Operators and punctuation that [`Mutation::SwapOperator`] puts in place of another.
const OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "%", "^", "!", "&", "|", "&&", "||", "<<", ">>", "+=", "-=", "*=", "/=",
    "%=", "^=", "&=", "|=", "<<=", ">>=", "=", "==", "!=", ">", "<", ">=", "<=", "@", ".", "..",
    "...", "..=", ",", ";", ":", "::", "->", "=>", "#", "$", "?", "~",
];

/// Keywords, reserved words and names a mutant may put in place of an identifier.
const WORDS: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "Self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "yield",
    "box",
    "try",
    "macro",
    "union",
    "gen",
    "abstract",
    "become",
    "do",
    "final",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "_",
    "r#x",
    "r#fn",
    "r#match",
    "f64",
    "f32",
    "usize",
    "i32",
    "u8",
    "bool",
    "Vec",
    "Option",
    "Some",
    "None",
    "len",
    "iter",
    "sin",
    "cos",
    "powi",
    "powf",
    "exp",
    "ln",
    "sqrt",
    "max",
    "min",
    "abs",
    "tanh",
    "atan2",
    "hypot",
    "mul_add",
    "clamp",
    "step_by",
    "rev",
    "vec",
    "println",
    "std",
    "core",
    "consts",
    "PI",
    "__ad_x",
    "__ad_bar",
    "x_bar",
    "f_grad",
    "ret",
    "cond",
    "tape",
    "ad",
    "__private",
    "grad",
    "dot",
    "sum_sq",
    "softplus",
    "unknown",
];

/// Literals a mutant may put in place of another: every kind, and values that do not fit.
const LITERALS: &[&str] = &[
    "0",
    "1",
    "2",
    "0.0",
    "1.0",
    "0.5",
    "1e308",
    "1e-308",
    "1e999",
    "0.5f32",
    "2.0_f64",
    "1f64",
    "1.0foo",
    "3usize",
    "7i32",
    "255u8",
    "256u8",
    "340282366920938463463374607431768211455",
    "99999999999999999999999999999999999999999999",
    "0x10",
    "0b1010",
    "0o17",
    "1_000",
    "\"s\"",
    "\"\"",
    "r\"raw\"",
    "r#\"raw\"#",
    "b\"bytes\"",
    "b'x'",
    "'c'",
    "'\\n'",
    "\"\\u{1F600}\"",
    "true",
];

/// The words, operators, literals and unsupported constructs above, as a dictionary for a
/// byte-level fuzzer (libFuzzer's `-dict`): it then splices whole tokens instead of bytes.
pub fn dictionary() -> Vec<&'static str> {
    let all = [WORDS, OPERATORS, LITERALS, UNSUPPORTED];
    all.into_iter().flatten().copied().collect()
}

// ---------------------------------------------------------------------------------------------
// Token trees that can be edited in place
// ---------------------------------------------------------------------------------------------

/// A token tree whose groups can be edited (a `proc_macro2::Group` cannot).
#[derive(Clone)]
enum Tree {
    Leaf(TokenTree),
    Group(Delimiter, Vec<Tree>),
}

fn lex(src: &str) -> TokenStream {
    TokenStream::from_str(src).unwrap_or_else(|e| panic!("the harness's own source `{src}`: {e}"))
}

fn trees(ts: TokenStream) -> Vec<Tree> {
    ts.into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => Tree::Group(g.delimiter(), trees(g.stream())),
            other => Tree::Leaf(other),
        })
        .collect()
}

fn stream(ts: &[Tree]) -> TokenStream {
    ts.iter()
        .map(|t| match t {
            Tree::Leaf(tt) => tt.clone(),
            Tree::Group(d, inner) => TokenTree::Group(Group::new(*d, stream(inner))),
        })
        .collect()
}

fn count(ts: &[Tree]) -> usize {
    ts.iter()
        .map(|t| match t {
            Tree::Leaf(_) => 1,
            Tree::Group(_, inner) => 1 + count(inner),
        })
        .sum()
}

/// The paths (indices of groups from the root) of every token sequence: the root and the inside
/// of each group.
fn sequences(ts: &[Tree], path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(path.clone());
    for (i, t) in ts.iter().enumerate() {
        if let Tree::Group(_, inner) = t {
            path.push(i);
            sequences(inner, path, out);
            path.pop();
        }
    }
}

fn seq_mut<'a>(ts: &'a mut Vec<Tree>, path: &[usize]) -> &'a mut Vec<Tree> {
    match path.split_first() {
        None => ts,
        Some((&i, rest)) => match &mut ts[i] {
            Tree::Group(_, inner) => seq_mut(inner, rest),
            Tree::Leaf(_) => unreachable!("paths lead through groups"),
        },
    }
}

/// A sequence chosen with probability proportional to its length plus one, so that every token
/// position is about equally likely.
fn random_sequence<'a>(ts: &'a mut Vec<Tree>, rng: &mut Rng) -> &'a mut Vec<Tree> {
    let mut paths = Vec::new();
    sequences(ts, &mut Vec::new(), &mut paths);
    let weights: Vec<usize> = paths.iter().map(|p| seq_mut(ts, p).len() + 1).collect();
    let mut r = rng.below(weights.iter().sum());
    let mut chosen = 0;
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            chosen = i;
            break;
        }
        r -= w;
    }
    let path = paths.swap_remove(chosen);
    seq_mut(ts, &path)
}

fn is_punct(t: &Tree) -> bool {
    matches!(t, Tree::Leaf(TokenTree::Punct(_)))
}

fn is_joint(t: &Tree) -> bool {
    matches!(t, Tree::Leaf(TokenTree::Punct(p)) if p.spacing() == Spacing::Joint)
}

/// The operators of a sequence, as index ranges (`+=` is two puncts, the first joint).
fn operator_runs(seq: &[Tree]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < seq.len() {
        if is_punct(&seq[i]) {
            let start = i;
            while i + 1 < seq.len() && is_joint(&seq[i]) && is_punct(&seq[i + 1]) {
                i += 1;
            }
            runs.push((start, i + 1));
        }
        i += 1;
    }
    runs
}

fn positions(seq: &[Tree], keep: impl Fn(&Tree) -> bool) -> Vec<usize> {
    (0..seq.len()).filter(|&i| keep(&seq[i])).collect()
}

fn pieces(src: &[&str], rng: &mut Rng) -> Vec<Tree> {
    let s: &str = src[rng.below(src.len())];
    trees(lex(s))
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

/// One edit of a token stream. Each picks a random token sequence (the top level or the inside
/// of a group) and a random position in it.
#[derive(Clone, Copy, Debug)]
pub enum Mutation {
    DeleteToken,
    DeleteRange,
    Duplicate,
    SwapAdjacent,
    SwapOperator,
    ReplaceIdent,
    ReplaceLiteral,
    /// An unsupported statement at the start of a sequence or after a `;`.
    InsertStatement,
    /// An unsupported expression, in parentheses, in place of an identifier or literal.
    ReplaceWithExpr,
    /// A group of random tokens with a random delimiter (including the invisible one).
    InsertGroup,
    /// Tokens wrapped in an invisible group, as `macro_rules!` hands over `$e:expr`.
    WrapInvisible,
    /// Everything after a random position dropped.
    Truncate,
    /// Tokens of another function of the corpus inserted.
    Splice,
}

const MUTATIONS: &[Mutation] = &[
    Mutation::DeleteToken,
    Mutation::DeleteRange,
    Mutation::Duplicate,
    Mutation::SwapAdjacent,
    Mutation::SwapOperator,
    Mutation::ReplaceIdent,
    Mutation::ReplaceLiteral,
    Mutation::InsertStatement,
    Mutation::ReplaceWithExpr,
    Mutation::InsertGroup,
    Mutation::WrapInvisible,
    Mutation::Truncate,
    Mutation::Splice,
];

fn mutate(ts: &mut Vec<Tree>, m: Mutation, donor: &[Tree], rng: &mut Rng) {
    let seq = random_sequence(ts, rng);
    let len = seq.len();
    let at = rng.below(len + 1);
    let some = len > 0;
    let i = at.min(len.saturating_sub(1));
    match m {
        Mutation::DeleteToken if some => {
            seq.remove(i);
        }
        Mutation::DeleteRange if some => {
            let n = 1 + rng.below(8.min(len - i));
            seq.drain(i..i + n);
        }
        Mutation::Duplicate if some => {
            let t = seq[i].clone();
            seq.insert(i, t);
        }
        Mutation::SwapAdjacent if len > 1 => {
            let i = i.min(len - 2);
            seq.swap(i, i + 1);
        }
        Mutation::SwapOperator => {
            let new = pieces(OPERATORS, rng);
            let runs = operator_runs(seq);
            if runs.is_empty() {
                seq.splice(at..at, new);
            } else {
                let (a, b) = *rng.pick(&runs);
                seq.splice(a..b, new);
            }
        }
        Mutation::ReplaceIdent => {
            let idents = positions(seq, |t| matches!(t, Tree::Leaf(TokenTree::Ident(_))));
            let new = if rng.one_in(2) {
                pieces(WORDS, rng)
            } else {
                // Another name of the same function, often a variable of another kind.
                let mut names = Vec::new();
                collect_idents(donor, &mut names);
                collect_idents(seq, &mut names);
                names.into_iter().skip(rng.below(8)).take(1).collect()
            };
            match idents.is_empty() {
                true => seq.splice(at..at, new),
                false => {
                    let j = *rng.pick(&idents);
                    seq.splice(j..=j, new)
                }
            };
        }
        Mutation::ReplaceLiteral => {
            let lits = positions(seq, |t| matches!(t, Tree::Leaf(TokenTree::Literal(_))));
            let new = pieces(LITERALS, rng);
            match lits.is_empty() {
                true => seq.splice(at..at, new),
                false => {
                    let j = *rng.pick(&lits);
                    seq.splice(j..=j, new)
                }
            };
        }
        Mutation::InsertStatement => {
            let mut spots = vec![0];
            spots.extend(
                (0..len)
                    .filter(|&j| matches!(&seq[j], Tree::Leaf(TokenTree::Punct(p)) if p.as_char() == ';'))
                    .map(|j| j + 1),
            );
            let mut new = pieces(UNSUPPORTED, rng);
            if !rng.one_in(4) {
                new.extend(trees(lex(";")));
            }
            let spot = *rng.pick(&spots);
            seq.splice(spot..spot, new);
        }
        Mutation::ReplaceWithExpr => {
            let spots = positions(seq, |t| {
                matches!(t, Tree::Leaf(TokenTree::Ident(_) | TokenTree::Literal(_)))
            });
            let inner = pieces(UNSUPPORTED, rng);
            let new = match rng.below(3) {
                0 => inner,
                1 => vec![Tree::Group(Delimiter::Parenthesis, inner)],
                _ => vec![Tree::Group(Delimiter::None, inner)],
            };
            match spots.is_empty() {
                true => seq.splice(at..at, new),
                false => {
                    let j = *rng.pick(&spots);
                    seq.splice(j..=j, new)
                }
            };
        }
        Mutation::InsertGroup => {
            let n = rng.below(6);
            let g = Tree::Group(random_delimiter(rng), soup(rng, n, 2));
            seq.insert(at, g);
        }
        Mutation::WrapInvisible if some => {
            // Whole operators only: rustc's invisible groups never split `+=` or `..=`.
            let mut i = i;
            while i > 0 && is_joint(&seq[i - 1]) {
                i -= 1;
            }
            let mut end = i + 1 + rng.below(4.min(len - i));
            while end < len && is_joint(&seq[end - 1]) {
                end += 1;
            }
            let inner: Vec<Tree> = seq.drain(i..end).collect();
            seq.insert(i, Tree::Group(Delimiter::None, inner));
        }
        Mutation::Truncate => seq.truncate(at),
        Mutation::Splice if !donor.is_empty() => {
            let mut from = donor.to_vec();
            let src = random_sequence(&mut from, rng);
            if !src.is_empty() {
                let a = rng.below(src.len());
                let b = a + 1 + rng.below((src.len() - a).min(12));
                let piece: Vec<Tree> = src[a..b].to_vec();
                let end = (at + rng.below(3)).min(len);
                seq.splice(at..end, piece);
            }
        }
        // The sequence is too short for this edit: add a token instead.
        _ => seq.insert(at, soup(rng, 1, 0).remove(0)),
    }
}

fn collect_idents(ts: &[Tree], out: &mut Vec<Tree>) {
    for t in ts {
        match t {
            Tree::Leaf(TokenTree::Ident(_)) => out.push(t.clone()),
            Tree::Group(_, inner) => collect_idents(inner, out),
            Tree::Leaf(_) => {}
        }
    }
}

fn random_delimiter(rng: &mut Rng) -> Delimiter {
    *rng.pick(&[
        Delimiter::Parenthesis,
        Delimiter::Brace,
        Delimiter::Bracket,
        Delimiter::None,
    ])
}

/// `n` random tokens: identifiers, keywords, punctuation with random spacing, literals, and
/// (while `depth > 0`) groups of more soup.
fn soup(rng: &mut Rng, n: usize, depth: usize) -> Vec<Tree> {
    const PUNCT: &str = "=<>!~+-*/%^&|@.,;:#$?";
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match rng.below(if depth > 0 { 10 } else { 9 }) {
            0..=2 => out.extend(pieces(WORDS, rng)),
            3 => out.extend(pieces(&["x", "y", "s", "i", "n", "a", "b", "f"], rng)),
            4..=6 => {
                let c = PUNCT.chars().nth(rng.below(PUNCT.len())).unwrap_or('+');
                let spacing = if rng.one_in(2) {
                    Spacing::Joint
                } else {
                    Spacing::Alone
                };
                out.push(Tree::Leaf(TokenTree::Punct(proc_macro2::Punct::new(
                    c, spacing,
                ))));
            }
            7 | 8 => out.extend(pieces(LITERALS, rng)),
            _ => {
                let len = rng.below(6);
                out.push(Tree::Group(
                    random_delimiter(rng),
                    soup(rng, len, depth - 1),
                ));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// One input of the macro, with a label that says how to make it again.
pub struct Case {
    pub label: String,
    pub attr: TokenStream,
    pub item: TokenStream,
}

/// The corpus function `index` with 1–3 mutations from `seed`; one time in ten its attribute is
/// mutated too.
pub fn mutant(index: usize, seed: u64) -> Case {
    let mut rng = Rng::new(seed.wrapping_mul(0x1000_0000_01B3) ^ index as u64);
    let (attr, src) = CORPUS[index % CORPUS.len()];
    let donor = trees(lex(rng.pick(CORPUS).1));
    let mut item = trees(lex(src));
    let mut attr = trees(lex(attr));
    let mut applied = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let m = *rng.pick(MUTATIONS);
        mutate(&mut item, m, &donor, &mut rng);
        applied.push(m);
    }
    if rng.one_in(10) {
        let m = *rng.pick(MUTATIONS);
        mutate(&mut attr, m, &donor, &mut rng);
        applied.push(m);
    }
    Case {
        label: format!("mutant({index}, {seed}) {applied:?}"),
        attr: stream(&attr),
        item: stream(&item),
    }
}

/// Random tokens from `seed`, as the whole item, a body, a parameter list, a return type, an
/// attribute, or spliced into a corpus function.
pub fn soup_case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let n = rng.below(60);
    let tokens = soup(&mut rng, n, 3);
    let body = stream(&tokens);
    let form = rng.below(6);
    let (attr, item) = match form {
        0 => (TokenStream::new(), body),
        1 => (
            TokenStream::new(),
            quote::quote!(fn f(x: f64, y: &[f64]) -> f64 { #body }),
        ),
        2 => (TokenStream::new(), quote::quote!(fn f(#body) -> f64 { x })),
        3 => (
            TokenStream::new(),
            quote::quote!(fn f(x: f64) -> #body { x }),
        ),
        4 => (body, lex(rng.pick(CORPUS).1)),
        _ => {
            let mut item = trees(lex(rng.pick(CORPUS).1));
            let seq = random_sequence(&mut item, &mut rng);
            let at = rng.below(seq.len() + 1);
            seq.splice(at..at, tokens);
            (TokenStream::new(), stream(&item))
        }
    };
    Case {
        label: format!("soup_case({seed}) form {form}"),
        attr,
        item,
    }
}

fn case(label: impl Into<String>, attr: &str, item: &str) -> Case {
    Case {
        label: label.into(),
        attr: lex(attr),
        item: lex(item),
    }
}

/// Bodies nested `depth` deep: blocks, `if`s, early returns, `for`, `while` and `loop`,
/// parentheses, unary minus, method chains, calls, indices, invisible groups, and unsupported
/// constructs (`match`, closures, `unsafe`) nested as deep.
pub fn deep_cases(depth: usize) -> Vec<Case> {
    let d = depth;
    let scalar = |label: &str, body: String| {
        case(
            format!("{label}, {d} deep"),
            "",
            &format!("fn f(x: f64, y: f64) -> f64 {{ {body} }}"),
        )
    };
    let nest = |init: &str, f: &dyn Fn(usize, &str) -> String| {
        (0..d).fold(init.to_string(), |inner, k| f(k, &inner))
    };
    let mut cases = vec![
        scalar("blocks", format!("{}x{}", "{ ".repeat(d), " }".repeat(d))),
        scalar(
            "if-else expressions",
            nest("x * y", &|k, s| {
                format!("if x > {k}.0 {{ {s} }} else {{ y - {k}.0 }}")
            }),
        ),
        scalar(
            "early returns",
            nest("return x * y;", &|k, s| format!("if x > {k}.0 {{ {s} }}")) + " y",
        ),
        scalar(
            "for loops",
            format!(
                "let mut s = 0.0; {} s = s * x + y; {} s",
                (0..d)
                    .map(|k| format!("for i{k} in 0..2 {{ "))
                    .collect::<String>(),
                "} ".repeat(d)
            ),
        ),
        scalar(
            "while loops",
            format!(
                "let mut s = x; {} s = s.sin() * y; {} s",
                (0..d)
                    .map(|k| format!("let mut k{k} = 0; while k{k} < 2 {{ k{k} += 1; "))
                    .collect::<String>(),
                "} ".repeat(d)
            ),
        ),
        scalar(
            "loops with break and continue",
            format!(
                "let mut s = x; {} s = s * y; {} s",
                (0..d)
                    .map(|k| format!(
                        "loop {{ if s > {k}.0 {{ break; }} if s < -{k}.0 {{ continue; }} "
                    ))
                    .collect::<String>(),
                "} ".repeat(d)
            ),
        ),
        scalar(
            "let blocks",
            nest("x * y", &|k, s| format!("let a{k} = {{ {s} }}; a{k}")),
        ),
        scalar(
            "parentheses",
            format!("{}x{}", "(".repeat(d), ")".repeat(d)),
        ),
        scalar(
            "unary minus",
            format!("{}x{}", "-(".repeat(d), ")".repeat(d)),
        ),
        scalar("method chain", format!("x{}", ".sin()".repeat(d))),
        scalar(
            "path calls",
            format!("{}x{}", "f64::sin(".repeat(d), ")".repeat(d)),
        ),
        scalar(
            "binary chain",
            format!(
                "x{}",
                (0..d).map(|k| format!(" + x * {k}.5")).collect::<String>()
            ),
        ),
        scalar(
            "right-nested binary",
            nest("x", &|_, s| format!("x * ({s})")),
        ),
        scalar(
            "calls to another function",
            format!("{}x{}", "softplus(".repeat(d), ")".repeat(d)),
        ),
        scalar(
            "match (unsupported)",
            nest("x", &|_, s| format!("match y {{ _ => {s} }}")),
        ),
        scalar(
            "closures (unsupported)",
            nest("x", &|_, s| format!("(|x: f64| {s})(y)")),
        ),
        scalar(
            "unsafe blocks (unsupported)",
            nest("x", &|_, s| format!("unsafe {{ {s} }}")),
        ),
        case(
            format!("indices, {d} deep"),
            "",
            &format!(
                "fn f(x: &[f64]) -> f64 {{ {} }}",
                nest("x[0]", &|_, s| format!("x[({s}) as usize]"))
            ),
        ),
        case(
            format!("buffer of nested arrays, {d} deep"),
            "",
            &format!(
                "fn f(x: f64) -> f64 {{ let b = {}; x }}",
                nest("0.0", &|_, s| format!("[{s}; 2]"))
            ),
        ),
        case(
            format!("reference type, {d} deep"),
            "",
            &format!("fn f(x: {}[f64]) -> f64 {{ x[0] }}", "&".repeat(d)),
        ),
        case(
            format!("generic type, {d} deep"),
            "",
            &format!(
                "fn f(x: f64, v: {}f64{}) -> f64 {{ x }}",
                "Vec<".repeat(d),
                ">".repeat(d)
            ),
        ),
    ];
    let mut invisible = trees(lex("x * y"));
    for _ in 0..d {
        invisible = vec![Tree::Group(Delimiter::None, invisible)];
    }
    let body = stream(&invisible);
    cases.push(Case {
        label: format!("invisible groups, {d} deep"),
        attr: TokenStream::new(),
        item: quote::quote!(fn f(x: f64, y: f64) -> f64 { #body }),
    });
    cases
}

/// Bodies of `n` statements (and a signature of `n / 5` parameters): straight-line lets,
/// reassignments that must be saved, a loop body that must be taped, `if`s, early returns,
/// buffer writes, one long sum, calls, and as many unsupported statements.
pub fn huge_cases(n: usize) -> Vec<Case> {
    let body = |label: &str, sig: &str, stmts: String, tail: &str| {
        case(
            format!("{label}, {n} statements"),
            "",
            &format!("fn f({sig}) -> f64 {{ {stmts} {tail} }}"),
        )
    };
    let each = |f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<String>();
    vec![
        body(
            "straight-line lets",
            "x: f64, y: f64",
            format!(
                "let a0 = x * y; {}",
                each(&|k| format!("let a{} = a{k} * x + {k}.0 * a{k}.sin(); ", k + 1))
            ),
            &format!("a{n}"),
        ),
        body(
            "reassignments",
            "x: f64, y: f64",
            format!(
                "let mut s = x; {}",
                each(&|k| match k % 3 {
                    0 => "s = s * y; ".to_string(),
                    1 => "s = s.sin(); ".to_string(),
                    _ => format!("s += x * {k}.0; "),
                })
            ),
            "s",
        ),
        body(
            "loop body",
            "x: f64, n: usize",
            format!(
                "let mut s = x; for _ in 0..n {{ {} }}",
                each(&|k| format!("s = s * x + {k}.0; "))
            ),
            "s",
        ),
        body(
            "ifs",
            "x: f64, y: f64",
            format!(
                "let mut s = x; {}",
                each(&|k| format!("if s > {k}.0 {{ s = s * y; }} else {{ s = s + x; }} "))
            ),
            "s",
        ),
        body(
            "early returns",
            "x: f64, y: f64",
            format!(
                "let mut s = x; {}",
                each(&|k| format!("if s > {k}.0 {{ return s * y; }} s = s * x; "))
            ),
            "s",
        ),
        body(
            "buffer writes",
            "x: &[f64], y: f64",
            format!(
                "let mut b = [0.0; {n}]; {}",
                each(&|k| format!("b[{k}] = x[{}] * y + b[{}]; ", k % 7, k.saturating_sub(1)))
            ),
            &format!("b[{}]", n - 1),
        ),
        body(
            "one long sum",
            "x: f64, y: f64",
            String::new(),
            &format!("x{}", each(&|k| format!(" + y * {k}.0"))),
        ),
        body(
            "calls",
            "x: f64, y: f64",
            format!(
                "let mut s = x; {}",
                each(&|_| "s = softplus(s) * y; ".to_string())
            ),
            "s",
        ),
        body(
            "unsupported statements",
            "x: f64, y: f64",
            each(&|k| format!("let a{k} = match x {{ _ => |t: f64| t * y }}; ")),
            "x",
        ),
        body(
            "parameters",
            &(0..n / 5)
                .map(|k| format!("x{k}: f64, "))
                .collect::<String>(),
            String::new(),
            &format!(
                "{}0.0",
                (0..n / 5)
                    .map(|k| format!("x{k} * x{k} + "))
                    .collect::<String>()
            ),
        ),
    ]
}

/// Garbage in the attribute position, each with a scalar, a slice and a mixed function. Sources
/// that do not lex (`wrt(`) cannot reach the macro: rustc hands over balanced token trees only.
pub fn attribute_cases() -> Vec<Case> {
    const ATTRS: &[&str] = &[
        "wrt(",
        "wrt(x,,y)",
        "foo",
        "wrt(x) wrt(y)",
        "wrt(x), wrt(y)",
        "1",
        "\"x\"",
        "1.0",
        "wrt",
        "wrt()",
        "wrt(,)",
        "wrt(x,)",
        "wrt(x y)",
        "wrt(x)(y)",
        ",",
        "wrt(x),",
        "wrt(x),,",
        "wrt = x",
        "wrt[x]",
        "wrt{x}",
        "wrt(1.0)",
        "wrt(\"x\")",
        "wrt(x: f64)",
        "wrt(self)",
        "wrt(_)",
        "wrt(r#x)",
        "wrt(nonexistent)",
        "wrt(n)",
        "wrt(x, x)",
        "wrt((x))",
        "wrt(x::y)",
        "wrt(crate)",
        "#",
        "wrt(x) = 3",
        "::wrt(x)",
        "Wrt(x)",
        "wrt!(x)",
        "wrt(x, y, x, y, z)",
        "wrt(a, b)",
        "wrt(steps)",
        "wrt(x, steps)",
        "wrt(x0, r)",
        "#[wrt(x)]",
        "wrt(x) = ",
        "; wrt(x)",
        "wrt(-x)",
        "wrt(&x)",
        "wrt(x[0])",
    ];
    const FUNCS: &[&str] = &[
        "fn f(x: f64, y: f64) -> f64 { x * y }",
        "fn f(x: &[f64], y: f64) -> f64 { x[0] * y }",
        "fn f(x0: f64, r: f64, steps: usize) -> f64 { x0 * r * steps as f64 }",
    ];
    let mut cases = Vec::new();
    for attr in ATTRS {
        let Ok(a) = TokenStream::from_str(attr) else {
            continue;
        };
        for item in FUNCS {
            cases.push(Case {
                label: format!("attribute `{attr}` on `{item}`"),
                attr: a.clone(),
                item: lex(item),
            });
        }
    }
    for seed in 0..300 {
        let mut rng = Rng::new(seed ^ 0xA77);
        let n = rng.below(12);
        let attr = stream(&soup(&mut rng, n, 2));
        cases.push(Case {
            label: format!("attribute soup {seed}"),
            attr,
            item: lex(FUNCS[rng.below(FUNCS.len())]),
        });
    }
    cases
}

/// Signatures the macro must refuse or accept without panicking.
pub fn signature_cases() -> Vec<Case> {
    const SIGS: &[&str] = &[
        "fn f() -> f64 { 1.0 }",
        "fn f(x: f64) { }",
        "fn f(x: f64) -> () { }",
        "fn f(x: f64) -> ! { loop {} }",
        "fn f(x: f64) -> impl Fn() -> f64 { x }",
        "fn f(x: f64) -> (f64, f64) { (x, x) }",
        "fn f(x: f64) -> [f64; 2] { [x, x] }",
        "fn f(x: f64) -> &f64 { &x }",
        "fn f(x: f64) -> Vec<f64> { vec![x] }",
        "fn f(x: f64) -> f64",
        "fn f(x: f64) -> f64 ;",
        "fn f(&self, x: f64) -> f64 { x }",
        "fn f(self, x: f64) -> f64 { x }",
        "fn f(mut self: Box<Self>) -> f64 { 1.0 }",
        "async fn f(x: f64) -> f64 { x }",
        "const fn f(x: f64) -> f64 { x }",
        "unsafe fn f(x: f64) -> f64 { x }",
        "extern \"C\" fn f(x: f64) -> f64 { x }",
        "pub extern fn f(x: f64) -> f64 { x }",
        "fn f<T>(x: T) -> T { x }",
        "fn f<'a>(x: &'a [f64]) -> f64 { x[0] }",
        "fn f<const N: usize>(x: &[f64; N]) -> f64 { x[0] }",
        "fn f(x: f64) -> f64 where f64: Copy { x }",
        "fn f((a, b): (f64, f64)) -> f64 { a * b }",
        "fn f(_: f64) -> f64 { 1.0 }",
        "fn f(mut x: f64) -> f64 { x = x * x; x }",
        "fn f(ref x: f64) -> f64 { *x }",
        "fn f(x @ _: f64) -> f64 { x }",
        "fn f(x: &mut [f64]) -> f64 { x[0] }",
        "fn f(x: &mut f64) -> f64 { *x }",
        "fn f(x: &f64) -> f64 { *x }",
        "fn f(x: &&[f64]) -> f64 { x[0] }",
        "fn f(x: [f64; 3]) -> f64 { x[0] }",
        "fn f(x: Vec<f64>) -> f64 { x[0] }",
        "fn f(x: &[f64; 0]) -> f64 { 0.0 }",
        "fn f(x: &[[f64; 3]]) -> f64 { x[0][0] }",
        "fn f(x: &[f32], y: f64) -> f64 { y }",
        "fn f(x: f32, y: f64) -> f64 { y }",
        "fn f(x: Box<f64>) -> f64 { *x }",
        "fn f(x: Option<f64>) -> f64 { 1.0 }",
        "fn f(x: impl Into<f64>) -> f64 { x.into() }",
        "fn f(x: dyn Fn()) -> f64 { 1.0 }",
        "fn f(x: fn(f64) -> f64) -> f64 { x(1.0) }",
        "fn f(x: (f64,)) -> f64 { x.0 }",
        "fn f(x: !) -> f64 { x }",
        "fn f(x: _) -> f64 { x }",
        "fn f(x: f64, x: f64) -> f64 { x }",
        "fn f(x: f64, ...) -> f64 { x }",
        "fn f(x: Self) -> f64 { 1.0 }",
        "fn f(x: core::primitive::f64) -> core::primitive::f64 { x }",
        "fn f(x: std::primitive::f32) -> f32 { x }",
        "fn f(x: ::core::primitive::f64) -> f64 { x }",
        "fn f(x: F64) -> F64 { x }",
        "fn f(x: f64, y: &Vec<f32>) -> f64 { x }",
        "fn f(x: &'static [f64]) -> f64 { x[0] }",
        "fn f(x: *const f64) -> f64 { 1.0 }",
        "fn f(#[cfg(any())] x: f64, y: f64) -> f64 { y }",
        "#[inline] pub fn f(x: f64) -> f64 { x }",
        "/// doc\n#[must_use] fn f(x: f64) -> f64 { x }",
        "#[gradient] fn f(x: f64) -> f64 { x }",
        "fn r#fn(x: f64) -> f64 { x }",
        "fn f_grad(x: f64) -> f64 { x }",
        "fn __ad(__ad_x: f64, __ad_bar: f64) -> f64 { __ad_x * __ad_bar }",
        "fn f(x: f64) -> f64 { fn g(t: f64) -> f64 { t } g(x) }",
        "fn f(x: f64) -> f64 { f(x) }",
        "fn f(x: f64) -> f64 {}",
        "fn f(x: f64) -> f64 { ; }",
        "fn f(x: f64) -> f64 { ;;; x }",
        "fn f(x: f64) -> f64 { x; }",
        "fn f(x: f64) -> f64 { return; }",
        "fn f(x: f64) -> f64 { return x; x }",
        "fn f(x: f64) -> f64 { return x; }",
        "fn f(x: f64) -> f64 { break; x }",
        "fn f(x: f64) -> f64 { continue; x }",
        "fn f(x: f64) -> f64 { loop {} }",
        "fn f(x: f64) -> f64 { loop { return x; } }",
        "fn f(x: f64) -> f64 { while true { return x; } x }",
        "fn f(x: f64) -> f64 { let y; y = x; y }",
        "fn f(x: f64) -> f64 { let y: f64; if x > 0.0 { y = x; } else { y = 1.0; } y }",
        "fn f(x: f64) -> f64 { let x = x; let x = x * x; let x = x.sin(); x }",
        "fn f(x: f64) -> f64 { { let x = 2.0; } x }",
        "fn f(x: f64, n: usize) -> f64 { let mut s = 0.0; for i in 0..n { let s = s + x; } s }",
        "fn f(x: f64) -> f64 { let b = [0.0; 0]; x }",
        "fn f(x: &[f64]) -> f64 { let mut b = vec![0.0; x.len()]; b[0] = x[0]; b }",
        "fn f(x: &[f64]) -> f64 { let b = x; b[0] }",
        "fn f(x: &[f64]) -> f64 { x = x; x[0] }",
        "fn f(x: &[f64]) -> f64 { x[0] = 1.0; x[0] }",
        "struct S { x: f64 }",
        "enum E { A }",
        "impl S { fn f(x: f64) -> f64 { x } }",
        "mod m { }",
        "trait T { fn f(x: f64) -> f64; }",
        "const C: f64 = 1.0;",
        "static S: f64 = 1.0;",
        "type T = f64;",
        "use std::f64;",
        "extern crate core;",
        "macro_rules! m { () => {} }",
        "m!();",
        "",
        "fn",
        "fn f",
        "fn f(x: f64) -> f64 { x } fn g(x: f64) -> f64 { x }",
        "x * y",
        "{ x }",
        "1.0",
    ];
    SIGS.iter()
        .filter_map(|s| {
            Some(Case {
                label: format!("signature `{s}`"),
                attr: TokenStream::new(),
                item: TokenStream::from_str(s).ok()?,
            })
        })
        .collect()
}

/// Every unsupported construct as a `let`, as the tail and inside a loop body, in a scalar
/// function, a slice function and a function with branches.
pub fn unsupported_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for u in UNSUPPORTED {
        for (k, body) in [
            format!("let u = {u}; x * y"),
            format!("x * y; {u}"),
            format!("let mut s = x; for i in 0..3 {{ {u}; s = s * y; }} s"),
            format!("if x > y {{ {u}; return x; }} let z = {{ {u} }}; z * y"),
            format!("let mut s = x; while s < y {{ s = s * ({u}); }} s"),
        ]
        .iter()
        .enumerate()
        {
            let sig = if k % 2 == 0 {
                "x: f64, y: f64"
            } else {
                "x: &[f64], y: f64, n: usize"
            };
            cases.push(case(
                format!("`{u}` in position {k}"),
                "",
                &format!("fn f({sig}) -> f64 {{ {body} }}"),
            ));
        }
    }
    cases
}

// ---------------------------------------------------------------------------------------------
// Checking one input
// ---------------------------------------------------------------------------------------------

/// What the macro did with an input that it handled correctly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// The item, then `<name>_grad`.
    Expanded,
    /// The item, then `compile_error!`s.
    Refused,
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

/// Runs the pipeline on one input and checks its contract; `Err` says what went wrong.
pub fn check(attr: &TokenStream, item: &TokenStream) -> (Result<Verdict, String>, Duration) {
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        expand_inner(attr.clone(), item.clone())
    }));
    let elapsed = start.elapsed();
    let out = match result {
        Ok(out) => out,
        Err(payload) => {
            let msg = panic_message(payload.as_ref());
            return (Err(format!("panicked: {msg}")), elapsed);
        }
    };
    (judge(item, out, elapsed), elapsed)
}

fn judge(item: &TokenStream, out: TokenStream, elapsed: Duration) -> Result<Verdict, String> {
    if elapsed >= TIME_LIMIT {
        return Err(format!("took {elapsed:?} (limit {TIME_LIMIT:?})"));
    }
    let (item_text, out_text) = (item.to_string(), out.to_string());
    let Some(added) = out_text.strip_prefix(&item_text) else {
        return Err("the output does not start with the original item".to_string());
    };
    if added.contains("compile_error") {
        return Ok(Verdict::Refused);
    }
    let fns = output_fns(out).map_err(|e| format!("the output is not Rust: {e}"))?;
    let name = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(f) => format!("{}_grad", f.sig.ident.unraw()),
        Err(_) => return Err("a non-function was accepted without an error".to_string()),
    };
    if !fns.contains(&name) {
        return Err(format!("no `{name}` and no compile_error! in the output"));
    }
    Ok(Verdict::Expanded)
}

/// How deeply the groups of `ts` nest (without recursion: the point is to measure deep input).
pub fn depth(ts: &TokenStream) -> usize {
    let mut stack = vec![ts.clone().into_iter()];
    let mut max = 0;
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(TokenTree::Group(g)) => {
                stack.push(g.stream().into_iter());
                max = max.max(stack.len() - 1);
            }
            Some(_) => {}
            None => {
                stack.pop();
            }
        }
    }
    max
}

/// The names of the functions of the output, which must parse as a file. Sequential early exits
/// nest the rest of a body one block deeper each, and syn's recursive descent needs about 16 KiB
/// of stack per level in a debug build, so deep output is parsed on a thread with a large stack
/// (reserved, not committed).
fn output_fns(out: TokenStream) -> Result<Vec<String>, String> {
    fn names(file: &syn::File) -> Vec<String> {
        let fns = file.items.iter().filter_map(|i| match i {
            syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
            _ => None,
        });
        fns.collect()
    }
    fn fns(text: &str) -> Result<Vec<String>, String> {
        let file = syn::parse_str::<syn::File>(text).map_err(|e| e.to_string())?;
        Ok(names(&file))
    }
    if depth(&out) < 100 {
        // As tokens: the text of an invisible group loses its boundaries.
        let file = syn::parse2::<syn::File>(out).map_err(|e| e.to_string())?;
        return Ok(names(&file));
    }
    let text = out.to_string();
    let thread = std::thread::Builder::new().stack_size(1 << 30);
    match thread.spawn(move || fns(&text)).map(|t| t.join()) {
        Ok(Ok(result)) => result,
        _ => Err("the parse of the output panicked".to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Shrinking a failing input
// ---------------------------------------------------------------------------------------------

/// Shrinks `item` (and then `attr`) while `fails` holds: removes chunks of each token sequence,
/// halving the chunk size, then replaces groups by their contents. At most `budget` runs.
pub fn minimise(
    attr: &TokenStream,
    item: &TokenStream,
    fails: &dyn Fn(&TokenStream, &TokenStream) -> bool,
    budget: usize,
) -> (TokenStream, TokenStream) {
    let mut runs = 0;
    let mut attr_t = trees(attr.clone());
    let mut item_t = trees(item.clone());
    for which in 0..2 {
        let mut progress = true;
        while progress && runs < budget {
            progress = false;
            let current = if which == 0 { &item_t } else { &attr_t };
            let mut paths = Vec::new();
            sequences(current, &mut Vec::new(), &mut paths);
            // Deepest sequences last: their paths stay valid while shallower ones shrink.
            'paths: for path in paths.iter().rev() {
                let mut chunk = 16;
                while chunk > 0 {
                    let mut start = 0;
                    loop {
                        let mut trial = if which == 0 {
                            item_t.clone()
                        } else {
                            attr_t.clone()
                        };
                        let seq = seq_mut(&mut trial, path);
                        if start >= seq.len() {
                            break;
                        }
                        let end = (start + chunk).min(seq.len());
                        seq.drain(start..end);
                        runs += 1;
                        let ok = if which == 0 {
                            fails(&stream(&attr_t), &stream(&trial))
                        } else {
                            fails(&stream(&trial), &stream(&item_t))
                        };
                        if ok {
                            if which == 0 {
                                item_t = trial;
                            } else {
                                attr_t = trial;
                            }
                            progress = true;
                            continue 'paths;
                        }
                        if runs >= budget {
                            break 'paths;
                        }
                        start += chunk;
                    }
                    chunk /= 2;
                }
            }
            if progress {
                continue;
            }
            // Unwrap groups: `(a + b)` → `a + b`.
            let current = if which == 0 { &item_t } else { &attr_t };
            let mut paths = Vec::new();
            sequences(current, &mut Vec::new(), &mut paths);
            for path in paths.iter().skip(1) {
                let (last, parent) = path.split_last().expect("not the root");
                let mut trial = if which == 0 {
                    item_t.clone()
                } else {
                    attr_t.clone()
                };
                let seq = seq_mut(&mut trial, parent);
                let Tree::Group(_, inner) = seq[*last].clone() else {
                    continue;
                };
                seq.splice(*last..=*last, inner);
                runs += 1;
                let ok = if which == 0 {
                    fails(&stream(&attr_t), &stream(&trial))
                } else {
                    fails(&stream(&trial), &stream(&item_t))
                };
                if ok {
                    if which == 0 {
                        item_t = trial;
                    } else {
                        attr_t = trial;
                    }
                    progress = true;
                    break;
                }
            }
        }
    }
    (stream(&attr_t), stream(&item_t))
}

// ---------------------------------------------------------------------------------------------
// Campaigns
// ---------------------------------------------------------------------------------------------

/// What a campaign saw.
#[derive(Default)]
pub struct Report {
    pub tried: usize,
    pub expanded: usize,
    pub refused: usize,
    pub slowest: (Duration, String),
    pub total: Duration,
    /// `(label, attr, item, what went wrong)`, the inputs already shrunk.
    pub failures: Vec<(String, String, String, String)>,
}

impl Report {
    /// Checks one case; a failure is shrunk (for panics, to an input with the same message).
    pub fn run(&mut self, case: &Case) {
        let (mut verdict, mut elapsed) = check(&case.attr, &case.item);
        if elapsed >= TIME_LIMIT && elapsed < 2 * TIME_LIMIT {
            // Slow twice, or it was the machine.
            (verdict, elapsed) = check(&case.attr, &case.item);
        }
        self.tried += 1;
        self.total += elapsed;
        if elapsed > self.slowest.0 {
            self.slowest = (elapsed, case.label.clone());
        }
        match verdict {
            Ok(Verdict::Expanded) => self.expanded += 1,
            Ok(Verdict::Refused) => self.refused += 1,
            Err(what) => {
                // Shrink the first few failures of each kind; the rest are reported as found.
                let seen = self
                    .failures
                    .iter()
                    .filter(|f| shape(&f.3) == shape(&what))
                    .count();
                let (attr, item) = if seen < 2 && !what.starts_with("took") {
                    let same = |a: &TokenStream, i: &TokenStream| {
                        check(a, i).0.err().map(|w| shape(&w)) == Some(shape(&what))
                    };
                    minimise(&case.attr, &case.item, &same, 3000)
                } else {
                    (case.attr.clone(), case.item.clone())
                };
                self.failures
                    .push((case.label.clone(), attr.to_string(), item.to_string(), what));
            }
        }
    }

    pub fn summary(&self, name: &str) -> String {
        let mut s = format!(
            "{name}: {} inputs, {} expanded, {} refused, {} failed; {:.1?} in the macro, \
             slowest {:.1?} ({})",
            self.tried,
            self.expanded,
            self.refused,
            self.failures.len(),
            self.total,
            self.slowest.0,
            self.slowest.1
        );
        for (label, attr, item, what) in &self.failures {
            let _ = write!(s, "\n  {label}: {what}\n    #[gradient({attr})] {item}");
        }
        s
    }
}

/// At most 400 characters of `s`, with its length when cut.
pub fn abbreviate(s: &str) -> String {
    match s.char_indices().nth(400) {
        Some((i, _)) => format!("{} … ({} characters)", &s[..i], s.len()),
        None => s.to_string(),
    }
}

/// Inputs of the deep and huge generators that break the contract today, each a finding handed
/// to the developers with its measurement (debug build, as rustc runs a proc macro; 8 MiB stack).
/// The tests skip them; `known_failures` and `known_stack_overflows` (ignored) run them.
pub const KNOWN: &[(&str, Known)] = &[
    (
        "`(..) = t;`",
        Known::Panic(
            "`lower_assign` strips the parentheses of the assignee and rebuilds the statement \
             with `parse_quote!(#left = #right)`: `.. = t` does not parse, and parse_quote! \
             panics (\"unexpected token\"); `(..) = t;` is valid Rust (destructuring \
             assignment)",
        ),
    ),
    (
        "`(x..x) = 1.0;`",
        Known::Panic("the same panic for any range assignee: `(x..x)`, `(x..=x) += 1.0`"),
    ),
    (
        "`({ 1 }) += 1;`",
        Known::InvalidOutput(
            "the same stripping of parentheses: `{ 1 } += 1;` is emitted, a block statement \
             followed by `+= 1`, so rustc reports a syntax error in generated code (also for \
             `(loop {})`, `(if ..)`, `(match ..)` assignees; the input is invalid Rust anyway)",
        ),
    ),
    (
        "`assert!(x > 0.0) += 1;`",
        Known::InvalidOutput("a macro call as assignee: the output does not parse"),
    ),
    (
        "14 nested loops that break",
        Known::Slow(
            "the smallest form of the exponential case below, about 5 s: time doubles with \
             each loop (10 deep 0.3 s, 12 deep 1.3 s)",
        ),
    ),
    (
        "method chain, 1500 deep",
        Known::StackOverflow(
            "`Lowerer::sort_of` recurses into the receiver, and is called again at every link, \
             so a chain `x.sin().sin()…` is also quadratic: 1,024 links take 6 s, 1,500 overflow",
        ),
    ),
    (
        "one long sum, 2000 statements",
        Known::StackOverflow("see `one long sum, 5000 statements`"),
    ),
    (
        "early returns, 2000 statements",
        Known::StackOverflow("see `early returns, 5000 statements`"),
    ),
    (
        "blocks, 600 deep",
        Known::StackOverflow(
            "syn's own recursive descent (`syn::parse2::<ItemFn>`, before any code of the \
             macro) needs about 16 KiB of stack per nested group in a debug build: about 500 \
             nested blocks, `if`s or parentheses overflow 8 MiB (and 256 nested generic types)",
        ),
    ),
    (
        "loops with break and continue, 200 deep",
        Known::Slow(
            "exponential in the nesting of loops that `break`: the to-be-recorded analysis \
             (analyse.rs, `tbr_stmt`) iterates each loop to a fixpoint, re-walking the nested \
             loops on every iteration; 10 deep 0.9 s, 12 deep 4.7 s, 13 deep 11 s",
        ),
    ),
    (
        "for loops, 200 deep",
        Known::Slow(
            "about cubic in the nesting of loops (the same per-loop fixpoint of `tbr_stmt`): \
             128 deep 1.7 s, 256 deep 16 s",
        ),
    ),
    (
        "while loops, 200 deep",
        Known::Slow("as `for loops`: 128 deep 1.6 s, 256 deep 17.5 s"),
    ),
    (
        "ifs, 5000 statements",
        Known::Slow(
            "quadratic in the number of `if` statements (`tbr_stmt` clones the pending set at \
             every `if`; lowering looks variables up through every scope): 1024 ifs 2.0 s, \
             2048 6.0 s, 5000 about 20 s",
        ),
    ),
    (
        "straight-line lets, 5000 statements",
        Known::Slow("linear but about 0.4 ms a statement: 5000 lets take 2.1 s"),
    ),
    (
        "buffer writes, 5000 statements",
        Known::Slow("linear but about 0.5 ms a statement: 5000 writes take 2.6 s"),
    ),
    (
        "calls, 5000 statements",
        Known::Slow(
            "linear but about 0.4 ms a call: 5000 calls take 1.8 s alone and over 2 s when \
             another test runs beside them",
        ),
    ),
    (
        "early returns, 5000 statements",
        Known::StackOverflow(
            "each early return nests the rest of the body one block deeper in the IR, and \
             `analyse::recomputable` recurses through it: about 1,800 sequential \
             `if c { return e; }` overflow 8 MiB (1,500 take 2.3 s)",
        ),
    ),
    (
        "one long sum, 5000 statements",
        Known::StackOverflow(
            "`lower_float` recurses into the left operand of a left-associative chain: a sum of \
             about 1,800 terms overflows 8 MiB (1,500 take 1.9 s)",
        ),
    ),
];

/// Why a case is in [`KNOWN`].
#[derive(Clone, Copy, Debug)]
pub enum Known {
    /// The pipeline panics.
    Panic(&'static str),
    /// Neither an expansion that parses nor a `compile_error!`.
    InvalidOutput(&'static str),
    /// Over [`TIME_LIMIT`] (or no end in sight).
    Slow(&'static str),
    /// Aborts the process: rustc would die with it.
    StackOverflow(&'static str),
}

impl Known {
    pub fn finding(self) -> &'static str {
        match self {
            Known::Panic(s)
            | Known::InvalidOutput(s)
            | Known::Slow(s)
            | Known::StackOverflow(s) => s,
        }
    }
}

/// Minimal reproducers of the findings of [`KNOWN`] that abort nothing: panics, invalid output,
/// and the exponential time of nested loops that `break`.
pub fn finding_cases() -> Vec<Case> {
    let breaks: String = (0..14)
        .map(|k| format!("for i{k} in 0..2 {{ if s > 1.0 {{ break; }} "))
        .collect();
    let nested = format!(
        "fn f(x: f64, y: f64) -> f64 {{ let mut s = x; {breaks} s = s * y; {} s }}",
        "} ".repeat(14)
    );
    vec![
        case(
            "`(..) = t;`",
            "",
            "fn f(x: f64) -> f64 { let t = (x, x); (..) = t; x }",
        ),
        case(
            "`(x..x) = 1.0;`",
            "",
            "fn f(x: f64) -> f64 { (x..x) = 1.0; x }",
        ),
        case(
            "`({ 1 }) += 1;`",
            "",
            "fn f(x: f64) -> f64 { ({ 1 }) += 1; x }",
        ),
        case(
            "`assert!(x > 0.0) += 1;`",
            "",
            "fn f(x: f64) -> f64 { assert!(x > 0.0) += 1; x }",
        ),
        case("14 nested loops that break", "", &nested),
    ]
}

/// Reproducers of the stack overflows of [`KNOWN`]: each aborts the process that runs it.
pub fn overflow_cases() -> Vec<Case> {
    let pick = |cases: Vec<Case>, label: &str| cases.into_iter().find(|c| c.label == label);
    [
        pick(deep_cases(1500), "method chain, 1500 deep"),
        pick(huge_cases(2000), "one long sum, 2000 statements"),
        pick(huge_cases(2000), "early returns, 2000 statements"),
        pick(deep_cases(600), "blocks, 600 deep"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The finding that explains a failure of the case labelled `label`, if it is known.
pub fn known(label: &str) -> Option<Known> {
    KNOWN.iter().find(|(l, _)| *l == label).map(|(_, k)| *k)
}

/// A failure message without its numbers: "index out of bounds: the len is 3 but the index is
/// 5" stays the same failure while the input shrinks.
fn shape(what: &str) -> String {
    what.chars().filter(|c| !c.is_ascii_digit()).collect()
}

/// Runs `work` on a thread with rustc's stack size, and fails (naming the input) if the current
/// input makes no progress for [`HANG`].
pub fn guarded<F>(name: &str, work: F) -> Report
where
    F: FnOnce(&dyn Fn(&Case), &mut Report) + Send + 'static,
{
    let counter = Arc::new(AtomicU64::new(0));
    let current = Arc::new(Mutex::new(String::new()));
    let (c, cur) = (counter.clone(), current.clone());
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(STACK)
        .spawn(move || {
            let mut report = Report::default();
            let note = |case: &Case| {
                *cur.lock().unwrap_or_else(|e| e.into_inner()) =
                    format!("{}: #[gradient({})] {}", case.label, case.attr, case.item);
                c.fetch_add(1, Ordering::Relaxed);
            };
            work(&note, &mut report);
            report
        })
        .expect("spawn the campaign thread");
    let mut last = (0, Instant::now());
    while !handle.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
        let n = counter.load(Ordering::Relaxed);
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > HANG {
            let what = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
            panic!(
                "{name}: no progress for {HANG:?}, a hang on {}",
                abbreviate(&what)
            );
        }
    }
    match handle.join() {
        Ok(report) => report,
        Err(p) => panic!(
            "{name}: the campaign itself panicked: {}",
            panic_message(p.as_ref())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One campaign at a time: the time limit is about the macro, not about sharing two cores.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    /// Runs all of `cases` under the watchdog and fails with every failure.
    fn campaign_all(name: &'static str, cases: impl FnOnce() -> Vec<Case> + Send + 'static) {
        let report = guarded(name, move |note, report| {
            for case in cases() {
                note(&case);
                report.run(&case);
            }
        });
        println!("{}", report.summary(name));
        assert!(report.failures.is_empty(), "{}", report.summary(name));
    }

    /// Runs `cases` under the watchdog, skipping [`KNOWN`] ones, and fails with every failure.
    fn campaign(name: &'static str, cases: impl FnOnce() -> Vec<Case> + Send + 'static) -> Report {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let report = guarded(name, move |note, report| {
            for case in cases() {
                if let Some(k) = known(&case.label) {
                    println!("{name}: skipped {} (known: {})", case.label, k.finding());
                    continue;
                }
                note(&case);
                report.run(&case);
            }
        });
        println!("{}", report.summary(name));
        assert!(report.failures.is_empty(), "{}", report.summary(name));
        report
    }

    #[test]
    fn the_corpus_expands() {
        let report = campaign("corpus", || {
            CORPUS
                .iter()
                .enumerate()
                .map(|(i, (a, f))| case(format!("corpus {i}"), a, f))
                .collect()
        });
        assert_eq!(
            report.expanded,
            CORPUS.len(),
            "every corpus function expands"
        );
    }

    #[test]
    fn mutants_of_the_test_suite() {
        let report = campaign("mutants", || {
            (0..60u64)
                .flat_map(|seed| (0..CORPUS.len()).map(move |i| mutant(i, seed)))
                .collect()
        });
        assert!(report.tried >= 3000);
        // Many mutants are still differentiable: the mutations do not only make syntax errors.
        assert!(
            report.expanded > report.tried / 20,
            "{}",
            report.summary("mutants")
        );
    }

    #[test]
    fn token_soup() {
        campaign("soup", || (0..1500).map(soup_case).collect());
    }

    #[test]
    fn unsupported_constructs_everywhere() {
        campaign("unsupported", unsupported_cases);
    }

    #[test]
    fn attribute_garbage() {
        let report = campaign("attributes", attribute_cases);
        // `wrt(x)`, `wrt(a, b)` and friends on functions that have those parameters expand.
        assert!(report.expanded > 0);
    }

    #[test]
    fn signatures_and_items() {
        campaign("signatures", signature_cases);
    }

    #[test]
    fn nested_200_deep() {
        campaign("deep", || deep_cases(200));
    }

    #[test]
    fn bodies_of_5000_statements() {
        campaign("huge", || huge_cases(5000));
    }

    /// The findings of [`KNOWN`] that abort nothing: fails while any of them is still there.
    #[test]
    #[ignore = "known findings, handed to the developers: fails, and takes minutes"]
    fn known_failures() {
        let report = guarded("known", move |note, report| {
            let mut cases = finding_cases();
            cases.extend(deep_cases(200));
            cases.extend(huge_cases(5000));
            for case in cases {
                // The generator's case runs for hours; "14 nested loops that break" shows it.
                let endless = case.label == "loops with break and continue, 200 deep";
                if endless || matches!(known(&case.label), None | Some(Known::StackOverflow(_))) {
                    continue;
                }
                note(&case);
                report.run(&case);
            }
        });
        println!("{}", report.summary("known"));
        assert!(report.failures.is_empty(), "{}", report.summary("known"));
    }

    /// The stack overflows of [`KNOWN`]: aborts the test process while any of them overflows.
    #[test]
    #[ignore = "known findings, handed to the developers: aborts the process"]
    fn known_stack_overflows() {
        campaign_all("known stack overflows", || {
            let mut cases = overflow_cases();
            cases.extend(huge_cases(5000));
            cases.retain(|c| matches!(known(&c.label), Some(Known::StackOverflow(_))));
            cases
        });
    }

    /// Every finding of [`KNOWN`] has a reproducer, and every reproducer a finding.
    #[test]
    fn known_findings_have_reproducers() {
        let mut labels: Vec<String> = finding_cases().into_iter().map(|c| c.label).collect();
        labels.extend(overflow_cases().into_iter().map(|c| c.label));
        labels.extend(deep_cases(200).into_iter().map(|c| c.label));
        labels.extend(huge_cases(5000).into_iter().map(|c| c.label));
        for (label, _) in KNOWN {
            assert!(labels.iter().any(|l| l == label), "no case `{label}`");
        }
        for case in finding_cases().iter().chain(&overflow_cases()) {
            assert!(
                known(&case.label).is_some(),
                "`{}` is no finding",
                case.label
            );
        }
    }

    /// How the expansion time grows with the size of the deep and huge inputs: `AD_SCALE=200
    /// cargo test -p ad-macro scaling -- --ignored --nocapture` times every generator at sizes
    /// 1, 2, 4, … up to 200, and stops a generator once one size takes over a second.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn scaling() {
        let max: usize = std::env::var("AD_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(64);
        let label = |c: &Case| c.label.split(',').next().unwrap_or_default().to_string();
        let names: Vec<(bool, String)> = deep_cases(1)
            .iter()
            .map(|c| (true, label(c)))
            .chain(huge_cases(1).iter().map(|c| (false, label(c))))
            .collect();
        let work = move || {
            for (deep, name) in &names {
                print!("{name} ({}):", if *deep { "depth" } else { "statements" });
                let mut n = 1;
                while n <= max {
                    let cases = if *deep { deep_cases(n) } else { huge_cases(n) };
                    let case = cases
                        .into_iter()
                        .find(|c| label(c) == *name)
                        .expect("same names");
                    let (_, elapsed) = check(&case.attr, &case.item);
                    print!(" {n}: {elapsed:.1?}");
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    if elapsed > Duration::from_secs(1) {
                        break;
                    }
                    n *= 2;
                }
                println!();
            }
        };
        let thread = std::thread::Builder::new().stack_size(STACK).spawn(work);
        thread.expect("spawn").join().expect("no panic");
    }

    #[test]
    fn the_dictionary_lexes() {
        for entry in dictionary() {
            assert!(TokenStream::from_str(entry).is_ok(), "{entry}");
        }
    }

    #[test]
    fn mutations_are_deterministic() {
        let a = mutant(3, 17);
        let b = mutant(3, 17);
        assert_eq!(a.label, b.label);
        assert_eq!(a.item.to_string(), b.item.to_string());
        assert_eq!(soup_case(5).item.to_string(), soup_case(5).item.to_string());
        assert_eq!(count(&trees(lex("a (b [c] d) e"))), 7);
    }

    #[test]
    fn minimise_keeps_the_failure() {
        // A stand-in failure: "the item mentions `boom` inside brackets".
        let fails = |_: &TokenStream, i: &TokenStream| i.to_string().contains("[boom]");
        let (_, item) = minimise(
            &TokenStream::new(),
            &lex("fn f(x: f64) -> f64 { let a = x; { [boom] } a * 2.0 }"),
            &fails,
            1000,
        );
        assert_eq!(item.to_string(), "[boom]");
    }
}
