use ad::gradient;

#[gradient]
fn reset(x: &[f64]) -> f64 {
    x[0] = 1.0;
    x[0] * x[1]
}

fn main() {}
