use ad::gradient;

#[gradient]
fn pair(x: f64) -> (f64, f64) {
    (x, x * x)
}

#[gradient]
fn nothing(x: f64) {
    println!("{x}");
}

fn main() {}
