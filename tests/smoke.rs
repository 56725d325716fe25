use ad::gradient;

#[gradient]
fn f(x: f64, y: f64) -> f64 {
    x.powi(3) * (x + 3.0 * y)
}

#[gradient]
fn logistic(x0: f64, r: f64, steps: usize) -> f64 {
    let mut x = x0;
    for _ in 0..steps {
        x = r * x * (1.0 - x);
    }
    x
}

#[gradient]
fn rosen(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    s
}

#[gradient]
fn branchy(x: f64, y: f64) -> f64 {
    if x > y {
        return x * y;
    }
    let z = if y > 0.0 { y.sin() } else { y.cos() };
    x * z
}

#[test]
fn smoke() {
    assert_eq!(f_grad(2.0, 3.0), (88.0, [140.0, 24.0]));
    assert_eq!(f(2.0, 3.0), 88.0);
    let (v, g) = logistic_grad(0.3, 3.5, 10);
    let h = 1e-6;
    let fd0 = (logistic(0.3 + h, 3.5, 10) - logistic(0.3 - h, 3.5, 10)) / (2.0 * h);
    let fd1 = (logistic(0.3, 3.5 + h, 10) - logistic(0.3, 3.5 - h, 10)) / (2.0 * h);
    assert_eq!(v, logistic(0.3, 3.5, 10));
    assert!(
        (g[0] - fd0).abs() < 1e-4 * fd0.abs().max(1.0),
        "{g:?} {fd0}"
    );
    assert!(
        (g[1] - fd1).abs() < 1e-4 * fd1.abs().max(1.0),
        "{g:?} {fd1}"
    );
    let x = [1.2, 0.7, -0.3, 2.0];
    let mut gx = [0.0; 4];
    let (v, _) = rosen_grad(&x, &mut gx);
    assert_eq!(v, rosen(&x));
    for k in 0..4 {
        let mut xp = x;
        xp[k] += h;
        let mut xm = x;
        xm[k] -= h;
        let fd = (rosen(&xp) - rosen(&xm)) / (2.0 * h);
        assert!(
            (gx[k] - fd).abs() < 1e-4 * fd.abs().max(1.0),
            "{k} {gx:?} {fd}"
        );
    }
    assert_eq!(branchy_grad(3.0, 2.0), (6.0, [2.0, 3.0]));
    assert_eq!(branchy(3.0, 2.0), 6.0);
    let (v, g) = branchy_grad(1.0, 2.0);
    assert_eq!(v, 2f64.sin());
    assert_eq!(g, [2f64.sin(), 2f64.cos()]);
}
