"""sftp-mode publishing with pipelined renames: files and dirmeta first, then dirtrees in
waves by height, the commit last; every object is in place after everything it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import pytest

from ostree_tool import needs_ostree, run_ostree
from sshd import embedded, real_sshd  # noqa: F401
from test_push_support import commit, init, make_tree, ostree_fsck
from test_transport_contract import KINDS, Remote, remote  # noqa: F401

from pyostree.objects.dirtree import DirTree
from pyostree.objects.types import ObjectType
from pyostree.push import push_with
from pyostree.push.sftp import SftpPublisher
from pyostree.repo import Repo
from pyostree.transport import FileTransport

pytestmark = [needs_ostree,
              pytest.mark.parametrize("remote", [k for k in KINDS if k != "local"], indirect=True)]


class RecordingFiles:
    """The real transport, with a log of the objects renamed into objects/, in order."""

    def __init__(self, files: FileTransport) -> None:
        self._files = files
        self.published: List[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._files, name)

    def _note(self, dst: str) -> None:
        if dst.startswith("objects/"):
            self.published.append(dst[len("objects/"):].replace("/", ""))

    def rename(self, src: str, dst: str, *, replace: bool) -> None:
        self._files.rename(src, dst, replace=replace)
        self._note(dst)

    def rename_many(self, pairs: List[Tuple[str, str]]) -> List[Any]:
        errors: List[Any] = self._files.rename_many(pairs)  # type: ignore[attr-defined]
        for (_src, dst), error in zip(pairs, errors):
            if error is None:
                self._note(dst)
        return errors


def _children(repo: Repo, name: str) -> Set[str]:
    checksum, ext = name.split(".")
    if ext == "dirtree":
        tree = DirTree.from_bytes(repo.read_metadata_bytes(checksum, ObjectType.DIR_TREE))
        return ({f"{f.checksum}.filez" for f in tree.files}
                | {f"{d.tree_checksum}.dirtree" for d in tree.dirs}
                | {f"{d.meta_checksum}.dirmeta" for d in tree.dirs})
    return set()


def test_publish_puts_children_before_parents(remote: Remote, tmp_path: Path) -> None:  # noqa: F811
    tree = make_tree(tmp_path / "tree", files=30)
    for depth in range(1, 6):  # a deep chain and a wide level: several waves
        (tree / "/".join(f"d{i}" for i in range(depth))).mkdir(parents=True, exist_ok=True)
        (tree / "/".join(f"d{i}" for i in range(depth)) / f"f{depth}").write_text(str(depth))
        (tree / f"wide{depth}").mkdir(exist_ok=True)
        (tree / f"wide{depth}" / "x").write_text(f"wide {depth}")
    src = init(tmp_path / "src", "archive")
    head = commit(src, tree)
    run_ostree("init", "--mode=archive", repo=remote.disk)
    files = RecordingFiles(remote.files)
    repo = Repo.open(src)
    push_with(SftpPublisher(files), repo, {"main": head})  # type: ignore[arg-type]

    assert "no errors found" in ostree_fsck(remote.disk)
    assert files.published[-1] == f"{head}.commit"
    where: Dict[str, int] = {name: index for index, name in enumerate(files.published)}
    assert sum(name.endswith(".dirtree") for name in where) >= 7
    for name, index in where.items():
        for child in _children(repo, name):
            assert where[child] < index, f"{name} published before its child {child}"


def test_publish_again_keeps_what_the_remote_has(remote: Remote, tmp_path: Path) -> None:  # noqa: F811
    tree = make_tree(tmp_path / "tree", files=9)
    src = init(tmp_path / "src", "archive")
    first = commit(src, tree)
    run_ostree("init", "--mode=archive", repo=remote.disk)
    repo = Repo.open(src)
    push_with(SftpPublisher(remote.files), repo, {"main": first})
    (tree / "sub" / "new.txt").write_text("new")
    second = commit(src, tree)
    files = RecordingFiles(remote.files)
    push_with(SftpPublisher(files), repo, {"main": second})  # type: ignore[arg-type]
    assert "no errors found" in ostree_fsck(remote.disk)
    assert f"{first}.commit" not in files.published and files.published[-1] == f"{second}.commit"
    assert run_ostree("rev-parse", "main", repo=remote.disk).strip() == second
