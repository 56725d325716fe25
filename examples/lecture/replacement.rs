//! Project 1 of the lecture: estimate the mean of `n` numbers drawn uniformly on [0, 1] by
//! stochastic gradient descent, sampling with replacement versus without (a shuffled pass,
//! reshuffled every epoch).
//!
//! The per-sample loss is fₖ(x) = ½(x − aₖ)², whose gradient x − aₖ comes from the generated
//! `sample_loss_grad`. With step 1/k the iterate xₖ = xₖ₋₁ − (xₖ₋₁ − aₖ)/k is exactly the running
//! average of the samples drawn so far, so without replacement it equals the mean of all `n`
//! numbers at the end of every epoch.

#![allow(dead_code)] // Shared by an example and tests/lecture_examples.rs; each uses part.

use ad::gradient;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Loss of one sample `a` at the estimate `x`; the average over all samples is minimised at
/// their mean.
#[gradient(wrt(x))]
pub fn sample_loss(x: f64, a: f64) -> f64 {
    0.5 * (x - a).powi(2)
}

/// How each step picks its sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// Every step draws an index uniformly from all `n`: what the convergence proofs assume.
    WithReplacement,
    /// Every epoch visits all `n` samples once, in a fresh random order: what everyone does.
    WithoutReplacement,
}

impl Sampling {
    pub fn label(self) -> &'static str {
        match self {
            Sampling::WithReplacement => "with replacement",
            Sampling::WithoutReplacement => "without replacement",
        }
    }
}

/// Draws `n` numbers uniformly on [0, 1].
pub fn uniform_samples(n: usize, rng: &mut impl Rng) -> Vec<f64> {
    (0..n).map(|_| rng.random::<f64>()).collect()
}

/// The SGD iterates x₁, …, x_{epochs·n} with step 1/k, starting from x₀ = 0.
pub fn sgd_iterates(
    samples: &[f64],
    sampling: Sampling,
    epochs: usize,
    rng: &mut impl Rng,
) -> Vec<f64> {
    let n = samples.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = 0.0;
    let mut iterates = Vec::with_capacity(epochs * n);
    for k in 1..=epochs * n {
        let i = match sampling {
            Sampling::WithReplacement => rng.random_range(0..n),
            Sampling::WithoutReplacement => {
                let position = (k - 1) % n;
                if position == 0 {
                    order.shuffle(rng);
                }
                order[position]
            }
        };
        let (_, [slope]) = sample_loss_grad(x, samples[i]);
        x -= slope / k as f64;
        iterates.push(x);
    }
    iterates
}

/// Mean absolute error |xₖ − mean(a)| over many trials, each with fresh samples.
#[derive(Clone, Debug)]
pub struct ErrorCurves {
    pub n: usize,
    pub epochs: usize,
    pub trials: usize,
    /// `with[k - 1]` is the mean error after k steps with replacement.
    pub with: Vec<f64>,
    /// `without[k - 1]` is the mean error after k steps without replacement.
    pub without: Vec<f64>,
    /// Mean of |mean(a) − ½|: how far the sample mean itself is from the lecture's "a half".
    pub sample_mean_from_half: f64,
}

impl ErrorCurves {
    pub fn curve(&self, sampling: Sampling) -> &[f64] {
        match sampling {
            Sampling::WithReplacement => &self.with,
            Sampling::WithoutReplacement => &self.without,
        }
    }

    /// The mean error after `epochs` full epochs.
    pub fn after_epochs(&self, sampling: Sampling, epochs: usize) -> f64 {
        self.curve(sampling)[epochs * self.n - 1]
    }

    /// The mean error averaged over every step of epoch `epoch` (counted from 1).
    pub fn during_epoch(&self, sampling: Sampling, epoch: usize) -> f64 {
        let steps = &self.curve(sampling)[(epoch - 1) * self.n..epoch * self.n];
        steps.iter().sum::<f64>() / self.n as f64
    }
}

/// Runs both schemes on the same samples in each of `trials` trials seeded from `seed`.
pub fn error_curves(n: usize, epochs: usize, trials: usize, seed: u64) -> ErrorCurves {
    let steps = epochs * n;
    let mut with = vec![0.0; steps];
    let mut without = vec![0.0; steps];
    let mut sample_mean_from_half = 0.0;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..trials {
        let samples = uniform_samples(n, &mut rng);
        let mean = samples.iter().sum::<f64>() / n as f64;
        sample_mean_from_half += (mean - 0.5).abs();
        for (sampling, total) in [
            (Sampling::WithReplacement, &mut with),
            (Sampling::WithoutReplacement, &mut without),
        ] {
            let iterates = sgd_iterates(&samples, sampling, epochs, &mut rng);
            for (sum, x) in total.iter_mut().zip(iterates) {
                *sum += (x - mean).abs();
            }
        }
    }
    let trials_f = trials as f64;
    for error in with.iter_mut().chain(without.iter_mut()) {
        *error /= trials_f;
    }
    ErrorCurves {
        n,
        epochs,
        trials,
        with,
        without,
        sample_mean_from_half: sample_mean_from_half / trials_f,
    }
}

/// E|Y| for Y normal with the variance of one uniform sample, 1/12: the constant in the
/// with-replacement error ≈ c/√k predicted by the central limit theorem.
pub fn clt_constant() -> f64 {
    (2.0 / (std::f64::consts::PI * 12.0)).sqrt()
}
