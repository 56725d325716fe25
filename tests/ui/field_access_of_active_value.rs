use ad::gradient;

struct Pair {
    a: f64,
    b: f64,
}

#[gradient]
fn f(x: f64) -> f64 {
    let p = Pair { a: x, b: 2.0 };
    p.a * p.b
}

fn main() {}
