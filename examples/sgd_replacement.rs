//! Project 1 of lecture 27 of MIT 18.065: SGD estimates the mean of n uniform numbers, sampling
//! with replacement versus without. Every gradient comes from `#[gradient]`.
//!
//! ```text
//! cargo run --release --example sgd_replacement            # n = 100
//! cargo run --release --example sgd_replacement -- 1000    # n = 1000
//! ```

#[path = "lecture/plot.rs"]
mod plot;
#[path = "lecture/replacement.rs"]
mod replacement;

use plot::Result;
use plotters::prelude::*;
use replacement::{error_curves, ErrorCurves, Sampling};

const EPOCHS: usize = 10;
const TRIALS: usize = 1000;
const SEED: u64 = 18_065;
/// Errors below this are drawn at this level: at each epoch end the without-replacement error is
/// rounding error, around 1e-17, which would squash the rest of the plot.
const FLOOR: f64 = 1e-5;

fn main() -> Result {
    let n = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 100,
    };
    let curves = error_curves(n, EPOCHS, TRIALS, SEED);
    report(&curves);
    let path = plot::output_path(&format!("sgd_replacement_n{n}.svg"))?;
    draw(&curves, &path)?;
    plot::announce(&path);
    Ok(())
}

fn report(curves: &ErrorCurves) {
    let n = curves.n;
    println!(
        "SGD for the mean of n = {n} uniform numbers, step 1/k, x0 = 0, {} trials, {} epochs",
        curves.trials, curves.epochs
    );
    println!(
        "(the sample mean itself is on average {:.4} from 1/2; errors below are from the sample mean)",
        curves.sample_mean_from_half
    );
    println!();
    println!("mean |x_k - mean| at the end of an epoch (k = epochs * n):");
    println!(
        "{:>8} {:>20} {:>22}",
        "epochs", "with replacement", "without replacement"
    );
    for epochs in [1, 2, 5] {
        println!(
            "{:>8} {:>20.3e} {:>22.3e}",
            epochs,
            curves.after_epochs(Sampling::WithReplacement, epochs),
            curves.after_epochs(Sampling::WithoutReplacement, epochs),
        );
    }
    println!();
    println!("mean |x_k - mean| averaged over all k of one epoch:");
    println!(
        "{:>8} {:>20} {:>22} {:>8}",
        "epoch", "with replacement", "without replacement", "ratio"
    );
    for epoch in [1, 2, 5] {
        let with = curves.during_epoch(Sampling::WithReplacement, epoch);
        let without = curves.during_epoch(Sampling::WithoutReplacement, epoch);
        println!(
            "{epoch:>8} {with:>20.3e} {without:>22.3e} {:>8.1}",
            with / without
        );
    }
    println!();
    let k = curves.epochs * n;
    let predicted = replacement::clt_constant() / (k as f64).sqrt();
    println!(
        "with replacement after k = {k}: {:.3e}; central limit theorem sqrt(2/(12 pi))/sqrt(k) = {predicted:.3e}",
        curves.with[k - 1]
    );
    println!(
        "lecture: \"after we've got through the full {n}, we're going to get exactly the right answer\": \
         without replacement, epoch-end error {:.1e} (rounding only)",
        curves.after_epochs(Sampling::WithoutReplacement, 1)
    );
}

fn draw(curves: &ErrorCurves, path: &std::path::Path) -> Result {
    let n = curves.n;
    let steps = curves.epochs * n;
    let root = SVGBackend::new(path, plot::SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "SGD for the mean of n = {n} uniform numbers, step 1/k ({} trials)",
                curves.trials
            ),
            plot::caption_font(),
        )
        .margin(16)
        .margin_right(32)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d((1f64..steps as f64).log_scale(), (FLOOR..1f64).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("iteration k")
        .y_desc("mean |x_k - mean(a)|")
        .x_label_formatter(&|k| format!("{k:.0}"))
        .label_style(plot::label_font())
        .axis_desc_style(plot::label_font())
        .light_line_style(WHITE.mix(0.0))
        .draw()?;

    let epoch_ends = (1..=curves.epochs).map(|e| (e * n) as f64);
    for (i, k) in epoch_ends.enumerate() {
        let series = chart.draw_series(DashedLineSeries::new(
            [(k, FLOOR), (k, 1.0)],
            4,
            4,
            plot::GREY.mix(0.7).stroke_width(1),
        ))?;
        if i == 0 {
            series
                .label("epoch ends")
                .legend(plot::legend_line(plot::GREY));
        }
    }

    let c = replacement::clt_constant();
    let reference = |f: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
        let ks = plot::log_spaced(1, steps, 20).into_iter();
        ks.map(|k| (k as f64, f(k as f64).max(FLOOR))).collect()
    };
    chart
        .draw_series(DashedLineSeries::new(
            reference(&|k| c / k.sqrt()),
            8,
            5,
            BLACK.stroke_width(1),
        ))?
        .label(format!("{c:.2}/sqrt(k): CLT, with replacement"))
        .legend(plot::legend_line(BLACK));
    let half_root_n = (n as f64).sqrt() / 2.0;
    chart
        .draw_series(DashedLineSeries::new(
            reference(&|k| c * half_root_n / k),
            3,
            4,
            plot::RED.stroke_width(1),
        ))?
        .label(format!("{c:.2}*sqrt(n)/(2k): peak without replacement"))
        .legend(plot::legend_line(plot::RED));

    for (sampling, color) in [
        (Sampling::WithReplacement, plot::BLUE),
        (Sampling::WithoutReplacement, plot::ORANGE),
    ] {
        let points = curves
            .curve(sampling)
            .iter()
            .enumerate()
            .map(|(i, &e)| ((i + 1) as f64, e.max(FLOOR)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(sampling.label())
            .legend(plot::legend_line(color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font(plot::label_font())
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
