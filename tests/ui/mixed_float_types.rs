use ad::gradient;

#[gradient]
fn f(x: f32, y: f64) -> f64 {
    y * 2.0
}

fn main() {}
