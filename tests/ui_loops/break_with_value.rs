use ad::gradient;

#[gradient]
fn first_positive(x: &[f64]) -> f64 {
    let mut i = 0;
    let found = loop {
        if x[i] > 0.0 {
            break x[i];
        }
        i += 1;
    };
    found * found
}

fn main() {}
