"""Reading benchmark: ``ls -R``, ``fsck`` and ``checkout`` of /usr/include, pyostree vs ostree.

Both tools run as subprocesses, the way a user runs them, on the same repos in the same run
(archive and bare-user, committed by the real ``ostree``), taking turns; each timing is the
median of a few repetitions after one untimed warm-up run of each, and checkouts start after
the previous one is removed and synced. Prints one line per case with the pyostree/ostree
ratio (goal: <= 1.0).

    python benchmarks/bench_read.py [--source DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence


# As installed: byte-compiled modules are used (and written once, by the warm-up run),
# whatever PYTHONDONTWRITEBYTECODE the caller's environment sets.
_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def _run(cmd: Sequence[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_ENV)


def _interleaved_medians(commands: Sequence[Sequence[str]], repeat: int,
                         before: Optional[Callable[[], None]]) -> List[float]:
    """Median time of each command, run in turns (a, b, a, b...) so drift hits all alike."""
    times: List[List[float]] = [[] for _ in commands]
    for _ in range(repeat):
        for index, cmd in enumerate(commands):
            if before is not None:
                before()
            start = time.perf_counter()
            _run(cmd)
            times[index].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/usr/include", help="tree to commit")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    ostree = shutil.which("ostree")
    if ostree is None:
        print("ostree not installed; skipping")
        return 0
    pyostree = [sys.executable, "-m", "pyostree"]
    with tempfile.TemporaryDirectory(prefix="bench-read-") as tmp:
        base = Path(tmp)
        repos = {}
        for mode in ("archive", "bare-user"):
            repo = base / mode
            _run([ostree, "init", f"--repo={repo}", f"--mode={mode}"])
            _run([ostree, "commit", f"--repo={repo}", "--branch=main", f"--tree=dir={args.source}"])
            repos[mode] = repo
        dest = base / "checkout"

        def clean() -> None:
            """Remove the last checkout and flush it, so no run pays for another's writeback."""
            shutil.rmtree(dest, ignore_errors=True)
            os.sync()

        cases = []
        for mode, repo in repos.items():
            user = ["-U"] if mode == "bare-user" else []
            cases += [
                (f"ls -R ({mode})", ["ls", f"--repo={repo}", "-R", "main"], None),
                (f"fsck ({mode})", ["fsck", f"--repo={repo}"], None),
                (f"checkout {' '.join(user)} ({mode})".replace("  ", " "),
                 ["checkout", f"--repo={repo}", *user, "main", str(dest)], clean),
            ]
        for _, cmd, before in cases:  # warm-up: page cache, and pyostree's .pyc files
            for tool in (pyostree, [ostree]):
                if before is not None:
                    before()
                _run([*tool, *cmd])
        print(f"source {args.source}, median of {args.repeat}; times in seconds")
        print(f"{'case':28} {'pyostree':>9} {'ostree':>9} {'ratio':>7}")
        for name, cmd, before in cases:
            ours, theirs = _interleaved_medians([[*pyostree, *cmd], [ostree, *cmd]], args.repeat,
                                                before)
            print(f"{name:28} {ours:9.3f} {theirs:9.3f} {ours / theirs:7.2f}", flush=True)
        clean()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
