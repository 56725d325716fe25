use ad::gradient;

#[gradient]
fn f(x: f64, n: u8) -> f64 {
    let mut y = 0.0;
    match n {
        0 => y = x,
        _ => y = x * x,
    }
    y * 2.0
}

fn main() {}
