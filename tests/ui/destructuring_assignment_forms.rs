#![allow(unused)]
use ad::gradient;

// Destructuring assignments are lowered element by element when both sides are written out;
// other forms are refused rather than kept as written (their derivatives would be lost).
#[gradient]
fn nested(a: f64, b: f64) -> f64 {
    let mut x = a;
    let mut y = b;
    let mut z = a;
    ((x, y), z) = ((y, x * y), z * a);
    x * y * z
}

#[gradient]
fn rest(a: f64, b: f64) -> f64 {
    let mut x = a;
    let mut y = b;
    (x, ..) = (y, x);
    x * y
}

#[gradient]
fn from_a_variable(a: f64, n: usize) -> f64 {
    let mut i = 0;
    let mut j = 1;
    let p = (n, n + 1);
    (i, j) = p;
    a * (i + j) as f64
}

fn main() {}
