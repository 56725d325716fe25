#!/usr/bin/env bash
# Measures the build time that the #[ad::gradient] functions of benches/objectives add
# (see README.md in this directory).
#
# Usage: benches/build-cost/run.sh [REPS (default 11)] [TIME_PASSES_REPS (default 7)]
# Env:   BUILD_COST_DIR  scratch dir (default <repo>/target/build-cost)
#        SNAPSHOT=1      (default) copy the repository to $BUILD_COST_DIR/snapshot and measure that
#                        copy, so that edits made during the run cannot interfere;
#                 keep   reuse the existing snapshot;
#                 0      measure the repository in place.
#        RESULTS         results dir (default $BUILD_COST_DIR/results-<date>-<time>)
# Only $BUILD_COST_DIR is written (and cargo's registry cache, by `cargo fetch`).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SCRATCH=${BUILD_COST_DIR:-$REPO/target/build-cost}
mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd)
export BUILD_COST_DIR=$SCRATCH
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the repository
REPS=${1:-11}
TP_REPS=${2:-7}
R=${RESULTS:-$SCRATCH/results-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$R"
R=$(cd "$R" && pwd)
exec > >(tee "$R/run.log") 2>&1
T0=$SECONDS

case "${SNAPSHOT:-1}" in
    1) python3 "$HERE/snapshot.py" "$REPO" "$SCRATCH/snapshot"; AD_PATH=$SCRATCH/snapshot ;;
    keep) AD_PATH=$SCRATCH/snapshot
          [ -f "$AD_PATH/Cargo.toml" ] || { echo "SNAPSHOT=keep: no snapshot in $AD_PATH" >&2; exit 1; } ;;
    0) AD_PATH=$REPO ;;
    *) echo "SNAPSHOT must be 1, keep or 0" >&2; exit 1 ;;
esac
export AD_PATH
echo "# $(date -Is)  $(rustc -V)  $(cargo -V)  nproc=$(nproc)"
echo "# ad=$AD_PATH  scratch=$SCRATCH  results=$R  reps=$REPS  time-passes reps=$TP_REPS"
if [ -f "$AD_PATH/SNAPSHOT.txt" ]; then sed 's/^/#   /' "$AD_PATH/SNAPSHOT.txt"
else echo "#   $(git -C "$AD_PATH" describe --always --dirty 2>/dev/null || echo 'not a git checkout')"; fi
echo "# load: $(cat /proc/loadavg 2>/dev/null || uptime)"

# 0. Dependencies into cargo's cache (all later cargo calls run --offline). --locked: never
#    rewrite the Cargo.lock of $AD_PATH, which with SNAPSHOT=0 is the repository's.
cargo fetch --locked --manifest-path "$AD_PATH/Cargo.toml" -q \
    || cargo fetch --locked --offline --manifest-path "$AD_PATH/Cargo.toml" -q \
    || echo "warning: cargo fetch failed; continuing with what is cached" >&2

# 1. The crates with_ad, without_ad, only_<fn> (from $AD_PATH/benches/objectives) and the
#    measurement-only macro harness, under $SCRATCH/crates.
python3 "$HERE/gen.py" "$AD_PATH" "$SCRATCH/crates"
cp "$SCRATCH/crates/variants.json" "$R/"
INPUTS=("$SCRATCH"/crates/inputs/*.rs)

# 2. The macro outside rustc (macro-harness, see macro_harness.rs): expansion sizes (with the
#    attribute's own arguments, e.g. wrt(...)), and the macro's run time per function: min and
#    median of 30, at opt-level 0 (what cargo uses for proc macros, also under --release) and 3.
H=(cargo build --offline -q --manifest-path "$SCRATCH/crates/macro-harness/Cargo.toml")
export CARGO_TARGET_DIR=$SCRATCH/target-harness
env -u RUSTC_WRAPPER -u RUSTFLAGS "${H[@]}"
env -u RUSTC_WRAPPER -u RUSTFLAGS "${H[@]}" --release
mkdir -p "$R/expansions"
"$CARGO_TARGET_DIR/debug/macro-harness" expand "$R/expansions" "${INPUTS[@]}" > "$R/expansions/sizes.txt"
python3 "$HERE/expansions.py" "$R" | tee "$R/expansions.md"
for prof in debug release; do
    if [ $prof = debug ]; then echo "harness opt-level 0:"; else echo "harness --release (opt-level 3):"; fi
    "$CARGO_TARGET_DIR/$prof/macro-harness" time 30 "${INPUTS[@]}"
done | tee "$R/macro_time.txt"
unset CARGO_TARGET_DIR

# 3. Build times: touch src/lib.rs && cargo build --release / cargo build / cargo check.
python3 "$HERE/measure.py" --reps "$REPS" --out "$R/measure.json" | tee "$R/measure.md"

# 4. rustc phases (-Z time-passes, unlocked by RUSTC_BOOTSTRAP=1; measurement only).
python3 "$HERE/timepasses.py" --reps "$TP_REPS" --out "$R/timepasses.json" | tee "$R/timepasses.md"

# 5. The per-function summary table.
python3 "$HERE/summary.py" "$R" | tee "$R/summary.md"
echo "# done $(date -Is) after $(( (SECONDS - T0) / 60 )) min $(( (SECONDS - T0) % 60 )) s;" \
     "load: $(cat /proc/loadavg 2>/dev/null || uptime); results in $R"
