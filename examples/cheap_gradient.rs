//! Lecture 27 of MIT 18.065: "I could have 100 variables and do the calculation in four or five
//! times the cost". Times the extended Rosenbrock function, its gradient from `#[gradient]` (one
//! reverse sweep) and forward differences (n + 1 evaluations) for n from 1 to 10⁴.
//!
//! ```text
//! cargo run --release --example cheap_gradient
//! ```

#[path = "lecture/cheap.rs"]
mod cheap;
#[path = "lecture/plot.rs"]
mod plot;
#[path = "lecture/timing.rs"]
mod timing;

use std::hint::black_box;
use std::time::Duration;

use plot::Result;
use plotters::prelude::*;

/// Seconds per call of the function, its reverse-mode gradient and forward differences.
struct Costs {
    n: usize,
    function: f64,
    reverse: f64,
    differences: f64,
}

impl Costs {
    fn reverse_ratio(&self) -> f64 {
        self.reverse / self.function
    }

    fn differences_ratio(&self) -> f64 {
        self.differences / self.function
    }
}

fn measure(n: usize) -> Costs {
    let x = cheap::test_point(n);
    let mut gradient = vec![0.0; n];
    let mut gradient_fd = vec![0.0; n];
    let mut scratch = Vec::with_capacity(n);
    let mut function = || {
        black_box(cheap::rosenbrock(black_box(&x)));
    };
    let mut reverse = || {
        black_box(cheap::gradient_reverse(black_box(&x), &mut gradient));
    };
    let mut differences = || {
        black_box(cheap::gradient_differences(
            black_box(&x),
            &mut scratch,
            &mut gradient_fd,
        ));
    };
    let seconds = timing::compare(
        &mut [&mut function, &mut reverse, &mut differences],
        Duration::from_millis(5),
        5,
    );
    let [function, reverse, differences] = [seconds[0], seconds[1], seconds[2]];
    Costs {
        n,
        function,
        reverse,
        differences,
    }
}

fn main() -> Result {
    let sizes = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000];
    println!("extended Rosenbrock, n variables; cost relative to one evaluation of f");
    println!(
        "{:>6} {:>11} {:>11} {:>13} {:>11} {:>13}",
        "n", "f", "f_grad", "differences", "f_grad / f", "differences / f"
    );
    let mut costs = Vec::new();
    for n in sizes {
        let c = measure(n);
        println!(
            "{:>6} {:>11} {:>11} {:>13} {:>11.2} {:>15.1}",
            n,
            timing::human(c.function),
            timing::human(c.reverse),
            timing::human(c.differences),
            c.reverse_ratio(),
            c.differences_ratio()
        );
        costs.push(c);
    }
    let large: Vec<&Costs> = costs.iter().filter(|c| c.n >= 100).collect();
    let (lo, hi) = large.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), c| {
        (lo.min(c.reverse_ratio()), hi.max(c.reverse_ratio()))
    });
    println!();
    println!(
        "lecture: all n partial derivatives for \"four or five times\" the cost of f; measured for n >= 100: \
         {lo:.1} to {hi:.1} times (forward differences: n + 1 evaluations)"
    );

    let path = plot::output_path("cheap_gradient.svg")?;
    draw(&costs, &path)?;
    plot::announce(&path);
    Ok(())
}

fn draw(costs: &[Costs], path: &std::path::Path) -> Result {
    let n_max = costs.iter().map(|c| c.n).max().unwrap_or(1) as f64;
    let y_max = costs
        .iter()
        .map(Costs::differences_ratio)
        .fold(n_max, f64::max)
        * 3.0;
    let root = SVGBackend::new(path, plot::SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Cost of the whole gradient, in evaluations of f",
            plot::caption_font(),
        )
        .margin(16)
        .margin_right(32)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d((1f64..n_max).log_scale(), (0.3f64..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("n, number of variables")
        .y_desc("time / time of f")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                format!("{y:.0}")
            } else {
                format!("{y}")
            }
        })
        .label_style(plot::label_font())
        .axis_desc_style(plot::label_font())
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(1.0, 4.0), (n_max, 5.0)],
            plot::SHADE.mix(0.6).filled(),
        )))?
        .label("lecture: \"four or five times\"")
        .legend(plot::legend_box(plot::SHADE.mix(0.6)));
    let reference: Vec<(f64, f64)> = plot::log_spaced(1, n_max as usize, 10)
        .into_iter()
        .map(|n| (n as f64, n as f64 + 1.0))
        .collect();
    chart
        .draw_series(DashedLineSeries::new(
            reference,
            8,
            5,
            BLACK.stroke_width(1),
        ))?
        .label("n + 1")
        .legend(plot::legend_line(BLACK));
    for (label, color, ratio) in [
        (
            "forward differences (n + 1 evaluations)",
            plot::ORANGE,
            Costs::differences_ratio as fn(&Costs) -> f64,
        ),
        (
            "f_grad from #[gradient] (one reverse sweep)",
            plot::BLUE,
            Costs::reverse_ratio,
        ),
    ] {
        let points: Vec<(f64, f64)> = costs.iter().map(|c| (c.n as f64, ratio(c))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(plot::legend_line(color));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(plot::label_font())
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
