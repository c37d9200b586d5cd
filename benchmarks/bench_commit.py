"""Commit benchmark: ``commit`` of /usr/include (archive, bare-user) and of a 1 GiB sparse file.

pyostree and ostree run as subprocesses on fresh repos in the same run; each timing is the
median of a few repetitions, peak RSS comes from ``wait4``. Goals: archive <= 0.6x,
bare-user <= 1.0x the wall time of ``ostree commit``; peak RSS < 100 MB.

    python benchmarks/bench_commit.py [--source DIR] [--repeat N] [--no-sparse]
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
from typing import List, Sequence, Tuple


def _timed(cmd: Sequence[str]) -> Tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (KiB) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"failed: {' '.join(cmd)}: {stderr}")
    if proc.stderr:
        proc.stderr.close()
    proc.returncode = 0
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def _measure(
    tool: List[str], ostree: str, mode: str, source: str, base: Path, repeat: int
) -> Tuple[float, float, int]:
    times: List[float] = []
    cpu: List[float] = []
    peak = 0
    for index in range(repeat):
        repo = base / f"{tool[-1]}-{mode}-{index}"
        subprocess.run([ostree, "init", f"--repo={repo}", f"--mode={mode}"], check=True)
        elapsed, cpu_seconds, rss = _timed([*tool, "commit", f"--repo={repo}", "-b", "main", "--timestamp=@0", source])
        times.append(elapsed)
        cpu.append(cpu_seconds)
        peak = max(peak, rss)
        shutil.rmtree(repo)
    return statistics.median(times), statistics.median(cpu), peak


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/usr/include", help="tree to commit")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-sparse", action="store_true", help="skip the 1 GiB sparse file case")
    parser.add_argument("--modes", default="archive,bare-user", help="comma-separated repo modes")
    args = parser.parse_args(argv)
    ostree = shutil.which("ostree")
    if ostree is None:
        print("ostree not installed; skipping")
        return 0
    pyostree = [sys.executable, "-m", "pyostree"]
    goals = {"archive": 0.6, "bare-user": 1.0, "bare": 1.0, "bare-user-only": 1.0}
    for dirpath, _dirs, files in os.walk(args.source):  # warm the page cache for both tools
        for name in files:
            try:
                with open(os.path.join(dirpath, name), "rb") as handle:
                    while handle.read(1 << 20):
                        pass
            except OSError:
                pass
    with tempfile.TemporaryDirectory(prefix="bench-commit-") as tmp:
        base = Path(tmp)
        cases = [(mode, args.source) for mode in args.modes.split(",")]
        if not args.no_sparse:
            sparse_dir = base / "sparse"
            sparse_dir.mkdir()
            with open(sparse_dir / "zero-1GiB", "wb") as handle:
                handle.truncate(1 << 30)
            cases.append(("archive", str(sparse_dir)))
        for mode, source in cases:
            label = f"{mode:9} {'sparse 1GiB' if 'sparse' in source else source}"
            repeat = 1 if "sparse" in source else args.repeat
            py_time, py_cpu, py_rss = _measure(pyostree, ostree, mode, source, base, repeat)
            os_time, os_cpu, os_rss = _measure([ostree], ostree, mode, source, base, repeat)
            ratio = py_time / os_time
            goal = goals[mode] if "sparse" not in source else None
            verdict = "" if goal is None else (" ok" if ratio <= goal else f" MISSED (goal {goal}x)")
            print(
                f"commit {label}: pyostree {py_time:.2f}s wall {py_cpu:.2f}s cpu {py_rss / 1024:.0f} MB peak | "
                f"ostree {os_time:.2f}s wall {os_cpu:.2f}s cpu {os_rss / 1024:.0f} MB peak | "
                f"wall ratio {ratio:.2f}x{verdict}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
