"""Helpers shared by the push/receive tests (no tests here): small trees, repos built by
the real ``ostree``, an http.server on 127.0.0.1 to pull from, and raw receiver sessions."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

from ostree_tool import run_ostree

from pyostree.push import PushOptions, PushResult, push
from pyostree.repo import Repo


def make_tree(root: Path, *, files: int = 12, seed: int = 1, big: int = 0) -> Path:
    """Canonical-friendly content (root-owned, 0644/0755, symlinks): valid in every mode."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    (root / "empty-dir").mkdir(exist_ok=True)
    (root / "empty").write_bytes(b"")
    for index in range(files):
        where = root if index % 3 == 0 else root / "sub" if index % 3 == 1 else root / "sub" / "deeper"
        (where / f"file{index}.txt").write_bytes(f"{seed}:{index}\n".encode() * (index + 1))
    script = root / "run.sh"
    script.write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(script, 0o755)
    link = root / "sub" / "link"
    if not link.is_symlink():
        os.symlink("../file0.txt", link)
    if big:
        (root / "big.bin").write_bytes(rng.randbytes(big))
    return root


def init(path: Path, mode: str) -> Path:
    run_ostree("init", f"--mode={mode}", repo=path)
    return path


def commit(repo: Path, tree: Path, branch: str = "main", subject: str = "c", *extra: str) -> str:
    return run_ostree(
        "commit", f"--branch={branch}", f"--subject={subject}", f"--tree=dir={tree}",
        "--owner-uid=0", "--owner-gid=0", *extra, repo=repo,
    ).strip()


def two_commit_history(root: Path, *, files: int, changed: str, new: bytes = b"new\n") -> Tuple[Path, str, str]:
    """An archive repo at ``root/src`` whose main is c1, then c2 (parent c1) with the file
    ``changed`` (relative to the tree) rewritten and ``new.txt`` added."""
    tree = make_tree(root / "tree", files=files)
    src = init(root / "src", "archive")
    c1 = commit(src, tree, subject="one")
    (tree / changed).write_bytes(b"changed\n")
    (tree / "new.txt").write_bytes(new)
    c2 = commit(src, tree, subject="two")
    return src, c1, c2


ALL_MODES = "--allow-modes=archive,bare-user-only,bare-user,bare"
"""``pyostree receive`` refuses bare and bare-user repos unless told (issue 13)."""


def do_push(src: Path, dst: Path, *refs: str, via: str = "receive", **kw: object) -> PushResult:
    """A push; into a local bare or bare-user remote, by a receiver that allows them."""
    if via != "sftp" and "receive_command" not in kw and Repo.open(dst).mode.value in ("bare", "bare-user"):
        kw["receive_command"] = (sys.executable, "-m", "pyostree", "receive", ALL_MODES)
    options = PushOptions(via=via, **kw)  # type: ignore[arg-type]
    return push(Repo.open(src), str(dst), refs, options)


def ostree_fsck(repo: Path) -> str:
    return run_ostree("fsck", repo=repo)


def rev_parse(repo: Path, ref: str) -> str:
    return run_ostree("rev-parse", ref, repo=repo).strip()


def object_files(repo: Path) -> List[str]:
    return sorted(str(p.relative_to(repo)) for p in (repo / "objects").rglob("*") if p.is_file() or p.is_symlink())


@contextlib.contextmanager
def http_server(directory: Path, log: Optional[Path] = None) -> Iterator[str]:
    """``python -m http.server`` on 127.0.0.1, an ephemeral port; yields its base URL.
    With ``log``, its access log (stderr) goes there."""
    with open(log, "wb") if log is not None else contextlib.nullcontext() as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
             str(directory), "0"],
            stdout=subprocess.PIPE, stderr=log_file if log_file is not None else subprocess.DEVNULL,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            port = int(line.split(" port ")[1].split()[0])
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.kill()
            proc.wait()


def pull_over_http(remote: Path, ref: str, into: Path, mode: str = "bare-user") -> str:
    """Pull ``ref`` from ``remote`` (served by http.server) into a fresh repo; its checksum."""
    init(into, mode)
    with http_server(remote) as url:
        run_ostree("remote", "add", "--no-gpg-verify", "origin", url, repo=into)
        done = subprocess.run(["ostree", "pull", "origin", ref, f"--repo={into}"], capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
    return rev_parse(into, f"origin:{ref}")


def pull_local(remote: Path, ref: str, into: Path, mode: str = "bare-user") -> str:
    init(into, mode)
    run_ostree("pull-local", "--untrusted", str(remote), ref, repo=into)
    return rev_parse(into, ref)


def receive_process(*extra: str, cwd: Optional[Path] = None) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        [sys.executable, "-m", "pyostree", "receive", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
