use ad::gradient;

#[gradient]
fn f(x: f64, y: f64) -> f64 {
    x.rem_euclid(y) + 1.0
}

fn main() {}
