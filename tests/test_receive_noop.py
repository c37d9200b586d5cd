"""What ``pyostree receive`` loads: a no-op push to a remote without a summary takes no
refs lock (nor imports it), and committing never loads the client's planning modules."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from ostree_tool import needs_ostree, run_ostree
from test_push_support import init, receive_process, rev_parse, two_commit_history

from pyostree.objects.types import ObjectType
from pyostree.push import PushOptions, push
from pyostree.repo.lock import ofd_lock
from pyostree.repo import Repo

pytestmark = needs_ostree


@pytest.fixture
def history(tmp_path: Path) -> Tuple[Path, str, str]:
    """main = c1, then c2 changing a file deep down and adding one at the top."""
    return two_commit_history(tmp_path, files=40, changed="sub/deeper/file2.txt")


_RECEIVER = """
import atexit, runpy, sys
path = sys.argv[1]
def dump():
    with open(path, "w") as out:
        out.write("\\n".join(sorted(sys.modules)))
atexit.register(dump)
sys.argv = ["pyostree", "receive"]
runpy.run_module("pyostree", run_name="__main__", alter_sys=True)
"""


def _receiver_modules(src: Path, dst: Path, tmp_path: Path, *refs: str) -> List[str]:
    out = tmp_path / "modules.txt"
    out.unlink(missing_ok=True)
    command = (sys.executable, "-c", _RECEIVER, str(out))
    push(Repo.open(src), str(dst), refs, PushOptions(via="receive", receive_command=command))
    return out.read_text().split()


def test_receiver_loads_only_what_the_push_needs(
    tmp_path: Path, history: Tuple[Path, str, str]
) -> None:
    """A no-op push to a remote without a summary takes no refs lock (nor imports it),
    begins no transaction and loads no object code; a ref update does, without the
    client's planning and sending modules."""
    src, _c1, c2 = history
    dst = init(tmp_path / "dst", "archive")
    moved = _receiver_modules(src, dst, tmp_path, "main")
    assert rev_parse(dst, "main") == c2
    assert "pyostree.push.refslock" in moved
    assert not {"pyostree.push.plan", "pyostree.push.convert", "pyostree.push.publisher"} & set(moved)
    assert {"pyostree.receive.incoming", "pyostree.repo.transaction"} <= set(moved)
    noop = _receiver_modules(src, dst, tmp_path, "main")
    assert "pyostree.transport.local" in moved  # the refs lock's file transport
    # (the transport package itself holds the wire format: every receiver loads it)
    assert not {"pyostree.push", "pyostree.push.refslock", "pyostree.transport.local"} & set(noop)
    # nor the verifying code, a write transaction, or the codec behind them
    assert not {"pyostree.receive.incoming", "pyostree.repo.transaction",
                "pyostree.gvariant"} & set(noop)
    run_ostree("summary", "-u", repo=dst)
    stale = (dst / "summary").read_bytes()
    run_ostree("refs", "--create=extra", c2, repo=dst)
    (dst / "summary").write_bytes(stale)  # a summary that misses a ref: the no-op repairs it
    repaired = _receiver_modules(src, dst, tmp_path, "main")
    assert "pyostree.push.refslock" in repaired
    assert "* extra" in run_ostree("summary", "-v", repo=dst)


@pytest.mark.parametrize("already_there", [False, True])
def test_receiver_exits_zero_after_a_clean_session(
    tmp_path: Path, history: Tuple[Path, str, str], already_there: bool
) -> None:
    """A clean session ends with a fast exit (no interpreter teardown): DONE and the exit
    status still reach the client, and everything written is in place."""
    from pyostree.push import push_with
    from pyostree.push.receive_client import ReceiveClient
    from pyostree.transport.local import SubprocessExecChannel

    src, _c1, c2 = history
    dst = init(tmp_path / "dst", "archive")
    if already_there:
        push(Repo.open(src), str(dst), ("main",), PushOptions(via="receive"))
    proc = receive_process()
    client = ReceiveClient(SubprocessExecChannel(proc), str(dst))
    result = push_with(client, Repo.open(src), {"main": c2}, PushOptions(via="receive"))
    client.close()
    assert proc.returncode == 0
    assert bool(result.updates) is not already_there
    assert rev_parse(dst, "main") == c2
    run_ostree("fsck", repo=dst)
    staging = [p for p in (dst / "tmp").glob("staging-*") if p.is_dir()]
    # a published push removes its staging dir; a no-op one never makes one
    assert not staging
    if already_there:
        assert _lock_is_free(dst / ".lock")


def _lock_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        return ofd_lock(fd, True, wait=False)
    finally:
        os.close(fd)


def test_noop_after_an_interrupted_push_keeps_its_staged_objects(
    tmp_path: Path, history: Tuple[Path, str, str]
) -> None:
    """A no-op publishes nothing: objects an interrupted push staged wait for the push that
    resumes it, and the next real push publishes them with its own."""
    src, c1, c2 = history
    dst = init(tmp_path / "dst", "archive")
    run_ostree("refs", "--create=one", c1, repo=src)
    push(Repo.open(src), str(dst), ("one",), PushOptions(via="receive"))
    repo = Repo.open(dst)
    txn = repo.transaction()
    txn.begin()
    data = Repo.open(src).read_metadata_bytes(c2, ObjectType.COMMIT)
    txn.write_metadata_bytes(ObjectType.COMMIT, data, expected_checksum=c2)
    txn.abort()  # as an interrupted push leaves it
    result = push(Repo.open(src), str(dst), ("one",), PushOptions(via="receive"))
    assert result.up_to_date == ("one",)
    assert not repo.has_object(c2, ObjectType.COMMIT)
    push(Repo.open(src), str(dst), ("main",), PushOptions(via="receive"))
    assert rev_parse(dst, "main") == c2
    run_ostree("fsck", repo=dst)


def test_receiver_exits_one_after_a_refused_session(tmp_path: Path) -> None:
    dst = init(tmp_path / "dst", "archive")
    proc = receive_process()
    hello = b'{"magic":"not-pyostree","versions":[1,2]}'
    out, err = proc.communicate(bytes([1]) + len(hello).to_bytes(4, "big") + hello, timeout=60)
    assert proc.returncode == 1
    assert b"not a pyostree push client" in out and err.startswith(b"error: ")
    assert not (dst / "refs" / "heads" / "main").exists()
