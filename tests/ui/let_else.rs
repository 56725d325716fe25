use ad::gradient;

#[gradient]
fn f(x: f64, n: Option<u8>) -> f64 {
    let Some(k) = n else {
        return x;
    };
    x * f64::from(k)
}

fn main() {}
