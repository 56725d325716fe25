use ad::gradient;

#[gradient]
struct Point {
    x: f64,
    y: f64,
}

fn main() {}
