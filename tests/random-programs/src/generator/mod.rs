//! The program generator: from a seed and an index, one random program in the subset that
//! `#[gradient]` accepts, printed once for the macro and once over the oracle's dual numbers.
//!
//! This module uses only `std`: the build script includes it with `#[path]`, so the programs of
//! a test build and the ones the campaign runner shrinks come from the same code.

pub mod ast;
pub mod emit;
pub mod generate;
pub mod rng;

/// The seed of the CI run: fixed, so a red CI names a program anyone can regenerate.
pub const DEFAULT_SEED: u64 = 20_240_917;

/// The number of programs of a test build when `AD_RANDOM_PROGRAMS` is not set.
pub const DEFAULT_COUNT: u64 = 1000;

/// The features of a test build when `AD_RANDOM_FEATURES` is not set.
pub const DEFAULT_FEATURES: &str = "all";

/// Which constructs the generator may use. Each is switched on once the macro supports it, so
/// the CI run stays green while the campaign can already probe what comes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Features {
    /// `if`/`else if`/`else` on active comparisons, as statements and as expressions.
    pub branches: bool,
    /// `return` inside branches of the function body.
    pub early_return: bool,
    /// Calls of earlier generated `#[gradient]` functions.
    pub calls: bool,
    /// `#[gradient(wrt(..))]` naming a subset of the parameters.
    pub wrt: bool,
    /// The whole intrinsic table, not only the common ones: `asin`, `acosh`, `log`, `floor`,
    /// `copysign`, `clamp`, `%`, `mul_add`, ...
    pub extra_intrinsics: bool,
    /// Local names the macro might also want for itself (`x_bar`, `tape`, `grad`, ...).
    pub hygiene: bool,
    /// `for i in a..b` over constant and length bounds, and `while` with a counter, with
    /// loop-carried state.
    pub loops: bool,
    /// `while` loops whose condition also tests an active value.
    pub active_while: bool,
    /// `for i in (a..b).rev()`.
    pub rev_ranges: bool,
    /// `return` from inside a loop.
    pub loop_return: bool,
    /// `&[f64]` parameters, read by constant and loop indices.
    pub slices: bool,
    /// Local `[0.0; N]` arrays, written and overwritten in place.
    pub buffers: bool,
    /// Entry functions built around top-level `for` loops that `#[gradient]` fuses (each
    /// iteration's reverse right after its forward): accumulators, values private to an
    /// iteration (`let`s, buffers declared before the loop and filled in it, `vec![0.0; n]`),
    /// loads `x[i]`, `x[i + 1]`, `x[i + 2]`; and near misses that must not be fused.
    pub fused_loops: bool,
    /// Selection loops (`if x[i] > m { m = x[i]; best = i; }`: running maxima and minima,
    /// argmax), which `#[gradient]` rewrites to remember the position of the last copy, and
    /// near misses that must not be rewritten; their results used afterwards.
    pub selection_loops: bool,
    /// Loops over a slice as a matrix (`s[r * cols + j]`), at an offset (`s[b + j]`), over a
    /// packed triangle (a counter `let k = ..` set first), through local buffers, whose
    /// accesses `#[gradient]` takes windows for; and near misses (a counter incremented in the
    /// loop, a guarded access in a longer range, a `break`, a buffer declared in the loop).
    pub row_loops: bool,
    /// Runs of 2–4 adjacent `for` loops over the same range, whose bodies share local buffers
    /// only at the same index (`a[j]` written by one, read by the next), which `#[gradient]`
    /// reverses as one loop (`jam.rs`): producers, maps, accumulators, a loop overwriting a
    /// buffer the first read, independent statements between them; and near misses (a
    /// neighbour `a[j + 1]`, a scalar carried from one loop to the next, other bounds, a buffer
    /// written by two loops, a dependent statement between them, a `.rev()`, a `break`, ...).
    pub jammed_loops: bool,
}

impl Features {
    /// Every feature name, in the order `describe` prints them.
    pub const NAMES: [&'static str; 16] = [
        "branches",
        "early_return",
        "calls",
        "wrt",
        "extra_intrinsics",
        "hygiene",
        "loops",
        "active_while",
        "rev_ranges",
        "loop_return",
        "slices",
        "buffers",
        "fused_loops",
        "selection_loops",
        "row_loops",
        "jammed_loops",
    ];

    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "branches" => &mut self.branches,
            "early_return" => &mut self.early_return,
            "calls" => &mut self.calls,
            "wrt" => &mut self.wrt,
            "extra_intrinsics" => &mut self.extra_intrinsics,
            "hygiene" => &mut self.hygiene,
            "loops" => &mut self.loops,
            "active_while" => &mut self.active_while,
            "rev_ranges" => &mut self.rev_ranges,
            "loop_return" => &mut self.loop_return,
            "slices" => &mut self.slices,
            "buffers" => &mut self.buffers,
            "fused_loops" => &mut self.fused_loops,
            "selection_loops" => &mut self.selection_loops,
            "row_loops" => &mut self.row_loops,
            "jammed_loops" => &mut self.jammed_loops,
            _ => return None,
        })
    }

    /// The features of a preset level: `straight` (straight-line code only), `scalar` (branches,
    /// early returns, calls, `wrt`, every intrinsic), `loops` (and `for`/`while` over scalars),
    /// `slices` (and slice parameters and local buffers), `fused` (and fused loops), `all`.
    pub fn preset(name: &str) -> Option<Features> {
        if name == "fused" {
            let mut f = Features::preset("slices")?;
            f.fused_loops = true;
            return Some(f);
        }
        let mut f = Features::default();
        let on: &[&str] = match name {
            "none" => &[],
            "straight" => &["extra_intrinsics", "hygiene"],
            "scalar" => &[
                "branches",
                "early_return",
                "calls",
                "wrt",
                "extra_intrinsics",
                "hygiene",
            ],
            "loops" => &[
                "branches",
                "early_return",
                "calls",
                "wrt",
                "extra_intrinsics",
                "hygiene",
                "loops",
                "active_while",
                "rev_ranges",
            ],
            "slices" => &[
                "branches",
                "early_return",
                "calls",
                "wrt",
                "extra_intrinsics",
                "hygiene",
                "loops",
                "active_while",
                "rev_ranges",
                "slices",
                "buffers",
            ],
            "all" => &Features::NAMES,
            _ => return None,
        };
        for n in on {
            *f.flag(n)? = true;
        }
        Some(f)
    }

    /// Parses a comma-separated list of presets and feature names; `-name` switches a feature
    /// off again. `"slices,-wrt"` is the `slices` level without `wrt(..)`.
    pub fn parse(spec: &str) -> Result<Features, String> {
        let mut f = Features::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some(name) = item.strip_prefix('-') {
                *f.flag(name)
                    .ok_or_else(|| format!("unknown feature `{name}`"))? = false;
            } else if let Some(p) = Features::preset(item) {
                for n in Features::NAMES {
                    if *p.clone().flag(n).expect("known name") {
                        *f.flag(n).expect("known name") = true;
                    }
                }
            } else {
                *f.flag(item).ok_or_else(|| {
                    format!(
                        "unknown feature or level `{item}` (levels: straight, scalar, loops, \
                         slices, fused, all; features: {})",
                        Features::NAMES.join(", ")
                    )
                })? = true;
            }
        }
        Ok(f)
    }

    /// The comma-separated names of the features that are on: `parse(describe())` is `self`.
    pub fn describe(&self) -> String {
        let mut me = *self;
        let on: Vec<&str> = Features::NAMES
            .iter()
            .copied()
            .filter(|n| *me.flag(n).expect("known name"))
            .collect();
        if on.is_empty() {
            "none".to_string()
        } else {
            on.join(",")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_round_trip() {
        for level in [
            "none", "straight", "scalar", "loops", "slices", "fused", "all",
        ] {
            let f = Features::preset(level).unwrap();
            assert_eq!(Features::parse(&f.describe()).unwrap(), f, "{level}");
        }
        let f = Features::parse("slices,-wrt,loop_return").unwrap();
        assert!(f.slices && f.loop_return && !f.wrt);
        assert!(Features::parse("scalar,nope").is_err());
    }
}
