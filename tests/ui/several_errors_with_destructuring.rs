use ad::gradient;

// One mistake should give one error: the destructuring, the `match` and the closure are each
// reported once, and the later uses of `s`, `c`, `m` and `k` are not reported again.
#[gradient]
fn f(x: f64, n: u8) -> f64 {
    let (s, c) = (x.sin(), x.cos());
    let m = match n {
        0 => s,
        _ => c,
    };
    let k = |t: f64| t * x;
    s * c + m + k(1.0)
}

fn main() {}
