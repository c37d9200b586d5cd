"""A hostile client talking raw frames to ``pyostree receive``: every trick is refused
with an ERROR frame and the remote repository is left exactly as it was."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ostree_tool import needs_ostree, run_ostree
from test_push_support import ALL_MODES, commit, init, make_tree, object_files, receive_process

from pyostree.objects import FileHeader
from pyostree.objects.types import ObjectType
from pyostree.transport.wire import (
    MAGIC,
    DataCodec,
    Encoding,
    FrameKind,
    FrameReader,
    FrameWriter,
    ObjectHeader,
    encode_have,
    encode_object_header,
)

pytestmark = needs_ostree


class RawClient:
    """Speaks the protocol frame by frame, so a test can send anything."""

    def __init__(self, *args: str, cwd: Optional[Path] = None) -> None:
        self.proc = receive_process(*args, cwd=cwd)
        assert self.proc.stdin and self.proc.stdout
        self.writer = FrameWriter(self.proc.stdin)
        self.reader = FrameReader(self.proc.stdout)

    def send(self, kind: FrameKind, payload: bytes = b"") -> None:
        try:
            self.writer.write(kind, payload)
            self.writer.flush()
        except BrokenPipeError:
            pass

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def hello(self, repo: Path) -> Dict[str, object]:
        self.send(FrameKind.HELLO, b'{"magic":"%s","versions":[1],"compression":[]}' % MAGIC.encode())
        assert self.reader.expect(FrameKind.WELCOME)
        self.send(FrameKind.OPEN, b'{"repo":"%s"}' % str(repo).encode())
        import json

        return json.loads(self.reader.expect(FrameKind.REPO).payload)

    def send_object(self, objtype: ObjectType, checksum: str, encoding: Encoding, data: bytes,
                    size: Optional[int] = None) -> None:
        header = ObjectHeader(objtype, checksum, encoding, len(data) if size is None else size)
        self.send(FrameKind.OBJECT, encode_object_header(header))
        codec = DataCodec(False)
        for start in range(0, len(data), 1 << 20):
            self.send(FrameKind.DATA, codec.encode(data[start:start + (1 << 20)], compress=False))
        self.send(FrameKind.END)

    def error(self) -> str:
        """The ERROR the receiver must answer with, after which it exits 1."""
        import json

        frame = self.reader.read()
        while frame is not None and frame.kind is not FrameKind.ERROR:
            frame = self.reader.read()
        assert frame is not None, "receiver closed without an ERROR frame"
        assert self.proc.stdin
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        assert self.proc.wait(timeout=30) == 1
        return str(json.loads(frame.payload)["message"])


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    dst = init(tmp_path / "remote", "archive")
    src = init(tmp_path / "seed", "archive")
    first = commit(src, make_tree(tmp_path / "seedtree"), subject="seed")
    run_ostree("pull-local", str(src), first, repo=dst)
    run_ostree("refs", "--create=main", first, repo=dst)
    return dst


def _snapshot(repo: Path) -> Dict[str, object]:
    refs = {p.name: p.read_text() for p in (repo / "refs" / "heads").rglob("*") if p.is_file()}
    return {"objects": object_files(repo), "refs": refs}


def _fscks(repo: Path) -> None:
    """``ostree fsck`` and our own fsck both find the repo clean."""
    from pyostree.fsck import fsck
    from pyostree.repo import Repo

    run_ostree("fsck", repo=repo)
    result = fsck(Repo.open(repo))
    assert result.ok, result.problems


def _staged_names(repo: Path) -> Set[str]:
    return {p.name for p in (repo / "tmp").rglob("*") if p.is_file() and "." in p.name}


def _commit_bytes(tmp_path: Path) -> bytes:
    src = init(tmp_path / "other", "archive")
    tree = make_tree(tmp_path / "othertree", seed=7)
    checksum = commit(src, tree, subject="never complete")
    return (src / "objects" / checksum[:2] / f"{checksum[2:]}.commit").read_bytes()


def test_content_not_matching_its_name(remote: Path) -> None:
    before = _snapshot(remote)
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    honest = hashlib.sha256(header.framed() + b"honest").hexdigest()
    client = RawClient()
    client.hello(remote)
    client.send_object(ObjectType.FILE, honest, Encoding.CONTENT, header.framed() + b"evil!!")
    assert "checksum" in client.error()
    assert _snapshot(remote) == before
    assert honest[2:] + ".filez" not in _staged_names(remote)


def test_metadata_not_matching_its_name(remote: Path, tmp_path: Path) -> None:
    before = _snapshot(remote)
    data = _commit_bytes(tmp_path)
    client = RawClient()
    client.hello(remote)
    client.send_object(ObjectType.COMMIT, "ab" * 32, Encoding.METADATA, data)
    assert "expected abab" in client.error()
    assert _snapshot(remote) == before


def test_non_normal_form_metadata_refused_even_with_right_hash(remote: Path) -> None:
    before = _snapshot(remote)
    bogus = b"\x00\x01\x02 not a dirtree \xff"
    client = RawClient()
    client.hello(remote)
    client.send_object(ObjectType.DIR_TREE, hashlib.sha256(bogus).hexdigest(), Encoding.METADATA, bogus)
    client.error()
    assert _snapshot(remote) == before


def test_commit_whose_objects_were_never_sent(remote: Path, tmp_path: Path) -> None:
    before = _snapshot(remote)
    data = _commit_bytes(tmp_path)
    checksum = hashlib.sha256(data).hexdigest()
    client = RawClient()
    info = client.hello(remote)
    client.send_object(ObjectType.COMMIT, checksum, Encoding.METADATA, data)
    client.send(FrameKind.UPDATE, b'{"refs":[{"ref":"main","old":"%s","new":"%s"}]}'
                % (str(info["refs"]["main"]).encode(), checksum.encode()))  # type: ignore[index]
    client.send(FrameKind.COMMIT)
    assert "incomplete" in client.error()
    assert _snapshot(remote) == before


@pytest.mark.parametrize("ref", ["../../etc/passwd", "a/../b", "main..x/..", "/abs", "a//b", ""])
def test_bad_ref_names(remote: Path, ref: str) -> None:
    before = _snapshot(remote)
    client = RawClient()
    info = client.hello(remote)
    main = str(info["refs"]["main"])  # type: ignore[index]
    client.send(FrameKind.UPDATE, b'{"refs":[{"ref":"%s","old":null,"new":"%s"}]}' % (ref.encode(), main.encode()))
    client.send(FrameKind.COMMIT)
    assert "ref" in client.error().lower()
    assert _snapshot(remote) == before


def test_stale_expected_old_value_refused(remote: Path) -> None:
    before = _snapshot(remote)
    client = RawClient()
    info = client.hello(remote)
    main = str(info["refs"]["main"])  # type: ignore[index]
    client.send(FrameKind.UPDATE, b'{"refs":[{"ref":"other","old":"%s","new":"%s"}]}' % (main.encode(), main.encode()))
    client.send(FrameKind.COMMIT)
    assert "moved" in client.error()
    assert _snapshot(remote) == before


def test_multi_ref_update_with_one_stale_old_moves_no_ref(remote: Path, tmp_path: Path) -> None:
    """The compare-and-swap of every ref is checked before any is written: ``main``
    (right old value) must not move when ``two`` (stale) is refused."""
    src = init(tmp_path / "src2", "archive")
    second = commit(src, make_tree(tmp_path / "tree2", seed=3), subject="second")
    run_ostree("pull-local", str(src), second, repo=remote)
    first = run_ostree("rev-parse", "main", repo=remote).strip()
    run_ostree("refs", "--create=two", first, repo=remote)
    before = _snapshot(remote)
    client = RawClient()
    client.hello(remote)
    client.send(FrameKind.UPDATE, b'{"refs":[{"ref":"main","old":"%s","new":"%s"},'
                b'{"ref":"two","old":"%s","new":"%s"}]}'
                % (first.encode(), second.encode(), second.encode(), second.encode()))
    client.send(FrameKind.COMMIT)
    message = client.error()
    assert "ref two moved" in message and "main" not in message
    assert _snapshot(remote) == before
    _fscks(remote)


def _subpath_pulled(tmp_path: Path) -> Tuple[Path, Path, str]:
    """(src, remote, c1): ``remote`` got c1 of ``src`` by libostree's ``pull --subpath=/sub``,
    which leaves c1's root dirtree in ``objects/`` without the subtrees it skipped (and
    ``state/c1.commitpartial``); ``src`` has c1 complete."""
    src = init(tmp_path / "src", "archive")
    first = commit(src, make_tree(tmp_path / "tree"), subject="full")
    remote = init(tmp_path / "partial", "archive")
    run_ostree("remote", "add", "--no-gpg-verify", "origin", f"file://{src}", repo=remote)
    run_ostree("pull", "--subpath=/sub", "origin", "main", repo=remote)
    assert (remote / "state" / f"{first}.commitpartial").exists()
    return src, remote, first


def test_push_reusing_a_subpath_pulls_root_dirtree_is_incomplete(tmp_path: Path) -> None:
    """A commit whose root dirtree is in ``objects/`` only from a subpath pull is not
    complete: the receiver walks it (the repo holds a partial commit) and refuses a
    push that sends only the commit; an honest push sends the missing subtrees."""
    from test_push_support import do_push

    src, remote, first = _subpath_pulled(tmp_path)
    second = run_ostree("commit", "--branch=main", "--subject=same tree", f"--tree=ref={first}",
                        repo=src).strip()
    data = (src / "objects" / second[:2] / f"{second[2:]}.commit").read_bytes()
    before = _snapshot(remote)
    client = RawClient()
    client.hello(remote)
    client.send_object(ObjectType.COMMIT, second, Encoding.METADATA, data)
    client.send(FrameKind.UPDATE, b'{"refs":[{"ref":"main","old":null,"new":"%s"}]}' % second.encode())
    client.send(FrameKind.COMMIT)
    message = client.error()
    assert f"commit {second} is incomplete" in message
    assert _snapshot(remote) == before
    _fscks(remote)
    do_push(src, remote, "main")
    assert run_ostree("rev-parse", "main", repo=remote).strip() == second
    _fscks(remote)


def test_a_partial_commit_marked_during_the_check_makes_it_walk_again(tmp_path: Path) -> None:
    """The markers are looked at again after the checks: a subpath pull that marks its
    commit (and publishes its root dirtree) while a push is being checked makes the
    check run again, walking, and refuse what it trusted."""
    from pyostree.errors import PushError
    from pyostree.receive.server import CompletenessCheck
    from pyostree.repo import Repo

    src, remote, first = _subpath_pulled(tmp_path)
    second = run_ostree("commit", "--branch=main", "--subject=same tree", f"--tree=ref={first}",
                        repo=src).strip()
    run_ostree("pull-local", "--commit-metadata-only", str(src), second, repo=remote)
    marker = remote / "state" / f"{first}.commitpartial"
    marker.rename(tmp_path / "marker")  # as if the pull had not marked it yet
    (remote / "state" / f"{second}.commitpartial").unlink()
    repo = Repo.open(remote)
    txn = repo.transaction()
    txn.begin()
    try:
        check = CompletenessCheck(repo, txn)
        assert check.trust_present
        check.check(second)  # the root dirtree in objects/ is trusted
        (tmp_path / "marker").rename(marker)  # the pull marks its commit meanwhile
        with pytest.raises(PushError, match=f"commit {second} is incomplete"):
            check.confirm()
    finally:
        txn.abort()


def test_refs_to_one_commit_check_it_once(tmp_path: Path) -> None:
    """An UPDATE of many refs to one commit (and of a second commit sharing its tree)
    checks the commit once and reads each dirtree once, walked or not."""
    src, remote, first = _subpath_pulled(tmp_path)
    run_ostree("pull-local", str(src), first, repo=remote)  # first is complete now
    trees = len(list((remote / "objects").rglob("*.dirtree")))
    # ... but the repo holds a partial commit: present dirtrees are walked
    meta_only = commit(src, make_tree(tmp_path / "tree3", seed=3), branch="meta")
    run_ostree("pull", "--commit-metadata-only", "origin", "meta", repo=remote)
    assert (remote / "state" / f"{meta_only}.commitpartial").exists()
    other = run_ostree("commit", "--branch=other", "--subject=same tree", f"--tree=ref={first}",
                       repo=src).strip()
    data = (src / "objects" / other[:2] / f"{other[2:]}.commit").read_bytes()
    client = RawClient("-v")
    client.hello(remote)
    client.send_object(ObjectType.COMMIT, other, Encoding.METADATA, data)
    refs = [b'{"ref":"r%d","old":null,"new":"%s"}' % (i, first.encode()) for i in range(50)]
    refs.append(b'{"ref":"other","old":null,"new":"%s"}' % other.encode())
    client.send(FrameKind.UPDATE, b'{"refs":[%s]}' % b",".join(refs))
    client.send(FrameKind.COMMIT)
    assert client.reader.expect(FrameKind.DONE)
    assert client.proc.stdin and client.proc.stderr
    client.proc.stdin.close()
    assert client.proc.wait(timeout=30) == 0
    log = client.proc.stderr.read().decode()
    checked = [line for line in log.splitlines() if "is complete" in line]
    assert len(checked) == 2, log
    assert f"commit {first} is complete ({trees} dirtrees read)" in log  # walked: partial repo
    assert f"commit {other} is complete (0 dirtrees read)" in log
    _fscks(remote)


def test_oversized_frames_refused_before_reading(remote: Path) -> None:
    before = _snapshot(remote)
    client = RawClient()
    client.hello(remote)
    # A 1 GiB DATA frame header: the receiver must not try to buffer it.
    client.send_raw(struct.pack(">BI", int(FrameKind.DATA), 1 << 30))
    assert "exceeds the limit" in client.error()
    client = RawClient()
    client.send_raw(struct.pack(">BI", int(FrameKind.HELLO), (1 << 20) + 1))
    assert "exceeds the limit" in client.error()
    assert _snapshot(remote) == before


def test_metadata_size_bound(remote: Path) -> None:
    client = RawClient()
    client.hello(remote)
    header = ObjectHeader(ObjectType.DIR_TREE, "00" * 32, Encoding.METADATA, 200 << 20)
    client.send(FrameKind.OBJECT, encode_object_header(header))
    assert "exceeds" in client.error()


def test_more_bytes_than_announced(remote: Path) -> None:
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    stream = header.framed() + b"x" * 100
    client = RawClient()
    client.hello(remote)
    client.send_object(ObjectType.FILE, hashlib.sha256(stream).hexdigest(), Encoding.CONTENT, stream, size=50)
    assert "more than" in client.error()


def test_zstd_frame_declaring_huge_output(remote: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    client = RawClient()
    client.send(FrameKind.HELLO, b'{"magic":"%s","versions":[1],"compression":["zstd"]}' % MAGIC.encode())
    client.reader.expect(FrameKind.WELCOME)
    client.send(FrameKind.OPEN, b'{"repo":"%s"}' % str(remote).encode())
    client.reader.expect(FrameKind.REPO)
    bomb = zstandard.ZstdCompressor().compress(b"\0" * (8 << 20))
    header = ObjectHeader(ObjectType.FILE, "00" * 32, Encoding.CONTENT, 8 << 20)
    client.send(FrameKind.OBJECT, encode_object_header(header))
    client.send(FrameKind.DATA, b"\x01" + bomb)
    assert "at most 1 MiB" in client.error()


def test_handshake_checks(remote: Path) -> None:
    client = RawClient()
    client.send(FrameKind.HELLO, b'{"magic":"something else","versions":[1]}')
    assert "not a pyostree push client" in client.error()
    client = RawClient()
    client.send(FrameKind.HELLO, b'{"magic":"%s","versions":[99]}' % MAGIC.encode())
    assert "no common protocol version" in client.error()
    client = RawClient()
    client.send(FrameKind.HELLO, b"[1, 2")
    assert "not valid JSON" in client.error()
    client = RawClient()
    client.send_raw(b"\x63\x00\x00\x00\x00")
    assert "unknown frame kind" in client.error()


def _hello_v3(client: RawClient, repo: Path, refs: object = None) -> None:
    import json

    client.send(FrameKind.HELLO, b'{"magic":"%s","versions":[1,2,3],"compression":[]}' % MAGIC.encode())
    client.reader.expect(FrameKind.WELCOME)
    opening: Dict[str, object] = {"repo": str(repo)}
    if refs is not None:
        opening["refs"] = refs
    client.send(FrameKind.OPEN, json.dumps(opening).encode())


TOO_LONG = [f"{index:04d}/" + "x" * 300 for index in range(900)]  # within the count, over the bytes
HOSTILE_REF_REQUESTS = [
    ({"refs": "main"}, "must be a list"),
    ({"refs": ["main"] * 1025}, "at most 1024"),
    ({"refs": [1]}, "must hold strings"),
    ({"refs": ["../main"]}, "invalid ref name"),
    ({"refs": ["a" * 64]}, "looks like a checksum"),
    ({"refs": TOO_LONG}, "bytes of refs"),
    ({}, "must be a list"),
]


@pytest.mark.parametrize(("request_value", "message"), HOSTILE_REF_REQUESTS)
def test_hostile_ref_requests(remote: Path, request_value: Dict[str, object], message: str) -> None:
    """v3 REFS frames (and OPEN's refs) ask for a bounded list of valid head names."""
    import json

    client = RawClient()
    _hello_v3(client, remote)
    assert client.reader.expect(FrameKind.REPO)
    client.send(FrameKind.REFS, json.dumps(request_value).encode())
    assert message in client.error()
    if request_value:
        client = RawClient()
        _hello_v3(client, remote, request_value["refs"])
        assert message in client.error()


def test_refs_frames_only_from_v3(remote: Path) -> None:
    client = RawClient()
    client.send(FrameKind.HELLO, b'{"magic":"%s","versions":[1,2],"compression":[]}' % MAGIC.encode())
    client.reader.expect(FrameKind.WELCOME)
    client.send(FrameKind.OPEN, b'{"repo":"%s","refs":["main"]}' % str(remote).encode())
    import json

    assert set(json.loads(client.reader.expect(FrameKind.REPO).payload)["refs"]) == {"main"}
    client.send(FrameKind.REFS, b'{"refs":["main"]}')
    assert "got REFS" in client.error()
    client = RawClient()
    _hello_v3(client, remote)
    client.send_raw(struct.pack(">BI", int(FrameKind.REFS), (512 << 10) + 1))
    assert "exceeds the limit" in client.error()


def test_refs_asked_per_session_are_bounded(remote: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each name asked is a file lookup: a session asks for at most REFS_ASKED_LIMIT."""
    import io

    from pyostree.receive import ReceiveConfig, serve
    from pyostree.receive import server as server_module
    from pyostree.transport.wire import ProtocolError

    monkeypatch.setattr(server_module, "REFS_ASKED_LIMIT", 3000)
    frames = io.BytesIO()
    writer = FrameWriter(frames)
    writer.write_json(FrameKind.HELLO, {"magic": MAGIC, "versions": [3], "compression": []})
    writer.write_json(FrameKind.OPEN, {"repo": str(remote), "refs": [f"a{i}" for i in range(1000)]})
    for batch in range(3):
        writer.write_json(FrameKind.REFS, {"refs": [f"b{batch}/{i}" for i in range(1000)]})
    writer.flush()
    answers = io.BytesIO()
    with pytest.raises(ProtocolError, match="at most 3000 refs"):
        serve(io.BytesIO(frames.getvalue()), answers, ReceiveConfig())
    reader = FrameReader(io.BytesIO(answers.getvalue()))
    kinds = []
    frame = reader.read()
    while frame is not None:
        kinds.append(frame.kind)
        frame = reader.read()
    assert kinds == [FrameKind.WELCOME, FrameKind.REPO, FrameKind.REFS_REPLY, FrameKind.REFS_REPLY,
                     FrameKind.ERROR]


def test_root_confines_repositories(tmp_path: Path, remote: Path) -> None:
    root = tmp_path / "srv"
    root.mkdir()
    inside = init(root / "ok", "archive")
    (root / "sneaky").symlink_to(remote)
    for request in (str(remote), "../remote", "sneaky", "ok/../../remote"):
        client = RawClient("--root", str(root))
        client.send(FrameKind.HELLO, b'{"magic":"%s","versions":[1]}' % MAGIC.encode())
        client.reader.expect(FrameKind.WELCOME)
        client.send(FrameKind.OPEN, b'{"repo":"%s"}' % request.encode())
        assert "outside the allowed root" in client.error()
    client = RawClient("--root", str(root))
    assert client.hello(Path("ok"))["refs"] == {}
    client.send(FrameKind.ABORT)
    assert client.proc.wait(timeout=30) == 0
    assert inside.exists()


def test_have_query_answers_and_bounds(remote: Path) -> None:
    client = RawClient()
    info = client.hello(remote)
    main = str(info["refs"]["main"])  # type: ignore[index]
    client.send(FrameKind.HAVE, encode_have([(main, ObjectType.COMMIT), ("00" * 32, ObjectType.COMMIT)]))
    reply = client.reader.expect(FrameKind.HAVE_REPLY)
    assert reply.payload == b"\x01\x00"
    client.send(FrameKind.HAVE, b"\x04" + b"\x00" * 31)  # not a multiple of 33
    assert "multiple of 33" in client.error()


@pytest.mark.parametrize("objtype", [5, 7, 8, 9, 0, 200])
def test_unpushable_object_types(remote: Path, objtype: int) -> None:
    """Only file/dirtree/dirmeta/commit/commitmeta travel. Object names are 32 raw bytes,
    so no path text from the client ever reaches the filesystem."""
    before = _snapshot(remote)
    client = RawClient()
    client.hello(remote)
    client.send(FrameKind.OBJECT, struct.pack(">B32sBQ", objtype, b"\0" * 32, 0, 10))
    message = client.error()
    assert "cannot be pushed" in message or "unknown object type" in message
    assert _snapshot(remote) == before


def test_wrong_encoding_for_type(remote: Path) -> None:
    client = RawClient()
    client.hello(remote)
    header = ObjectHeader(ObjectType.COMMIT, "00" * 32, Encoding.CONTENT, 10)
    client.send(FrameKind.OBJECT, encode_object_header(header))
    assert "METADATA encoding" in client.error()


def _filez(header: FileHeader, payload: bytes, size: Optional[int] = None) -> bytes:
    import zlib

    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflater.compress(payload) + deflater.flush()
    return header.to_archive_bytes(len(payload) if size is None else size) + body


HOSTILE_FILEZ = [
    ("wrong-name", "checksum"), ("bomb", "inflates beyond"), ("trailing", "trailing"),
    ("short", "compressed payload is"), ("truncated", "truncated"), ("symlink-data", "data after"),
]
"""(case, what the receiver's error says) for :func:`hostile_filez`."""


def hostile_filez(case: str) -> Tuple[str, bytes]:
    """(announced checksum, ``.filez`` bytes) of one hostile content object."""
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    payload = b"A" * 100_000
    name = hashlib.sha256(header.framed() + payload).hexdigest()
    if case == "wrong-name":
        return name, _filez(header, b"B" * 100_000)
    if case == "bomb":
        return name, _filez(header, b"\0" * (8 << 20), size=len(payload))
    if case == "trailing":
        return name, _filez(header, payload) + b"junk"
    if case == "short":
        return name, _filez(header, payload, size=len(payload) + 5)
    if case == "truncated":
        return name, _filez(header, payload)[:-20]
    if case == "symlink-data":
        link = FileHeader(uid=0, gid=0, mode=0o120777, symlink_target="x")
        return hashlib.sha256(link.framed()).hexdigest(), link.to_archive_bytes(0) + b"\x03\x00"
    raise ValueError(case)


@pytest.mark.parametrize("remote_mode", ["archive", "bare-user"])
@pytest.mark.parametrize(("case", "message"), HOSTILE_FILEZ)
def test_hostile_filez(tmp_path: Path, remote_mode: str, case: str, message: str) -> None:
    dst = init(tmp_path / "dst", remote_mode)
    before = _snapshot(dst)
    name, data = hostile_filez(case)
    client = RawClient(ALL_MODES)
    client.hello(dst)
    client.send_object(ObjectType.FILE, name, Encoding.FILEZ, data)
    assert message in client.error()
    assert _snapshot(dst) == before
    assert not _staged_names(dst)


def test_deeply_nested_json_is_a_protocol_error(remote: Path) -> None:
    client = RawClient()
    client.send(FrameKind.HELLO, b"[" * 500_000 + b"]" * 500_000)
    assert "not valid JSON" in client.error()
    assert client.proc.stderr is not None
    assert b"Traceback" not in client.proc.stderr.read()


# ---------------------------------------------------------------------------- issue 13


def _fsck_both(repo: Path) -> None:
    """``ostree fsck`` and our own fsck, both clean."""
    import subprocess
    import sys

    run_ostree("fsck", repo=repo)
    ours = subprocess.run([sys.executable, "-m", "pyostree", "fsck", f"--repo={repo}"],
                          capture_output=True, text=True)
    assert ours.returncode == 0, ours.stdout + ours.stderr


def _update(ref: str, old: Optional[str], new: str) -> bytes:
    import json

    return json.dumps({"refs": [{"ref": ref, "old": old, "new": new}]}).encode()


def _tree_top(tmp_path: Path) -> Tuple[str, Dict[Tuple[str, ObjectType], bytes]]:
    """A commit of another repo, and its commit, root dirtree and root dirmeta bytes (the
    files and subdirectories the dirtree names are in no repo the tests push to)."""
    from pyostree.repo import Repo

    src = init(tmp_path / "elsewhere", "archive")
    checksum = commit(src, make_tree(tmp_path / "elsewheretree", seed=11), subject="half sent")
    repo = Repo.open(src)
    top = repo.load_commit(checksum)
    names = [(top.root_meta, ObjectType.DIR_META), (top.root_tree, ObjectType.DIR_TREE),
             (checksum, ObjectType.COMMIT)]
    return checksum, {name: repo.read_metadata_bytes(*name) for name in names}


def test_an_incomplete_push_leaves_nothing_another_writer_publishes(remote: Path, tmp_path: Path) -> None:
    """A session sends a dirtree and a commit whose files it never sends, gets "incomplete";
    the next writers of this boot (libostree's ``ostree commit``, ``pyostree commit``)
    resume its staging dir. None may publish that commit: a later session's ref move to
    it is refused, and both fscks stay clean."""
    checksum, objects = _tree_top(tmp_path)
    main = (remote / "refs" / "heads" / "main").read_text().strip()
    client = RawClient()
    client.hello(remote)
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    kept = header.framed() + b"a verified file: the staging dir is kept for a resume\n"
    client.send_object(ObjectType.FILE, hashlib.sha256(kept).hexdigest(), Encoding.CONTENT, kept)
    for (name, objtype), data in objects.items():
        client.send_object(objtype, name, Encoding.METADATA, data)
    client.send(FrameKind.UPDATE, _update("main", main, checksum))
    client.send(FrameKind.COMMIT)
    assert "incomplete" in client.error()
    # The verified file keeps the staging dir for a resume, unless the last early-publishing
    # round (which overlaps the check at COMMIT) moved it into objects/ before the abort:
    # then nothing is left to resume. Either way no unchecked metadata stays where a
    # writer of this boot would publish it.
    kept_checksum = hashlib.sha256(kept).hexdigest()
    staging = [p for p in (remote / "tmp").iterdir() if p.name.startswith("staging-") and p.is_dir()]
    if staging:
        assert not any((p / "unchecked").exists() for p in staging)
        assert not any(any(p.glob(f"{checksum[:2]}/{checksum[2:]}.*")) for p in staging)
    else:
        assert (remote / "objects" / kept_checksum[:2] / f"{kept_checksum[2:]}.filez").exists()

    local = make_tree(tmp_path / "local", seed=3)
    commit(remote, local, "ostree-side", "by ostree")
    import subprocess
    import sys

    ours = subprocess.run([sys.executable, "-m", "pyostree", "commit", f"--repo={remote}",
                           "-b", "pyostree-side", "-s", "by pyostree", str(local)],
                          capture_output=True, text=True)
    assert ours.returncode == 0, ours.stderr
    assert not (remote / "objects" / checksum[:2] / f"{checksum[2:]}.commit").exists()
    _fsck_both(remote)

    later = RawClient()
    later.hello(remote)
    later.send(FrameKind.UPDATE, _update("stolen", None, checksum))
    later.send(FrameKind.COMMIT)
    assert "incomplete" in later.error()
    assert not (remote / "refs" / "heads" / "stolen").exists()
    _fsck_both(remote)


def test_a_killed_receiver_leaves_no_unchecked_metadata_where_libostree_publishes(
        remote: Path, tmp_path: Path) -> None:
    """kill -9 after the dirtree and commit are staged (no abort runs): the staging dir
    holds them only under unchecked/, which ``ostree commit`` resuming it never publishes."""
    import signal

    checksum, objects = _tree_top(tmp_path)
    client = RawClient()
    client.hello(remote)
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    kept = header.framed() + b"staged before the kill\n"
    client.send_object(ObjectType.FILE, hashlib.sha256(kept).hexdigest(), Encoding.CONTENT, kept)
    for (name, objtype), data in objects.items():
        client.send_object(objtype, name, Encoding.METADATA, data)
    client.send(FrameKind.HAVE, encode_have([(checksum, ObjectType.COMMIT)]))
    assert client.reader.expect(FrameKind.HAVE_REPLY).payload == b"\x01"  # staged: present
    client.proc.send_signal(signal.SIGKILL)
    client.proc.wait(timeout=30)
    staged = [p for p in (remote / "tmp").glob("staging-*/??/*") if p.suffix in (".dirtree", ".commit")]
    assert not staged, staged
    commit(remote, make_tree(tmp_path / "after", seed=5), "after-kill", "by ostree")
    assert not (remote / "objects" / checksum[:2] / f"{checksum[2:]}.commit").exists()
    _fsck_both(remote)


def _commitmeta_path(repo: Path, checksum: str) -> Path:
    return repo / "objects" / checksum[:2] / f"{checksum[2:]}.commitmeta"


def _signed_main(remote: Path) -> Tuple[str, bytes]:
    """main's commit given detached metadata (as a signature would be); (commit, bytes)."""
    from pyostree.objects import CommitMeta

    main = (remote / "refs" / "heads" / "main").read_text().strip()
    original = CommitMeta({"test.signature": ("s", "the publisher's")}).to_bytes()
    path = _commitmeta_path(remote, main)
    path.write_bytes(original)
    path.chmod(0o644)
    return main, original


def _forged() -> bytes:
    from pyostree.objects import CommitMeta

    return CommitMeta({"test.signature": ("s", "forged")}).to_bytes()


def _done(client: RawClient) -> Dict[str, object]:
    import json

    frame = client.reader.expect(FrameKind.DONE)
    assert client.proc.stdin
    client.proc.stdin.close()
    assert client.proc.wait(timeout=30) == 0
    return dict(json.loads(frame.payload))


def test_commitmeta_of_a_commit_no_ref_moves_to_is_not_published(remote: Path) -> None:
    """A session that moves no ref cannot replace (strip, forge) any commit's signatures."""
    main, original = _signed_main(remote)
    client = RawClient()
    client.hello(remote)
    client.send_object(ObjectType.COMMIT_META, main, Encoding.METADATA, _forged())
    client.send(FrameKind.UPDATE, b'{"refs":[]}')
    client.send(FrameKind.COMMIT)
    _done(client)
    assert _commitmeta_path(remote, main).read_bytes() == original
    _fsck_both(remote)


def test_commitmeta_is_not_replaced_unless_the_receiver_allows_it(remote: Path) -> None:
    """Moving a ref to a commit does not let its existing commitmeta be replaced, unless
    ``--allow-commitmeta-replace``; the same bytes again are fine either way."""
    main, original = _signed_main(remote)
    before = _snapshot(remote)
    client = RawClient()
    client.hello(remote)
    client.send_object(ObjectType.COMMIT_META, main, Encoding.METADATA, _forged())
    client.send(FrameKind.UPDATE, _update("other", None, main))
    client.send(FrameKind.COMMIT)
    assert "detached metadata" in client.error()
    assert _snapshot(remote) == before

    same = RawClient()
    same.hello(remote)
    same.send_object(ObjectType.COMMIT_META, main, Encoding.METADATA, original)
    same.send(FrameKind.UPDATE, _update("other", None, main))
    same.send(FrameKind.COMMIT)
    _done(same)
    assert _commitmeta_path(remote, main).read_bytes() == original

    allowed = RawClient("--allow-commitmeta-replace")
    allowed.hello(remote)
    allowed.send_object(ObjectType.COMMIT_META, main, Encoding.METADATA, _forged())
    allowed.send(FrameKind.UPDATE, _update("third", None, main))
    allowed.send(FrameKind.COMMIT)
    _done(allowed)
    assert _commitmeta_path(remote, main).read_bytes() == _forged()
    _fsck_both(remote)


def _open_error(client: RawClient, repo: Path) -> str:
    import json

    client.send(FrameKind.HELLO, b'{"magic":"%s","versions":[1],"compression":[]}' % MAGIC.encode())
    assert client.reader.expect(FrameKind.WELCOME)
    client.send(FrameKind.OPEN, b'{"repo":"%s"}' % str(repo).encode())
    frame = client.reader.read()
    assert frame is not None and frame.kind is FrameKind.ERROR, frame  # not REPO
    assert client.proc.stdin
    client.proc.stdin.close()
    assert client.proc.wait(timeout=30) == 1
    return str(json.loads(frame.payload)["message"])


@pytest.mark.parametrize("mode", ["bare", "bare-user"])
def test_bare_repos_are_refused_by_default(tmp_path: Path, mode: str) -> None:
    dst = init(tmp_path / "dst", mode)
    before = _snapshot(dst)
    message = _open_error(RawClient(), dst)
    assert f"does not accept {mode} repos" in message and "--allow-modes" in message
    assert _snapshot(dst) == before
    archive = init(tmp_path / "archive", "archive")
    assert "does not accept archive repos" in _open_error(RawClient("--allow-modes=bare"), archive)


def test_allow_modes_must_name_modes() -> None:
    client = RawClient("--allow-modes=archive,bogus")
    assert client.proc.wait(timeout=30) == 2
    assert client.proc.stderr is not None
    assert client.proc.stderr.read().decode().startswith("error: --allow-modes: unknown mode")


def _privileged(case: str) -> Tuple[str, bytes]:
    """(checksum, CONTENT bytes) of a setuid, setgid or capability file of this user."""
    import os

    xattrs: Tuple[Tuple[bytes, bytes], ...] = ()
    mode = 0o100755
    if case == "setuid":
        mode = 0o104755
    elif case == "setgid":
        mode = 0o102755
    else:  # a VFS_CAP_REVISION_2 cap_setuid+ep
        xattrs = ((b"security.capability\0", bytes.fromhex("0100000280000000000000000000000000000000")),)
    header = FileHeader(uid=os.getuid(), gid=os.getgid(), mode=mode, xattrs=xattrs)
    data = header.framed() + b"#!/bin/sh\nid\n"
    return hashlib.sha256(data).hexdigest(), data


@pytest.mark.parametrize("case", ["setuid", "setgid", "capability"])
def test_privileged_files_refused_in_a_bare_repo(tmp_path: Path, case: str) -> None:
    dst = init(tmp_path / "dst", "bare")
    before = _snapshot(dst)
    name, data = _privileged(case)
    client = RawClient("--allow-modes=bare")
    client.hello(dst)
    client.send_object(ObjectType.FILE, name, Encoding.CONTENT, data)
    message = client.error()
    assert ("setuid/setgid" if case != "capability" else "security.capability") in message
    assert _snapshot(dst) == before
    assert not _staged_names(dst)


def test_privileged_files_accepted_when_allowed(tmp_path: Path) -> None:
    import os
    import stat

    dst = init(tmp_path / "dst", "bare")
    name, data = _privileged("setuid")
    client = RawClient("--allow-modes=bare", "--allow-privileged-files")
    client.hello(dst)
    client.send_object(ObjectType.FILE, name, Encoding.CONTENT, data)
    client.send(FrameKind.UPDATE, b'{"refs":[]}')
    client.send(FrameKind.COMMIT)
    _done(client)
    planted = dst / "objects" / name[:2] / f"{name[2:]}.file"
    assert os.stat(planted).st_mode & stat.S_ISUID
    _fsck_both(dst)


@pytest.mark.parametrize("via", ["receive", "sftp"])
def test_a_push_leaves_the_commitmeta_of_commits_it_moves_no_ref_to(tmp_path: Path, via: str) -> None:
    """The parent of the pushed commit has detached metadata on both sides, different
    (the server signed it): the push sends and publishes only the new commit's."""
    from test_push_support import do_push

    src = init(tmp_path / "src", "archive")
    tree = make_tree(tmp_path / "tree")
    first = commit(src, tree, "main", "one", "--add-detached-metadata-string=who=client")
    dst = init(tmp_path / "dst", "archive")
    do_push(src, dst, "main", via=via)
    signed = _commitmeta_path(dst, first)
    from pyostree.objects import CommitMeta

    server_side = CommitMeta({"who": ("s", "server")}).to_bytes()
    signed.write_bytes(server_side)
    (tree / "new-file").write_bytes(b"two\n")
    second = commit(src, tree, "main", "two", "--add-detached-metadata-string=who=client")
    do_push(src, dst, "main", via=via)
    assert (dst / "refs" / "heads" / "main").read_text().strip() == second
    assert signed.read_bytes() == server_side
    assert _commitmeta_path(dst, second).read_bytes() == _commitmeta_path(src, second).read_bytes()
    _fsck_both(dst)
RSS_BOUND_KIB = 128 << 10
"""Peak RSS a receiver may reach on the header-cache sessions below: its own ~40 MB, the
stager's 32 MiB of read-ahead and a few 1 MiB bodies. Before the cache was bounded by
bytes, 150 cached 1 MiB headers took it to 489 MiB (75 took a staging worker to 250)."""

_PEAK_RSS = """
import resource, subprocess, sys, threading
from pyostree.transport.wire import FrameKind, FrameReader
# Like a client: the input stays open until the receiver's ERROR arrives (it must refuse
# the session itself, not just stop at the end of its input), then closes.
# The receiver starts first: a fork of this process holding the session would count it.
proc = subprocess.Popen([sys.executable, "-m", "pyostree", "receive", *sys.argv[2:]],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
with open(sys.argv[1], "rb") as session:
    data = session.read()
def send():
    try:
        proc.stdin.write(data)
        proc.stdin.flush()
    except (BrokenPipeError, ValueError):
        pass  # it stopped reading: expected once it refused the session
sender = threading.Thread(target=send)
sender.start()
reader = FrameReader(proc.stdout)
frame = reader.read()
while frame is not None and frame.kind is not FrameKind.ERROR:
    frame = reader.read()
proc.stdout.close()
sender.join()
proc.stdin.close()
status = proc.wait(timeout=60)
stderr = proc.stderr.read()
print(status, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.stderr.write(stderr.decode("utf-8", "replace"))
"""


def _big_header_session(repo: Path, count: int, *, compress: bool) -> bytes:
    """HELLO (v2), OPEN, then ``count`` OBJECTS frames of one honest ``.filez`` each whose
    header carries its own ~1 MiB xattr (every header differs), then one whose checksum
    is wrong. zstd makes the megabyte of each frame ~140 bytes on the wire."""
    import json
    import zlib

    import zstandard

    from pyostree.transport.wire import encode_batch_entry

    def frame(kind: FrameKind, payload: bytes) -> bytes:
        return struct.pack(">BI", int(kind), len(payload)) + payload

    hello = {"magic": MAGIC, "versions": [2], "compression": ["zstd"] if compress else []}
    out = [frame(FrameKind.HELLO, json.dumps(hello).encode()),
           frame(FrameKind.OPEN, json.dumps({"repo": str(repo)}).encode())]
    packer = zstandard.ZstdCompressor()
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    empty = deflater.compress(b"") + deflater.flush()
    for index in range(count + 1):
        value = index.to_bytes(8, "big") + b"\0" * ((1 << 20) - 1200)
        header = FileHeader(uid=0, gid=0, mode=0o100644, xattrs=((b"user.big\0", value),))
        checksum = hashlib.sha256(header.framed()).hexdigest() if index < count else "00" * 32
        body = encode_batch_entry(ObjectType.FILE, checksum, Encoding.FILEZ,
                                  header.to_archive_bytes(0) + empty)
        out.append(frame(FrameKind.OBJECTS, b"\x01" + packer.compress(body) if compress else b"\x00" + body))
    return b"".join(out)


@pytest.mark.parametrize(("compress", "count", "extra"), [
    (True, 150, ()),                 # decoded and verified by the receiver itself
    (False, 150, ("--workers", "2")),  # spliced whole into its staging worker processes
])
def test_big_xattr_headers_do_not_blow_up_the_receiver(
        tmp_path: Path, compress: bool, count: int, extra: Tuple[str, ...]) -> None:
    """Issue 13, item 2: a ``.filez`` header cache counted entries, not bytes, and kept a
    header before its object's checksum was checked. The receiver's peak RSS (and its
    workers', all its waited-for children: ``RUSAGE_CHILDREN`` of a fresh parent) stays
    bounded, and the session is refused."""
    import subprocess
    import sys

    from pyostree.fsck import fsck
    from pyostree.repo import Repo

    dst = init(tmp_path / "dst", "archive")
    before = _snapshot(dst)
    session = tmp_path / "session"
    session.write_bytes(_big_header_session(dst, count, compress=compress))
    if compress:
        assert session.stat().st_size < 64 << 10  # a small wire, a big receiver
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(session), *extra],
                          capture_output=True, text=True, timeout=600, check=True)
    status, peak_kib = (int(word) for word in done.stdout.split())
    assert status == 1 and "corrupted file object: checksum expected=" in done.stderr, done.stderr
    assert peak_kib < RSS_BOUND_KIB, f"receiver peaked at {peak_kib >> 10} MiB"
    assert _snapshot(dst)["refs"] == before["refs"]  # verified files may be published early
    run_ostree("fsck", repo=dst)
    assert fsck(Repo.open(dst)).ok
_NAMES = st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
                 min_size=1, max_size=12).filter(lambda name: name not in (".", ".."))
_DIGESTS = st.binary(min_size=32, max_size=32)


@given(st.dictionaries(_NAMES, _DIGESTS, max_size=8),
       st.dictionaries(_NAMES, st.tuples(_DIGESTS, _DIGESTS), max_size=8))
@settings(max_examples=150, deadline=None)
def test_completeness_check_reads_dirtrees_as_the_codec_does(
        files: Dict[str, bytes], dirs: Dict[str, Tuple[bytes, bytes]]) -> None:
    """The check's offset-by-offset reader of a dirtree gives the entries the general
    codec decodes, and raises only PushError for bytes that do not add up."""
    from pyostree.errors import PushError
    from pyostree.objects import DirEntry, DirTree, FileEntry
    from pyostree.receive.server import _dirtree_entries

    dirs = {name: value for name, value in dirs.items() if name not in files}
    tree = DirTree.from_entries([FileEntry(n, d.hex()) for n, d in files.items()],
                                [DirEntry(n, t.hex(), m.hex()) for n, (t, m) in dirs.items()])
    data = tree.to_bytes()
    got_files, got_dirs = _dirtree_entries(data, "x")
    assert [(n.decode(), d.hex()) for n, d in got_files] == [(e.name, e.checksum) for e in tree.files]
    assert [(n.decode(), t.hex(), m.hex()) for n, t, m in got_dirs] == [
        (e.name, e.tree_checksum, e.meta_checksum) for e in tree.dirs]
    for cut in range(0, len(data), max(1, len(data) // 16)):
        for broken in (data[:cut], data[:cut] + bytes([data[cut] ^ 0xFF]) + data[cut + 1:]):
            try:
                rows_f, rows_d = _dirtree_entries(broken, "x")
                list(rows_f), list(rows_d)
            except PushError:
                pass


_PEAK_RSS_WRAPPER = """
import resource, subprocess, sys
code = subprocess.call([sys.executable, "-m", "pyostree", "receive"])
print("peak-rss-kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def _big_dirtree(size: int, file_checksum: bytes) -> bytes:
    """A normal-form dirtree of about ``size`` bytes: files only, all one content."""
    from pyostree.gvariant._framing import offset_width, pack_table

    parts: List[bytes] = []
    ends: List[int] = []
    pos = 0
    while pos < size:
        name = b"f%019d" % len(ends)
        parts.append(name + b"\0" + file_checksum + bytes([len(name) + 1]))
        pos += len(parts[-1])
        ends.append(pos)
    files = b"".join(parts) + pack_table(pos, ends)
    width = next(w for w in (1, 2, 4, 8) if offset_width(len(files) + w) == w)
    return files + len(files).to_bytes(width, "little")


def test_a_big_dirtree_is_received_without_being_held(tmp_path: Path) -> None:
    """A 48 MiB dirtree of 870k entries: staged as it arrives, checked on arrival and for
    completeness from its mapped file, without an object per entry: the receiver's peak
    stays below the dirtree's size (it was about ten times that)."""
    import subprocess
    import sys

    from pyostree.objects import DirMeta
    from pyostree.gvariant import encode

    remote = init(tmp_path / "remote", "archive")
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    content = header.framed() + b"x"
    file_checksum = hashlib.sha256(content).digest()
    tree = _big_dirtree(48 << 20, file_checksum)
    meta = DirMeta(0, 0, 0o40755).to_bytes()
    data = encode("(a{sv}aya(say)sstayay)", ({}, b"", [], "big", "", 0,
                                              hashlib.sha256(tree).digest(), hashlib.sha256(meta).digest()))
    checksum = hashlib.sha256(data).hexdigest()
    client = RawClient.__new__(RawClient)  # the receiver under a wrapper that reports its peak
    client.proc = subprocess.Popen([sys.executable, "-c", _PEAK_RSS_WRAPPER], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert client.proc.stdin and client.proc.stdout and client.proc.stderr
    client.writer = FrameWriter(client.proc.stdin)
    client.reader = FrameReader(client.proc.stdout)
    client.hello(remote)
    client.send_object(ObjectType.FILE, file_checksum.hex(), Encoding.CONTENT, content)
    client.send_object(ObjectType.DIR_META, hashlib.sha256(meta).hexdigest(), Encoding.METADATA, meta)
    client.send_object(ObjectType.DIR_TREE, hashlib.sha256(tree).hexdigest(), Encoding.METADATA, tree)
    client.send_object(ObjectType.COMMIT, checksum, Encoding.METADATA, data)
    size = len(tree)
    del tree
    client.send(FrameKind.UPDATE, b'{"refs":[{"ref":"big","old":null,"new":"%s"}]}' % checksum.encode())
    client.send(FrameKind.COMMIT)
    assert client.reader.expect(FrameKind.DONE)
    client.proc.stdin.close()
    assert client.proc.wait(timeout=120) == 0
    peak = int(client.proc.stderr.read().decode().split("peak-rss-kib")[1].split()[0]) * 1024
    assert peak < size, (peak, size)
    _fscks(remote)


@pytest.mark.parametrize("case", ["out of order", "wrong name", "short", "not normal"])
def test_a_big_hostile_dirtree_is_refused_and_not_staged(remote: Path, case: str) -> None:
    """The streamed path (dirtrees over 16 MiB) refuses what the in-memory one does, and
    leaves nothing under the dirtree's name."""
    tree = _big_dirtree(17 << 20, b"\x07" * 32)
    if case == "out of order":
        tree = tree.replace(b"f0000000000000000007\0", b"f0000000000000000009\0", 1)
    elif case == "not normal":
        tree = tree[:-1] + b"\xff"
    checksum = hashlib.sha256(tree).hexdigest()
    if case == "wrong name":
        checksum = "ab" * 32
    before = _snapshot(remote)
    client = RawClient()
    client.hello(remote)
    if case == "short":
        client.send_object(ObjectType.DIR_TREE, checksum, Encoding.METADATA, tree[:-100], size=len(tree))
    else:
        client.send_object(ObjectType.DIR_TREE, checksum, Encoding.METADATA, tree)
    message = client.error()
    expected = {"out of order": "out of order", "wrong name": "expected abab", "short": "announced",
                "not normal": "not normal form"}[case]
    assert expected in message
    assert _snapshot(remote) == before
    assert f"{checksum[2:]}.dirtree" not in _staged_names(remote)
