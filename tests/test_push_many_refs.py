"""A remote with 100,000 refs (issue 13, item 4): a REPO frame listing every head is capped
at 1 MiB (~12k refs), so from protocol v3 the client asks only for the refs it pushes. A
push of one ref works in receive and sftp mode with every frame small; a client before v3
gets a clear refusal rather than a frame-size error; v3 clients still push to a v2
receiver."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from ostree_tool import needs_ostree, run_ostree
from test_push_support import init, rev_parse, two_commit_history
from test_receive_hostile import RawClient

from pyostree.fsck import fsck
from pyostree.push import PushOptions, push
from pyostree.repo import Repo
from pyostree.transport import wire
from pyostree.transport.wire import MAGIC, FrameKind, decode_json

pytestmark = needs_ostree

MANY = 100_000


class Remote:
    def __init__(self, path: Path, src: Path, c1: str, c2: str) -> None:
        self.path, self.src, self.c1, self.c2 = path, src, c1, c2


def _many_refs(repo: Path, commit: str) -> None:
    """MANY ref files written directly (``many/NN/rNNNNNN``), all at ``commit``."""
    data = (commit + "\n").encode()
    for index in range(MANY):
        folder = repo / "refs" / "heads" / "many" / f"{index % 100:02d}"
        if index < 100:
            folder.mkdir(parents=True)
        fd = os.open(folder / f"r{index:06d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    """An archive remote, ``main`` = c1 and MANY more refs at c1. Each test pushes a ref
    of its own (``main`` from c1 to c2 once only)."""
    base = tmp_path_factory.mktemp("many-refs")
    src, c1, c2 = two_commit_history(base, files=20, changed="sub/file1.txt")
    dst = init(base / "dst", "archive")
    run_ostree("pull-local", str(src), c1, repo=dst)
    run_ostree("refs", "--create=main", c1, repo=dst)
    _many_refs(dst, c1)
    yield Remote(dst, src, c1, c2)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def frames(monkeypatch: pytest.MonkeyPatch) -> List[Tuple[FrameKind, int]]:
    """(kind, length) of every frame the push client reads."""
    seen: List[Tuple[FrameKind, int]] = []
    real = wire.FrameReader.read_head

    def read_head(self: wire.FrameReader, *, exact: bool = False) -> object:
        head = real(self, exact=exact)
        if head is not None:
            seen.append(head)
        return head

    monkeypatch.setattr(wire.FrameReader, "read_head", read_head)
    return seen


def _fsck_clean(repo: Path) -> None:
    run_ostree("fsck", repo=repo)
    assert fsck(Repo.open(repo)).ok


def test_a_push_of_one_ref_in_receive_mode(remote: Remote, frames: List[Tuple[FrameKind, int]]) -> None:
    result = push(Repo.open(remote.src), str(remote.path), ["main"], PushOptions(via="receive"))
    assert [u.ref for u in result.updates] == ["main"] and result.updates[0].old == remote.c1
    assert rev_parse(remote.path, "main") == remote.c2
    assert 0 < result.objects_sent < 10  # the change only: c1's tree was subtracted
    assert frames and max(length for _kind, length in frames) < 1024
    assert FrameKind.REPO in {kind for kind, _length in frames}
    _fsck_clean(remote.path)


def test_a_new_ref_and_a_fast_forward_check_in_sftp_mode(
        remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    """sftp mode reads the pushed refs' files, and lists no ref directory."""
    from pyostree.transport.local import LocalFileTransport

    listed: List[str] = []
    real = LocalFileTransport.listdir

    def listdir(self: LocalFileTransport, path: str) -> List[str]:
        listed.append(path)
        return real(self, path)

    monkeypatch.setattr(LocalFileTransport, "listdir", listdir)
    run_ostree("refs", "--create=side", remote.c2, repo=remote.src)
    run_ostree("refs", "--create=many/07/r000007", remote.c2, repo=remote.src)
    try:
        result = push(Repo.open(remote.src), str(remote.path), ["side", "many/07/r000007"], PushOptions(via="sftp"))
    finally:
        run_ostree("refs", "--delete", "side", "many/07/r000007", repo=remote.src)
    olds = {u.ref: u.old for u in result.updates}
    assert olds == {"side": None, "many/07/r000007": remote.c1}  # a fast-forward of c1
    assert rev_parse(remote.path, "side") == remote.c2
    assert rev_parse(remote.path, "many/07/r000007") == remote.c2
    assert not [path for path in listed if path.startswith("refs")]
    _fsck_clean(remote.path)


def test_repo_carries_only_the_refs_asked_for(remote: Remote) -> None:
    client = RawClient()
    client.send(FrameKind.HELLO, json.dumps({"magic": MAGIC, "versions": [1, 2, 3],
                                             "compression": []}).encode())
    assert decode_json(client.reader.expect(FrameKind.WELCOME))["version"] == 3
    client.send(FrameKind.OPEN, json.dumps({"repo": str(remote.path),
                                            "refs": ["many/00/r000000", "absent"]}).encode())
    frame = client.reader.expect(FrameKind.REPO)
    assert len(frame.payload) < 1024
    assert decode_json(frame)["refs"] == {"many/00/r000000": remote.c1}
    names = [f"many/{i % 100:02d}/r{i:06d}" for i in range(0, MANY, 97)][:1024]
    client.send(FrameKind.REFS, json.dumps({"refs": names}).encode())
    reply = client.reader.expect(FrameKind.REFS_REPLY)
    assert decode_json(reply)["refs"] == {name: remote.c1 for name in names}
    assert len(reply.payload) < wire.MAX_CONTROL_SIZE
    client.send(FrameKind.ABORT)
    assert client.proc.wait(timeout=30) == 0


def test_a_client_before_v3_is_refused_clearly(remote: Remote) -> None:
    client = RawClient()
    client.send(FrameKind.HELLO, json.dumps({"magic": MAGIC, "versions": [1, 2],
                                             "compression": []}).encode())
    assert decode_json(client.reader.expect(FrameKind.WELCOME))["version"] == 2
    client.send(FrameKind.OPEN, json.dumps({"repo": str(remote.path)}).encode())
    message = client.error()
    assert re.search(r"has 1000\d\d refs, too many to list in protocol version 2", message), message
    assert "version 3" in message


_V2_RECEIVER = """
import sys
import pyostree.receive.server as server
server.PROTOCOL_VERSIONS = (1, 2)
from pyostree.cli.main import main
sys.exit(main(["receive"]))
"""


def test_a_v3_client_still_pushes_to_a_v2_receiver(tmp_path: Path) -> None:
    """A receiver before v3 ignores OPEN's refs and lists every head in REPO."""
    src, c1, c2 = two_commit_history(tmp_path, files=8, changed="sub/file1.txt")
    dst = init(tmp_path / "dst", "archive")
    run_ostree("pull-local", str(src), c1, repo=dst)
    run_ostree("refs", "--create=main", c1, repo=dst)
    run_ostree("refs", "--create=other", c1, repo=dst)
    logs: List[str] = []
    options = PushOptions(via="receive", receive_command=(sys.executable, "-c", _V2_RECEIVER))
    result = push(Repo.open(src), str(dst), ["main"], options, on_log=logs.append)
    assert result.updates[0].old == c1 and rev_parse(dst, "main") == c2
    assert 0 < result.objects_sent < 10
    assert not [line for line in logs if "falling back" in line]
    _fsck_clean(dst)


def test_refs_asked_beyond_one_open_go_in_refs_frames(tmp_path: Path) -> None:
    """3,000 pushed refs: OPEN asks for the first 1024, two REFS frames for the rest."""
    src, c1, c2 = two_commit_history(tmp_path, files=4, changed="sub/file1.txt")
    dst = init(tmp_path / "dst", "archive")
    run_ostree("pull-local", str(src), c1, repo=dst)
    names: Dict[str, str] = {}
    for index in range(3000):
        name = f"b/{index:04d}"
        names[name] = c1 if index % 2 else c2
        for repo in (src, dst) if index % 2 else (src,):
            path = repo / "refs" / "heads" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(c1 + "\n")
    for name, value in names.items():
        (src / "refs" / "heads" / name).write_text(value + "\n")
    result = push(Repo.open(src), str(dst), list(names), PushOptions(via="receive"))
    # odd ones were at c1 on both sides; even ones are new
    assert {u.ref for u in result.updates} == {n for n, v in names.items() if v == c2}
    assert all(u.old is None for u in result.updates)
    assert sorted(result.up_to_date) == sorted(n for n, v in names.items() if v == c1)
    _fsck_clean(dst)
