"""Helpers that drive the real ``ostree`` binary, the oracle our tests compare against.

Everything here builds real repositories with ``ostree`` itself so that tests check pyostree
against what libostree actually writes, not against our own idea of the format.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple, Union

import pytest

StrPath = Union[str, "os.PathLike[str]"]

#: The four storage modes ``ostree init --mode`` accepts and we read.
ALL_MODES: Tuple[str, ...] = ("archive", "bare", "bare-user", "bare-user-only")

#: Names whose strcmp order differs from a naive or locale sort.
SORT_TRAP_NAMES: Tuple[str, ...] = (
    "b", "B", "a", "_x", "10", "9", "é", "z.d", "Z", "a b", "a-b", "a.b",
)

BIG_FILE_SIZE = 3 * 1024 * 1024
DEEP_LEVELS = 9

#: Fixed commit timestamps keep checksums stable between runs (and between modes).
_TIMESTAMPS = (
    "2020-01-01T00:00:00Z",
    "2020-01-02T00:00:00Z",
    "2020-01-03T00:00:00Z",
    "2020-01-04T00:00:00Z",
)


def ostree_bin() -> Optional[str]:
    """Path of the ``ostree`` binary, or None when it is not installed."""
    return shutil.which("ostree")


#: Mark a test (or module: ``pytestmark = needs_ostree``) as needing the real binary.
needs_ostree = pytest.mark.skipif(ostree_bin() is None, reason="ostree binary not installed")


def require_ostree() -> str:
    """Skip the calling test when ``ostree`` is missing; return its path otherwise."""
    path = ostree_bin()
    if path is None:
        pytest.skip("ostree binary not installed")
    return path


def run_ostree(*args: str, repo: Optional[StrPath] = None, input: Optional[bytes] = None) -> str:
    """Run ``ostree ARGS [--repo=REPO]`` and return its stdout; raise on a non-zero exit.

    ``subprocess.CalledProcessError`` carries stderr, so a failing oracle call shows why.
    """
    cmd = [require_ostree(), *args]
    if repo is not None:
        cmd.append(f"--repo={os.fspath(repo)}")
    env = dict(os.environ, LC_ALL="C.UTF-8")
    done = subprocess.run(cmd, input=input, capture_output=True, check=False, env=env)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, cmd, output=done.stdout, stderr=done.stderr
        )
    return done.stdout.decode("utf-8")


def run_ostree_fail(*args: str, repo: Optional[StrPath] = None) -> str:
    """Run an ``ostree`` command expected to fail; return its stderr (assert it did fail)."""
    cmd = [require_ostree(), *args]
    if repo is not None:
        cmd.append(f"--repo={os.fspath(repo)}")
    env = dict(os.environ, LC_ALL="C.UTF-8")
    done = subprocess.run(cmd, capture_output=True, check=False, env=env)
    assert done.returncode != 0, f"expected failure: {cmd}"
    return done.stderr.decode("utf-8", "replace")


def is_root() -> bool:
    return os.geteuid() == 0


def _try_setxattr(path: Path, name: str, value: bytes) -> bool:
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
    except OSError:
        return False
    return True


def make_sample_tree(root: Path) -> None:
    """Build a tree that exercises every corner of the content format.

    Empty and multi-MiB files, relative/absolute/dangling symlinks, strcmp sort traps,
    xattrs (user.* and, as root, trusted.*), empty and deep directories, hardlinks,
    setuid, odd modes and (as root) a file owned by uid/gid 1000.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty").write_bytes(b"")
    rng = random.Random(20240607)
    with open(root / "big.bin", "wb") as big:
        left = BIG_FILE_SIZE
        while left:
            n = min(left, 1 << 16)
            big.write(rng.randbytes(n))
            left -= n
    (root / "hello.txt").write_bytes(b"hello\n")

    os.symlink("hello.txt", root / "link-rel")
    os.symlink("/etc/hostname", root / "link-abs")
    os.symlink("does/not/exist", root / "link-dangling")

    names = root / "names"
    names.mkdir()
    for name in SORT_TRAP_NAMES:
        if name == "z.d":
            (names / name).mkdir()
            (names / name / "inside").write_bytes(b"inside z.d\n")
        else:
            (names / name).write_bytes(f"name {name}\n".encode())

    xfile = root / "xattrs.txt"
    xfile.write_bytes(b"abc")
    # Set out of order on purpose: ostree sorts them by name.
    _try_setxattr(xfile, "user.zeta", b"Z")
    _try_setxattr(xfile, "user.alpha", b"A1")
    _try_setxattr(xfile, "user.empty", b"")
    if is_root():
        _try_setxattr(xfile, "trusted.mid", b"T")
    xdir = root / "xattr-dir"
    xdir.mkdir()
    _try_setxattr(xdir, "user.dirattr", b"dv")
    (xdir / "f").write_bytes(b"in xattr dir\n")

    (root / "emptydir").mkdir()
    deep = root / "deep"
    for level in range(DEEP_LEVELS):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    (deep / "leaf.txt").write_bytes(b"deep leaf\n")

    (root / "hard1").write_bytes(b"hardlinked content\n")
    os.link(root / "hard1", root / "hard2")

    for name, mode in (("mode600", 0o600), ("mode755", 0o755), ("mode640", 0o640)):
        path = root / name
        path.write_bytes(f"{name}\n".encode())
        os.chmod(path, mode)
    setuid = root / "setuid-bin"
    setuid.write_bytes(b"#!/bin/sh\n")
    os.chmod(setuid, 0o4755)

    private = root / "private-dir"
    private.mkdir()
    (private / "secret").write_bytes(b"secret\n")
    os.chmod(private, 0o700)

    owned = root / "owned.txt"
    owned.write_bytes(b"owned by 1000\n")
    if is_root():
        os.chown(owned, 1000, 1000)
        os.chown(private, 1000, 1000)


@dataclass(frozen=True)
class SampleRepo:
    """One repository built by ``ostree`` for the session, and what we know about it."""

    path: Path
    mode: str                                     # as given to ``ostree init --mode``
    refs: Dict[str, str]                          # ``ostree refs`` names -> checksum
    main_history: Tuple[str, ...]                 # ref ``main``, newest first
    collection_refs: Dict[Tuple[str, str], str]   # (collection id, ref) -> checksum
    aliases: Dict[str, str]                       # alias -> target ref
    remote_name: str = "origin"
    commit_with_detached_meta: str = ""
    commits: Tuple[str, ...] = field(default=())  # every commit object in the repo


#: Refs every sample repo carries (besides the alias and the remote ref).
MAIN_REF = "main"
SLASH_REF = "os/x86_64/stable"
ALIAS_REF = "stable-alias"
REMOTE_REF = "origin:main"
COLLECTION = ("org.example.Coll", "main")


def _commit(repo: Path, branch: str, tree: Path, stamp: str, *extra: str) -> str:
    return run_ostree(
        "commit", f"--branch={branch}", f"--timestamp={stamp}", f"--tree=dir={tree}",
        *extra, repo=repo,
    ).strip()


def build_upstream_repo(path: Path, tree: Path) -> str:
    """An archive repo with one commit on ``main``: the source of every remote ref."""
    run_ostree("init", "--mode=archive", repo=path)
    return _commit(path, MAIN_REF, tree, _TIMESTAMPS[0], "--subject=upstream")


def build_sample_repo(path: Path, mode: str, tree: Path, upstream: Path) -> SampleRepo:
    """Build one repo in MODE: history on ``main``, a slash ref, alias, remote, mirror ref.

    TREE is changed in place between the ``main`` commits (and restored afterwards), so
    every commit has a different root tree.
    """
    run_ostree("init", f"--mode={mode}", repo=path)
    history: List[str] = []
    history.append(_commit(path, MAIN_REF, tree, _TIMESTAMPS[0], "--subject=first"))
    stage2 = tree / "stage2.txt"
    stage2.write_bytes(b"second commit\n")
    try:
        history.append(_commit(
            path, MAIN_REF, tree, _TIMESTAMPS[1], "--subject=second", "--body=Body text",
            "--add-detached-metadata-string=test.key=detached",
        ))
        (tree / "hello.txt").write_bytes(b"hello, third\n")
        history.append(_commit(
            path, MAIN_REF, tree, _TIMESTAMPS[2], "--subject=third",
            "--add-metadata-string=version=3.0",
        ))
    finally:
        stage2.unlink()
        (tree / "hello.txt").write_bytes(b"hello\n")
    stable = _commit(
        path, SLASH_REF, tree, _TIMESTAMPS[3], "--subject=stable",
        "--add-metadata-string=version=1.0",
    )
    run_ostree("refs", "--alias", f"--create={ALIAS_REF}", SLASH_REF, repo=path)
    run_ostree("refs", "--collections", f"--create={COLLECTION[0]}:{COLLECTION[1]}",
               history[0], repo=path)
    run_ostree("remote", "add", "--no-gpg-verify", "origin", f"file://{upstream}", repo=path)
    run_ostree("pull-local", "--remote=origin", str(upstream), MAIN_REF, repo=path)
    remote_commit = run_ostree("rev-parse", REMOTE_REF, repo=path).strip()

    refs = {
        MAIN_REF: history[-1],
        SLASH_REF: stable,
        ALIAS_REF: stable,
        REMOTE_REF: remote_commit,
    }
    commits = tuple(sorted({*history, stable, remote_commit}))
    return SampleRepo(
        path=path,
        mode=mode,
        refs=refs,
        main_history=tuple(reversed(history)),
        collection_refs={COLLECTION: history[0]},
        aliases={ALIAS_REF: SLASH_REF},
        commit_with_detached_meta=history[1],
        commits=commits,
    )


def list_object_files(repo: Path) -> Set[Tuple[str, str]]:
    """``find objects``: (checksum, extension) of every loose object file of REPO."""
    found: Set[Tuple[str, str]] = set()
    for sub in (repo / "objects").iterdir():
        for entry in sub.iterdir():
            stem, _, ext = entry.name.partition(".")
            found.add((sub.name + stem, ext))
    return found


def copy_repo(src: Path, dst: Path) -> Path:
    """A private, writable copy of a session repo (keeps symlinks, xattrs and owners)."""
    shutil.copytree(src, dst, symlinks=True, copy_function=_copy_preserving)
    return dst


def _copy_preserving(src: str, dst: str) -> str:
    shutil.copy2(src, dst, follow_symlinks=False)
    if is_root():
        info = os.lstat(src)
        os.chown(dst, info.st_uid, info.st_gid, follow_symlinks=False)
        if not os.path.islink(dst):
            os.chmod(dst, info.st_mode & 0o7777)  # chown cleared setuid bits
    return dst
