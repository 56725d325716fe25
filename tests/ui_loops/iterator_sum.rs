use ad::gradient;

#[gradient]
fn total(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() * 2.0
}

fn main() {}
