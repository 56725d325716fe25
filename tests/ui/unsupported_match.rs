use ad::gradient;

#[gradient]
fn f(x: f64, n: u8) -> f64 {
    let y = match n {
        0 => x,
        1 => x * x,
        _ => x.sin(),
    };
    y + 1.0
}

fn main() {}
