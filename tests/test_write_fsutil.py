"""Write-side file-system helpers: RENAME_NOREPLACE publishing, umask reading, object modes."""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from ostree_tool import needs_ostree, run_ostree
from pyostree.objects.types import ObjectType
from pyostree.repo import Repo, fsutil
from pyostree.repo.commitwrite import CommitRequest, write_commit
from pyostree.repo.fsutil import process_umask, rename_noreplace
from pyostree.repo.treebuilder import TreeBuilder


def test_rename_noreplace_moves_and_never_replaces(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"new")
    (tmp_path / "b").write_bytes(b"old")
    assert rename_noreplace(str(tmp_path / "a"), str(tmp_path / "b")) is False
    assert (tmp_path / "a").read_bytes() == b"new" and (tmp_path / "b").read_bytes() == b"old"
    assert rename_noreplace(str(tmp_path / "a"), str(tmp_path / "c")) is True
    assert not (tmp_path / "a").exists() and (tmp_path / "c").read_bytes() == b"new"
    with pytest.raises(FileNotFoundError):
        rename_noreplace(str(tmp_path / "missing"), str(tmp_path / "d"))


@pytest.mark.parametrize("err", [errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP])
def test_rename_noreplace_unsupported_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    """A file system without RENAME_NOREPLACE answers like this; callers then fall back."""

    def refuse(*_args: object) -> int:
        ctypes.set_errno(err)
        return -1

    monkeypatch.setattr(fsutil, "_renameat2", lambda: refuse)
    (tmp_path / "a").write_bytes(b"x")
    assert rename_noreplace(str(tmp_path / "a"), str(tmp_path / "b")) is None
    assert (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    monkeypatch.setattr(fsutil, "_renameat2", lambda: None)  # libc without renameat2
    assert rename_noreplace(str(tmp_path / "a"), str(tmp_path / "b")) is None


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077, 0o002])
def test_process_umask_reads_without_changing(umask: int) -> None:
    code = (
        "import os; from pyostree.repo.fsutil import process_umask\n"
        f"os.umask({umask}); print(process_umask()); print(os.umask(0))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.split() == [str(umask), str(umask)]


def test_process_umask_unreadable_is_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fsutil, "_STATUS_PATH", str(tmp_path / "missing"))
    assert process_umask() is None
    (tmp_path / "status").write_bytes(b"Name:\tx\nUmask:\tzz\n")
    monkeypatch.setattr(fsutil, "_STATUS_PATH", str(tmp_path / "status"))
    assert process_umask() is None
    (tmp_path / "status").write_bytes(b"Name:\tx\n")
    assert process_umask() is None


_COMMIT_SCRIPT = """
import os, sys
from pyostree.objects import DirMeta, DirTree, FileEntry
from pyostree.objects.content import FileHeader
from pyostree.repo import Repo
from pyostree.repo.commitwrite import CommitRequest, write_commit
os.umask(int(sys.argv[2], 8))
repo = Repo.open(sys.argv[1])
with repo.transaction() as txn:
    files = [txn.write_content(FileHeader(0, 0, 0o100600), [b"file %d" % i]) for i in range(20)]
    link = txn.write_content(FileHeader(0, 0, 0o120777, 0, "target"))
    entries = [FileEntry("f%02d" % i, c) for i, c in enumerate(files)] + [FileEntry("l", link)]  # name order
    tree = txn.write_metadata(DirTree(tuple(entries), ()))
    meta = txn.write_metadata(DirMeta(0, 0, 0o40755))
    commit = write_commit(txn, tree, meta, CommitRequest(branch="main", timestamp=0)).checksum
    txn.write_commitmeta(commit, b"")
"""


def _object_modes(repo: Path) -> List[int]:
    return [stat.S_IMODE(p.lstat().st_mode) for p in (repo / "objects").glob("*/*") if not p.is_symlink()]


def _posix_acl(*entries: Tuple[int, int]) -> bytes:
    """A ``system.posix_acl_*`` value: version 2, then (tag, perm, id) per entry."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, 0xFFFFFFFF) for tag, perm in entries)


@needs_ostree
@pytest.mark.parametrize("mode", ["archive", "bare-user"])
@pytest.mark.parametrize("umask", ["022", "077", "002", "acl"])
def test_objects_are_0644_whatever_the_umask(tmp_path: Path, mode: str, umask: str) -> None:
    """Created 0644 where the umask allows it, else (or under a default ACL that ignores
    the umask) fchmod'ed: the published objects are the same either way."""
    Repo.init(tmp_path / "r", mode)
    if umask == "acl":  # u::rwx g::r-x o::--- inherited by the staging and temp dirs
        os.setxattr(tmp_path / "r/tmp", "system.posix_acl_default", _posix_acl((0x01, 7), (0x04, 5), (0x20, 0)))
        umask = "022"
    subprocess.run([sys.executable, "-c", _COMMIT_SCRIPT, str(tmp_path / "r"), umask], check=True)
    modes = _object_modes(tmp_path / "r")
    assert len(modes) >= 24
    if mode == "archive":
        assert set(modes) == {0o644}
    else:  # bare-user: file objects keep the file's own mode, metadata is 0644
        meta = [stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "r/objects").glob("*/*.dir*")]
        assert set(meta) == {0o644}
    run_ostree("fsck", repo=tmp_path / "r")


def test_publish_falls_back_to_link_when_renameat2_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EINVAL from the file system mid-transaction: the rest is published by link."""
    calls: List[str] = []

    def refuse(*_args: object) -> int:
        calls.append("renameat2")
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(fsutil, "_renameat2", lambda: refuse)
    Repo.init(tmp_path / "r", "archive")
    repo = Repo.open(tmp_path / "r")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(10):
        (src / f"f{i}").write_bytes(b"%d" % i)
    with repo.transaction() as txn:
        with TreeBuilder(txn) as builder:
            builder.add_directory(src)
            tree, meta = builder.finish()
        commit = write_commit(txn, tree, meta, CommitRequest(branch="main", timestamp=0)).checksum
    assert calls == ["renameat2"]  # asked once, then remembered for the transaction
    assert repo.has_object(commit, ObjectType.COMMIT)
    run_ostree("fsck", repo=tmp_path / "r")
    assert [p.name for p in (tmp_path / "r/tmp").iterdir()] == ["cache"]
