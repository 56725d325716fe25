//! Criterion benchmarks: for every objective, the function alone, `f_grad`, the hand-written
//! adjoint, `num-dual` and `reverse`. Every tool's gradient is
//! checked against the hand-written one before its group is timed.
//!
//! `cargo bench --bench gradients [-- FILTER]`; `cargo bench --bench summary` prints the same
//! comparison as one table.

mod objectives;

use criterion::{criterion_group, criterion_main, Criterion};
use objectives::ba::Ba;
use objectives::gmm::Gmm;
use objectives::lecture::Lecture;
use objectives::logreg::LogReg;
use objectives::lse::Lse;
use objectives::lstm::Lstm;
use objectives::matmul::MatMul;
use objectives::mlp::Mlp;
use objectives::recurrence::Recurrence;
use objectives::rosenbrock::Rosenbrock;
use objectives::softmax::Softmax;
use objectives::{check_agreement, Problem, Tool};
use std::hint::black_box;
use std::time::Duration;

fn bench_problem<P: Problem>(c: &mut Criterion, id: &str, p: &P, slow: bool) {
    check_agreement(p, 1e-9);
    let mut group = c.benchmark_group(id);
    if slow {
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(8));
    }
    let mut g = vec![0.0; p.n_params()];
    for tool in Tool::ALL {
        if !tool.available(p) {
            continue;
        }
        match tool {
            Tool::Function => group.bench_function("function", |b| b.iter(|| black_box(p).value())),
            Tool::Generated => group.bench_function("f_grad", |b| {
                b.iter(|| black_box(p).generated(black_box(&mut g)))
            }),
            Tool::Hand => {
                group.bench_function("hand", |b| b.iter(|| black_box(p).hand(black_box(&mut g))))
            }
            Tool::NumDual => group.bench_function("num_dual", |b| {
                b.iter(|| black_box(p).num_dual(black_box(&mut g)))
            }),
            Tool::Reverse => group.bench_function("reverse", |b| {
                b.iter(|| black_box(p).reverse(black_box(&mut g)))
            }),
        };
    }
    group.finish();
}

fn lecture(c: &mut Criterion) {
    bench_problem(c, "lecture", &Lecture::new(2.0, 3.0), false);
}

fn rosenbrock(c: &mut Criterion) {
    bench_problem(c, "rosenbrock_n10", &Rosenbrock::new(10, 1), false);
    bench_problem(c, "rosenbrock_n1000", &Rosenbrock::new(1_000, 1), false);
    bench_problem(c, "rosenbrock_n100000", &Rosenbrock::new(100_000, 1), true);
}

fn gmm(c: &mut Criterion) {
    bench_problem(c, "gmm_d2_k5_n1000", &Gmm::new(2, 5, 1_000, 2), false);
    bench_problem(c, "gmm_d10_k25_n1000", &Gmm::new(10, 25, 1_000, 3), true);
}

fn mlp(c: &mut Criterion) {
    bench_problem(c, "mlp_10_32_1_b256", &Mlp::new(256, 4), true);
}

fn logreg(c: &mut Criterion) {
    bench_problem(c, "logreg_d20_n1000", &LogReg::new(20, 1_000, 5), false);
    bench_problem(c, "logreg_d100_n1000", &LogReg::new(100, 1_000, 5), true);
}

fn lse(c: &mut Criterion) {
    bench_problem(c, "lse_n1000", &Lse::new(1_000, 6), false);
    bench_problem(c, "lse_n100000", &Lse::new(100_000, 6), true);
}

fn softmax(c: &mut Criterion) {
    bench_problem(
        c,
        "softmax_d20_k10_n500",
        &Softmax::new(20, 10, 500, 7),
        true,
    );
}

fn lstm(c: &mut Criterion) {
    bench_problem(c, "lstm_l2_c1024_b14", &Lstm::new(2, 1_024, 14, 1), true);
}

fn ba(c: &mut Criterion) {
    bench_problem(
        c,
        "ba_n20_m2000_p8000",
        &Ba::new(20, 2_000, 8_000, 11),
        true,
    );
}

fn matmul(c: &mut Criterion) {
    bench_problem(c, "matmul_n64", &MatMul::new(64, 12), false);
}

fn recurrence(c: &mut Criterion) {
    bench_problem(c, "logistic_10000", &Recurrence::new(10_000), false);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = lecture, rosenbrock, gmm, mlp, logreg, lse, softmax, lstm, ba, matmul, recurrence
}
criterion_main!(benches);
