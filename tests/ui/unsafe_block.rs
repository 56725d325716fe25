use ad::gradient;

#[gradient]
fn f(x: f64) -> f64 {
    let y = unsafe { x * 2.0 };
    y + 1.0
}

fn main() {}
