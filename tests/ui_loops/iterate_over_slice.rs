use ad::gradient;

#[gradient]
fn sum_iter(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x.iter() {
        s += v * v;
    }
    s
}

#[gradient]
fn sum_direct(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x {
        s += *v;
    }
    s
}

fn main() {}
