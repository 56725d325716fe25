#![allow(warnings, clippy::all)]
#[path = "../benches/objectives/mod.rs"]
mod objectives;
use objectives::gmm::*;
use objectives::Problem;
use std::f64::consts::{LN_2, PI};
use std::hint::black_box;
use std::time::Instant;

fn wishart_constant(d: usize, wishart_gamma: f64, wishart_m: usize) -> f64 {
    let wn = d + wishart_m + 1;
    (wn * d) as f64 * (wishart_gamma.ln() - 0.5 * LN_2) - log_gamma_distrib(0.5 * wn as f64, d)
}

include!("/tmp/probe/gmm_a.rs");
include!("/tmp/probe/gmm_b.rs");

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    for &(d, k) in &[(2usize, 5usize), (10, 25)] {
        let p = Gmm::new(d, k, 1000, 7);
        let np = p.theta.len();
        let mut gh = vec![0.0; np];
        let vh = p.hand(&mut gh);
        let run = |which: usize, g: &mut [f64]| -> f64 {
            let (al, me, ic) = p.split(&p.theta);
            let (ga, gm, gi) = p.split_mut(g);
            match which {
                0 => p.value(),
                1 => p.hand(g),
                2 => {
                    gmm_a(
                        al,
                        ga,
                        me,
                        gm,
                        ic,
                        gi,
                        &p.x,
                        p.d,
                        p.k,
                        p.wishart_gamma,
                        p.wishart_m,
                    )
                    .0
                }
                _ => {
                    gmm_b(
                        al,
                        ga,
                        me,
                        gm,
                        ic,
                        gi,
                        &p.x,
                        p.d,
                        p.k,
                        p.wishart_gamma,
                        p.wishart_m,
                    )
                    .0
                }
            }
        };
        for w in 2..4 {
            let mut g = vec![0.0; np];
            let v = run(w, &mut g);
            let err = g
                .iter()
                .zip(&gh)
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0.0, f64::max);
            println!(
                "d={d} k={k} tool {w}: value diff {:.3e} grad err {:.3e}",
                v - vh,
                err
            );
        }
        let names = ["function", "hand", "a", "b"];
        let mut times = vec![vec![]; 4];
        let mut g = vec![0.0; np];
        for _ in 0..61 {
            for w in 0..4 {
                let reps = if d == 2 { 20 } else { 2 };
                let t = Instant::now();
                for _ in 0..reps {
                    black_box(run(w, black_box(&mut g)));
                }
                times[w].push(t.elapsed().as_secs_f64() / reps as f64);
            }
        }
        let m: Vec<f64> = times.into_iter().map(median).collect();
        for w in 0..4 {
            println!(
                "d={d} k={k} {:>9}: {:8.1} us  x fn {:.2}  x hand {:.2}",
                names[w],
                m[w] * 1e6,
                m[w] / m[0],
                m[w] / m[1]
            );
        }
    }
}
