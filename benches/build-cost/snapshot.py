#!/usr/bin/env python3
"""Copies the `ad` workspace SRC to DEST (replacing DEST), so that edits to SRC during a
measurement cannot mix versions. Left out: .git, fuzz/ (its corpus is large and not needed to
build `ad`), and every `target` / `target-*` directory (cargo output). If SRC is a git checkout,
DEST/SNAPSHOT.txt records the commit and `git status`, and DEST/SNAPSHOT.diff the uncommitted diff.

Usage: snapshot.py SRC DEST
"""
import datetime
import fnmatch
import os
import shutil
import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dest = (os.path.realpath(a) for a in sys.argv[1:])

    def ignore(d, names):
        skip = {n for n in names if n == "target" or fnmatch.fnmatch(n, "target-*")
                or (n in (".git", "fuzz") and os.path.realpath(d) == src)}
        # Never copy the destination into itself (a scratch dir inside the repository).
        return skip | {n for n in names if os.path.realpath(os.path.join(d, n)) == dest}

    if os.path.exists(dest):
        shutil.rmtree(dest)
    shutil.copytree(src, dest, symlinks=True, ignore=ignore)
    git = lambda *a: subprocess.run(["git", "-C", src, *a], capture_output=True, text=True)
    try:
        inside = git("rev-parse", "--is-inside-work-tree").stdout.strip() == "true"
    except FileNotFoundError:
        inside = False
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    with open(os.path.join(dest, "SNAPSHOT.txt"), "w") as f:
        if inside:
            f.write(f"{src} @ {git('describe', '--always', '--dirty').stdout.strip()} "
                    f"(HEAD {git('rev-parse', 'HEAD').stdout.strip()}), taken {now}\n")
            f.write(git("status", "--short").stdout)
        else:
            f.write(f"{src} (not a git checkout), taken {now}\n")
    if inside:
        open(os.path.join(dest, "SNAPSHOT.diff"), "w").write(git("diff", "HEAD").stdout)
    print(f"snapshot of {src} in {dest}: " + open(os.path.join(dest, "SNAPSHOT.txt")).readline().strip())


if __name__ == "__main__":
    main()
