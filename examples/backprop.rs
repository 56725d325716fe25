//! The lecture's example (MIT 18.065, "Backpropagation"): F(x, y) = x³(x + 3y) at (2, 3).
//!
//! The computational graph has three nodes, c = x³, s = x + 3y and F = c·s. Forward mode needs
//! one pass through the graph per input to get the two partial derivatives; reverse mode
//! (backpropagation) gets both from one backward pass. `#[gradient]` writes that backward pass
//! at compile time: `f_grad` is the answer.
//!
//! Run with `cargo run --example backprop`.

use ad::gradient;

/// The lecture's function.
#[gradient]
fn f(x: f64, y: f64) -> f64 {
    x.powi(3) * (x + 3.0 * y)
}

/// One forward-mode pass: the value and the directional derivative of every node along
/// the seed direction `(dx, dy)`.
fn forward_pass(x: f64, y: f64, dx: f64, dy: f64) -> [(f64, f64); 3] {
    let (c, dc) = (x.powi(3), 3.0 * x * x * dx);
    let (s, ds) = (x + 3.0 * y, dx + 3.0 * dy);
    let (big_f, d_big_f) = (c * s, dc * s + c * ds);
    [(c, dc), (s, ds), (big_f, d_big_f)]
}

fn main() {
    let (x, y) = (2.0, 3.0);

    println!("F(x, y) = x^3 (x + 3y) at (x, y) = ({x}, {y})\n");
    println!("The computational graph, evaluated forwards:");
    let [(c, _), (s, _), (big_f, _)] = forward_pass(x, y, 0.0, 0.0);
    println!("  {:<28} {:>8}", "node", "value");
    println!("  {:<28} {:>8}", "c = x^3", c);
    println!("  {:<28} {:>8}", "s = x + 3y", s);
    println!("  {:<28} {:>8}", "F = c * s", big_f);
    assert_eq!(big_f, f(x, y));

    println!("\nForward mode: one pass through the graph per input.");
    println!("  {:<28} {:>8} {:>8} {:>8}", "seed", "dc", "ds", "dF");
    let along_x = forward_pass(x, y, 1.0, 0.0);
    let along_y = forward_pass(x, y, 0.0, 1.0);
    for (name, pass) in [
        ("pass 1: (dx, dy) = (1, 0)", along_x),
        ("pass 2: (dx, dy) = (0, 1)", along_y),
    ] {
        println!(
            "  {:<28} {:>8} {:>8} {:>8}",
            name, pass[0].1, pass[1].1, pass[2].1
        );
    }
    println!(
        "  => dF/dx = {}, dF/dy = {} (two passes)",
        along_x[2].1, along_y[2].1
    );

    println!("\nReverse mode: one backward pass, seeded with dF/dF = 1.");
    let f_bar = 1.0;
    let c_bar = f_bar * s; // dF/dc = s
    let s_bar = f_bar * c; // dF/ds = c
    println!("  {:<28} {:>8}", "adjoint", "value");
    println!("  {:<28} {:>8}", "F_bar = 1", f_bar);
    println!("  {:<28} {:>8}", "c_bar = F_bar * s", c_bar);
    println!("  {:<28} {:>8}", "s_bar = F_bar * c", s_bar);
    println!(
        "  {:<28} {:>8}",
        "x_bar = 3x^2 c_bar + s_bar",
        3.0 * x * x * c_bar + s_bar
    );
    println!("  {:<28} {:>8}", "y_bar = 3 s_bar", 3.0 * s_bar);

    let (value, [dfdx, dfdy]) = f_grad(x, y);
    println!("\n#[gradient] generated f_grad (one reverse sweep):");
    println!("  f_grad({x}, {y}) = ({value}, [{dfdx}, {dfdy}])");
    assert_eq!((value, dfdx, dfdy), (88.0, 140.0, 24.0));
    println!("  F = 88, dF/dx = 140, dF/dy = 24, as in the lecture.");
}
