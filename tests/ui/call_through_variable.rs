use ad::gradient;

#[gradient]
fn square(x: f64) -> f64 {
    x * x
}

#[gradient]
fn f(x: f64) -> f64 {
    let g: fn(f64) -> f64 = square;
    g(x) + 1.0
}

fn main() {}
