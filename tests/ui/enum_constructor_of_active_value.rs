use ad::gradient;

#[gradient]
fn f(x: f64) -> f64 {
    Some(x).unwrap_or(0.0) * 2.0
}

fn main() {}
