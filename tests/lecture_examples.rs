//! The computations behind the lecture examples (examples/sgd_replacement.rs, sgd_confusion.rs,
//! matrix_chain.rs, cheap_gradient.rs), run small and checked for the property each example
//! shows. The plotting stays in the examples; nothing here is timed.

#[path = "../examples/lecture/chain.rs"]
mod chain;
#[path = "../examples/lecture/cheap.rs"]
mod cheap;
#[path = "../examples/lecture/confusion.rs"]
mod confusion;
#[path = "../examples/lecture/replacement.rs"]
mod replacement;

use approx::assert_relative_eq;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

mod sgd_replacement {
    use super::*;
    use replacement::{error_curves, sgd_iterates, uniform_samples, Sampling};

    #[test]
    fn sample_loss_gradient_is_the_residual() {
        for (x, a) in [(0.0, 0.3), (0.7, 0.2), (-1.5, 0.9)] {
            let (value, [slope]) = replacement::sample_loss_grad(x, a);
            assert_relative_eq!(value, replacement::sample_loss(x, a));
            assert_relative_eq!(slope, x - a);
        }
    }

    #[test]
    fn without_replacement_hits_the_mean_at_every_epoch_end() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in [1, 7, 25] {
            let samples = uniform_samples(n, &mut rng);
            let mean = samples.iter().sum::<f64>() / n as f64;
            let iterates = sgd_iterates(&samples, Sampling::WithoutReplacement, 4, &mut rng);
            for epoch in 1..=4 {
                let x = iterates[epoch * n - 1];
                assert!(
                    (x - mean).abs() < 1e-13,
                    "n = {n}, epoch {epoch}: {x} vs {mean}"
                );
            }
        }
    }

    #[test]
    fn iterates_are_averages_of_samples() {
        // Step 1/k from any x0 makes x1 the first sample and every later iterate a convex
        // combination of samples.
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let samples = uniform_samples(30, &mut rng);
        let (lo, hi) = samples
            .iter()
            .fold((1.0f64, 0.0f64), |(l, h), &a| (l.min(a), h.max(a)));
        for sampling in [Sampling::WithReplacement, Sampling::WithoutReplacement] {
            let iterates = sgd_iterates(&samples, sampling, 3, &mut rng);
            assert!(
                samples.contains(&iterates[0]),
                "{sampling:?}: x1 = {}",
                iterates[0]
            );
            assert!(iterates
                .iter()
                .all(|&x| (lo - 1e-15..=hi + 1e-15).contains(&x)));
        }
    }

    #[test]
    fn without_replacement_beats_with_replacement_after_the_first_epoch() {
        let curves = error_curves(20, 3, 300, 3);
        for epochs in 1..=3 {
            assert!(curves.after_epochs(Sampling::WithoutReplacement, epochs) < 1e-13);
            assert!(curves.after_epochs(Sampling::WithReplacement, epochs) > 1e-3);
        }
        for epoch in 2..=3 {
            let with = curves.during_epoch(Sampling::WithReplacement, epoch);
            let without = curves.during_epoch(Sampling::WithoutReplacement, epoch);
            assert!(without < with / 2.0, "epoch {epoch}: {without} vs {with}");
        }
        // With replacement, the error after k steps follows the central limit theorem's c/√k.
        let k = 60;
        let predicted = replacement::clt_constant() / (k as f64).sqrt();
        assert_relative_eq!(curves.with[k - 1], predicted, max_relative = 0.2);
    }
}

mod sgd_confusion {
    use super::*;
    use confusion::{distance, Problem, Step};

    fn problem_1d(seed: u64) -> Problem<1> {
        Problem::<1>::random(15, 2.0, 1.0, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    fn problem_2d(seed: u64) -> Problem<2> {
        Problem::<2>::random(10, [1.0, -0.5], 0.5, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    #[test]
    fn sample_gradients_are_residual_times_a() {
        let p = problem_2d(4);
        let x = [0.3, -1.2];
        for i in 0..p.len() {
            let r = p.a[i][0] * x[0] + p.a[i][1] * x[1] - p.b[i];
            let g = p.sample_gradient(i, x);
            assert_relative_eq!(g[0], r * p.a[i][0], max_relative = 1e-12);
            assert_relative_eq!(g[1], r * p.a[i][1], max_relative = 1e-12);
            assert_relative_eq!(p.sample_loss(i, x), 0.5 * r * r, max_relative = 1e-12);
        }
    }

    #[test]
    fn in_one_dimension_the_region_is_the_interval_of_sample_minimisers() {
        let p = problem_1d(5);
        let (lo, hi) = p.region();
        let ratios: Vec<f64> = p.a.iter().zip(&p.b).map(|([a], b)| b / a).collect();
        assert!(ratios.iter().all(|r| (lo..=hi).contains(r)));
        for i in 0..=400 {
            let x = lo - 2.0 + (hi - lo + 4.0) * i as f64 / 400.0;
            if (x - lo).abs() > 1e-9 && (x - hi).abs() > 1e-9 {
                assert_eq!(p.in_region([x]), (lo..=hi).contains(&x), "x = {x}");
            }
        }
    }

    #[test]
    fn the_minimiser_zeroes_the_full_gradient_and_lies_in_the_region() {
        let p1 = problem_1d(6);
        let x1 = p1.minimiser();
        assert!(p1.gradient(x1)[0].abs() < 1e-12);
        let (lo, hi) = p1.region();
        assert!((lo..=hi).contains(&x1[0]));

        let p2 = problem_2d(6);
        let x2 = p2.minimiser();
        assert!(p2.gradient(x2).iter().all(|g| g.abs() < 1e-12));
        assert!(p2.in_region(x2));
    }

    #[test]
    fn constant_step_sgd_stays_inside_the_region_once_there() {
        // With a step at most 1/max aᵢ², a step on sample i moves x towards bᵢ/aᵢ without passing
        // it, so SGD never leaves [min bᵢ/aᵢ, max bᵢ/aᵢ] once inside.
        for (seed, fraction, x0) in [(7, 1.0, -5.0), (8, 0.5, 9.0), (9, 0.9, 2.0)] {
            let p = problem_1d(seed);
            let (lo, hi) = p.region();
            let eta = fraction * p.max_step();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let iterates = confusion::sgd(&p, [x0], Step::Constant(eta), 30 * p.len(), &mut rng);
            let first_in = iterates
                .iter()
                .position(|[x]| (lo..=hi).contains(x))
                .expect("enters");
            assert!(
                first_in < 2 * p.len(),
                "seed {seed}: entered only at {first_in}"
            );
            assert!(iterates[first_in..].iter().all(|[x]| (lo..=hi).contains(x)));
            assert_eq!(confusion::settles_in_region(&p, &iterates), Some(first_in));
            // ... and keeps moving: the late iterates do not converge.
            let late = &iterates[iterates.len() - p.len()..];
            let spread = late
                .iter()
                .map(|[x]| x)
                .fold(f64::NEG_INFINITY, |m, &x| m.max(x))
                - late
                    .iter()
                    .map(|[x]| x)
                    .fold(f64::INFINITY, |m, &x| m.min(x));
            assert!(spread > 1e-3 * (hi - lo), "seed {seed}: spread {spread}");
        }
    }

    #[test]
    fn full_batch_descent_converges_and_a_decreasing_step_settles_closer() {
        let p = problem_2d(10);
        let x_star = p.minimiser();
        let eta = 0.9 * p.max_step();
        let x0 = [-4.0, 3.0];
        let full = confusion::gradient_descent(&p, x0, eta, 300);
        assert!(distance(full[300], x_star) < 1e-8);

        let iters = 200 * p.len();
        let mean_last_epoch = |step| {
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            let xs = confusion::sgd(&p, x0, step, iters, &mut rng);
            xs[iters - p.len()..]
                .iter()
                .map(|&x| distance(x, x_star))
                .sum::<f64>()
                / p.len() as f64
        };
        let constant = mean_last_epoch(Step::Constant(eta));
        let decreasing = mean_last_epoch(Step::Decreasing {
            initial: eta,
            epoch: p.len(),
        });
        assert!(decreasing < constant / 3.0, "{decreasing} vs {constant}");
    }

    #[test]
    fn early_stopping_returns_the_held_out_minimum() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let train = Problem::<2>::random(10, [1.0, 1.0], 0.6, &mut rng);
        let held_out = Problem::<2>::random(50, [1.0, 1.0], 0.6, &mut rng);
        let step = Step::Constant(0.9 * train.max_step());
        for patience in [1, 5, 20] {
            let iters = 400;
            let run = confusion::early_stopping(
                &train,
                &held_out,
                [-4.0, 4.5],
                step,
                iters,
                patience,
                &mut rng,
            );
            assert_eq!(run.held_out.len(), iters + 1);
            assert!(run.stop < iters, "patience {patience}: never stopped");
            assert_eq!(run.stop - run.best, patience);
            let seen = &run.held_out[..=run.stop];
            let minimum = seen.iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(run.held_out[run.best], minimum);
            assert!(
                seen[..run.best].iter().all(|&l| l > minimum),
                "the first minimum"
            );
            assert_relative_eq!(
                run.held_out[run.best],
                held_out.loss(run.iterates[run.best])
            );
            assert_relative_eq!(run.train[run.best], train.loss(run.iterates[run.best]));
        }
    }
}

mod matrix_chain {
    use super::*;
    use chain::{Matrix, Network, Shape};

    #[test]
    fn cost_formulas_count_the_multiply_adds_done() {
        for (m, n, p, q) in [(2, 3, 4, 5), (7, 1, 3, 1), (5, 6, 2, 1)] {
            let shape = Shape { m, n, p, q };
            let [a, b, c] = shape.random(&mut ChaCha8Rng::seed_from_u64(13));
            let ab = a.mul(&b);
            let bc = b.mul(&c);
            assert_eq!(
                shape.cost_ab_first(),
                chain::multiply_adds(&a, &b) + chain::multiply_adds(&ab, &c)
            );
            assert_eq!(
                shape.cost_bc_first(),
                chain::multiply_adds(&b, &c) + chain::multiply_adds(&a, &bc)
            );
        }
    }

    #[test]
    fn both_orders_give_the_same_product() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        for (m, n, p, q) in [(1, 1, 1, 1), (3, 5, 2, 4), (20, 3, 17, 1), (6, 9, 4, 8)] {
            let matrices = Shape { m, n, p, q }.random(&mut rng);
            let left = chain::ab_first(&matrices);
            let right = chain::bc_first(&matrices);
            assert_eq!((left.rows, left.cols), (m, q));
            assert!(left.relative_difference(&right) < 1e-13);
            // Against entry-by-entry sums.
            let [a, b, c] = &matrices;
            let direct = Matrix::from_fn(m, q, |i, l| {
                let mut s = 0.0;
                for j in 0..n {
                    for k in 0..p {
                        s += a.get(i, j) * b.get(j, k) * c.get(k, l);
                    }
                }
                s
            });
            assert!(direct.relative_difference(&left) < 1e-13);
        }
    }

    #[test]
    fn a_column_vector_makes_one_order_far_cheaper() {
        let shape = Shape {
            m: 1000,
            n: 1000,
            p: 1000,
            q: 1,
        };
        assert_eq!(shape.cost_bc_first(), 2_000_000);
        assert_eq!(shape.cost_ab_first(), 1_001_000_000);
        for (m, n, p) in [(2, 2, 2), (10, 3, 7), (50, 60, 70)] {
            let shape = Shape { m, n, p, q: 1 };
            assert!(shape.cost_bc_first() < shape.cost_ab_first());
        }
    }

    #[test]
    fn activation_derivative_is_one_minus_tanh_squared() {
        for z in [-2.0, -0.3, 0.0, 0.8, 3.0] {
            let (value, [slope]) = chain::activation_grad(z);
            assert_relative_eq!(value, f64::tanh(z));
            assert_relative_eq!(slope, 1.0 - z.tanh().powi(2), max_relative = 1e-12);
        }
    }

    #[test]
    fn forward_and_reverse_accumulation_agree_with_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        let network = Network::random(12, 7, 5, &mut rng);
        let x: Vec<f64> = (0..12).map(|i| (i as f64).cos()).collect();
        let jacobians = network.jacobians(&x);
        let reverse = chain::reverse_accumulation(&jacobians);
        let forward = chain::forward_accumulation(&jacobians);
        assert_eq!((reverse.rows, reverse.cols), (1, 12));
        assert!(reverse.relative_difference(&forward) < 1e-13);
        for i in 0..12 {
            let h = 1e-6;
            let mut up = x.clone();
            up[i] += h;
            let mut down = x.clone();
            down[i] -= h;
            let difference = (network.value(&up) - network.value(&down)) / (2.0 * h);
            assert_relative_eq!(
                reverse.data[i],
                difference,
                epsilon = 1e-8,
                max_relative = 1e-6
            );
            let mut e = vec![0.0; 12];
            e[i] = 1.0;
            assert_relative_eq!(
                chain::forward_one_seed(&jacobians, &e),
                reverse.data[i],
                max_relative = 1e-12
            );
        }
        let shape = chain::jacobian_chain_shape(&network);
        assert_eq!(
            shape,
            Shape {
                m: 1,
                n: 5,
                p: 7,
                q: 12
            }
        );
        assert!(
            shape.cost_ab_first() < shape.cost_bc_first(),
            "reverse is the cheap order"
        );
    }
}

mod cheap_gradient {
    use super::*;

    #[test]
    fn reverse_sweep_gives_the_closed_form_gradient() {
        for n in [1, 2, 3, 10, 57] {
            let x = cheap::test_point(n);
            let mut gradient = vec![f64::NAN; n];
            let value = cheap::gradient_reverse(&x, &mut gradient);
            assert_relative_eq!(value, cheap::rosenbrock(&x), max_relative = 1e-14);
            for (got, want) in gradient.iter().zip(cheap::gradient_closed_form(&x)) {
                assert_relative_eq!(*got, want, epsilon = 1e-12, max_relative = 1e-12);
            }
        }
    }

    #[test]
    fn differences_approximate_the_same_gradient() {
        let n = 40;
        let x = cheap::test_point(n);
        let mut scratch = Vec::new();
        let mut differences = vec![0.0; n];
        let value = cheap::gradient_differences(&x, &mut scratch, &mut differences);
        assert_eq!(value, cheap::rosenbrock(&x));
        assert_eq!(scratch, x, "the scratch copy is restored");
        for (got, want) in differences.iter().zip(cheap::gradient_closed_form(&x)) {
            assert_relative_eq!(*got, want, epsilon = 1e-3, max_relative = 1e-4);
        }
    }
}
