#!/usr/bin/env bash
# RUSTC_WRAPPER used by measure.py: runs rustc ("$@") and, if BUILDCOST_LOG is set, appends
#   <crate-name> <wall microseconds> <user time> <sys time>
# to it (times as bash's `times` prints them, e.g. 0m0.412s), so that each crate's rustc is timed
# without cargo's own overhead. Only bash builtins run between start and end (bash >= 5 for
# EPOCHREALTIME): `times` then reports the CPU time of this shell's children, i.e. of rustc alone.
set -euo pipefail
if [ -z "${BUILDCOST_LOG:-}" ]; then exec "$@"; fi
if [ -z "${EPOCHREALTIME:-}" ]; then echo "rustc-timer.sh: needs bash >= 5" >&2; exit 1; fi
start=${EPOCHREALTIME//[!0-9]/}
rc=0
"$@" || rc=$?
end=${EPOCHREALTIME//[!0-9]/}
tmp=$BUILDCOST_LOG.times.$$
times > "$tmp"
mapfile -t t < "$tmp"
rm -f "$tmp"
name=-
prev=
for a in "$@"; do
    if [ "$prev" = "--crate-name" ]; then name=$a; fi
    prev=$a
done
# t[0]: this shell's own user and sys time; t[1]: its children's (rustc's).
echo "$name $(( 10#$end - 10#$start )) ${t[1]}" >> "$BUILDCOST_LOG"
exit $rc
