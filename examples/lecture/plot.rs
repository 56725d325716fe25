//! What the lecture examples share for their SVG plots: where they go and how they look.

#![allow(dead_code)] // Shared by several examples; each uses part.

use std::error::Error;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

/// The result type of every example's `main` and plotting function.
pub type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

/// Figure size in pixels.
pub const SIZE: (u32, u32) = (900, 560);

/// Series colours, chosen to stay distinguishable in grey-scale print.
pub const BLUE: RGBColor = RGBColor(31, 119, 180);
pub const ORANGE: RGBColor = RGBColor(230, 120, 20);
pub const GREEN: RGBColor = RGBColor(44, 160, 44);
pub const RED: RGBColor = RGBColor(200, 40, 40);
pub const GREY: RGBColor = RGBColor(120, 120, 120);
/// Fill of the region of confusion.
pub const SHADE: RGBColor = RGBColor(255, 215, 120);

/// `target/plots/` of this package, created if missing: every example writes its SVGs here.
pub fn output_dir() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("plots");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The path of plot `name` inside [`output_dir`].
pub fn output_path(name: &str) -> Result<PathBuf> {
    Ok(output_dir()?.join(name))
}

/// Caption font.
pub fn caption_font() -> TextStyle<'static> {
    ("sans-serif", 22).into_font().into()
}

/// Axis description and legend font.
pub fn label_font() -> TextStyle<'static> {
    ("sans-serif", 16).into_font().into()
}

/// A short horizontal line in `color`, for a legend entry.
pub fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
}

/// A filled square in `color`, for the legend entry of a shaded area.
pub fn legend_box(color: RGBAColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 6), (x + 24, y + 6)], color.filled())
}

/// Log-spaced integers from `lo` to `hi` inclusive, about `per_decade` of them per decade.
pub fn log_spaced(lo: usize, hi: usize, per_decade: usize) -> Vec<usize> {
    let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
    let count = (((b - a) / 10f64.ln()) * per_decade as f64).ceil() as usize + 1;
    let mut points: Vec<usize> = (0..count)
        .map(|i| {
            (a + (b - a) * i as f64 / (count - 1).max(1) as f64)
                .exp()
                .round() as usize
        })
        .collect();
    points.push(hi);
    points.dedup();
    points
}

/// Prints where a plot went, relative to the package root when it is inside it.
pub fn announce(path: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shown = path.strip_prefix(root).unwrap_or(path);
    println!("wrote {}", shown.display());
}
