//! Writes the programs of this build into `$OUT_DIR/programs.rs` (plain and dual-number code,
//! compiled into the library) and `$OUT_DIR/gradients.rs` (the same under `#[gradient]`,
//! compiled into `tests/differential.rs`).
//!
//! Environment (see TESTING.md):
//! * `AD_RANDOM_SEED` (default `generator::DEFAULT_SEED`), `AD_RANDOM_FIRST` (default 0),
//!   `AD_RANDOM_PROGRAMS` (default 1000): programs `FIRST..FIRST + PROGRAMS` of campaign `SEED`;
//! * `AD_RANDOM_FEATURES` (default `generator::DEFAULT_FEATURES`): which constructs to use;
//! * `AD_RANDOM_SOURCE=dir`: take `dir/programs.rs` and `dir/gradients.rs` as they are (the
//!   campaign runner's shrinking writes them).

#[allow(dead_code)]
#[path = "src/generator/mod.rs"]
mod generator;

use std::path::{Path, PathBuf};

fn env_u64(name: &str, default: u64) -> u64 {
    println!("cargo:rerun-if-env-changed={name}");
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?} is not a number: {e}")),
        Err(_) => default,
    }
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=src/generator");
    println!("cargo:rerun-if-env-changed=AD_RANDOM_SOURCE");
    if let Some(dir) = std::env::var_os("AD_RANDOM_SOURCE") {
        let dir = Path::new(&dir);
        for file in ["programs.rs", "gradients.rs"] {
            let from = dir.join(file);
            println!("cargo:rerun-if-changed={}", from.display());
            std::fs::copy(&from, out.join(file))
                .unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
        }
        return;
    }
    let seed = env_u64("AD_RANDOM_SEED", generator::DEFAULT_SEED);
    let first = env_u64("AD_RANDOM_FIRST", 0);
    let count = env_u64("AD_RANDOM_PROGRAMS", generator::DEFAULT_COUNT);
    println!("cargo:rerun-if-env-changed=AD_RANDOM_FEATURES");
    let spec = std::env::var("AD_RANDOM_FEATURES")
        .unwrap_or_else(|_| generator::DEFAULT_FEATURES.to_string());
    let features = generator::Features::parse(&spec)
        .unwrap_or_else(|e| panic!("AD_RANDOM_FEATURES={spec:?}: {e}"));
    let units = generator::emit::batch(seed, first, count, &features);
    let header = format!(
        "seed {seed}, programs {first}..{}, features {}",
        first + count,
        features.describe()
    );
    let meta = format!(
        "pub const SEED: u64 = {seed};\npub const FIRST: u64 = {first};\n\
         pub const FEATURES: &str = {:?};\n",
        features.describe()
    );
    let programs = generator::emit::programs_rs(&units, &header) + &meta;
    write_if_changed(&out.join("programs.rs"), &programs);
    write_if_changed(
        &out.join("gradients.rs"),
        &generator::emit::gradients_rs(&units, &header),
    );
}

/// Leaves the file (and its timestamp) alone when the content is the same.
fn write_if_changed(path: &Path, content: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return;
    }
    std::fs::write(path, content)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
