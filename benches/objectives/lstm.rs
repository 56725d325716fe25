//! The ADBench LSTM objective (Šrajer, Kukelova, Fitzgibbon 2018, "A benchmark of selected
//! algorithmic differentiation tools on some problems in computer vision and machine learning"):
//! the mean log-likelihood of a sequence of c vectors of size b under an l-layer LSTM that predicts
//! each vector from the previous one, as ADBench's C++ reference `lstm_objective` computes it:
//!
//! - `main_params` (2·l·4b): per layer, the weights then the biases of its four gates (forget,
//!   input, output, change), b each; every gate is elementwise (gate j reads entry j of the
//!   layer's input or of its hidden state only), as in ADBench;
//! - `extra_params` (3b): the input scale w₂, then the output weights and biases;
//! - `state` (2·l·b): per layer, the initial hidden state then the cell state (data: copied into
//!   a local buffer the function updates);
//! - `sequence` (c·b): the data, one vector per step.
//!
//! Step t feeds x = sequence[t] ⊙ w₂ through the layers, each cell
//! c ← c ⊙ σ(x ⊙ w_f + b_f) + σ(h ⊙ w_i + b_i) ⊙ tanh(h ⊙ w_c + b_c), h ← σ(x ⊙ w_o + b_o) ⊙ tanh c,
//! the next layer reading h as its x; the prediction y = h ⊙ w_out + b_out is normalised by
//! ADBench's log-sum-exp, ln(Σᵢ exp yᵢ + 2) (its "+ 2" kept), and scored against sequence[t + 1]:
//! f = −Σ_t sequence[t + 1] · (y_t − lse(y_t)) / ((c − 1) b).

use super::data::Rng;
use super::Problem;
use nalgebra::DVector;
use num_dual::{DualDVec64, DualNum};
use reverse::{Gradient, Tape, Var};

/// The logistic function, as the user writes it (a `#[gradient]` function, so that
/// [`lstm_objective`] can call it).
#[ad::gradient]
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// ADBench's log-sum-exp, ln(Σᵢ exp vᵢ + 2), "+ 2" included and no shift by the maximum, as the
/// user writes it (a `#[gradient]` function of a slice, called on a local buffer).
#[ad::gradient]
pub fn logsumexp(v: &[f64]) -> f64 {
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i].exp();
    }
    (sum + 2.0).ln()
}

/// As the user writes it: ADBench's reference, calling [`sigmoid`] and [`logsumexp`] as it does,
/// with `lstm_model` and `lstm_predict` inlined as index loops over local buffers (a
/// `#[gradient]` function cannot write to its parameters, so the cell cannot be a function
/// updating `hidden` and `cell` in place). ADBench's pointer `xp = &s[i]` to the layer's input
/// becomes a buffer `xp` the layer's new hidden state is copied into (sub-slices are not
/// supported).
#[ad::gradient(wrt(main_params, extra_params))]
// The copies are loops: `copy_from_slice` is not supported under `#[gradient]`.
#[allow(clippy::manual_memcpy)]
pub fn lstm_objective(
    main_params: &[f64],
    extra_params: &[f64],
    state: &[f64],
    sequence: &[f64],
    l: usize,
    c: usize,
    b: usize,
) -> f64 {
    let mut s = vec![0.0; 2 * l * b];
    for i in 0..2 * l * b {
        s[i] = state[i];
    }
    let mut xp = vec![0.0; b];
    let mut forget = vec![0.0; b];
    let mut ingate = vec![0.0; b];
    let mut outgate = vec![0.0; b];
    let mut change = vec![0.0; b];
    let mut ypred = vec![0.0; b];
    let mut ynorm = vec![0.0; b];
    let mut total = 0.0;
    let mut count = 0;
    for t in 0..c - 1 {
        // lstm_predict
        for i in 0..b {
            xp[i] = sequence[t * b + i] * extra_params[i];
        }
        for layer in 0..l {
            let w = 8 * b * layer;
            let hidden = 2 * b * layer;
            let cell = hidden + b;
            // lstm_model
            for i in 0..b {
                forget[i] = sigmoid(xp[i] * main_params[w + i] + main_params[w + 4 * b + i]);
                ingate[i] =
                    sigmoid(s[hidden + i] * main_params[w + b + i] + main_params[w + 5 * b + i]);
                outgate[i] =
                    sigmoid(xp[i] * main_params[w + 2 * b + i] + main_params[w + 6 * b + i]);
                change[i] = (s[hidden + i] * main_params[w + 3 * b + i]
                    + main_params[w + 7 * b + i])
                    .tanh();
            }
            for i in 0..b {
                s[cell + i] = s[cell + i] * forget[i] + ingate[i] * change[i];
            }
            for i in 0..b {
                s[hidden + i] = outgate[i] * s[cell + i].tanh();
            }
            for i in 0..b {
                xp[i] = s[hidden + i];
            }
        }
        for i in 0..b {
            ypred[i] = xp[i] * extra_params[b + i] + extra_params[2 * b + i];
        }
        let lse = logsumexp(&ypred);
        for i in 0..b {
            ynorm[i] = ypred[i] - lse;
        }
        for i in 0..b {
            total += sequence[(t + 1) * b + i] * ynorm[i];
        }
        count += b;
    }
    -total / count as f64
}

/// What the reverse pass of one cell (one step, one layer, one entry j) reads: the cell's input
/// x_j, its hidden and cell state before the step, its four gates, and tanh of the new cell.
#[derive(Clone, Copy, Default)]
struct CellRecord {
    x: f64,
    h: f64,
    c: f64,
    forget: f64,
    ingate: f64,
    outgate: f64,
    change: f64,
    tanh_c: f64,
}

/// The four gates' weights (or biases) of one layer, b each, as slices of length exactly b.
struct Gates<'a> {
    forget: &'a [f64],
    ingate: &'a [f64],
    outgate: &'a [f64],
    change: &'a [f64],
}

impl<'a> Gates<'a> {
    fn split(p: &'a [f64], b: usize) -> Self {
        let (forget, rest) = p.split_at(b);
        let (ingate, rest) = rest.split_at(b);
        let (outgate, change) = rest.split_at(b);
        Gates {
            forget,
            ingate,
            outgate,
            change: &change[..b],
        }
    }
}

/// The same split of a layer's gradient.
struct GatesMut<'a> {
    forget: &'a mut [f64],
    ingate: &'a mut [f64],
    outgate: &'a mut [f64],
    change: &'a mut [f64],
}

impl<'a> GatesMut<'a> {
    fn split(p: &'a mut [f64], b: usize) -> Self {
        let (forget, rest) = p.split_at_mut(b);
        let (ingate, rest) = rest.split_at_mut(b);
        let (outgate, change) = rest.split_at_mut(b);
        GatesMut {
            forget,
            ingate,
            outgate,
            change: &mut change[..b],
        }
    }
}

fn sigmoid_f64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Hand-derived adjoint. With the cell c' = c f + i g, h' = o tanh c' (f, i, o sigmoids of
/// x w + b or h w + b, g a tanh): ō = h̄' tanh c', c̄' += h̄' o (1 − tanh² c'), then c̄ = c̄' f,
/// f̄ = c̄' c, ī = c̄' g, ḡ = c̄' i; each gate's pre-activation adjoint z̄ (σ' = σ(1 − σ),
/// tanh' = 1 − tanh²) goes to its weight (times x or h), its bias, and to x̄ or h̄. The output
/// y = h w_out + b_out under f = −Σ ygold·(y − ln(Σ exp y + 2)) / n has ȳᵢ = −(ygoldᵢ − G pᵢ) / n
/// with G = Σ ygold and pᵢ = exp yᵢ / (Σ exp y + 2), known as soon as the step's forward is done.
///
/// One forward sweep over the steps stores each cell's [`CellRecord`] (8 values per step, layer
/// and entry, in one buffer sized once) and each step's adjoint of the top hidden state from its
/// output, adding the output layer's gradient at once; one reverse sweep over the steps, layers
/// top down, carries h̄ and c̄ of every layer back in time. Returns the loss; `g_main` and
/// `g_extra` are overwritten.
#[allow(clippy::too_many_arguments)]
pub fn lstm_hand(
    main_params: &[f64],
    extra_params: &[f64],
    state: &[f64],
    sequence: &[f64],
    l: usize,
    c: usize,
    b: usize,
    g_main: &mut [f64],
    g_extra: &mut [f64],
) -> f64 {
    assert!(
        l >= 1 && c >= 2 && b >= 1,
        "LSTM needs a layer and two steps"
    );
    assert_eq!(main_params.len(), 8 * l * b, "main_params is not 2·l·4b");
    assert_eq!(extra_params.len(), 3 * b, "extra_params is not 3b");
    assert_eq!(state.len(), 2 * l * b, "state is not 2·l·b");
    assert_eq!(sequence.len(), c * b, "sequence is not c·b");
    assert_eq!(g_main.len(), main_params.len(), "gradient of main_params");
    assert_eq!(
        g_extra.len(),
        extra_params.len(),
        "gradient of extra_params"
    );
    let steps = c - 1;
    let inv_count = 1.0 / (steps * b) as f64;
    let (w_in, rest) = extra_params.split_at(b);
    let (w_out, b_out) = rest.split_at(b);
    let b_out = &b_out[..b];
    g_main.fill(0.0);
    g_extra.fill(0.0);
    let (g_w_in, g_rest) = g_extra.split_at_mut(b);
    let (g_w_out, g_b_out) = g_rest.split_at_mut(b);
    let g_b_out = &mut g_b_out[..b];

    let mut s = state.to_vec();
    let mut records = vec![CellRecord::default(); steps * l * b];
    // Per step, the adjoint of the top layer's hidden state from that step's output.
    let mut seeds = vec![0.0; steps * b];
    let mut xp = vec![0.0; b];
    let mut ex = vec![0.0; b];
    let mut total = 0.0;
    for (t, (rec_t, seed_t)) in records
        .chunks_exact_mut(l * b)
        .zip(seeds.chunks_exact_mut(b))
        .enumerate()
    {
        let x = &sequence[t * b..(t + 1) * b];
        let ygold = &sequence[(t + 1) * b..(t + 2) * b];
        for ((xpi, xi), wi) in xp.iter_mut().zip(x).zip(w_in) {
            *xpi = xi * wi;
        }
        for ((layer_s, p), rec) in s
            .chunks_exact_mut(2 * b)
            .zip(main_params.chunks_exact(8 * b))
            .zip(rec_t.chunks_exact_mut(b))
        {
            let (hidden, cell) = layer_s.split_at_mut(b);
            let (w, bias) = p.split_at(4 * b);
            let (w, bias) = (Gates::split(w, b), Gates::split(bias, b));
            let (xp, cell, rec) = (&mut xp[..b], &mut cell[..b], &mut rec[..b]);
            for j in 0..b {
                let (xj, hj, cj) = (xp[j], hidden[j], cell[j]);
                let forget = sigmoid_f64(xj * w.forget[j] + bias.forget[j]);
                let ingate = sigmoid_f64(hj * w.ingate[j] + bias.ingate[j]);
                let outgate = sigmoid_f64(xj * w.outgate[j] + bias.outgate[j]);
                let change = (hj * w.change[j] + bias.change[j]).tanh();
                let c_new = cj * forget + ingate * change;
                let tanh_c = c_new.tanh();
                let h_new = outgate * tanh_c;
                cell[j] = c_new;
                hidden[j] = h_new;
                xp[j] = h_new;
                rec[j] = CellRecord {
                    x: xj,
                    h: hj,
                    c: cj,
                    forget,
                    ingate,
                    outgate,
                    change,
                    tanh_c,
                };
            }
        }
        let mut sum = 0.0;
        let mut gold = 0.0;
        for ((((e, h), wo), bo), yg) in ex.iter_mut().zip(&xp).zip(w_out).zip(b_out).zip(ygold) {
            let y = h * wo + bo;
            *e = y.exp();
            sum += *e;
            gold += yg;
            // Σ ygold·(y − lse) = Σ ygold·y − G lse: the lse term is added below.
            total += yg * y;
        }
        let sum = sum + 2.0;
        total -= gold * sum.ln();
        let scale = gold / sum;
        for (((((seed, e), yg), h), wo), (gwo, gbo)) in seed_t
            .iter_mut()
            .zip(&ex)
            .zip(ygold)
            .zip(&xp)
            .zip(w_out)
            .zip(g_w_out.iter_mut().zip(g_b_out.iter_mut()))
        {
            let y_bar = -inv_count * (yg - scale * e);
            *gwo += y_bar * h;
            *gbo += y_bar;
            *seed = y_bar * wo;
        }
    }

    // h̄ and c̄ of every layer, carried back over the steps.
    let mut h_bar = vec![0.0; l * b];
    let mut c_bar = vec![0.0; l * b];
    let mut x_bar = vec![0.0; b];
    for (t, (rec_t, seed_t)) in records
        .chunks_exact(l * b)
        .zip(seeds.chunks_exact(b))
        .enumerate()
        .rev()
    {
        for (h, s) in h_bar[(l - 1) * b..].iter_mut().zip(seed_t) {
            *h += s;
        }
        for k in (0..l).rev() {
            let p = &main_params[8 * b * k..8 * b * (k + 1)];
            let (w, _) = p.split_at(4 * b);
            let w = Gates::split(w, b);
            let (g_w, g_bias) = g_main[8 * b * k..8 * b * (k + 1)].split_at_mut(4 * b);
            let (g_w, g_bias) = (GatesMut::split(g_w, b), GatesMut::split(g_bias, b));
            let rec = &rec_t[k * b..(k + 1) * b];
            let hb = &mut h_bar[k * b..(k + 1) * b];
            let cb = &mut c_bar[k * b..(k + 1) * b];
            let xb = &mut x_bar[..b];
            for j in 0..b {
                let r = rec[j];
                let h_new_bar = hb[j];
                let outgate_bar = h_new_bar * r.tanh_c;
                let c_new_bar = cb[j] + h_new_bar * r.outgate * (1.0 - r.tanh_c * r.tanh_c);
                cb[j] = c_new_bar * r.forget;
                let zf = c_new_bar * r.c * r.forget * (1.0 - r.forget);
                let zi = c_new_bar * r.change * r.ingate * (1.0 - r.ingate);
                let zo = outgate_bar * r.outgate * (1.0 - r.outgate);
                let zc = c_new_bar * r.ingate * (1.0 - r.change * r.change);
                g_w.forget[j] += zf * r.x;
                g_bias.forget[j] += zf;
                g_w.ingate[j] += zi * r.h;
                g_bias.ingate[j] += zi;
                g_w.outgate[j] += zo * r.x;
                g_bias.outgate[j] += zo;
                g_w.change[j] += zc * r.h;
                g_bias.change[j] += zc;
                hb[j] = zi * w.ingate[j] + zc * w.change[j];
                xb[j] = zf * w.forget[j] + zo * w.outgate[j];
            }
            if k > 0 {
                for (h, x) in h_bar[(k - 1) * b..k * b].iter_mut().zip(&x_bar) {
                    *h += x;
                }
            } else {
                let x = &sequence[t * b..(t + 1) * b];
                for ((g, xb), xi) in g_w_in.iter_mut().zip(&x_bar).zip(x) {
                    *g += xb * xi;
                }
            }
        }
    }
    -total * inv_count
}

fn sigmoid_num_dual(x: &DualDVec64) -> DualDVec64 {
    ((-x).exp() + 1.0).recip()
}

/// For `num-dual`: ADBench's structure over dual numbers (each carries the derivative vector of
/// all 8lb + 3b parameters).
#[allow(clippy::too_many_arguments)]
pub fn lstm_num_dual(
    main_params: &[DualDVec64],
    extra_params: &[DualDVec64],
    state: &[f64],
    sequence: &[f64],
    l: usize,
    c: usize,
    b: usize,
) -> DualDVec64 {
    let mut s: Vec<DualDVec64> = state.iter().map(|&v| DualDVec64::from(v)).collect();
    let mut xp = vec![DualDVec64::from(0.0); b];
    let mut total = DualDVec64::from(0.0);
    let mut count = 0;
    for t in 0..c - 1 {
        for i in 0..b {
            xp[i] = extra_params[i].clone() * sequence[t * b + i];
        }
        for layer in 0..l {
            let w = 8 * b * layer;
            let hidden = 2 * b * layer;
            let cell = hidden + b;
            for i in 0..b {
                let forget =
                    sigmoid_num_dual(&(&xp[i] * &main_params[w + i] + &main_params[w + 4 * b + i]));
                let ingate = sigmoid_num_dual(
                    &(&s[hidden + i] * &main_params[w + b + i] + &main_params[w + 5 * b + i]),
                );
                let outgate = sigmoid_num_dual(
                    &(&xp[i] * &main_params[w + 2 * b + i] + &main_params[w + 6 * b + i]),
                );
                let change = (&s[hidden + i] * &main_params[w + 3 * b + i]
                    + &main_params[w + 7 * b + i])
                    .tanh();
                s[cell + i] = &s[cell + i] * forget + ingate * change;
                s[hidden + i] = outgate * s[cell + i].tanh();
                xp[i] = s[hidden + i].clone();
            }
        }
        let ypred: Vec<DualDVec64> = (0..b)
            .map(|i| &xp[i] * &extra_params[b + i] + &extra_params[2 * b + i])
            .collect();
        let mut sum = DualDVec64::from(0.0);
        for y in &ypred {
            sum += y.exp();
        }
        let lse = (sum + 2.0).ln();
        for i in 0..b {
            total += (&ypred[i] - &lse) * sequence[(t + 1) * b + i];
        }
        count += b;
    }
    -total / count as f64
}

fn sigmoid_reverse(x: Var<'_>) -> Var<'_> {
    ((-x).exp() + 1.0).recip()
}

/// For `reverse`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_reverse<'a>(
    main_params: &[Var<'a>],
    extra_params: &[Var<'a>],
    state: &[f64],
    sequence: &[f64],
    l: usize,
    c: usize,
    b: usize,
) -> Var<'a> {
    let tape = main_params[0].tape;
    let mut s: Vec<Var<'a>> = state.iter().map(|&v| tape.add_var(v)).collect();
    let mut xp = vec![tape.add_var(0.0); b];
    let mut total = tape.add_var(0.0);
    let mut count = 0;
    for t in 0..c - 1 {
        for i in 0..b {
            xp[i] = extra_params[i] * sequence[t * b + i];
        }
        for layer in 0..l {
            let w = 8 * b * layer;
            let hidden = 2 * b * layer;
            let cell = hidden + b;
            for i in 0..b {
                let forget =
                    sigmoid_reverse(xp[i] * main_params[w + i] + main_params[w + 4 * b + i]);
                let ingate = sigmoid_reverse(
                    s[hidden + i] * main_params[w + b + i] + main_params[w + 5 * b + i],
                );
                let outgate = sigmoid_reverse(
                    xp[i] * main_params[w + 2 * b + i] + main_params[w + 6 * b + i],
                );
                let change = (s[hidden + i] * main_params[w + 3 * b + i]
                    + main_params[w + 7 * b + i])
                    .tanh();
                s[cell + i] = s[cell + i] * forget + ingate * change;
                s[hidden + i] = outgate * s[cell + i].tanh();
                xp[i] = s[hidden + i];
            }
        }
        let ypred: Vec<Var<'a>> = (0..b)
            .map(|i| xp[i] * extra_params[b + i] + extra_params[2 * b + i])
            .collect();
        let mut sum = tape.add_var(0.0);
        for y in &ypred {
            sum = sum + y.exp();
        }
        let lse = (sum + 2.0).ln();
        for i in 0..b {
            total = total + (ypred[i] - lse) * sequence[(t + 1) * b + i];
        }
        count += b;
    }
    -total / count as f64
}

pub struct Lstm {
    pub l: usize,
    pub c: usize,
    pub b: usize,
    /// `main_params` (2·l·4b), then `extra_params` (3b): the active inputs, in parameter order.
    pub theta: Vec<f64>,
    /// The initial state, 2·l·b.
    pub state: Vec<f64>,
    /// c vectors of b.
    pub sequence: Vec<f64>,
    tape: Tape,
}

impl Lstm {
    /// `l` layers, `c` steps of `b` entries (ADBench's benchmark: l = 2, c = 1024, b = 14).
    /// Parameters and initial state uniform in [−0.5, 0.5), the sequence uniform in [0, 1)
    /// (ADBench's is one-hot-ish text data).
    pub fn new(l: usize, c: usize, b: usize, seed: u64) -> Self {
        assert!(
            l >= 1 && c >= 2 && b >= 1,
            "LSTM needs a layer and two steps"
        );
        let mut rng = Rng::new(seed);
        let theta = rng.uniforms(8 * l * b + 3 * b, -0.5, 0.5);
        let state = rng.uniforms(2 * l * b, -0.5, 0.5);
        let sequence = rng.uniforms(c * b, 0.0, 1.0);
        Lstm {
            l,
            c,
            b,
            theta,
            state,
            sequence,
            tape: Tape::new(),
        }
    }

    /// `(main_params, extra_params)`.
    pub fn split<'s>(&self, theta: &'s [f64]) -> (&'s [f64], &'s [f64]) {
        theta.split_at(8 * self.l * self.b)
    }

    /// The objective at other parameters (for finite differences).
    pub fn value_at(&self, theta: &[f64]) -> f64 {
        let (main_params, extra_params) = self.split(theta);
        lstm_objective(
            main_params,
            extra_params,
            &self.state,
            &self.sequence,
            self.l,
            self.c,
            self.b,
        )
    }
}

impl Problem for Lstm {
    fn name(&self) -> String {
        format!("LSTM l={} c={} b={}", self.l, self.c, self.b)
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
            let (main_params, extra_params) = self.split(&self.theta);
            let (g_main, g_extra) = g.split_at_mut(main_params.len());
            let (v, []) = lstm_objective_grad(
                main_params,
                g_main,
                extra_params,
                g_extra,
                &self.state,
                &self.sequence,
                self.l,
                self.c,
                self.b,
            );
            Some(v)
        }
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        let (main_params, extra_params) = self.split(&self.theta);
        let (g_main, g_extra) = g.split_at_mut(main_params.len());
        lstm_hand(
            main_params,
            extra_params,
            &self.state,
            &self.sequence,
            self.l,
            self.c,
            self.b,
            g_main,
            g_extra,
        )
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let n_main = 8 * self.l * self.b;
        let (v, grad) = num_dual::gradient(
            |theta: DVector<DualDVec64>| {
                let (main_params, extra_params) = theta.as_slice().split_at(n_main);
                lstm_num_dual(
                    main_params,
                    extra_params,
                    &self.state,
                    &self.sequence,
                    self.l,
                    self.c,
                    self.b,
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
        let (main_params, extra_params) = theta.split_at(8 * self.l * self.b);
        let f = lstm_reverse(
            main_params,
            extra_params,
            &self.state,
            &self.sequence,
            self.l,
            self.c,
            self.b,
        );
        let grad = f.grad();
        for (gi, t) in g.iter_mut().zip(&theta) {
            *gi = grad.wrt(t);
        }
        f.val()
    }
}
