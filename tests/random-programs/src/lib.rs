//! Differential testing of `#[gradient]`: random programs, each compiled through the real macro
//! and compared with forward-mode dual numbers that share no code with it.
//!
//! * [`generator`] writes the programs (deterministically, from a seed and an index);
//! * [`dual`] is the oracle's number type;
//! * [`check`] evaluates, compares, and writes reproducers;
//! * [`reduce`] shrinks a failing program (used by the campaign runner, `src/bin/campaign.rs`);
//! * [`programs`] holds the programs of this build (written by `build.rs`, see `TESTING.md`);
//!   the same programs under `#[gradient]` are compiled into `tests/differential.rs`.

pub mod check;
pub mod dual;
pub mod generator;
pub mod reduce;

/// The programs of this build: plain and dual-number versions, and their table `PROGRAMS`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod programs {
    include!(concat!(env!("OUT_DIR"), "/programs.rs"));
}
