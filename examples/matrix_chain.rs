//! The close of lecture 27 of MIT 18.065: the order of a matrix chain A·B·C decides its cost, and
//! back propagation is the cheap order for a gradient. The layer derivatives come from
//! `#[gradient]`.
//!
//! ```text
//! cargo run --release --example matrix_chain
//! ```

#[path = "lecture/chain.rs"]
mod chain;
#[path = "lecture/plot.rs"]
mod plot;
#[path = "lecture/timing.rs"]
mod timing;

use std::time::Duration;

use chain::{Network, Shape};
use plot::Result;
use plotters::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SEED: u64 = 18_065;

/// One product computed both ways.
struct Case {
    name: String,
    shape: Shape,
    /// Seconds for (AB)C and A(BC); for the gradient, reverse and forward accumulation.
    seconds_ab_first: f64,
    seconds_bc_first: f64,
    relative_difference: f64,
}

fn main() -> Result {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut cases = Vec::new();

    println!(
        "A (m x n) * B (n x p) * C (p x q): multiply-adds (AB)C = mnp + mpq, A(BC) = npq + mnq"
    );
    println!(
        "{:>30} {:>14} {:>14} {:>10} {:>11} {:>11} {:>8} {:>10}",
        "(m, n, p, q)", "(AB)C", "A(BC)", "ratio", "t (AB)C", "t A(BC)", "t ratio", "rel diff"
    );
    let shapes = [
        (300, 300, 300, 300),
        (500, 20, 500, 20),
        (20, 500, 20, 500),
        (1000, 1000, 1000, 1),
    ];
    for (m, n, p, q) in shapes {
        let shape = Shape { m, n, p, q };
        let matrices = shape.random(&mut rng);
        let (left, seconds_ab_first) = time(|| chain::ab_first(&matrices));
        let (right, seconds_bc_first) = time(|| chain::bc_first(&matrices));
        let case = Case {
            name: format!("({m}, {n}, {p}, {q})"),
            shape,
            seconds_ab_first,
            seconds_bc_first,
            relative_difference: left.relative_difference(&right),
        };
        print_case(&case);
        cases.push(case);
    }
    println!("q = 1 (C a column vector): A(BC) is two matrix-vector products, (AB)C a matrix-matrix one.");
    println!();

    let (n, n1, n2) = (2000, 400, 400);
    let network = Network::random(n, n1, n2, &mut rng);
    let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    let jacobians = network.jacobians(&x);
    let shape = chain::jacobian_chain_shape(&network);
    println!(
        "The gradient of F = F3(F2(F1(x))), R^{n} -> R^{n1} -> R^{n2} -> R, is the chain J3 J2 J1 of shape {:?}",
        (shape.m, shape.n, shape.p, shape.q)
    );
    println!("(layer derivatives sigma'(z) from the generated activation_grad)");
    let (reverse, seconds_reverse) = time(|| chain::reverse_accumulation(&jacobians));
    let (forward, seconds_forward) = time(|| chain::forward_accumulation(&jacobians));
    println!(
        "{:>30} {:>14} {:>14} {:>10} {:>11} {:>11} {:>8} {:>10}",
        "", "reverse", "forward", "ratio", "t reverse", "t forward", "t ratio", "rel diff"
    );
    let case = Case {
        name: format!(
            "gradient ({}, {}, {}, {})",
            shape.m, shape.n, shape.p, shape.q
        ),
        shape,
        seconds_ab_first: seconds_reverse,
        seconds_bc_first: seconds_forward,
        relative_difference: reverse.relative_difference(&forward),
    };
    print_case(&case);
    cases.push(case);
    println!("reverse = ((1 J3) J2) J1: one seed carried back; forward = J3 (J2 (J1 I)): n = {n} seeds carried forward");

    let v: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let (directional, seconds_one_seed) = time(|| chain::forward_one_seed(&jacobians, &v));
    let from_gradient: f64 = reverse.data.iter().zip(&v).map(|(g, v)| g * v).sum();
    println!(
        "one forward seed v costs {} multiply-adds ({}) but gives one number, grad F . v = {directional:.6} \
         (reverse gradient . v = {from_gradient:.6}); all n need n seeds",
        n1 * n + n2 * n1 + n2,
        timing::human(seconds_one_seed)
    );
    let h = 1e-6;
    let step: Vec<f64> = x.iter().zip(&v).map(|(x, v)| x + h * v).collect();
    let back: Vec<f64> = x.iter().zip(&v).map(|(x, v)| x - h * v).collect();
    println!(
        "check: central difference of F along v = {:.6}",
        (network.value(&step) - network.value(&back)) / (2.0 * h)
    );
    println!();

    let path = plot::output_path("matrix_chain.svg")?;
    draw(&cases, &path)?;
    plot::announce(&path);
    Ok(())
}

/// The result and seconds per call: batched for quick products, one run for slow ones.
fn time<T>(work: impl Fn() -> T) -> (T, f64) {
    let (out, once) = timing::once(&work);
    if once > 0.05 {
        return (out, once);
    }
    (
        out,
        timing::seconds_per_call(&work, Duration::from_millis(20), 3),
    )
}

fn print_case(case: &Case) {
    let (ab, bc) = (case.shape.cost_ab_first(), case.shape.cost_bc_first());
    let ratio = ab.max(bc) as f64 / ab.min(bc) as f64;
    let (t_ab, t_bc) = (case.seconds_ab_first, case.seconds_bc_first);
    // The measured ratio in the same direction as the counted one: slower order over faster.
    let t_ratio = if ab >= bc { t_ab / t_bc } else { t_bc / t_ab };
    println!(
        "{:>30} {:>14} {:>14} {:>9.0}x {:>11} {:>11} {:>7.0}x {:>10.1e}",
        case.name,
        ab,
        bc,
        ratio,
        timing::human(t_ab),
        timing::human(t_bc),
        t_ratio,
        case.relative_difference
    );
}

fn draw(cases: &[Case], path: &std::path::Path) -> Result {
    let count = cases.len();
    let top = cases
        .iter()
        .map(|c| c.shape.cost_ab_first().max(c.shape.cost_bc_first()))
        .max()
        .unwrap_or(1);
    let root = SVGBackend::new(path, (960, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "A B C: the order decides the cost (bar labels: measured time)",
            plot::caption_font(),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(
            -0.5f64..count as f64 - 0.5,
            (1e4f64..top as f64 * 20.0).log_scale(),
        )?;
    let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    chart
        .configure_mesh()
        .x_labels(count)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                names[i as usize].clone()
            } else {
                String::new()
            }
        })
        .y_desc("multiply-adds")
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .x_desc("shape (m, n, p, q)")
        .label_style(plot::label_font())
        .axis_desc_style(plot::label_font())
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let bars = [
        (
            "(AB)C; for the gradient: reverse ((1 J3) J2) J1",
            plot::BLUE,
            -0.38,
            -0.02,
        ),
        (
            "A(BC); for the gradient: forward J3 (J2 J1)",
            plot::ORANGE,
            0.02,
            0.38,
        ),
    ];
    for (which, (label, color, from, to)) in bars.into_iter().enumerate() {
        let value = |c: &Case| {
            if which == 0 {
                (c.shape.cost_ab_first(), c.seconds_ab_first)
            } else {
                (c.shape.cost_bc_first(), c.seconds_bc_first)
            }
        };
        chart
            .draw_series(cases.iter().enumerate().map(|(i, c)| {
                let (cost, _) = value(c);
                let x = i as f64;
                Rectangle::new([(x + from, 1e4), (x + to, cost as f64)], color.filled())
            }))?
            .label(label)
            .legend(plot::legend_box(color.mix(1.0)));
        chart.draw_series(cases.iter().enumerate().map(|(i, c)| {
            let (cost, seconds) = value(c);
            let x = i as f64 + (from + to) / 2.0 - 0.16;
            Text::new(
                timing::human(seconds),
                (x, cost as f64 * 2.2),
                ("sans-serif", 13).into_font(),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(plot::label_font())
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
