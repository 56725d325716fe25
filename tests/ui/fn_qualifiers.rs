use ad::gradient;

#[gradient]
const fn f(x: f64) -> f64 {
    x
}

#[gradient]
async fn g(x: f64) -> f64 {
    x
}

#[gradient]
unsafe fn h(x: f64) -> f64 {
    x
}

fn main() {}
