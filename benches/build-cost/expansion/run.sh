#!/usr/bin/env bash
# How long #[ad::gradient]'s expansion takes inside rustc on large generated bodies, and whether
# their debug builds succeed (see README.md in this directory). Works from any directory.
#
# Env: REPS=5                      timed release builds per crate (medians are reported)
#      SIZES="500 1000 2000 5000"  operations per function
#      SCRATCH=<repo>/target/expansion-time     snapshot of the repository and generated crates
#      CARGO_TARGET_DIR=$SCRATCH/target
#      RESULTS=<repo>/target/expansion-time/results-<date>-<time>
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
export REPS=${REPS:-5} SIZES=${SIZES:-500 1000 2000 5000}
export SCRATCH=$(realpath -m "${SCRATCH:-$REPO/target/expansion-time}")
export CARGO_TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$SCRATCH/target}")
export RESULTS=$(realpath -m "${RESULTS:-$REPO/target/expansion-time/results-$(date +%Y%m%d-%H%M%S)}")
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/run.log") 2>&1

echo "# $(date -Is)  $(rustc -V)  nproc=$(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $REPO @ $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '(not a git checkout)')"
git -C "$REPO" diff HEAD > "$RESULTS/snapshot.diff" 2>/dev/null || true  # uncommitted edits measured
python3 "$HERE/expansion.py" "$REPO"
echo "# done after $((SECONDS / 60)) min $((SECONDS % 60)) s; load: $(cut -d' ' -f1-3 /proc/loadavg);" \
     "results in $RESULTS"
