use ad::gradient;

#[gradient]
fn sample(x: &[f64], t: f64) -> f64 {
    x[t] * t
}

fn main() {}
