use ad::gradient;

fn plain_square(x: f64) -> f64 {
    x * x
}

#[gradient]
fn f(x: f64) -> f64 {
    plain_square(x) + 1.0
}

fn main() {}
