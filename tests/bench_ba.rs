//! Correctness of the bundle-adjustment objective in `benches/objectives/ba.rs`: the hand-written
//! adjoint against central finite differences of the user-written function, every other tool
//! (`num-dual`, `reverse` and the generated `ba_objective_grad`) against the hand-written adjoint,
//! at small sizes and at the benchmark's, and Rodrigues' θ = 0 branch. Nothing here is timed.

#[path = "../benches/objectives/mod.rs"]
mod objectives;

use objectives::ba::{self, Ba, CAM};
use objectives::{check_agreement, fd_gradient, hand_gradient, rel_err, Problem, Tool};

/// Observations of camera 0 (r = 0, the θ = 0 branch) and of the others.
fn branch_counts(p: &Ba) -> (usize, usize) {
    let still = p.obs.chunks_exact(2).filter(|o| o[0] == 0).count();
    (still, p.n_obs() - still)
}

#[test]
fn ba_hand_matches_finite_differences() {
    for (n, m, obs, seed) in [(1, 1, 1, 1), (2, 3, 5, 2), (3, 10, 30, 3), (4, 7, 40, 4)] {
        let p = Ba::new(n, m, obs, seed);
        let fd = fd_gradient(|t| p.value_at(t), &p.theta);
        let err = rel_err(&hand_gradient(&p), &fd);
        assert!(
            err < 1e-7,
            "{}: hand vs finite differences {err:e}",
            p.name()
        );
    }
}

#[test]
fn ba_tools_agree_at_small_sizes() {
    for (n, m, obs, seed) in [(1, 1, 1, 1), (2, 3, 5, 2), (3, 10, 30, 3), (5, 50, 200, 5)] {
        let p = Ba::new(n, m, obs, seed);
        assert!(
            Tool::NumDual.available(&p),
            "{}: num-dual skipped",
            p.name()
        );
        check_agreement(&p, 1e-9);
    }
}

#[test]
fn ba_tools_agree_at_the_benchmark_size() {
    let p = Ba::new(20, 2_000, 8_000, 11);
    let (still, rotating) = branch_counts(&p);
    assert!(still > 0 && rotating > 0);
    check_agreement(&p, 1e-9);
}

#[test]
fn ba_theta_zero_branch() {
    let p = Ba::new(3, 10, 30, 3);
    assert_eq!(&p.theta[..3], &[0.0; 3], "camera 0 has r = 0 exactly");
    let (still, rotating) = branch_counts(&p);
    assert!(
        still > 0 && rotating > 0,
        "both branches run: {still}, {rotating}"
    );

    // At r = 0 the projection is that of X − C unrotated.
    let (cams, pts, _) = p.split(&p.theta);
    let (cam, x) = (&cams[..CAM], &pts[..3]);
    let d = [x[0] - cam[3], x[1] - cam[4], x[2] - cam[5]];
    let q = [d[0] / d[2], d[1] / d[2]];
    let rsq = q[0] * q[0] + q[1] * q[1];
    let l = 1.0 + cam[9] * rsq + cam[10] * rsq * rsq;
    let want = [q[0] * l * cam[6] + cam[7], q[1] * l * cam[6] + cam[8]];
    let got = ba::ba_project(cam, x);
    assert!((got[0] - want[0]).abs() < 1e-12 && (got[1] - want[1]).abs() < 1e-12);

    // The derivative with respect to r at r = 0 (the branch's r × X) is the limit of the θ ≠ 0
    // branch's: finite differences step into θ ≠ 0 on both sides.
    let hand = hand_gradient(&p);
    let fd = fd_gradient(|t| p.value_at(t), &p.theta);
    let scale = hand.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    for k in 0..CAM {
        assert!(
            (hand[k] - fd[k]).abs() <= 1e-7 * scale,
            "camera 0, parameter {k}: hand {} vs finite differences {}",
            hand[k],
            fd[k]
        );
    }
    assert!(
        hand[..3].iter().any(|v| v.abs() > 1e-3),
        "r̄ at r = 0 is not trivial"
    );
    for tool in [Tool::Generated, Tool::NumDual, Tool::Reverse] {
        let mut g = vec![f64::NAN; p.n_params()];
        tool.run(&p, &mut g);
        let err = rel_err(&g[..CAM], &hand[..CAM]);
        assert!(err < 1e-12, "{} at r = 0: {err:e}", tool.label());
    }
}

#[test]
fn ba_value_is_the_sum_of_squared_residuals() {
    let p = Ba::new(2, 3, 5, 2);
    let (cams, pts, w) = p.split(&p.theta);
    let mut want = 0.0;
    for (i, o) in p.obs.chunks_exact(2).enumerate() {
        let proj = ba::ba_project(
            &cams[CAM * o[0]..CAM * (o[0] + 1)],
            &pts[3 * o[1]..3 * o[1] + 3],
        );
        for (pk, fk) in proj.iter().zip(&p.feats[2 * i..2 * i + 2]) {
            let r = w[i] * (pk - fk);
            want += r * r;
        }
        want += (1.0 - w[i] * w[i]).powi(2);
    }
    assert!((p.value() - want).abs() <= 1e-12 * want);
}
