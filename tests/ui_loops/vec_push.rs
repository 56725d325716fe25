use ad::gradient;

#[gradient]
fn squares(x: &[f64]) -> f64 {
    let mut v = Vec::new();
    for i in 0..x.len() {
        v.push(x[i] * x[i]);
    }
    let mut s = 0.0;
    for i in 0..v.len() {
        s += v[i];
    }
    s
}

fn main() {}
