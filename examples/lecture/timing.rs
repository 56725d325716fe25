//! Wall-clock timing for the examples (tests never time anything).

#![allow(dead_code)] // Shared by several examples; each uses part.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Seconds per call of `work`: calls are batched until a batch lasts at least `min_batch`, and the
/// fastest of `repeats` batches counts (the least disturbed by the rest of the machine).
pub fn seconds_per_call<T>(
    mut work: impl FnMut() -> T,
    min_batch: Duration,
    repeats: usize,
) -> f64 {
    let mut run = || {
        black_box(work());
    };
    compare(&mut [&mut run], min_batch, repeats)[0]
}

/// Seconds per call of each of `works`, timed in turns (one batch of each per round, the fastest
/// round counting for each) so that a busy machine slows them alike. After two rounds, a work
/// that has already taken [`BUDGET`] sits the remaining rounds out.
pub fn compare(works: &mut [&mut dyn FnMut()], min_batch: Duration, repeats: usize) -> Vec<f64> {
    let calls: Vec<u64> = works
        .iter_mut()
        .map(|work| batch_size(&mut **work, min_batch))
        .collect();
    let mut best = vec![f64::INFINITY; works.len()];
    let mut spent = vec![Duration::ZERO; works.len()];
    for round in 0..repeats {
        for (i, work) in works.iter_mut().enumerate() {
            if round >= 2 && spent[i] > BUDGET {
                continue;
            }
            let start = Instant::now();
            for _ in 0..calls[i] {
                work();
            }
            let elapsed = start.elapsed();
            spent[i] += elapsed;
            best[i] = best[i].min(elapsed.as_secs_f64() / calls[i] as f64);
        }
    }
    best
}

/// Time after which [`compare`] stops repeating a slow work.
pub const BUDGET: Duration = Duration::from_millis(300);

/// How many calls of `work` make a batch of at least `min_batch`.
fn batch_size(work: &mut dyn FnMut(), min_batch: Duration) -> u64 {
    let mut calls = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..calls {
            work();
        }
        let elapsed = start.elapsed();
        if elapsed >= min_batch {
            return calls;
        }
        // Aim a little past the target so the next try is the last.
        let factor = min_batch.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        calls = (calls as f64 * factor.clamp(2.0, 100.0) * 1.2) as u64;
    }
}

/// Runs `work` once and returns its result and the seconds it took.
pub fn once<T>(work: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = black_box(work());
    (out, start.elapsed().as_secs_f64())
}

/// A duration in the unit that keeps it readable.
pub fn human(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 1e-3 {
        format!("{:.2} ms", seconds * 1e3)
    } else if seconds >= 1e-6 {
        format!("{:.2} us", seconds * 1e6)
    } else {
        format!("{:.1} ns", seconds * 1e9)
    }
}
