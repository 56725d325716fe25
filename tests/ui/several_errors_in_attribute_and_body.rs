use ad::gradient;

// Errors of the attribute, the signature and the body are reported together.
#[gradient(wrt(x, missing))]
fn f(x: f64, (a, b): (f64, f64)) -> f64 {
    let y = unsafe { x * a };
    y * b
}

fn main() {}
