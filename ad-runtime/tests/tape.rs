//! Tape round trips and its underflow invariant.

use ad_runtime::Tape;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[test]
fn push_pop_is_last_in_first_out() {
    let mut tape = Tape::new();
    for i in 0..100 {
        tape.push(f64::from(i) * 0.5);
    }
    assert_eq!(tape.len(), 100);
    for i in (0..100).rev() {
        assert_eq!(tape.pop(), f64::from(i) * 0.5);
    }
    assert!(tape.is_empty());
}

#[test]
fn extend_and_pop_into_round_trip() {
    let mut tape = Tape::with_capacity(10);
    let a = [1.0_f32, 2.0, 3.0];
    let b = [4.0_f32, 5.0];
    tape.push(0.5);
    tape.extend_from_slice(&a);
    tape.extend_from_slice(&b);
    assert_eq!(tape.len(), 6);

    let mut b_back = [0.0; 2];
    tape.pop_into(&mut b_back);
    assert_eq!(b_back, b);
    let mut a_back = [0.0; 3];
    tape.pop_into(&mut a_back);
    assert_eq!(a_back, a);
    assert_eq!(tape.pop(), 0.5);
    assert!(tape.is_empty());
}

#[test]
fn extend_from_slice_pushes_in_order() {
    let mut tape = Tape::new();
    tape.extend_from_slice(&[1, 2, 3]);
    assert_eq!((tape.pop(), tape.pop(), tape.pop()), (3, 2, 1));
}

#[test]
fn pop_into_an_empty_slice_is_a_no_op() {
    let mut tape: Tape<f64> = Tape::new();
    tape.pop_into(&mut []);
    tape.push(1.0);
    tape.pop_into(&mut []);
    assert_eq!(tape.len(), 1);
}

#[test]
#[should_panic(expected = "ad: tape underflow")]
fn pop_from_empty_panics() {
    let mut tape: Tape<f64> = Tape::new();
    tape.pop();
}

#[test]
fn pop_into_more_than_recorded_panics_and_leaves_the_tape_unchanged() {
    let mut tape = Tape::new();
    tape.extend_from_slice(&[1.0_f64, 2.0]);
    let mut dst = [0.0; 3];
    let err = catch_unwind(AssertUnwindSafe(|| tape.pop_into(&mut dst))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"ad: tape underflow"));
    assert_eq!(tape.len(), 2);
    assert_eq!(dst, [0.0; 3]);
}

#[test]
fn clear_keeps_the_allocation() {
    let mut tape = Tape::with_capacity(64);
    tape.extend_from_slice(&[1.0_f64; 64]);
    let cap = tape.capacity();
    tape.clear();
    assert!(tape.is_empty());
    assert_eq!(tape.capacity(), cap);
}

#[test]
fn memory_reporting() {
    let mut tape: Tape<f64> = Tape::new();
    assert_eq!((tape.capacity(), tape.bytes()), (0, 0));
    tape.reserve(10);
    assert!(tape.capacity() >= 10);
    assert_eq!(tape.bytes(), tape.capacity() * 8);

    let bits: Tape<bool> = Tape::with_capacity(32);
    assert_eq!(bits.bytes(), bits.capacity());
    let singles: Tape<f32> = Tape::with_capacity(5);
    assert_eq!(singles.bytes(), singles.capacity() * 4);
}

#[test]
fn capacity_tracks_the_peak() {
    let mut tape = Tape::new();
    for i in 0..1000 {
        tape.push(i);
    }
    while !tape.is_empty() {
        tape.pop();
    }
    assert!(tape.capacity() >= 1000);
}

#[test]
fn branch_decisions_and_non_copy_values() {
    let mut decisions = Tape::default();
    for i in 0..10 {
        decisions.push(i % 3 == 0);
    }
    let replay: Vec<bool> = (0..10).map(|_| decisions.pop()).collect();
    let expected: Vec<bool> = (0..10).rev().map(|i| i % 3 == 0).collect();
    assert_eq!(replay, expected);

    let mut strings = Tape::new();
    strings.push(String::from("a"));
    strings.push(String::from("b"));
    assert_eq!(strings.pop(), "b");
    assert_eq!(strings.clone().pop(), "a");
}

/// The logistic-map recurrence of DESIGN.md, taped and reversed, against the closed-form
/// derivative of two steps.
#[test]
fn reverse_sweep_of_a_recurrence() {
    let (x0, r) = (0.3_f64, 2.5_f64);
    let mut tape = Tape::with_capacity(2);
    let mut x = x0;
    for _ in 0..2 {
        tape.push(x);
        x = r * x * (1.0 - x);
    }
    let mut x_bar = 1.0;
    while !tape.is_empty() {
        let x_old = tape.pop();
        x_bar *= r * (1.0 - 2.0 * x_old);
    }
    let x1 = r * x0 * (1.0 - x0);
    let expected = r * (1.0 - 2.0 * x1) * r * (1.0 - 2.0 * x0);
    approx::assert_relative_eq!(x_bar, expected, max_relative = 1e-15);
}

/// A loop nested in another writes each entry's values into slots; the room one entry releases
/// is reused by the next, and pushes around it keep their own order.
#[test]
fn slots_nested_in_a_loop_and_pushes_around_them() {
    let mut tape = Tape::new();
    let mut reversed = Vec::new();
    let mut first_capacity = None;
    for outer in 0..3 {
        tape.push(outer as f64);
        let slots = tape.slots(4);
        for (t, s) in slots.iter_mut().enumerate() {
            *s = (10 * outer + t) as f64;
        }
        assert_eq!(tape.len(), 5);
        // Reverse of this entry: the slots, newest first, then the push.
        for t in (0..4).rev() {
            reversed.push(tape.top(4)[t]);
        }
        tape.drop_top(4);
        reversed.push(tape.pop());
        assert!(tape.is_empty());
        first_capacity.get_or_insert(tape.capacity());
    }
    assert_eq!(
        reversed,
        [3.0, 2.0, 1.0, 0.0, 0.0, 13.0, 12.0, 11.0, 10.0, 1.0, 23.0, 22.0, 21.0, 20.0, 2.0]
    );
    // The room was made by the first entry and reused by the others.
    assert_eq!(Some(tape.capacity()), first_capacity);
    assert!(tape.bytes() >= 5 * 8);
}

#[test]
fn slots_nest() {
    let mut tape: Tape<i32> = Tape::new();
    tape.slots(2).copy_from_slice(&[1, 2]);
    tape.slots(1)[0] = 3;
    assert_eq!(tape.top(1), &[3]);
    tape.drop_top(1);
    assert_eq!(tape.top(2), &[1, 2]);
    tape.drop_top(2);
    assert!(tape.is_empty());
}

#[test]
#[should_panic(expected = "ad: tape underflow")]
fn reading_more_slots_than_written_panics() {
    let mut tape: Tape<f64> = Tape::new();
    tape.slots(2);
    let _ = tape.top(3);
}

#[test]
fn equal_tapes_ignore_released_room() {
    let mut a: Tape<f64> = Tape::new();
    a.slots(8);
    a.drop_top(8);
    a.push(1.0);
    let mut b = Tape::new();
    b.push(1.0);
    assert_eq!(a, b);
}

/// Slots are allocated at exactly the first size asked for (a top-level loop records exactly
/// its trip count's values), and at least double after that (entries of a nested loop that ask
/// for more and more room grow it amortised); values written survive the growth.
#[test]
fn slots_grow_exactly_then_amortised() {
    let mut tape = Tape::<f64>::new();
    tape.slots(3).copy_from_slice(&[1.0, 2.0, 3.0]);
    assert_eq!(tape.capacity(), 3);
    tape.slots(1)[0] = 4.0;
    assert!(tape.capacity() >= 6, "{}", tape.capacity());
    assert_eq!(tape.top(4), &[1.0, 2.0, 3.0, 4.0]);
    tape.drop_top(4);
    let room = tape.capacity();
    for n in 1..=4 {
        tape.slots(n);
        tape.drop_top(n);
    }
    assert_eq!(tape.capacity(), room, "room released is reused");
}

/// Loops nested in a loop whose entries all stay on the tape (an LSTM's gates, 14 per entry,
/// over 10,000 entries): the room grows geometrically, so the buffer is reallocated a
/// logarithmic number of times (each value copied O(1) times), and never to more than twice
/// what is held. (Growing to twice the *length* on every entry reallocated on every entry.)
#[test]
fn slots_kept_by_many_entries_grow_geometrically() {
    let mut tape: Tape<f64> = Tape::new();
    let mut capacities = Vec::new();
    for entry in 0..10_000 {
        for (k, s) in tape.slots(14).iter_mut().enumerate() {
            *s = (entry * 14 + k) as f64;
        }
        if capacities.last() != Some(&tape.capacity()) {
            capacities.push(tape.capacity());
        }
    }
    assert!(capacities.len() <= 16, "{} growths", capacities.len());
    assert!(tape.capacity() <= 2 * 14 * 10_000);
    // The values survive the growths.
    for entry in (0..10_000).rev() {
        let want: Vec<f64> = (0..14).map(|k| (entry * 14 + k) as f64).collect();
        assert_eq!(tape.top(14), &want[..]);
        tape.drop_top(14);
    }
    assert!(tape.is_empty());
}

// ----- the per-thread cache of tape buffers -----
//
// Each test runs on a thread of its own, so each starts with an empty cache.

/// One "call" of a generated function: a tape recording `n` values, read back in reverse.
fn recurrence_call(n: usize, seed: f64) -> usize {
    let mut tape = Tape::new();
    let mut expected = Vec::with_capacity(n);
    let mut x = seed;
    for _ in 0..n {
        tape.push(x);
        expected.push(x);
        x = 3.5 * x * (1.0 - x);
    }
    for want in expected.iter().rev() {
        assert_eq!(tape.pop(), *want);
    }
    assert!(tape.is_empty());
    tape.capacity()
}

#[test]
fn dropped_tapes_hand_their_buffers_to_the_next_call() {
    assert_eq!(ad_runtime::tape_cache_bytes(), 0);
    let first = recurrence_call(20_000, 0.3);
    let cached = ad_runtime::tape_cache_bytes();
    assert!(
        cached >= first * 8,
        "{cached} bytes cached after a tape of {first}"
    );
    // The second call grows into the cached buffer: nothing else is cached, and it is the
    // same size.
    let mut tape = Tape::<f64>::new();
    tape.reserve(20_000);
    assert_eq!(ad_runtime::tape_cache_bytes(), 0);
    assert_eq!(tape.capacity(), first);
    drop(tape);
    assert_eq!(ad_runtime::tape_cache_bytes(), cached);
    // Many calls: the cache does not grow.
    for k in 0..10 {
        recurrence_call(20_000, 0.2 + 0.01 * k as f64);
    }
    assert_eq!(ad_runtime::tape_cache_bytes(), cached);
}

#[test]
fn small_tapes_and_other_types_are_not_handed_over() {
    recurrence_call(100, 0.3);
    assert_eq!(
        ad_runtime::tape_cache_bytes(),
        0,
        "800 bytes are not cached"
    );
    recurrence_call(10_000, 0.3);
    let cached = ad_runtime::tape_cache_bytes();
    assert!(cached > 0);
    let mut other = Tape::<u64>::new();
    for k in 0..10_000u64 {
        other.push(k);
    }
    assert_eq!(
        ad_runtime::tape_cache_bytes(),
        cached,
        "a u64 tape took an f64 buffer"
    );
    for k in (0..10_000u64).rev() {
        assert_eq!(other.pop(), k);
    }
}

#[test]
fn slots_moved_into_a_cached_buffer_keep_their_values() {
    // Cache two slot buffers, of 1,000 and 100,000 values.
    for n in [1_000, 100_000] {
        let mut t = Tape::<f64>::new();
        t.slots(n).fill(-1.0);
        t.drop_top(n);
    }
    assert_eq!(ad_runtime::tape_cache_bytes(), 101_000 * 8);
    let mut t = Tape::<f64>::new();
    // Takes the smaller buffer (its values are stale: written before they are read).
    for (k, s) in t.slots(600).iter_mut().enumerate() {
        *s = k as f64;
    }
    assert_eq!(ad_runtime::tape_cache_bytes(), 100_000 * 8);
    // Growing while those 600 are held moves them into the larger one.
    for (k, s) in t.slots(5_000).iter_mut().enumerate() {
        *s = 1e6 + k as f64;
    }
    assert_eq!(ad_runtime::tape_cache_bytes(), 1_000 * 8);
    let top = t.top(5_600);
    assert!(top[..600].iter().enumerate().all(|(k, v)| *v == k as f64));
    assert!(top[600..]
        .iter()
        .enumerate()
        .all(|(k, v)| *v == 1e6 + k as f64));
    t.drop_top(5_600);
    assert!(t.is_empty());
}

#[test]
fn non_copy_values_round_trip_through_cached_buffers() {
    for call in 0..3 {
        let mut t = Tape::<Vec<f64>>::new();
        for k in 0..1_000 {
            t.push(vec![call as f64, k as f64]);
        }
        for k in (0..1_000).rev() {
            assert_eq!(t.pop(), vec![call as f64, k as f64]);
        }
    }
}

#[test]
fn the_cache_holds_at_most_64_mib() {
    let tapes: Vec<Tape<f64>> = (0..10)
        .map(|_| {
            let mut t = Tape::new();
            t.reserve_exact(1 << 20); // 8 MiB
            t
        })
        .collect();
    drop(tapes);
    assert_eq!(ad_runtime::tape_cache_bytes(), 8 * (8 << 20));
}

#[test]
fn buffers_are_filled_whether_or_not_their_memory_was_cached() {
    use ad_runtime::Buffer;
    std::thread::spawn(|| {
        ad_runtime::release_tape_cache();
        // Small: never cached.
        let small = Buffer::filled(2.5_f32, 3);
        assert_eq!(&*small, &[2.5, 2.5, 2.5]);
        drop(small);
        assert_eq!(ad_runtime::tape_cache_bytes(), 0);
        // Large: cached when dropped, taken back (dirty) and filled again.
        let mut big = Buffer::filled(0.0_f64, 1000);
        big.iter_mut().enumerate().for_each(|(i, v)| *v = i as f64);
        drop(big);
        assert_eq!(ad_runtime::tape_cache_bytes(), 8000);
        let again = Buffer::filled(-1.0_f64, 700);
        assert_eq!(again.len(), 700);
        assert!(again.iter().all(|&v| v == -1.0));
        assert_eq!(ad_runtime::tape_cache_bytes(), 0);
        // A tape growing later takes the buffer's memory, and the other way round.
        drop(again);
        let mut tape = ad_runtime::Tape::<f64>::new();
        tape.reserve_exact(900);
        assert_eq!(tape.capacity(), 1000);
        drop(tape);
        let from_tape = Buffer::filled(0.0_f64, 1000);
        assert!(from_tape.iter().all(|&v| v == 0.0));
        assert_eq!(ad_runtime::tape_cache_bytes(), 0);
    })
    .join()
    .expect("the thread panicked");
}
