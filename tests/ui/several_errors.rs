use ad::gradient;

// Three unsupported constructs: all three are reported, each on its own tokens.
#[gradient]
fn f(x: f64, n: u8) -> f64 {
    let a = x.rem_euclid(2.0);
    let b = unsafe { x * 2.0 };
    let c = match n {
        0 => x,
        _ => a,
    };
    a + b + c
}

fn main() {}
