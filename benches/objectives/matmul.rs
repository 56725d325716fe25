//! A dense matrix-product loss: f(A, B) = Σᵢⱼ (AB)ᵢⱼ², A and B n × n and row-major, both active
//! (2 n² inputs, A's entries then B's).
//!
//! The user writes the textbook i-j-k loop with a scalar accumulator per entry of C = AB; the
//! gradient is ∂f/∂A = 2 C Bᵀ and ∂f/∂B = 2 Aᵀ C, two more matrix products.

use super::data::Rng;
use super::Problem;
use nalgebra::DVector;
use num_dual::DualDVec64;
use reverse::{Gradient, Tape, Var};

/// As the user writes it.
#[ad::gradient]
pub fn matmul_loss(a: &[f64], b: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..n {
        for j in 0..n {
            let mut acc = 0.0;
            for k in 0..n {
                acc += a[i * n + k] * b[k * n + j];
            }
            s += acc * acc;
        }
    }
    s
}

/// Hand-derived adjoint: C = AB (i-k-j order, into a buffer), f = Σ C², then with G = ∂f/∂C = 2C,
/// ∂f/∂A = G Bᵀ (entry (i, k) is row i of G dotted with row k of B) and ∂f/∂B = Aᵀ G
/// (accumulated in i-k-j order). Returns f; `g_a` and `g_b` are overwritten.
pub fn matmul_hand(a: &[f64], b: &[f64], n: usize, g_a: &mut [f64], g_b: &mut [f64]) -> f64 {
    assert!(n >= 1, "the matrix-product loss needs n ≥ 1");
    assert_eq!(a.len(), n * n, "A is not n × n");
    assert_eq!(b.len(), n * n, "B is not n × n");
    assert_eq!(
        g_a.len(),
        n * n,
        "gradient buffer of A has the wrong length"
    );
    assert_eq!(
        g_b.len(),
        n * n,
        "gradient buffer of B has the wrong length"
    );
    let mut c = vec![0.0; n * n];
    for (ci, ai) in c.chunks_exact_mut(n).zip(a.chunks_exact(n)) {
        for (&aik, bk) in ai.iter().zip(b.chunks_exact(n)) {
            for (cij, bkj) in ci.iter_mut().zip(bk) {
                *cij += aik * bkj;
            }
        }
    }
    let mut s = 0.0;
    for cij in c.iter_mut() {
        s += *cij * *cij;
        *cij *= 2.0;
    }
    // c now holds G = 2C.
    for (gai, gi) in g_a.chunks_exact_mut(n).zip(c.chunks_exact(n)) {
        for (gaik, bk) in gai.iter_mut().zip(b.chunks_exact(n)) {
            let mut dot = 0.0;
            for (gij, bkj) in gi.iter().zip(bk) {
                dot += gij * bkj;
            }
            *gaik = dot;
        }
    }
    g_b.fill(0.0);
    for (ai, gi) in a.chunks_exact(n).zip(c.chunks_exact(n)) {
        for (&aik, gbk) in ai.iter().zip(g_b.chunks_exact_mut(n)) {
            for (gbkj, gij) in gbk.iter_mut().zip(gi) {
                *gbkj += aik * gij;
            }
        }
    }
    s
}

/// For `num-dual`.
pub fn matmul_num_dual(a: &[DualDVec64], b: &[DualDVec64], n: usize) -> DualDVec64 {
    let mut s = DualDVec64::from(0.0);
    for i in 0..n {
        for j in 0..n {
            let mut acc = DualDVec64::from(0.0);
            for k in 0..n {
                acc += &a[i * n + k] * &b[k * n + j];
            }
            s += &acc * &acc;
        }
    }
    s
}

/// For `reverse`.
pub fn matmul_reverse<'a>(a: &[Var<'a>], b: &[Var<'a>], n: usize) -> Var<'a> {
    let tape = a[0].tape;
    let mut s = tape.add_var(0.0);
    for i in 0..n {
        for j in 0..n {
            let mut acc = tape.add_var(0.0);
            for k in 0..n {
                acc = acc + a[i * n + k] * b[k * n + j];
            }
            s = s + acc * acc;
        }
    }
    s
}

pub struct MatMul {
    pub n: usize,
    /// A, then B (each n × n, row-major): the active inputs, in parameter order.
    pub theta: Vec<f64>,
    tape: Tape,
}

impl MatMul {
    /// Entries of A and B uniform in [−1, 1).
    pub fn new(n: usize, seed: u64) -> Self {
        assert!(n >= 1, "the matrix-product loss needs n ≥ 1");
        let mut rng = Rng::new(seed);
        MatMul {
            n,
            theta: rng.uniforms(2 * n * n, -1.0, 1.0),
            tape: Tape::new(),
        }
    }

    /// The loss at other parameters (for finite differences).
    pub fn value_at(&self, theta: &[f64]) -> f64 {
        let (a, b) = theta.split_at(self.n * self.n);
        matmul_loss(a, b, self.n)
    }
}

impl Problem for MatMul {
    fn name(&self) -> String {
        format!("matrix-product loss n={}", self.n)
    }

    fn n_params(&self) -> usize {
        2 * self.n * self.n
    }

    #[inline]
    fn value(&self) -> f64 {
        self.value_at(&self.theta)
    }

    #[inline]
    fn generated(&self, g: &mut [f64]) -> Option<f64> {
        let (a, b) = self.theta.split_at(self.n * self.n);
        let (g_a, g_b) = g.split_at_mut(self.n * self.n);
        let (v, []) = matmul_loss_grad(a, g_a, b, g_b, self.n);
        Some(v)
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        let (a, b) = self.theta.split_at(self.n * self.n);
        let (g_a, g_b) = g.split_at_mut(self.n * self.n);
        matmul_hand(a, b, self.n, g_a, g_b)
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = num_dual::gradient(
            |theta: DVector<DualDVec64>| {
                let (a, b) = theta.as_slice().split_at(self.n * self.n);
                matmul_num_dual(a, b, self.n)
            },
            &DVector::from_column_slice(&self.theta),
        );
        g.copy_from_slice(grad.as_slice());
        v
    }

    fn reverse_tape_nodes(&self) -> usize {
        self.tape.len()
    }

    fn reverse(&self, g: &mut [f64]) -> f64 {
        self.tape.clear();
        let theta = self.tape.add_vars(&self.theta);
        let (a, b) = theta.split_at(self.n * self.n);
        let f = matmul_reverse(a, b, self.n);
        let grad = f.grad();
        for (gi, t) in g.iter_mut().zip(&theta) {
            *gi = grad.wrt(t);
        }
        f.val()
    }

    /// A call carries a 2 n²-entry derivative vector through ~2 n³ operations, about 4 n⁵
    /// derivative operations: 4 · 10⁹ at n = 24 (seconds), 4 · 10¹⁰ at the benchmark's n = 64.
    fn num_dual_feasible(&self) -> bool {
        self.n <= 24
    }
}
