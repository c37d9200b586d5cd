"""Protocol v2: small objects travel whole, many to an OBJECTS frame. The receiver keeps
every v1 bound and check for them, refuses malformed batches with an ERROR (nothing
visible, nothing staged under a wrong name), and still speaks v1 to a v1 client."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostree_tool import needs_ostree, run_ostree
from test_push_support import ALL_MODES, commit, do_push, init, make_tree, object_files, ostree_fsck, rev_parse
from test_receive_fuzz import serve_or_refuse
from test_receive_hostile import (  # remote: the seeded remote fixture, shared
    HOSTILE_FILEZ, RawClient, _commit_bytes, _filez, _snapshot, _staged_names, hostile_filez, remote,
)

from pyostree.errors import PyOstreeError
from pyostree.objects import FileHeader
from pyostree.objects.types import ObjectType
from pyostree.receive import serve
from pyostree.transport.wire import (
    BATCH_ENTRY_SIZE,
    CHUNK_SIZE,
    MAGIC,
    MAX_DATA_SIZE,
    DataCodec,
    Encoding,
    FrameKind,
    SmallObject,
    decode_batch,
    decode_have_reply,
    decode_json,
    encode_batch_entry,
    encode_have,
)

pytestmark = needs_ostree


class V2Client(RawClient):
    """A raw client that negotiates protocol v2 (optionally with zstd)."""

    def hello_v2(self, repo: Path, *, zstd: bool = False) -> Dict[str, object]:
        compression = b'["zstd"]' if zstd else b"[]"
        self.send(FrameKind.HELLO, b'{"magic":"%s","versions":[1,2],"compression":%s}'
                  % (MAGIC.encode(), compression))
        self.send(FrameKind.OPEN, b'{"repo":"%s"}' % str(repo).encode())
        welcome = decode_json(self.reader.expect(FrameKind.WELCOME))
        assert welcome["version"] == 2
        assert welcome["compression"] == ("zstd" if zstd else None)
        return json.loads(self.reader.expect(FrameKind.REPO).payload)

    def send_batch(self, entries: List[bytes], flag: int = 0) -> None:
        self.send(FrameKind.OBJECTS, bytes([flag]) + b"".join(entries))

    def finish(self, refs: List[Dict[str, Optional[str]]]) -> Dict[str, object]:
        self.send(FrameKind.UPDATE, json.dumps({"refs": refs, "summary": False}).encode())
        self.send(FrameKind.COMMIT)
        return decode_json(self.reader.expect(FrameKind.DONE))

    def refused(self, ref: str, old: Optional[str], new: str) -> str:
        """UPDATE and COMMIT the receiver must refuse: its ERROR's message."""
        self.send(FrameKind.UPDATE, json.dumps(
            {"refs": [{"ref": ref, "old": old, "new": new}], "summary": False}).encode())
        self.send(FrameKind.COMMIT)
        return self.error()


def _content(index: int, size: int = 100) -> Tuple[str, bytes]:
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    payload = (b"%06d" % index) * (size // 6 + 1)
    data = header.framed() + payload[:size]
    return hashlib.sha256(data).hexdigest(), data


def _repo_entries(src: Path) -> Tuple[str, List[bytes]]:
    """Every object of ``src``'s main commit as OBJECTS entries, children first."""
    from pyostree.push.convert import read_whole_wire_object
    from pyostree.push.plan import order_children_first, reachable
    from pyostree.repo import Repo

    repo = Repo.open(src)
    head = repo.resolve_rev("main")
    entries = []
    for checksum, objtype in order_children_first(reachable(repo, head, set())):
        whole = read_whole_wire_object(repo, checksum, objtype, CHUNK_SIZE)
        assert whole is not None
        entries.append(encode_batch_entry(objtype, checksum, whole.encoding, whole.data))
    return head, entries


# -- honest sessions -------------------------------------------------------------------


@pytest.mark.parametrize("src_mode", ["archive", "bare-user"])
@pytest.mark.parametrize("dst_mode", ["archive", "bare-user"])
def test_a_push_of_whole_objects_between_modes(tmp_path: Path, src_mode: str, dst_mode: str) -> None:
    """The real client speaks v2: .filez (archive source) and content streams (bare
    source) staged from OBJECTS frames into archive and bare-user remotes."""
    src = init(tmp_path / "src", src_mode)
    head = commit(src, make_tree(tmp_path / "tree", files=60))
    dst = init(tmp_path / "dst", dst_mode)
    result = do_push(src, dst, via="receive")
    assert len(result.objects) > 60
    assert rev_parse(dst, "main") == head
    assert "no errors found" in ostree_fsck(dst)


def test_zstd_batches_and_several_frames(tmp_path: Path) -> None:
    """Metadata batches compressed as one zstd frame; entries spread over many frames."""
    pytest.importorskip("zstandard")
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=40))
    dst = init(tmp_path / "dst", "archive")
    head, entries = _repo_entries(src)
    codec = DataCodec(True)
    client = V2Client()
    client.hello_v2(dst, zstd=True)
    for start in range(0, len(entries), 7):
        client.send(FrameKind.OBJECTS, codec.encode(b"".join(entries[start:start + 7]), compress=True))
    done = client.finish([{"ref": "main", "old": None, "new": head}])
    assert done["objects"] == len(entries)
    assert rev_parse(dst, "main") == head
    assert "no errors found" in ostree_fsck(dst)


def test_v1_client_still_served(tmp_path: Path) -> None:
    """A client that only lists version 1 is answered with version 1 and pushes with
    OBJECT/DATA/END streams as before."""
    dst = init(tmp_path / "dst", "archive")
    client = RawClient()
    client.send(FrameKind.HELLO, b'{"magic":"%s","versions":[1],"compression":[]}' % MAGIC.encode())
    assert decode_json(client.reader.expect(FrameKind.WELCOME))["version"] == 1
    client.send(FrameKind.OPEN, b'{"repo":"%s"}' % str(dst).encode())
    client.reader.expect(FrameKind.REPO)
    sent = []
    for index in range(5):
        checksum, data = _content(index)
        client.send_object(ObjectType.FILE, checksum, Encoding.CONTENT, data)
        sent.append(checksum)
    assert V2Client.finish(client, [])["objects"] == 5  # type: ignore[arg-type]
    stored = {p.parent.name + p.stem for p in (dst / "objects").rglob("*.filez")}
    assert stored == set(sent)


def test_mixed_batches_streams_and_have(tmp_path: Path) -> None:
    """OBJECTS frames, OBJECT/DATA/END streams and HAVE queries interleave: a HAVE
    answers for every object sent before it."""
    dst = init(tmp_path / "dst", "archive")
    client = V2Client()
    client.hello_v2(dst)
    sent = []
    for index in range(30):
        checksum, data = _content(index, size=500 + index)
        sent.append(checksum)
        if index % 3 == 0:
            client.send_object(ObjectType.FILE, checksum, Encoding.CONTENT, data)
        else:
            client.send_batch([encode_batch_entry(ObjectType.FILE, checksum, Encoding.CONTENT, data)])
    client.send(FrameKind.HAVE, encode_have([(c, ObjectType.FILE) for c in sent]))
    reply = client.reader.expect(FrameKind.HAVE_REPLY)
    assert all(decode_have_reply(reply.payload, len(sent)))
    assert client.finish([])["objects"] == 30
    stored = {p.parent.name + p.stem for p in (dst / "objects").rglob("*.filez")}
    assert stored == set(sent)


def test_objects_already_present_or_resent_are_harmless(tmp_path: Path) -> None:
    """An object HAVE said is present, or one sent twice, is staged at most once more
    and never replaces the stored one."""
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=10))
    dst = init(tmp_path / "dst", "archive")
    do_push(src, dst, via="receive")
    before = object_files(dst)
    head, entries = _repo_entries(src)
    client = V2Client()
    client.hello_v2(dst)
    names = [(head, ObjectType.COMMIT)]
    client.send(FrameKind.HAVE, encode_have(names))
    assert client.reader.expect(FrameKind.HAVE_REPLY).payload == b"\x01"
    client.send_batch(entries + entries[:3])
    client.finish([])
    assert object_files(dst) == before
    assert "no errors found" in ostree_fsck(dst)


# -- hostile batches -------------------------------------------------------------------


def _entry_header(objtype: int, encoding: int, size: int, digest: bytes = b"\0" * 32) -> bytes:
    return struct.pack(">B32sBI", objtype, digest, encoding, size)


def _refused(remote: Path, payload: bytes, message: str, *, zstd: bool = False) -> None:
    before = _snapshot(remote)
    client = V2Client()
    client.hello_v2(remote, zstd=zstd)
    client.send(FrameKind.OBJECTS, payload)
    error = client.error()
    assert message in error, error
    assert _snapshot(remote) == before
    assert not _staged_names(remote)


def test_v1_client_cannot_send_objects_frames(remote: Path) -> None:
    checksum, data = _content(1)
    client = RawClient()
    client.hello(remote)
    client.send(FrameKind.OBJECTS, b"\x00" + encode_batch_entry(
        ObjectType.FILE, checksum, Encoding.CONTENT, data))
    assert "got OBJECTS" in client.error()


MALFORMED_BATCHES = [
    pytest.param(body, message, id=name) for name, body, message in [
        ("empty", b"", "empty OBJECTS frame"),
        ("truncated-header", b"\x01\x02\x03", "ends inside an entry header"),
        ("short-data", _entry_header(1, 1, 100) + b"x" * 99, "announces 100 bytes, 99 left"),
        ("huge-size", _entry_header(1, 1, 1 << 31), "announces"),
        ("encoding", _entry_header(1, 7, 0), "unknown object encoding 7"),
        ("type", _entry_header(99, 1, 0), "unknown object type 99"),
        ("tombstone", _entry_header(5, 0, 0), "cannot be pushed"),
        ("file-as-metadata", _entry_header(1, 0, 3) + b"abc", "CONTENT or FILEZ"),
        ("dirtree-as-filez", _entry_header(2, 2, 3) + b"abc", "METADATA encoding"),
        ("commit-as-content", _entry_header(4, 1, 3) + b"abc", "METADATA encoding"),
    ]
]
"""(OBJECTS body, what the receiver's ERROR says) of malformed batches."""


@pytest.mark.parametrize(("body", "message"), MALFORMED_BATCHES)
def test_malformed_batches(remote: Path, body: bytes, message: str) -> None:
    _refused(remote, b"\x00" + body, message)


def test_batch_after_good_objects_is_refused_whole(remote: Path) -> None:
    """Good objects before a malformed entry in the same frame never become visible."""
    entries = []
    for index in range(5):
        checksum, data = _content(index)
        entries.append(encode_batch_entry(ObjectType.FILE, checksum, Encoding.CONTENT, data))
    _refused(remote, b"\x00" + b"".join(entries) + b"\x01", "ends inside an entry header")


def test_oversized_objects_frame_refused_before_reading(remote: Path) -> None:
    client = V2Client()
    client.hello_v2(remote)
    client.send_raw(struct.pack(">BI", int(FrameKind.OBJECTS), MAX_DATA_SIZE + 1))
    assert "exceeds the limit" in client.error()


def test_raw_body_over_one_mib_refused(remote: Path) -> None:
    body = _entry_header(1, 1, CHUNK_SIZE) + b"x" * CHUNK_SIZE
    _refused(remote, b"\x00" + body, "exceeds")


def test_zstd_body_declaring_too_much_refused(remote: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    bomb = zstandard.ZstdCompressor().compress(b"\0" * (8 << 20))
    _refused(remote, b"\x01" + bomb, "at most 1 MiB", zstd=True)
    streamed = zstandard.ZstdCompressor(write_content_size=False).compress(b"\0" * 1000)
    _refused(remote, b"\x01" + streamed, "at most 1 MiB", zstd=True)


def test_unnegotiated_zstd_or_unknown_flag_refused(remote: Path) -> None:
    _refused(remote, b"\x01" + b"whatever", "unnegotiated encoding")
    _refused(remote, b"\x07" + b"whatever", "unnegotiated encoding")


def test_content_not_matching_its_name(remote: Path) -> None:
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    honest = hashlib.sha256(header.framed() + b"honest").hexdigest()
    entry = encode_batch_entry(ObjectType.FILE, honest, Encoding.CONTENT, header.framed() + b"forged")
    _refused(remote, b"\x00" + entry, "checksum")


def test_metadata_not_matching_its_name(remote: Path, tmp_path: Path) -> None:
    data = _commit_bytes(tmp_path)
    entry = encode_batch_entry(ObjectType.COMMIT, "ab" * 32, Encoding.METADATA, data)
    _refused(remote, b"\x00" + entry, "corrupted")


def test_non_normal_form_metadata_refused(remote: Path) -> None:
    data = b"\xff" * 7
    entry = encode_batch_entry(ObjectType.DIR_META, hashlib.sha256(data).hexdigest(),
                               Encoding.METADATA, data)
    before = _snapshot(remote)
    client = V2Client()
    client.hello_v2(remote)
    client.send(FrameKind.OBJECTS, b"\x00" + entry)
    assert client.error()
    assert _snapshot(remote) == before


REFUSAL_IDLE_TIMEOUT = "60"
"""``--idle-timeout`` of a receiver the test client waits on for an ERROR: one that wrongly
accepts the batch answers nothing, and the client would wait for the 600 s default (it
ends with an "idle timeout" message instead of the refusal); a minute is ample to refuse."""


@pytest.mark.parametrize("remote_mode", ["archive", "bare-user", "bare-user-only"])
@pytest.mark.parametrize(("case", "message"), HOSTILE_FILEZ)
def test_hostile_filez_in_a_batch(tmp_path: Path, remote_mode: str, case: str, message: str) -> None:
    dst = init(tmp_path / "dst", remote_mode)
    name, data = hostile_filez(case)
    before = _snapshot(dst)
    client = V2Client("--idle-timeout", REFUSAL_IDLE_TIMEOUT, ALL_MODES)
    client.hello_v2(dst)
    good_name, good = _content(1)
    client.send_batch([
        encode_batch_entry(ObjectType.FILE, good_name, Encoding.CONTENT, good),
        encode_batch_entry(ObjectType.FILE, name, Encoding.FILEZ, data),
    ])
    error = client.error()
    assert message in error, f"{error} (an idle timeout: the receiver accepted the hostile object)"
    assert _snapshot(dst) == before
    assert name[2:] not in {n.split(".")[0] for n in _staged_names(dst)}


def test_owned_file_refused_by_a_bare_user_only_remote(tmp_path: Path) -> None:
    dst = init(tmp_path / "dst", "bare-user-only")
    owned = FileHeader(uid=1000, gid=1000, mode=0o100644)
    payload = b"A" * 1000
    data = _filez(owned, payload)
    entry = encode_batch_entry(ObjectType.FILE, hashlib.sha256(owned.framed() + payload).hexdigest(),
                               Encoding.FILEZ, data)
    _refused(dst, b"\x00" + entry, "bare-user-only")


def test_bad_last_batch_answered_while_the_client_waits(remote: Path) -> None:
    """The client sent everything and waits for DONE: the worker's failure reaches it."""
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    honest = hashlib.sha256(header.framed() + b"honest").hexdigest()
    client = V2Client()
    client.hello_v2(remote)
    client.send_batch([encode_batch_entry(ObjectType.FILE, honest, Encoding.CONTENT,
                                          header.framed() + b"forged")])
    frame = client.reader.read()  # no UPDATE sent: only the worker can answer
    assert frame is not None and frame.kind is FrameKind.ERROR
    assert "checksum" in str(decode_json(frame)["message"])
    assert client.proc.stdin is not None
    client.proc.stdin.close()
    assert client.proc.wait(timeout=30) == 1


def test_incomplete_commit_in_a_batch_refused(remote: Path, tmp_path: Path) -> None:
    data = _commit_bytes(tmp_path)
    checksum = hashlib.sha256(data).hexdigest()
    before = _snapshot(remote)
    client = V2Client()
    client.hello_v2(remote)
    client.send_batch([encode_batch_entry(ObjectType.COMMIT, checksum, Encoding.METADATA, data)])
    assert "incomplete" in client.refused("other", None, checksum)
    assert _snapshot(remote) == before


# -- codec units -----------------------------------------------------------------------


def test_decode_batch_round_trip() -> None:
    checksum, data = _content(3)
    body = (encode_batch_entry(ObjectType.FILE, checksum, Encoding.CONTENT, data)
            + encode_batch_entry(ObjectType.DIR_META, "cd" * 32, Encoding.METADATA, b""))
    objects = decode_batch(body)
    assert [o.header.checksum for o in objects] == [checksum, "cd" * 32]
    assert objects[0] == SmallObject(objects[0].header, data)
    assert objects[0].header.size == len(data) and objects[1].header.size == 0
    assert len(body) == 2 * BATCH_ENTRY_SIZE + len(data)


# -- fuzz ------------------------------------------------------------------------------

_entries = st.lists(
    st.tuples(st.sampled_from([1, 2, 3, 4, 6, 0, 5, 99]), st.sampled_from([0, 1, 2, 9]),
              st.binary(max_size=120), st.integers(min_value=-3, max_value=3)),
    min_size=1, max_size=6,
)


@pytest.fixture(scope="module")
def fuzz_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init(tmp_path_factory.mktemp("fuzz2") / "repo", "archive")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=_entries, commit_after=st.booleans())
def test_random_batches_never_crash_the_receiver(
    fuzz_repo: Path, entries: List[Tuple[int, int, bytes, int]], commit_after: bool
) -> None:
    """Entries with random types, encodings, data and slightly wrong sizes."""
    body = b"".join(
        struct.pack(">B32sBI", objtype, hashlib.sha256(data).digest(), encoding,
                    max(0, len(data) + skew)) + data
        for objtype, encoding, data, skew in entries
    )
    frames = [
        (FrameKind.HELLO, b'{"magic":"%s","versions":[1,2],"compression":[]}' % MAGIC.encode()),
        (FrameKind.OPEN, b'{"repo":"%s"}' % str(fuzz_repo).encode()),
        (FrameKind.OBJECTS, b"\x00" + body),
    ]
    if commit_after:
        frames += [(FrameKind.UPDATE, b'{"refs":[],"summary":false}'), (FrameKind.COMMIT, b"")]
    serve_or_refuse(b"".join(struct.pack(">BI", int(k), len(p)) + p for k, p in frames))
    assert not any((fuzz_repo / "refs" / "heads").iterdir())


@pytest.mark.parametrize("kept", [16 << 20, 0], ids=["in-memory", "read-back"])
@pytest.mark.parametrize("missing", [ObjectType.FILE, ObjectType.DIR_META, ObjectType.DIR_TREE])
def test_commit_missing_an_object_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          kept: int, missing: ObjectType) -> None:
    """The completeness check at COMMIT walks dirtrees the transaction keeps in memory
    (or reads back from the staging dir past the bound) and finds what is missing."""
    from pyostree.receive import server as server_module
    from pyostree.repo import stagewrite

    monkeypatch.setattr(server_module, "RECEIVED_META_BYTES", kept)
    monkeypatch.setattr(stagewrite, "_KEPT_TREE_BYTES", kept)
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=20))
    dst = init(tmp_path / "dst", "archive")
    head, entries = _repo_entries(src)
    # the first entry of the type that is not the root dirtree (entries are children first)
    victim = next(i for i, e in enumerate(entries) if e[0] == int(missing))
    kept_entries = entries[:victim] + entries[victim + 1:]
    update = json.dumps({"refs": [{"ref": "main", "old": None, "new": head}], "summary": False})
    frames = [
        (FrameKind.HELLO, b'{"magic":"%s","versions":[1,2],"compression":[]}' % MAGIC.encode()),
        (FrameKind.OPEN, b'{"repo":"%s"}' % str(dst).encode()),
        (FrameKind.OBJECTS, b"\x00" + b"".join(kept_entries)),
        (FrameKind.UPDATE, update.encode()),
        (FrameKind.COMMIT, b""),
    ]
    stream = b"".join(struct.pack(">BI", int(k), len(p)) + p for k, p in frames)
    with pytest.raises(PyOstreeError, match="incomplete"):
        serve(io.BytesIO(stream), io.BytesIO())
    assert not (dst / "refs" / "heads" / "main").exists()
    # Verified content and dirmeta may be published early (sync_ahead's last round runs
    # beside the check, and may finish before the abort stops it); nothing that vouches
    # for other objects may: no dirtree, no commit.
    assert [name for name in object_files(dst) if name.endswith((".dirtree", ".commit"))] == []
    # and the whole set passes
    frames[2] = (FrameKind.OBJECTS, b"\x00" + b"".join(entries))
    stream = b"".join(struct.pack(">BI", int(k), len(p)) + p for k, p in frames)
    serve(io.BytesIO(stream), io.BytesIO())
    assert rev_parse(dst, "main") == head


def test_receiver_widens_its_stdin_pipe(tmp_path: Path) -> None:
    """Fewer wake-ups per frame: serve() asks for a 1 MiB stdin pipe (capped by the
    system's pipe-max-size; a non-pipe is left alone)."""
    import fcntl
    import os

    from pyostree.receive import server as server_module

    dst = init(tmp_path / "dst", "archive")
    read_end, write_end = os.pipe()
    frames = [
        (FrameKind.HELLO, b'{"magic":"%s","versions":[1,2],"compression":[]}' % MAGIC.encode()),
        (FrameKind.OPEN, b'{"repo":"%s"}' % str(dst).encode()),
        (FrameKind.ABORT, b""),
    ]
    os.write(write_end, b"".join(struct.pack(">BI", int(k), len(p)) + p for k, p in frames))
    os.close(write_end)
    with os.fdopen(read_end, "rb", buffering=0) as stdin:
        serve(stdin, io.BytesIO(), server_module.ReceiveConfig(idle_timeout=30))
        size = fcntl.fcntl(stdin.fileno(), fcntl.F_GETPIPE_SZ)
    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    assert size == min(server_module.PIPE_SIZE, limit)


# -- the completeness check against the ref's commit -----------------------------------


def _changed_entries(src: Path, old: str, new: str) -> Dict[str, bytes]:
    """name -> OBJECTS entry of every object of ``new`` that ``old`` lacks (what an
    incremental push sends), children first."""
    from pyostree.push.convert import read_whole_wire_object
    from pyostree.push.plan import order_children_first, reachable
    from pyostree.repo import Repo

    repo = Repo.open(src)
    seen = set(reachable(repo, old, set()))
    entries: Dict[str, bytes] = {}
    for checksum, objtype in order_children_first(reachable(repo, new, seen)):
        whole = read_whole_wire_object(repo, checksum, objtype, CHUNK_SIZE)
        assert whole is not None
        entries[checksum] = encode_batch_entry(objtype, checksum, whole.encoding, whole.data)
    return entries


@pytest.fixture
def nested_change(tmp_path: Path) -> Tuple[Path, Path, str, str, str]:
    """(src, remote at c1, c1, c2, the file object c2 adds): c2 changes one file two
    directories down; the remote's main is c1."""
    src = init(tmp_path / "src", "archive")
    tree = make_tree(tmp_path / "tree", files=30)
    c1 = commit(src, tree, subject="one")
    (tree / "sub" / "deeper" / "file2.txt").write_bytes(b"changed, deep down\n")
    c2 = commit(src, tree, subject="two")
    dst = init(tmp_path / "dst", "archive")
    run_ostree("pull-local", str(src), c1, repo=dst)
    run_ostree("refs", "--create=main", c1, repo=dst)
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    changed = hashlib.sha256(header.framed() + b"changed, deep down\n").hexdigest()
    return src, dst, c1, c2, changed


def test_an_incremental_push_is_checked_against_the_refs_commit(
        nested_change: Tuple[Path, Path, str, str, str]) -> None:
    src, dst, c1, c2, changed = nested_change
    entries = _changed_entries(src, c1, c2)
    assert changed in entries and len(entries) < 10  # the changed path only
    client = V2Client()
    client.hello_v2(dst)
    client.send_batch(list(entries.values()))
    client.finish([{"ref": "main", "old": c1, "new": c2}])
    assert rev_parse(dst, "main") == c2
    assert "no errors found" in ostree_fsck(dst)


def test_a_file_missing_below_a_changed_path_is_refused_with_a_baseline(
        nested_change: Tuple[Path, Path, str, str, str]) -> None:
    """Subtrees shared with the ref's commit are skipped, the changed path is not: the new
    file, never sent, is missed."""
    src, dst, c1, c2, changed = nested_change
    entries = _changed_entries(src, c1, c2)
    del entries[changed]
    before = _snapshot(dst)
    client = V2Client()
    client.hello_v2(dst)
    client.send_batch(list(entries.values()))
    assert f"file {changed} was never sent" in client.refused("main", c1, c2)
    assert rev_parse(dst, "main") == c1
    refs = _snapshot(dst)["refs"]
    assert refs == before["refs"]


def test_a_dirtree_or_commit_no_ref_update_checked_is_not_published(tmp_path: Path) -> None:
    """A dirtree in objects/ is trusted to be complete below it, and ``ostree fsck`` walks
    every commit there. A dirtree a client sends beside its commit (here naming a file it
    never sends), and a commit no ref moves to, are checked by no walk: neither may be
    published, else fsck fails or a later commit names the dirtree and passes incomplete."""
    from pyostree.objects import Commit, DirTree
    from pyostree.objects.dirtree import FileEntry

    src = init(tmp_path / "src", "archive")
    head = commit(src, make_tree(tmp_path / "tree", files=8))
    dst = init(tmp_path / "dst", "archive")
    _head, entries = _repo_entries(src)
    ghost = hashlib.sha256(b"never sent").hexdigest()
    junk = DirTree(files=(FileEntry("ghost", ghost),), dirs=()).to_bytes()
    junk_sum = hashlib.sha256(junk).hexdigest()
    root_meta = Commit.from_bytes((src / "objects" / head[:2] / f"{head[2:]}.commit").read_bytes()).root_meta
    naming = Commit.create(junk_sum, root_meta, timestamp=1, subject="names the junk").to_bytes()
    naming_sum = hashlib.sha256(naming).hexdigest()
    client = V2Client()
    client.hello_v2(dst)
    client.send_batch([encode_batch_entry(ObjectType.DIR_TREE, junk_sum, Encoding.METADATA, junk),
                       encode_batch_entry(ObjectType.COMMIT, naming_sum, Encoding.METADATA, naming),
                       *entries])
    client.finish([{"ref": "main", "old": None, "new": head}])
    assert rev_parse(dst, "main") == head
    assert not (dst / "objects" / junk_sum[:2] / f"{junk_sum[2:]}.dirtree").exists()
    assert not (dst / "objects" / naming_sum[:2] / f"{naming_sum[2:]}.commit").exists()
    assert "no errors found" in ostree_fsck(dst)

    client = V2Client()
    client.hello_v2(dst)
    client.send_batch([encode_batch_entry(ObjectType.COMMIT, naming_sum, Encoding.METADATA, naming)])
    assert f"dirtree {junk_sum} was never sent" in client.refused("main", head, naming_sum)
    assert rev_parse(dst, "main") == head
