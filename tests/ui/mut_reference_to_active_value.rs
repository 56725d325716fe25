use ad::gradient;

fn reset(v: &mut f64) {
    *v = 1.0;
}

// A change made through `&mut` would be invisible to the reverse sweep.
#[gradient]
fn f(x: f64, z: f64) -> f64 {
    let mut a = x;
    let mut b = z * 3.0;
    std::mem::swap(&mut a, &mut b);
    reset(&mut b);
    a * b
}

fn main() {}
