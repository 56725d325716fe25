//! The ADBench bundle-adjustment objective (Šrajer, Kukelova, Fitzgibbon 2018, "A benchmark of
//! selected algorithmic differentiation tools on some problems in computer vision and machine
//! learning"), as one scalar loss: the sum of squares of ADBench's residuals.
//!
//! - `cams` (11 per camera): Rodrigues rotation r (3), centre C (3), focal length f, principal
//!   point x₀ (2), radial distortion κ (2);
//! - `pts` (3 per point): the points X;
//! - `w` (one per observation): the observation's weight;
//! - `obs` (2 per observation, data): its camera and point index; `feats` (2 per observation,
//!   data): the measured feature.
//!
//! Per observation, as ADBench's C++ reference `computeReprojError` computes it: Y = R(r)(X − C)
//! by Rodrigues' formula (Y = X − C + r × (X − C) when ‖r‖ = 0), p = (Y₀, Y₁)/Y₂,
//! L = 1 + κ₁‖p‖² + κ₂‖p‖⁴, the reprojection residual w (f L p + x₀ − feature) (2 values) and the
//! weight residual 1 − w². f = Σ of the squares of all 3 residuals of every observation, the
//! least-squares objective whose gradient is 2 Jᵀ r.

use super::data::Rng;
use super::Problem;
use nalgebra::DVector;
use num_dual::{DualDVec64, DualNum};
use reverse::{Gradient, Tape, Var};

/// Parameters per camera.
pub const CAM: usize = 11;

/// As the user writes it: ADBench's reference with `rodrigues_rotate_point`, `radial_distort` and
/// `project` inlined on local scalars, one loop over the observations.
#[ad::gradient(wrt(cams, pts, w))]
pub fn ba_objective(cams: &[f64], pts: &[f64], w: &[f64], obs: &[usize], feats: &[f64]) -> f64 {
    let mut f = 0.0;
    for i in 0..w.len() {
        let c = obs[2 * i] * 11;
        let q = obs[2 * i + 1] * 3;
        let x0 = pts[q] - cams[c + 3];
        let x1 = pts[q + 1] - cams[c + 4];
        let x2 = pts[q + 2] - cams[c + 5];
        let r0 = cams[c];
        let r1 = cams[c + 1];
        let r2 = cams[c + 2];
        let sqtheta = r0 * r0 + r1 * r1 + r2 * r2;
        let y0;
        let y1;
        let y2;
        if sqtheta != 0.0 {
            let theta = sqtheta.sqrt();
            let costheta = theta.cos();
            let sintheta = theta.sin();
            let w0 = r0 / theta;
            let w1 = r1 / theta;
            let w2 = r2 / theta;
            let tmp = (w0 * x0 + w1 * x1 + w2 * x2) * (1.0 - costheta);
            y0 = x0 * costheta + (w1 * x2 - w2 * x1) * sintheta + w0 * tmp;
            y1 = x1 * costheta + (w2 * x0 - w0 * x2) * sintheta + w1 * tmp;
            y2 = x2 * costheta + (w0 * x1 - w1 * x0) * sintheta + w2 * tmp;
        } else {
            y0 = x0 + (r1 * x2 - r2 * x1);
            y1 = x1 + (r2 * x0 - r0 * x2);
            y2 = x2 + (r0 * x1 - r1 * x0);
        }
        let p0 = y0 / y2;
        let p1 = y1 / y2;
        let rsq = p0 * p0 + p1 * p1;
        let l = 1.0 + cams[c + 9] * rsq + cams[c + 10] * rsq * rsq;
        let e0 = w[i] * (p0 * l * cams[c + 6] + cams[c + 7] - feats[2 * i]);
        let e1 = w[i] * (p1 * l * cams[c + 6] + cams[c + 8] - feats[2 * i + 1]);
        let ew = 1.0 - w[i] * w[i];
        f += e0 * e0 + e1 * e1 + ew * ew;
    }
    f
}

/// The projection f L p + x₀ of point `x` by camera `cam` (11 values), in plain `f64`: used to
/// place the features near the projections.
pub fn ba_project(cam: &[f64], x: &[f64]) -> [f64; 2] {
    let d = [x[0] - cam[3], x[1] - cam[4], x[2] - cam[5]];
    let r = [cam[0], cam[1], cam[2]];
    let sq = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
    let y = if sq != 0.0 {
        let theta = sq.sqrt();
        let (s, c) = theta.sin_cos();
        let w = [r[0] / theta, r[1] / theta, r[2] / theta];
        let t = (w[0] * d[0] + w[1] * d[1] + w[2] * d[2]) * (1.0 - c);
        let wx = cross(w, d);
        [0, 1, 2].map(|k| d[k] * c + wx[k] * s + w[k] * t)
    } else {
        let rx = cross(r, d);
        [0, 1, 2].map(|k| d[k] + rx[k])
    };
    let p = [y[0] / y[2], y[1] / y[2]];
    let rsq = p[0] * p[0] + p[1] * p[1];
    let l = 1.0 + cam[9] * rsq + cam[10] * rsq * rsq;
    [p[0] * l * cam[6] + cam[7], p[1] * l * cam[6] + cam[8]]
}

/// a × b.
#[inline(always)]
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Hand-derived adjoint, one pass over the observations, each one's forward then at once its
/// reverse, added into the camera's and the point's gradient (the weight's is stored: each
/// observation has its own). With e the reprojection error, ρ = w e and ε = 1 − w²:
/// ∂f/∂w = 2 w ‖e‖² − 4 w ε and ē = 2 w² e; then through proj = f L p + x₀ (x̄₀ = ē,
/// f̄ = ē·L p, L̄ = f ē·p, p̄ = f L ē + 2 L̄ (κ₁ + 2 κ₂ ‖p‖²) p, κ̄ = L̄ (‖p‖², ‖p‖⁴)), the
/// division p = (Y₀, Y₁)/Y₂, and Rodrigues' formula with u = r/θ, d = u·X, t = d (1 − cos θ):
/// X̄ = cos θ Ȳ + sin θ Ȳ × u + (1 − cos θ)(Ȳ·u) u, ū = sin θ X × Ȳ + t Ȳ + (1 − cos θ)(Ȳ·u) X,
/// θ̄ = −sin θ (Ȳ·X − (Ȳ·u) d) + cos θ Ȳ·(u × X) − ū·u/θ and r̄ = ū/θ + θ̄ u (at θ = 0:
/// X̄ = Ȳ + Ȳ × r, r̄ = X × Ȳ); C̄ = −X̄. Each camera and point is bounds-checked once per
/// observation, as a fixed-size array.
#[allow(clippy::too_many_arguments)]
pub fn ba_hand(
    cams: &[f64],
    pts: &[f64],
    w: &[f64],
    obs: &[usize],
    feats: &[f64],
    g_cams: &mut [f64],
    g_pts: &mut [f64],
    g_w: &mut [f64],
) -> f64 {
    assert_eq!(cams.len() % CAM, 0, "cameras are not 11 values each");
    assert_eq!(pts.len() % 3, 0, "points are not 3 values each");
    assert_eq!(
        obs.len(),
        2 * w.len(),
        "observations do not match the weights"
    );
    assert_eq!(
        feats.len(),
        2 * w.len(),
        "features do not match the weights"
    );
    assert_eq!(g_cams.len(), cams.len());
    assert_eq!(g_pts.len(), pts.len());
    assert_eq!(g_w.len(), w.len());
    g_cams.fill(0.0);
    g_pts.fill(0.0);
    let mut total = 0.0;
    for (((o, ft), &wi), gwi) in obs
        .chunks_exact(2)
        .zip(feats.chunks_exact(2))
        .zip(w)
        .zip(g_w.iter_mut())
    {
        let (c, q) = (o[0] * CAM, o[1] * 3);
        let cam: &[f64; CAM] = cams[c..c + CAM].try_into().unwrap();
        let pt: &[f64; 3] = pts[q..q + 3].try_into().unwrap();

        // Forward.
        let x = [pt[0] - cam[3], pt[1] - cam[4], pt[2] - cam[5]];
        let r = [cam[0], cam[1], cam[2]];
        let sq = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
        // What the rotation's reverse needs: θ, 1/θ, cos θ, sin θ, u = r/θ, u·X, u × X, t.
        let rotating = sq != 0.0;
        let (inv_theta, cs, sn, u, d, ux, t);
        let y = if rotating {
            let theta = sq.sqrt();
            inv_theta = 1.0 / theta;
            (sn, cs) = theta.sin_cos();
            u = [r[0] * inv_theta, r[1] * inv_theta, r[2] * inv_theta];
            d = u[0] * x[0] + u[1] * x[1] + u[2] * x[2];
            t = d * (1.0 - cs);
            ux = cross(u, x);
            [
                x[0] * cs + ux[0] * sn + u[0] * t,
                x[1] * cs + ux[1] * sn + u[1] * t,
                x[2] * cs + ux[2] * sn + u[2] * t,
            ]
        } else {
            (inv_theta, cs, sn, u, d, t) = (0.0, 1.0, 0.0, [0.0; 3], 0.0, 0.0);
            ux = cross(r, x);
            [x[0] + ux[0], x[1] + ux[1], x[2] + ux[2]]
        };
        let iz = 1.0 / y[2];
        let p = [y[0] * iz, y[1] * iz];
        let rsq = p[0] * p[0] + p[1] * p[1];
        let (k1, k2, focal) = (cam[9], cam[10], cam[6]);
        let l = 1.0 + k1 * rsq + k2 * rsq * rsq;
        let e = [
            p[0] * l * focal + cam[7] - ft[0],
            p[1] * l * focal + cam[8] - ft[1],
        ];
        let ew = 1.0 - wi * wi;
        let esq = e[0] * e[0] + e[1] * e[1];
        total += wi * wi * esq + ew * ew;

        // Reverse.
        *gwi = 2.0 * wi * esq - 4.0 * wi * ew;
        let eb = [2.0 * wi * wi * e[0], 2.0 * wi * wi * e[1]];
        let lp = [l * p[0], l * p[1]];
        let g_focal = eb[0] * lp[0] + eb[1] * lp[1];
        let db = [eb[0] * focal, eb[1] * focal];
        let lb = db[0] * p[0] + db[1] * p[1];
        let rsqb2 = 2.0 * lb * (k1 + 2.0 * k2 * rsq);
        let pb = [db[0] * l + rsqb2 * p[0], db[1] * l + rsqb2 * p[1]];
        let yb = [pb[0] * iz, pb[1] * iz, -(pb[0] * p[0] + pb[1] * p[1]) * iz];
        let (xb, rb);
        if rotating {
            let tb = yb[0] * u[0] + yb[1] * u[1] + yb[2] * u[2];
            let omc = 1.0 - cs;
            let db_ = tb * omc;
            let cb = yb[0] * x[0] + yb[1] * x[1] + yb[2] * x[2] - tb * d;
            let sb = yb[0] * ux[0] + yb[1] * ux[1] + yb[2] * ux[2];
            let yu = cross(yb, u);
            let xy = cross(x, yb);
            xb = [
                cs * yb[0] + sn * yu[0] + db_ * u[0],
                cs * yb[1] + sn * yu[1] + db_ * u[1],
                cs * yb[2] + sn * yu[2] + db_ * u[2],
            ];
            let ub = [
                sn * xy[0] + t * yb[0] + db_ * x[0],
                sn * xy[1] + t * yb[1] + db_ * x[1],
                sn * xy[2] + t * yb[2] + db_ * x[2],
            ];
            let thb = -sn * cb + cs * sb - (ub[0] * u[0] + ub[1] * u[1] + ub[2] * u[2]) * inv_theta;
            rb = [
                ub[0] * inv_theta + thb * u[0],
                ub[1] * inv_theta + thb * u[1],
                ub[2] * inv_theta + thb * u[2],
            ];
        } else {
            let yr = cross(yb, r);
            xb = [yb[0] + yr[0], yb[1] + yr[1], yb[2] + yr[2]];
            rb = cross(x, yb);
        }

        let gc: &mut [f64; CAM] = (&mut g_cams[c..c + CAM]).try_into().unwrap();
        gc[0] += rb[0];
        gc[1] += rb[1];
        gc[2] += rb[2];
        gc[3] -= xb[0];
        gc[4] -= xb[1];
        gc[5] -= xb[2];
        gc[6] += g_focal;
        gc[7] += eb[0];
        gc[8] += eb[1];
        gc[9] += lb * rsq;
        gc[10] += lb * rsq * rsq;
        let gp: &mut [f64; 3] = (&mut g_pts[q..q + 3]).try_into().unwrap();
        gp[0] += xb[0];
        gp[1] += xb[1];
        gp[2] += xb[2];
    }
    total
}

/// For `num-dual`: the same computation over dual numbers (each carries the derivative vector of
/// all 11 n + 3 m + p inputs); the branch is taken on the value of θ².
pub fn ba_num_dual(
    cams: &[DualDVec64],
    pts: &[DualDVec64],
    w: &[DualDVec64],
    obs: &[usize],
    feats: &[f64],
) -> DualDVec64 {
    let mut f = DualDVec64::from(0.0);
    for i in 0..w.len() {
        let c = obs[2 * i] * CAM;
        let q = obs[2 * i + 1] * 3;
        let x0 = &pts[q] - &cams[c + 3];
        let x1 = &pts[q + 1] - &cams[c + 4];
        let x2 = &pts[q + 2] - &cams[c + 5];
        let (r0, r1, r2) = (&cams[c], &cams[c + 1], &cams[c + 2]);
        let sqtheta = r0 * r0 + r1 * r1 + r2 * r2;
        let (y0, y1, y2) = if sqtheta.re != 0.0 {
            let theta = sqtheta.sqrt();
            let costheta = theta.cos();
            let sintheta = theta.sin();
            let w0 = r0 / &theta;
            let w1 = r1 / &theta;
            let w2 = r2 / &theta;
            let tmp = (&w0 * &x0 + &w1 * &x1 + &w2 * &x2) * (-&costheta + 1.0);
            (
                &x0 * &costheta + (&w1 * &x2 - &w2 * &x1) * &sintheta + &w0 * &tmp,
                &x1 * &costheta + (&w2 * &x0 - &w0 * &x2) * &sintheta + &w1 * &tmp,
                &x2 * &costheta + (&w0 * &x1 - &w1 * &x0) * &sintheta + &w2 * &tmp,
            )
        } else {
            (
                &x0 + (r1 * &x2 - r2 * &x1),
                &x1 + (r2 * &x0 - r0 * &x2),
                &x2 + (r0 * &x1 - r1 * &x0),
            )
        };
        let p0 = &y0 / &y2;
        let p1 = &y1 / &y2;
        let rsq = &p0 * &p0 + &p1 * &p1;
        let l = &cams[c + 9] * &rsq + &cams[c + 10] * &rsq * &rsq + 1.0;
        let e0 = &w[i] * (&p0 * &l * &cams[c + 6] + &cams[c + 7] - feats[2 * i]);
        let e1 = &w[i] * (&p1 * &l * &cams[c + 6] + &cams[c + 8] - feats[2 * i + 1]);
        let ew = -(&w[i] * &w[i]) + 1.0;
        f += &e0 * &e0 + &e1 * &e1 + &ew * &ew;
    }
    f
}

/// For `reverse`: the same computation on the tape; the branch is taken on the value of θ².
pub fn ba_reverse<'a>(
    cams: &[Var<'a>],
    pts: &[Var<'a>],
    w: &[Var<'a>],
    obs: &[usize],
    feats: &[f64],
) -> Var<'a> {
    let tape = cams[0].tape;
    let mut f = tape.add_var(0.0);
    for i in 0..w.len() {
        let c = obs[2 * i] * CAM;
        let q = obs[2 * i + 1] * 3;
        let x0 = pts[q] - cams[c + 3];
        let x1 = pts[q + 1] - cams[c + 4];
        let x2 = pts[q + 2] - cams[c + 5];
        let (r0, r1, r2) = (cams[c], cams[c + 1], cams[c + 2]);
        let sqtheta = r0 * r0 + r1 * r1 + r2 * r2;
        let (y0, y1, y2) = if sqtheta.val() != 0.0 {
            let theta = sqtheta.sqrt();
            let costheta = theta.cos();
            let sintheta = theta.sin();
            let w0 = r0 / theta;
            let w1 = r1 / theta;
            let w2 = r2 / theta;
            let tmp = (w0 * x0 + w1 * x1 + w2 * x2) * (1.0 - costheta);
            (
                x0 * costheta + (w1 * x2 - w2 * x1) * sintheta + w0 * tmp,
                x1 * costheta + (w2 * x0 - w0 * x2) * sintheta + w1 * tmp,
                x2 * costheta + (w0 * x1 - w1 * x0) * sintheta + w2 * tmp,
            )
        } else {
            (
                x0 + (r1 * x2 - r2 * x1),
                x1 + (r2 * x0 - r0 * x2),
                x2 + (r0 * x1 - r1 * x0),
            )
        };
        let p0 = y0 / y2;
        let p1 = y1 / y2;
        let rsq = p0 * p0 + p1 * p1;
        let l = 1.0 + cams[c + 9] * rsq + cams[c + 10] * rsq * rsq;
        let e0 = w[i] * (p0 * l * cams[c + 6] + cams[c + 7] - feats[2 * i]);
        let e1 = w[i] * (p1 * l * cams[c + 6] + cams[c + 8] - feats[2 * i + 1]);
        let ew = 1.0 - w[i] * w[i];
        f = f + (e0 * e0 + e1 * e1 + ew * ew);
    }
    f
}

pub struct Ba {
    pub n_cams: usize,
    pub n_pts: usize,
    /// `cams`, then `pts`, then `w`: the active inputs, in parameter order.
    pub theta: Vec<f64>,
    /// Camera and point index of each observation.
    pub obs: Vec<usize>,
    /// The measured feature of each observation.
    pub feats: Vec<f64>,
    tape: Tape,
}

impl Ba {
    /// `n` cameras looking down +z from about 10 units before the points (centre
    /// (±1, ±1, −10 ± 1), rotation r normal × 0.2, except camera 0, whose r is exactly 0 so that
    /// Rodrigues' θ = 0 branch runs too), f in [400, 600), x₀ normal × 5, κ normal × 0.1; `m`
    /// points uniform in [−1, 1)³, so that Y₂ stays near 10; `p` observations of a random camera
    /// and point each, the feature their projection plus standard normal noise, the weight in
    /// [0.8, 1.2).
    pub fn new(n: usize, m: usize, p: usize, seed: u64) -> Self {
        assert!(
            n >= 1 && m >= 1,
            "bundle adjustment needs a camera and a point"
        );
        let mut rng = Rng::new(seed);
        let mut theta = Vec::with_capacity(CAM * n + 3 * m + p);
        for j in 0..n {
            let r = rng.normals(3);
            if j == 0 {
                theta.extend([0.0; 3]);
            } else {
                theta.extend(r.iter().map(|v| 0.2 * v));
            }
            theta.extend(rng.uniforms(2, -1.0, 1.0));
            theta.push(rng.range(-11.0, -9.0));
            theta.push(rng.range(400.0, 600.0));
            theta.extend(rng.normals(2).iter().map(|v| 5.0 * v));
            theta.extend(rng.normals(2).iter().map(|v| 0.1 * v));
        }
        theta.extend(rng.uniforms(3 * m, -1.0, 1.0));
        let mut obs = Vec::with_capacity(2 * p);
        let mut feats = Vec::with_capacity(2 * p);
        for _ in 0..p {
            let ci = ((rng.uniform() * n as f64) as usize).min(n - 1);
            let pi = ((rng.uniform() * m as f64) as usize).min(m - 1);
            obs.extend([ci, pi]);
            let x = &theta[CAM * n + 3 * pi..CAM * n + 3 * pi + 3];
            let proj = ba_project(&theta[CAM * ci..CAM * (ci + 1)], x);
            feats.extend([proj[0] + rng.normal(), proj[1] + rng.normal()]);
        }
        theta.extend(rng.uniforms(p, 0.8, 1.2));
        Ba {
            n_cams: n,
            n_pts: m,
            theta,
            obs,
            feats,
            tape: Tape::new(),
        }
    }

    pub fn n_obs(&self) -> usize {
        self.obs.len() / 2
    }

    /// `(cams, pts, w)`.
    pub fn split<'s>(&self, theta: &'s [f64]) -> (&'s [f64], &'s [f64], &'s [f64]) {
        let (cams, rest) = theta.split_at(CAM * self.n_cams);
        let (pts, w) = rest.split_at(3 * self.n_pts);
        (cams, pts, w)
    }

    /// `(cams, pts, w)` of a gradient buffer.
    pub fn split_mut<'s>(&self, g: &'s mut [f64]) -> (&'s mut [f64], &'s mut [f64], &'s mut [f64]) {
        let (cams, rest) = g.split_at_mut(CAM * self.n_cams);
        let (pts, w) = rest.split_at_mut(3 * self.n_pts);
        (cams, pts, w)
    }

    /// The objective at other parameters (for finite differences).
    pub fn value_at(&self, theta: &[f64]) -> f64 {
        let (cams, pts, w) = self.split(theta);
        ba_objective(cams, pts, w, &self.obs, &self.feats)
    }
}

impl Problem for Ba {
    fn name(&self) -> String {
        format!(
            "bundle adjustment n={} m={} p={}",
            self.n_cams,
            self.n_pts,
            self.n_obs()
        )
    }

    fn n_params(&self) -> usize {
        self.theta.len()
    }

    #[inline]
    fn value(&self) -> f64 {
        self.value_at(&self.theta)
    }

    #[inline]
    fn generated(&self, g: &mut [f64]) -> Option<f64> {
        {
            let (cams, pts, w) = self.split(&self.theta);
            let (g_cams, g_pts, g_w) = self.split_mut(g);
            let (v, []) =
                ba_objective_grad(cams, g_cams, pts, g_pts, w, g_w, &self.obs, &self.feats);
            Some(v)
        }
    }

    #[inline]
    fn hand(&self, g: &mut [f64]) -> f64 {
        let (cams, pts, w) = self.split(&self.theta);
        let (g_cams, g_pts, g_w) = self.split_mut(g);
        ba_hand(cams, pts, w, &self.obs, &self.feats, g_cams, g_pts, g_w)
    }

    fn num_dual(&self, g: &mut [f64]) -> f64 {
        let (v, grad) = num_dual::gradient(
            |theta: DVector<DualDVec64>| {
                let (cams, rest) = theta.as_slice().split_at(CAM * self.n_cams);
                let (pts, w) = rest.split_at(3 * self.n_pts);
                ba_num_dual(cams, pts, w, &self.obs, &self.feats)
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
        let (cams, rest) = theta.split_at(CAM * self.n_cams);
        let (pts, w) = rest.split_at(3 * self.n_pts);
        let f = ba_reverse(cams, pts, w, &self.obs, &self.feats);
        let grad = f.grad();
        for (gi, t) in g.iter_mut().zip(&theta) {
            *gi = grad.wrt(t);
        }
        f.val()
    }

    /// Forward mode carries a derivative vector of all 11 n + 3 m + p inputs through ~150
    /// operations per observation, about 55 ns per input and observation here: 5 ms at n = 5,
    /// m = 50, p = 200, 0.11 s at (10, 300, 1000), some 6 s at the benchmark's (20, 2000, 8000).
    /// Skipped past 3·10⁷ (about 2 s).
    fn num_dual_feasible(&self) -> bool {
        self.theta.len() * self.n_obs() <= 30_000_000
    }
}
