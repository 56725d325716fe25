use ad::gradient;

macro_rules! square {
    ($e:expr) => {
        $e * $e
    };
}

#[gradient]
fn f(x: f64) -> f64 {
    let y = square!(x);
    y + 1.0
}

fn main() {}
