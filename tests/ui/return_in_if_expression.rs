use ad::gradient;

#[gradient]
fn f(x: f64) -> f64 {
    let y = if x > 0.0 {
        return x;
    } else {
        x * 2.0
    };
    y + 1.0
}

fn main() {}
