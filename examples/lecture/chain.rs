//! The lesson that closes the lecture: A (m×n) · B (n×p) · C (p×q) costs mnp + mpq multiply-adds
//! as (AB)C but npq + mnq as A(BC), and when C is a vector (q = 1) one order is orders of
//! magnitude cheaper. The same holds for the chain rule: the gradient of F = F₃∘F₂∘F₁ is the
//! product of the layer Jacobians J₃J₂J₁ with J₃ a single row, and reverse accumulation
//! ((J₃J₂)J₁: one seed carried backwards) beats forward accumulation (J₃(J₂J₁): n seeds carried
//! forwards).

#![allow(dead_code)] // Shared by an example and tests/lecture_examples.rs; each uses part.

use ad::gradient;
use rand::Rng;

/// A dense row-major matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn from_fn(rows: usize, cols: usize, mut entry: impl FnMut(usize, usize) -> f64) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                data.push(entry(r, c));
            }
        }
        Matrix { rows, cols, data }
    }

    /// Entries uniform on [−scale, scale].
    pub fn random(rows: usize, cols: usize, scale: f64, rng: &mut impl Rng) -> Self {
        Matrix::from_fn(rows, cols, |_, _| scale * rng.random_range(-1.0..1.0))
    }

    /// A column vector.
    pub fn column(values: &[f64]) -> Self {
        Matrix {
            rows: values.len(),
            cols: 1,
            data: values.to_vec(),
        }
    }

    pub fn get(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.cols + c]
    }

    /// The textbook product, rows·inner·cols multiply-adds. The loops run in i, k, j order so the
    /// inner loop walks rows of both `other` and the result; a matrix-vector product is one dot
    /// product per row instead, so its inner loop is not one element long.
    pub fn mul(&self, other: &Matrix) -> Matrix {
        assert_eq!(self.cols, other.rows, "inner dimensions differ");
        if other.cols == 1 {
            let data = self
                .data
                .chunks_exact(self.cols.max(1))
                .take(self.rows)
                .map(|row| row.iter().zip(&other.data).map(|(a, b)| a * b).sum())
                .collect();
            return Matrix {
                rows: self.rows,
                cols: 1,
                data,
            };
        }
        let mut out = vec![0.0; self.rows * other.cols];
        for i in 0..self.rows {
            let row = &mut out[i * other.cols..(i + 1) * other.cols];
            for k in 0..self.cols {
                let a = self.data[i * self.cols + k];
                let other_row = &other.data[k * other.cols..(k + 1) * other.cols];
                for (o, b) in row.iter_mut().zip(other_row) {
                    *o += a * b;
                }
            }
        }
        Matrix {
            rows: self.rows,
            cols: other.cols,
            data: out,
        }
    }

    /// Each row r multiplied by `scale[r]`: diag(scale) · self.
    pub fn scale_rows(&self, scale: &[f64]) -> Matrix {
        Matrix::from_fn(self.rows, self.cols, |r, c| scale[r] * self.get(r, c))
    }

    /// max |self − other| relative to max |self|.
    pub fn relative_difference(&self, other: &Matrix) -> f64 {
        assert_eq!((self.rows, self.cols), (other.rows, other.cols));
        let size = self.data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = self
            .data
            .iter()
            .zip(&other.data)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        diff / size.max(f64::MIN_POSITIVE)
    }
}

/// Multiply-adds of `a.mul(b)`.
pub fn multiply_adds(a: &Matrix, b: &Matrix) -> u64 {
    (a.rows * a.cols * b.cols) as u64
}

/// The shapes of A (m×n), B (n×p), C (p×q).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub m: usize,
    pub n: usize,
    pub p: usize,
    pub q: usize,
}

impl Shape {
    /// (AB)C: AB costs mnp and gives m×p, times C costs mpq.
    pub fn cost_ab_first(self) -> u64 {
        let Shape { m, n, p, q } = self;
        (m * n * p + m * p * q) as u64
    }

    /// A(BC): BC costs npq and gives n×q, A times it costs mnq.
    pub fn cost_bc_first(self) -> u64 {
        let Shape { m, n, p, q } = self;
        (n * p * q + m * n * q) as u64
    }

    /// Random A, B, C of this shape.
    pub fn random(self, rng: &mut impl Rng) -> [Matrix; 3] {
        let Shape { m, n, p, q } = self;
        [
            Matrix::random(m, n, 1.0, rng),
            Matrix::random(n, p, 1.0, rng),
            Matrix::random(p, q, 1.0, rng),
        ]
    }
}

/// (AB)C.
pub fn ab_first([a, b, c]: &[Matrix; 3]) -> Matrix {
    a.mul(b).mul(c)
}

/// A(BC).
pub fn bc_first([a, b, c]: &[Matrix; 3]) -> Matrix {
    a.mul(&b.mul(c))
}

/// The activation of every layer, and the source of every derivative below.
#[gradient]
pub fn activation(z: f64) -> f64 {
    z.tanh()
}

/// F(x) = w₃ · σ(W₂ σ(W₁ x)): ℝⁿ → ℝ, the composition of F₁(x) = σ(W₁x), F₂(h) = σ(W₂h) and
/// F₃(h) = w₃·h.
#[derive(Clone, Debug)]
pub struct Network {
    pub w1: Matrix,
    pub w2: Matrix,
    pub w3: Matrix,
}

/// The values and derivatives of σ at each entry of `z`.
fn activate(z: &Matrix) -> (Vec<f64>, Vec<f64>) {
    z.data
        .iter()
        .map(|&z| {
            let (value, [slope]) = activation_grad(z);
            (value, slope)
        })
        .unzip()
}

impl Network {
    /// Widths n → n₁ → n₂ → 1, weights scaled by 1/√fan-in.
    pub fn random(n: usize, n1: usize, n2: usize, rng: &mut impl Rng) -> Self {
        let scaled =
            |rows, cols, rng: &mut _| Matrix::random(rows, cols, 1.0 / (cols as f64).sqrt(), rng);
        Network {
            w1: scaled(n1, n, rng),
            w2: scaled(n2, n1, rng),
            w3: scaled(1, n2, rng),
        }
    }

    pub fn inputs(&self) -> usize {
        self.w1.cols
    }

    pub fn value(&self, x: &[f64]) -> f64 {
        let (h1, _) = activate(&self.w1.mul(&Matrix::column(x)));
        let (h2, _) = activate(&self.w2.mul(&Matrix::column(&h1)));
        self.w3.mul(&Matrix::column(&h2)).data[0]
    }

    /// The layer Jacobians at `x`: J₁ = diag σ'(W₁x) · W₁ (n₁×n), J₂ = diag σ'(W₂h₁) · W₂ (n₂×n₁)
    /// and J₃ = w₃ (1×n₂), with σ' from the generated `activation_grad`.
    pub fn jacobians(&self, x: &[f64]) -> [Matrix; 3] {
        let (h1, slope1) = activate(&self.w1.mul(&Matrix::column(x)));
        let (_, slope2) = activate(&self.w2.mul(&Matrix::column(&h1)));
        [
            self.w1.scale_rows(&slope1),
            self.w2.scale_rows(&slope2),
            self.w3.clone(),
        ]
    }
}

/// Forward accumulation: the n seed vectors e₁…eₙ (the identity) carried through the chain from
/// the input side, J₃(J₂(J₁I)). J₁I = J₁ is free; J₂J₁ costs n₂n₁n; then n₂n.
pub fn forward_accumulation([j1, j2, j3]: &[Matrix; 3]) -> Matrix {
    j3.mul(&j2.mul(j1))
}

/// One forward seed: the directional derivative J₃(J₂(J₁v)) = ∇F·v, as cheap as a reverse sweep
/// but only one number of the n.
pub fn forward_one_seed([j1, j2, j3]: &[Matrix; 3], v: &[f64]) -> f64 {
    j3.mul(&j2.mul(&j1.mul(&Matrix::column(v)))).data[0]
}

/// Reverse accumulation: the single seed dF/dF = 1 carried back from the output, ((1·J₃)J₂)J₁.
/// Costs n₂n₁ + n₁n.
pub fn reverse_accumulation([j1, j2, j3]: &[Matrix; 3]) -> Matrix {
    j3.mul(j2).mul(j1)
}

/// The gradient as a matrix chain A·B·C = J₃·J₂·J₁ of shape (m, n, p, q) = (1, n₂, n₁, n): forward
/// accumulation is A(BC), reverse accumulation is (AB)C.
pub fn jacobian_chain_shape(network: &Network) -> Shape {
    Shape {
        m: 1,
        n: network.w2.rows,
        p: network.w1.rows,
        q: network.w1.cols,
    }
}
