"""Signing benchmark: ``summary -u --gpg-sign`` against ``ostree summary -u --gpg-sign``.

A repo with 1,000 refs (each its own commit) and a throwaway ed25519 GPG key in a temporary
homedir; both tools run as subprocesses on the same repo, alternately, in the same run; each
figure is the median of the repeats. Goal: pyostree <= 1.0x the wall time of ostree. The
unsigned ``summary -u`` of both is timed too, to show what signing adds.

    python benchmarks/bench_sign.py [--refs N] [--repeat N]
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
from typing import Dict, List, Sequence


def _make_repo(path: Path, ostree: str, refs: int) -> None:
    from pyostree.objects.commit import Commit
    from pyostree.objects.dirmeta import DirMeta
    from pyostree.objects.dirtree import DirTree
    from pyostree.repo import Repo

    subprocess.run([ostree, "init", f"--repo={path}", "--mode=archive"], check=True)
    repo = Repo.open(path)
    with repo.transaction() as txn:
        meta = txn.write_metadata(DirMeta(0, 0, 0o40755, ()))
        tree = txn.write_metadata(DirTree((), ()))
        for index in range(refs):
            commit = Commit.create(tree, meta, timestamp=1_600_000_000 + index, subject=f"build {index}",
                                   metadata={"version": ("s", f"1.{index}")})
            txn.set_ref(f"app/x86_64/build-{index:04d}", txn.write_metadata(commit))


def _make_key(home: Path) -> str:
    home.mkdir(mode=0o700)
    subprocess.run(["gpg", "--batch", "--no-tty", "--homedir", str(home), "--passphrase", "", "--quick-gen-key",
                    "Bench Signer <bench@example.com>", "ed25519", "sign", "never"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listing = subprocess.run(["gpg", "--batch", "--homedir", str(home), "--with-colons", "--list-keys"],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))[-16:]


#: Timed commands start as installed ones do, from cached bytecode (the warm-up run writes it).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _wall(cmd: Sequence[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=_ENV)
    return time.perf_counter() - start


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    ostree = shutil.which("ostree")
    if ostree is None or shutil.which("gpg") is None:
        print("ostree or gpg not installed; skipping")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-sign-") as tmp:
        base = Path(tmp)
        repo = base / "repo"
        _make_repo(repo, ostree, args.refs)
        home = base / "gnupg"
        key = _make_key(home)
        gpg = [f"--gpg-sign={key}", f"--gpg-homedir={home}"]
        tools: Dict[str, List[str]] = {
            "pyostree": [sys.executable, "-m", "pyostree", "summary", f"--repo={repo}", "-u"],
            "ostree": [ostree, "summary", f"--repo={repo}", "-u"],
        }
        times: Dict[str, List[float]] = {f"{name} {kind}": [] for name in tools for kind in ("signed", "unsigned")}
        for name, cmd in tools.items():  # warm up: page cache, bytecode, gpg-agent
            _wall([*cmd, *gpg])
        for index in range(args.repeat):
            order = list(tools.items()) if index % 2 == 0 else list(reversed(tools.items()))
            for name, cmd in order:
                times[f"{name} signed"].append(_wall([*cmd, *gpg]))
                times[f"{name} unsigned"].append(_wall(cmd))
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
        median = {label: statistics.median(values) for label, values in times.items()}
        for kind in ("signed", "unsigned"):
            ratio = median[f"pyostree {kind}"] / median[f"ostree {kind}"]
            verdict = "" if kind == "unsigned" else (" ok" if ratio <= 1.0 else " MISSED (goal 1.0x)")
            print(f"summary -u {kind:8} {args.refs} refs: pyostree {median[f'pyostree {kind}'] * 1000:.0f} ms | "
                  f"ostree {median[f'ostree {kind}'] * 1000:.0f} ms | ratio {ratio:.2f}x{verdict}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
