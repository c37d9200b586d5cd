"""The receiver publishes objects before it takes the refs lock, so a big publish does not
make concurrent pushers wait (and give up); the compare-and-swap still happens under the
lock, after the publish: a ref moved meanwhile is refused, never overwritten."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, List, Tuple

import pytest

from ostree_tool import needs_ostree, run_ostree
from test_push_support import commit, init, make_tree, ostree_fsck, rev_parse

from pyostree.errors import PushError, PyOstreeError
from pyostree.push import push_with
from pyostree.push.receive_client import ReceiveClient
from pyostree.push.refslock import REFS_LOCK, refs_lock
from pyostree.receive import serve
from pyostree.repo import Repo
from pyostree.repo.transaction import Transaction
from pyostree.transport import ExecChannel, LocalFileTransport

pytestmark = needs_ostree


class _ThreadChannel(ExecChannel):
    """``serve`` in a thread of this process over pipes, so the test can patch it."""

    def __init__(self) -> None:
        c2s_r, c2s_w = os.pipe()
        s2c_r, s2c_w = os.pipe()
        err_r, err_w = os.pipe()
        os.close(err_w)
        self._server_in, self._server_out = os.fdopen(c2s_r, "rb"), os.fdopen(s2c_w, "wb")
        self.stdin, self.stdout, self.stderr = (
            os.fdopen(c2s_w, "wb"), os.fdopen(s2c_r, "rb"), os.fdopen(err_r, "rb"))
        self.errors: List[BaseException] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            serve(self._server_in, self._server_out)
        except PyOstreeError as err:
            self.errors.append(err)
        finally:
            self._server_out.close()
            self._server_in.close()

    def wait(self) -> int:
        self._thread.join(timeout=60)
        return 1 if self.errors else 0

    def close(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            try:
                stream.close()
            except OSError:
                pass
        self._thread.join(timeout=60)


def _while_publishing(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    original = Transaction._publish_objects

    def publishing(self: Transaction, staging: object, dirtrees: object = None,
                   commits: object = None) -> None:
        action()
        original(self, staging, dirtrees, commits)  # type: ignore[arg-type]

    monkeypatch.setattr(Transaction, "_publish_objects", publishing)


@pytest.fixture
def repos(tmp_path: Path) -> Tuple[Path, Path, str, str]:
    """A source with main = c1 -> c2, and a remote whose main is c1."""
    tree = make_tree(tmp_path / "tree", files=20)
    src = init(tmp_path / "src", "archive")
    c1 = commit(src, tree, subject="one")
    (tree / "more.txt").write_bytes(b"more\n")
    c2 = commit(src, tree, subject="two")
    dst = init(tmp_path / "dst", "archive")
    run_ostree("pull-local", str(src), c1, repo=dst)
    run_ostree("refs", "--create=main", c1, repo=dst)
    return src, dst, c1, c2


def test_refs_lock_is_free_while_objects_are_published(
    repos: Tuple[Path, Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst, _c1, c2 = repos
    seen: List[str] = []

    def other_pusher() -> None:  # another push wanting the refs lock meanwhile
        seen.append("held" if (dst / REFS_LOCK).exists() else "free")
        files = LocalFileTransport(dst)
        try:
            with refs_lock(files, lambda _m: None, wait=0.5):
                seen.append("acquired")
        except PushError:
            seen.append("gave up")
        finally:
            files.close()

    _while_publishing(monkeypatch, other_pusher)
    channel = _ThreadChannel()
    client = ReceiveClient(channel, str(dst))
    push_with(client, Repo.open(src), {"main": c2})
    client.close()
    assert seen == ["free", "acquired"]
    assert not channel.errors
    assert rev_parse(dst, "main") == c2
    assert not (dst / REFS_LOCK).exists()
    assert "no errors found" in ostree_fsck(dst)


def test_ref_moved_during_the_publish_is_not_overwritten(
    repos: Tuple[Path, Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compare-and-swap reads the ref after the publish, under the refs lock."""
    src, dst, c1, c2 = repos
    other_src = init(tmp_path / "other", "archive")
    run_ostree("pull-local", str(src), c1, repo=other_src)
    other_tree = make_tree(tmp_path / "other-tree", files=5, seed=9)
    theirs = commit(other_src, other_tree, subject="theirs")
    run_ostree("pull-local", str(other_src), theirs, repo=dst)

    def winner_moves_main() -> None:
        files = LocalFileTransport(dst)
        try:
            with refs_lock(files, lambda _m: None, wait=5):
                run_ostree("refs", "--create=main", "--force", theirs, repo=dst)
        finally:
            files.close()

    _while_publishing(monkeypatch, winner_moves_main)
    channel = _ThreadChannel()
    client = ReceiveClient(channel, str(dst))
    with pytest.raises(PyOstreeError, match="ref main moved"):
        push_with(client, Repo.open(src), {"main": c2})
    client.close()
    assert rev_parse(dst, "main") == theirs  # the winner's update is not lost
    assert not (dst / REFS_LOCK).exists()
    assert "no errors found" in ostree_fsck(dst)
