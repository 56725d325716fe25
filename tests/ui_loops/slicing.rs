use ad::gradient;

#[gradient]
fn sum_sq(v: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        s += v[i] * v[i];
    }
    s
}

#[gradient]
fn tail_sum(x: &[f64]) -> f64 {
    let tail = &x[1..];
    let mut s = 0.0;
    for i in 0..tail.len() {
        s += tail[i];
    }
    s
}

#[gradient]
fn tail_call(x: &[f64]) -> f64 {
    sum_sq(&x[1..])
}

#[gradient]
fn tail_first(x: &[f64]) -> f64 {
    x[1..][0] * 2.0
}

fn main() {}
