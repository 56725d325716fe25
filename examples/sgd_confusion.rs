//! Project 2 of lecture 27 of MIT 18.065: constant-step SGD on least squares approaches fast,
//! then oscillates inside the region of confusion; compared with full-batch gradient descent and
//! a decreasing step, and with early stopping on a held-out set. Every gradient comes from
//! `#[gradient]`.
//!
//! ```text
//! cargo run --release --example sgd_confusion
//! ```

#[path = "lecture/confusion.rs"]
mod confusion;
#[path = "lecture/plot.rs"]
mod plot;

use std::path::Path;

use confusion::{distance, EarlyStopping, Point, Problem, Step};
use plot::Result;
use plotters::prelude::*;

const SEED: u64 = 18_065;
/// Constant step as a fraction of 1/maxᵢ|aᵢ|², the largest step that never overshoots a sample.
const STEP_FRACTION: f64 = 0.9;

fn main() -> Result {
    one_dimension()?;
    two_dimensions()?;
    early_stopping()?;
    Ok(())
}

/// The three runs compared on one problem.
struct Runs<const D: usize> {
    constant: Vec<Point<D>>,
    decreasing: Vec<Point<D>>,
    /// One full-batch step per `n` SGD steps.
    full_batch: Vec<Point<D>>,
}

fn run<const D: usize>(problem: &Problem<D>, x0: Point<D>, epochs: usize, seed: u64) -> Runs<D> {
    let n = problem.len();
    let eta = STEP_FRACTION * problem.max_step();
    let mut rng = confusion::seeded(seed);
    Runs {
        constant: confusion::sgd(problem, x0, Step::Constant(eta), epochs * n, &mut rng),
        decreasing: confusion::sgd(
            problem,
            x0,
            Step::Decreasing {
                initial: eta,
                epoch: n,
            },
            epochs * n,
            &mut rng,
        ),
        full_batch: confusion::gradient_descent(problem, x0, eta, epochs),
    }
}

fn report<const D: usize>(problem: &Problem<D>, runs: &Runs<D>) {
    let n = problem.len();
    let x_star = problem.minimiser();
    let last_epoch = |xs: &[Point<D>]| {
        let tail = &xs[xs.len() - n..];
        tail.iter().map(|&x| distance(x, x_star)).sum::<f64>() / n as f64
    };
    let entered = |xs: &[Point<D>]| xs.iter().position(|&x| problem.in_region(x));
    let show = |k: Option<usize>| k.map_or("never".to_string(), |k| k.to_string());
    println!(
        "{:<34} {:>10} {:>10} {:>26}",
        "run", "enters at", "stays from", "|x - x*| at the end"
    );
    for (name, xs, per_step) in [
        ("SGD, constant step", &runs.constant, 1),
        ("SGD, decreasing step", &runs.decreasing, 1),
        ("full-batch GD, same step", &runs.full_batch, n),
    ] {
        let tail = if per_step == 1 {
            last_epoch(xs)
        } else {
            distance(xs[xs.len() - 1], x_star)
        };
        println!(
            "{:<34} {:>10} {:>10} {:>26.3e}",
            name,
            show(entered(xs).map(|k| k * per_step)),
            show(confusion::settles_in_region(problem, xs).map(|k| k * per_step)),
            tail
        );
    }
    println!(
        "(iterations count sample gradients: one full-batch step costs n = {n}; \
         SGD's distance is the mean over its last epoch)"
    );
}

fn one_dimension() -> Result {
    let mut rng = confusion::seeded(SEED);
    let problem = Problem::<1>::random(20, 2.0, 1.0, &mut rng);
    let x0 = [-4.0];
    let epochs = 10;
    let runs = run(&problem, x0, epochs, SEED + 1);
    let (lo, hi) = problem.region();
    let [x_star] = problem.minimiser();
    println!(
        "== 1-D least squares, n = {}, x0 = {}",
        problem.len(),
        x0[0]
    );
    println!(
        "region of confusion [min b/a, max b/a] = [{lo:.4}, {hi:.4}], x* = {x_star:.4}, step = {STEP_FRACTION} / max a^2 = {:.4}",
        STEP_FRACTION * problem.max_step()
    );
    report(&problem, &runs);
    let settled = confusion::settles_in_region(&problem, &runs.constant).unwrap_or(0);
    let late = &runs.constant[settled..];
    let (min, max) = late
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), [x]| {
            (a.min(*x), b.max(*x))
        });
    println!(
        "constant-step iterates from k = {settled} on span [{min:.4}, {max:.4}] ({:.0}% of the region's width)",
        100.0 * (max - min) / (hi - lo)
    );
    println!();

    let path = plot::output_path("sgd_confusion_1d.svg")?;
    draw_1d(&problem, &runs, &path)?;
    plot::announce(&path);
    println!();
    Ok(())
}

fn two_dimensions() -> Result {
    let mut rng = confusion::seeded(SEED + 2);
    let problem = Problem::<2>::random(12, [1.0, 1.0], 0.6, &mut rng);
    let x0 = [-4.0, 4.5];
    let epochs = 20;
    let runs = run(&problem, x0, epochs, SEED + 3);
    let x_star = problem.minimiser();
    println!(
        "== 2-D least squares, n = {}, x0 = ({}, {}), x* = ({:.4}, {:.4}), step = {STEP_FRACTION} / max |a|^2",
        problem.len(),
        x0[0],
        x0[1],
        x_star[0],
        x_star[1]
    );
    println!(
        "region of confusion: the points where 0 is in the convex hull of the sample gradients"
    );
    report(&problem, &runs);
    let late = &runs.constant[runs.constant.len() / 2..];
    let inside = late.iter().filter(|&&x| problem.in_region(x)).count();
    println!(
        "constant step, second half of the run: {inside} of {} iterates inside the region",
        late.len()
    );
    println!();

    let path = plot::output_path("sgd_confusion_2d.svg")?;
    draw_2d(&problem, &runs, &path)?;
    plot::announce(&path);
    println!();
    Ok(())
}

fn early_stopping() -> Result {
    let mut rng = confusion::seeded(SEED + 4);
    let x_true = [1.0, 1.0];
    let train = Problem::<2>::random(20, x_true, 0.6, &mut rng);
    let held_out = Problem::<2>::random(200, x_true, 0.6, &mut rng);
    let eta = STEP_FRACTION * train.max_step();
    let patience = 2 * train.len();
    let x0 = [-4.0, 4.5];
    let iters = 20 * train.len();
    let run = confusion::early_stopping(
        &train,
        &held_out,
        x0,
        Step::Constant(eta),
        iters,
        patience,
        &mut rng,
    );
    let x_star = train.minimiser();
    println!(
        "== early stopping: 2-D, {} training and {} held-out samples, patience {patience} iterations",
        train.len(),
        held_out.len()
    );
    println!(
        "stopped at iteration {}, returning iterate {} (the held-out minimum so far)",
        run.stop, run.best
    );
    println!("{:<40} {:>12} {:>12}", "", "training", "held-out");
    let row = |name: &str, x: Point<2>| {
        println!(
            "{name:<40} {:>12.5} {:>12.5}",
            train.loss(x),
            held_out.loss(x)
        );
    };
    row(
        &format!("x_{} (early stopping)", run.best),
        run.iterates[run.best],
    );
    row(&format!("x_{iters} (end of run)"), run.iterates[iters]);
    row("x* (training minimiser, exact)", x_star);
    row("x_true (data generated from)", x_true);
    println!();

    let path = plot::output_path("sgd_early_stopping.svg")?;
    draw_early_stopping(&run, &train, &held_out, &path)?;
    plot::announce(&path);
    Ok(())
}

fn draw_1d(problem: &Problem<1>, runs: &Runs<1>, path: &Path) -> Result {
    let n = problem.len();
    let (lo, hi) = problem.region();
    let [x_star] = problem.minimiser();
    let steps = runs.constant.len() - 1;
    let x0 = runs.constant[0][0];
    let root = SVGBackend::new(path, plot::SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("SGD on 1-D least squares (n = {n}): fast approach, then confusion"),
            plot::caption_font(),
        )
        .margin(16)
        .margin_right(28)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..steps as f64, (x0 - 0.3)..(hi + 0.8))?;
    chart
        .configure_mesh()
        .x_desc("iteration k (sample gradients evaluated)")
        .x_label_formatter(&|k| format!("{k:.0}"))
        .y_desc("x_k")
        .label_style(plot::label_font())
        .axis_desc_style(plot::label_font())
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0.0, lo), (steps as f64, hi)],
            plot::SHADE.mix(0.45).filled(),
        )))?
        .label("region of confusion [min b/a, max b/a]")
        .legend(plot::legend_box(plot::SHADE.mix(0.45)));
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, x_star), (steps as f64, x_star)],
            6,
            4,
            BLACK.stroke_width(1),
        ))?
        .label("x* (least-squares minimiser)")
        .legend(plot::legend_line(BLACK));

    let per_sample = |xs: &[Point<1>]| -> Vec<(f64, f64)> {
        xs.iter()
            .enumerate()
            .map(|(k, [x])| (k as f64, *x))
            .collect()
    };
    chart
        .draw_series(LineSeries::new(
            per_sample(&runs.decreasing),
            plot::GREEN.stroke_width(2),
        ))?
        .label("SGD, step 0.9/max a^2 / (1 + k/n)")
        .legend(plot::legend_line(plot::GREEN));
    chart
        .draw_series(LineSeries::new(
            per_sample(&runs.constant),
            plot::BLUE.stroke_width(2),
        ))?
        .label("SGD, constant step 0.9/max a^2")
        .legend(plot::legend_line(plot::BLUE));
    let full: Vec<(f64, f64)> = runs
        .full_batch
        .iter()
        .enumerate()
        .map(|(j, [x])| ((j * n) as f64, *x))
        .collect();
    chart
        .draw_series(LineSeries::new(full.clone(), plot::RED.stroke_width(2)))?
        .label("full-batch GD, same step (one step per n samples)")
        .legend(plot::legend_line(plot::RED));
    chart.draw_series(full.iter().map(|&p| Circle::new(p, 3, plot::RED.filled())))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(plot::label_font())
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn draw_2d(problem: &Problem<2>, runs: &Runs<2>, path: &Path) -> Result {
    let x_star = problem.minimiser();
    let x0 = runs.constant[0];
    // Left: a square window holding the start and a margin around the minimiser.
    let lo = [
        x0[0].min(x_star[0] - 3.0) - 0.5,
        x0[1].min(x_star[1] - 3.0) - 0.5,
    ];
    let hi = [
        x0[0].max(x_star[0] + 3.0) + 0.5,
        x0[1].max(x_star[1] + 3.0) + 0.5,
    ];
    let side = (hi[0] - lo[0]).max(hi[1] - lo[1]);
    let whole = Window { corner: lo, side };
    // Right: a square around the late constant-step iterates.
    let late = &runs.constant[runs.constant.len() / 2..];
    let reach = late
        .iter()
        .map(|&x| distance(x, x_star))
        .fold(0.0, f64::max)
        * 1.4;
    let zoom = Window {
        corner: [x_star[0] - reach, x_star[1] - reach],
        side: 2.0 * reach,
    };

    let root = SVGBackend::new(path, (1400, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "SGD on 2-D least squares (n = {}): shaded, the region of confusion",
            problem.len()
        ),
        plot::caption_font(),
    )?;
    let (left, right) = root.split_horizontally(700);
    draw_plane(&left, problem, runs, &whole, "from the start", 0)?;
    draw_plane(
        &right,
        problem,
        runs,
        &zoom,
        "zoom: second half of the run",
        runs.constant.len() / 2,
    )?;
    root.present()?;
    Ok(())
}

/// A square part of the plane.
struct Window {
    corner: Point<2>,
    side: f64,
}

/// One panel of the 2-D figure: the region, each sample's line, the runs from iterate `from` on.
fn draw_plane(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    problem: &Problem<2>,
    runs: &Runs<2>,
    window: &Window,
    title: &str,
    from: usize,
) -> Result {
    let x_star = problem.minimiser();
    let [x_lo, y_lo] = window.corner;
    let (x_range, y_range) = (x_lo..x_lo + window.side, y_lo..y_lo + window.side);
    let mut chart = ChartBuilder::on(area)
        .caption(title, plot::label_font())
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x_range.clone(), y_range.clone())?;
    chart
        .configure_mesh()
        .x_desc("x0")
        .y_desc("x1")
        .label_style(plot::label_font())
        .axis_desc_style(plot::label_font())
        .light_line_style(WHITE.mix(0.0))
        .draw()?;

    // Shade the region cell by cell, merging each row's runs of inside cells into one rectangle.
    let cells = 200;
    let cell = window.side / cells as f64;
    let mut runs_of_cells = Vec::new();
    for row in 0..cells {
        let y = y_lo + (row as f64 + 0.5) * cell;
        let mut start = None;
        for col in 0..=cells {
            let x = x_lo + (col as f64 + 0.5) * cell;
            let inside = col < cells && problem.in_region([x, y]);
            match (inside, start) {
                (true, None) => start = Some(col),
                (false, Some(first)) => {
                    runs_of_cells.push((first, col, row));
                    start = None;
                }
                _ => {}
            }
        }
    }
    let shade = plot::SHADE.mix(0.55);
    let corner = |col: usize, row: usize| (x_lo + col as f64 * cell, y_lo + row as f64 * cell);
    chart
        .draw_series(runs_of_cells.iter().map(|&(first, end, row)| {
            Rectangle::new([corner(first, row), corner(end, row + 1)], shade.filled())
        }))?
        .label("region of confusion: 0 in the hull of the sample gradients")
        .legend(plot::legend_box(shade));

    // Each sample's minimisers: the line a·x = b.
    for (i, (a, b)) in problem.a.iter().zip(&problem.b).enumerate() {
        let points: Vec<(f64, f64)> = if a[1].abs() > a[0].abs() {
            [x_range.start, x_range.end]
                .iter()
                .map(|&x| (x, (b - a[0] * x) / a[1]))
                .collect()
        } else {
            [y_range.start, y_range.end]
                .iter()
                .map(|&y| ((b - a[1] * y) / a[0], y))
                .collect()
        };
        let series =
            chart.draw_series(LineSeries::new(points, plot::GREY.mix(0.5).stroke_width(1)))?;
        if i == 0 {
            series
                .label("a_i . x = b_i: each sample's minimisers")
                .legend(plot::legend_line(plot::GREY));
        }
    }

    let path_of =
        |xs: &[Point<2>]| -> Vec<(f64, f64)> { xs.iter().map(|x| (x[0], x[1])).collect() };
    let full_from = from.div_ceil(problem.len());
    chart
        .draw_series(LineSeries::new(
            path_of(&runs.full_batch[full_from..]),
            plot::RED.stroke_width(2),
        ))?
        .label("full-batch GD, same step (one step per n samples)")
        .legend(plot::legend_line(plot::RED));
    chart.draw_series(
        path_of(&runs.full_batch[full_from..])
            .into_iter()
            .map(|p| Circle::new(p, 3, plot::RED.filled())),
    )?;
    chart
        .draw_series(LineSeries::new(
            path_of(&runs.decreasing[from..]),
            plot::GREEN.stroke_width(2),
        ))?
        .label("SGD, decreasing step")
        .legend(plot::legend_line(plot::GREEN));
    chart
        .draw_series(LineSeries::new(
            path_of(&runs.constant[from..]),
            plot::BLUE.mix(0.6).stroke_width(1),
        ))?
        .label("SGD, constant step 0.9 / max |a_i|^2")
        .legend(plot::legend_line(plot::BLUE));
    chart.draw_series(
        path_of(&runs.constant[from..])
            .into_iter()
            .map(|p| Circle::new(p, 2, plot::BLUE.filled())),
    )?;
    chart
        .draw_series(std::iter::once(Cross::new(
            (x_star[0], x_star[1]),
            7,
            BLACK.stroke_width(3),
        )))?
        .label("x*, the least-squares minimiser")
        .legend(|(x, y)| Cross::new((x + 12, y), 6, BLACK.stroke_width(2)));
    if from == 0 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .label_font(plot::label_font())
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

fn draw_early_stopping(
    run: &EarlyStopping<2>,
    train: &Problem<2>,
    held_out: &Problem<2>,
    path: &Path,
) -> Result {
    let steps = run.iterates.len() - 1;
    let floor = train
        .loss(train.minimiser())
        .min(held_out.loss(held_out.minimiser()))
        * 0.8;
    let top = run.train[0].max(run.held_out[0]) * 1.5;
    let root = SVGBackend::new(path, plot::SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Early stopping: constant-step SGD with a held-out set",
            plot::caption_font(),
        )
        .margin(16)
        .margin_right(28)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..steps as f64, (floor..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("iteration k")
        .x_label_formatter(&|k| format!("{k:.0}"))
        .y_desc("mean loss")
        .label_style(plot::label_font())
        .axis_desc_style(plot::label_font())
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let curve = |losses: &[f64]| -> Vec<(f64, f64)> {
        losses
            .iter()
            .enumerate()
            .map(|(k, &l)| (k as f64, l))
            .collect()
    };
    chart
        .draw_series(LineSeries::new(
            curve(&run.train),
            plot::BLUE.stroke_width(2),
        ))?
        .label("training loss")
        .legend(plot::legend_line(plot::BLUE));
    chart
        .draw_series(LineSeries::new(
            curve(&run.held_out),
            plot::ORANGE.stroke_width(2),
        ))?
        .label("held-out loss")
        .legend(plot::legend_line(plot::ORANGE));
    let minimum = train.loss(train.minimiser());
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, minimum), (steps as f64, minimum)],
            6,
            4,
            BLACK.stroke_width(1),
        ))?
        .label("minimum of the training loss")
        .legend(plot::legend_line(BLACK));
    chart
        .draw_series(DashedLineSeries::new(
            [(run.stop as f64, floor), (run.stop as f64, top)],
            4,
            4,
            plot::RED.stroke_width(2),
        ))?
        .label(format!(
            "stop at k = {} (patience {})",
            run.stop,
            run.stop - run.best
        ))
        .legend(plot::legend_line(plot::RED));
    chart
        .draw_series(std::iter::once(Circle::new(
            (run.best as f64, run.held_out[run.best]),
            6,
            plot::RED.filled(),
        )))?
        .label(format!("returned: held-out minimum at k = {}", run.best))
        .legend(|(x, y)| Circle::new((x + 12, y), 5, plot::RED.filled()));
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
