use ad::gradient;

#[gradient]
fn f((a, b): (f64, f64), c: f64) -> f64 {
    a * b * c
}

fn main() {}
