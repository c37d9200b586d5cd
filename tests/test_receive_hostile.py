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
from test_push_support import commit, init, make_tree, object_files, receive_process

from pyostree.objects import FileHeader
from pyostree.objects.types import ObjectType
from pyostree.receive.protocol import (
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
    client = RawClient()
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
