"""A hostile client against ``pyostree receive``: an honest session, then the same session
mutated frame by frame (dropped, repeated, reordered, corrupted, lying lengths and headers,
hostile JSON, hostile dirtrees with honest hashes, a cut stream).

Complements tests/test_receive_hostile.py (one hand-written trick per test) with seeded
random sessions and stronger after-checks: ``serve`` raises only PyOstreeError and ends
in time, an ERROR is the last frame, ``objects/``, ``refs/`` and ``summary`` are unchanged,
nothing outside the repo changed, and every file left in the staging dir is a complete,
verified object (so a resumed push can trust it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import struct
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

import hostile
from ostree_tool import needs_ostree, run_ostree
from test_push_support import commit, init, make_tree

from pyostree.errors import PyOstreeError
from pyostree.objects import content_checksum, iter_inflate, parse_archive_header
from pyostree.objects.types import ObjectType
from pyostree.receive import ReceiveConfig, serve
from pyostree.transport.wire import (
    MAGIC,
    Encoding,
    FrameKind,
    FrameReader,
    ObjectHeader,
    encode_have,
    encode_object_header,
)
from pyostree.repo import Repo

pytestmark = needs_ostree

Frame = Tuple[int, bytes]
SESSION_TIMEOUT = 30.0


@dataclass
class World:
    """A pristine remote (archive, ``main`` = c1) and the frames of an honest push of c2."""

    template: Path
    frames: List[Frame]
    old: str
    new: str


def _frame_bytes(kind: int, payload: bytes, length: Optional[int] = None) -> bytes:
    return struct.pack(">BI", kind & 0xFF, len(payload) if length is None else length) + payload


def honest_frames(src: Path, remote_path: str, old: str, new: str) -> List[Frame]:
    repo = Repo.open(src)
    names = list(repo.walk(new))
    order = {ObjectType.FILE: 0, ObjectType.DIR_META: 1, ObjectType.DIR_TREE: 2, ObjectType.COMMIT: 3}
    names.sort(key=lambda n: order.get(n[1], 4))
    frames: List[Frame] = [
        (FrameKind.HELLO, json.dumps({"magic": MAGIC, "versions": [1], "compression": []}).encode()),
        (FrameKind.OPEN, json.dumps({"repo": remote_path}).encode()),
        (FrameKind.HAVE, encode_have(names[:4096])),
    ]
    for checksum, objtype in names:
        data = repo.object_path(checksum, objtype).read_bytes()
        encoding = Encoding.FILEZ if objtype is ObjectType.FILE else Encoding.METADATA
        frames.append((FrameKind.OBJECT, encode_object_header(ObjectHeader(objtype, checksum, encoding, len(data)))))
        frames.append((FrameKind.DATA, b"\x00" + data))
        frames.append((FrameKind.END, b""))
    frames.append((FrameKind.UPDATE, json.dumps({"refs": [{"ref": "main", "old": old, "new": new}],
                                                 "summary": True}).encode()))
    frames.append((FrameKind.COMMIT, b""))
    return frames


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("receive-fuzz")
    tree = make_tree(base / "tree", files=6)
    src = init(base / "src", "archive")
    old = commit(src, tree, subject="one")
    (tree / "sub" / "file1.txt").write_bytes(b"changed\n")
    (tree / "added.txt").write_bytes(b"added\n" * 50)
    new = commit(src, tree, subject="two")
    template = init(base / "template", "archive")
    run_ostree("pull-local", str(src), old, repo=template)
    run_ostree("refs", "--create=main", old, repo=template)
    run_ostree("summary", "-u", repo=template)
    return World(template, honest_frames(src, "REMOTE", old, new), old, new)


# ---------------------------------------------------------------------------- one session


@dataclass
class Outcome:
    error: Optional[BaseException]
    frames: List[Tuple[FrameKind, bytes]]


def run_session(data: bytes, root: Optional[str] = None) -> Outcome:
    """Feed DATA to ``serve`` (in a thread, over pipes) while reading all it answers."""
    c2s_r, c2s_w = os.pipe()
    s2c_r, s2c_w = os.pipe()
    stdin, stdout = os.fdopen(c2s_r, "rb"), os.fdopen(s2c_w, "wb")
    result: List[Optional[BaseException]] = []

    def server() -> None:
        try:
            serve(stdin, stdout, ReceiveConfig(root=root))
            result.append(None)
        except BaseException as err:  # judged by the test
            result.append(err)
        finally:
            stdout.close()
            stdin.close()

    def client() -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(c2s_w, view[: 1 << 16]):]
        except OSError:
            pass  # the receiver stopped reading: expected after an error
        finally:
            os.close(c2s_w)

    threads = [threading.Thread(target=server, daemon=True), threading.Thread(target=client, daemon=True)]
    for thread in threads:
        thread.start()
    with os.fdopen(s2c_r, "rb") as answers:
        raw = answers.read()
    for thread in threads:
        thread.join(SESSION_TIMEOUT)
        assert not thread.is_alive(), "receive session hangs"
    frames = []
    reader = FrameReader(io.BytesIO(raw))
    while True:
        frame = reader.read()
        if frame is None:
            break
        frames.append((frame.kind, frame.payload))
    return Outcome(result[0], frames)


def state(repo: Path) -> Dict[str, object]:
    """What a reader of the remote can see: objects, refs (any depth) and the summary."""
    snap = {k: v for k, v in hostile.snapshot(repo).items() if k.split("/")[0] in ("objects", "refs")}
    refs = {str(p.relative_to(repo)): p.read_text() for p in (repo / "refs").rglob("*") if p.is_file()}
    summary = (repo / "summary").read_bytes() if (repo / "summary").exists() else None
    return {"files": snap, "refs": refs, "summary": summary}


def check_staging(repo: Path) -> int:
    """Every object file left under tmp/ is complete and hashes to its name."""
    checked = 0
    for path in (repo / "tmp").rglob("*"):
        if not path.is_file() or not path.parent.parent.name.startswith("staging-"):
            continue
        stem, _, ext = path.name.partition(".")
        name = path.parent.name + stem
        assert len(name) == 64 and ext, f"stray file in staging: {path}"
        data = path.read_bytes()
        if ext == "filez":
            stream = io.BytesIO(data)
            header, size = parse_archive_header(stream.read)
            payload = b"".join(iter_inflate(stream.read, size))
            assert content_checksum(header, [payload]) == name, f"unverified object staged: {path}"
        elif ext != "commitmeta":
            assert hashlib.sha256(data).hexdigest() == name, f"unverified object staged: {path}"
        checked += 1
    return checked


def judge(outcome: Outcome, remote: Path, before: Dict[str, object], outside_before: Dict[str, object],
          world: World) -> str:
    """Apply every after-check; returns "done", "aborted" or "error"."""
    err = outcome.error
    assert err is None or isinstance(err, PyOstreeError), f"escaped: {type(err).__name__}: {err}"
    check_staging(remote)
    assert hostile.snapshot(remote.parent / "outside") == outside_before
    if err is not None:
        assert outcome.frames and outcome.frames[-1][0] is FrameKind.ERROR, outcome.frames[-1:]
        message = json.loads(outcome.frames[-1][1])["message"]
        assert message and "\n" not in message and "Traceback" not in message
        assert state(remote) == before, f"remote changed after: {message}"
        return "error"
    if outcome.frames and outcome.frames[-1][0] is FrameKind.DONE:
        run_ostree("fsck", repo=remote)
        main = (remote / "refs" / "heads" / "main").read_text().strip()
        assert main in (world.old, world.new)
        return "done"
    assert state(remote) == before  # an ABORT from the client: nothing visible
    return "aborted"


def fresh_remote(world: World, tmp_path: Path, index: int) -> Path:
    base = tmp_path / f"s{index}"
    (base / "outside").mkdir(parents=True)
    (base / "outside" / "sentinel").write_bytes(b"keep\n")
    remote = base / "remote"
    shutil.copytree(world.template, remote, symlinks=True)
    return remote


def encode(frames: List[Frame], remote: Path) -> bytes:
    out = bytearray()
    for kind, payload in frames:
        if kind == FrameKind.OPEN and payload == b'{"repo": "REMOTE"}':
            payload = json.dumps({"repo": str(remote)}).encode()
        out += _frame_bytes(kind, payload)
    return bytes(out)


def test_the_honest_session_succeeds(world: World, tmp_path: Path) -> None:
    """The base of every mutation is a push the receiver accepts (so mutations mean something)."""
    remote = fresh_remote(world, tmp_path, 0)
    outcome = run_session(encode(world.frames, remote))
    assert outcome.error is None and outcome.frames[-1][0] is FrameKind.DONE
    assert (remote / "refs" / "heads" / "main").read_text().strip() == world.new
    run_ostree("fsck", repo=remote)


# ---------------------------------------------------------------------------- mutations

HOSTILE_JSON = [
    b"[" * 100_000 + b"]" * 100_000,                      # recursion bomb
    b'{"magic": "pyostree-receive", "versions": "1"}',
    b'{"repo": 5}', b'{"repo": "' + b"a/" * 3000 + b'"}', b'{"repo": "/etc"}', b'{"repo": ""}',
    b'{"refs": "main"}', b'{"refs": [1, 2]}', b'{"refs": [{"ref": "main"}]}',
    b'{"refs": [{"ref": "../../../outside/sentinel", "old": null, "new": "%s"}]}',
    b'{"refs": [{"ref": "/abs", "old": null, "new": "%s"}]}',
    b'{"refs": [{"ref": "main", "old": null, "new": "%s"}, {"ref": "main", "old": null, "new": "%s"}]}',
    b'{"refs": [{"ref": "heads/x/../..", "old": null, "new": "%s"}]}',
    b'{"refs": [], "summary": "yes"}', b"\xff\xfe{}", b"null", b"{}" + b" " * 100,
]


def mutate(rng: random.Random, frames: List[Frame], world: World) -> Tuple[List[Frame], Optional[int]]:
    """1-2 random mutations; returns the frames and, maybe, a byte offset to cut the stream at."""
    frames = list(frames)
    cut: Optional[int] = None
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(len(frames))
        kind, payload = frames[i]
        how = rng.randrange(12)
        if how == 0:
            del frames[i]
        elif how == 1:
            frames.insert(i, frames[i])
        elif how == 2 and i + 1 < len(frames):
            frames[i], frames[i + 1] = frames[i + 1], frames[i]
        elif how == 3 and payload:
            buf = bytearray(payload)
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
            frames[i] = (kind, bytes(buf))
        elif how == 4 and payload:
            frames[i] = (kind, payload[: rng.randrange(len(payload))])
        elif how == 5:
            frames[i] = (rng.choice([0, 2, 4, 6, 12, 14, 15, 99, 255, rng.randrange(256)]), payload)
        elif how == 6:
            frames.insert(i, (rng.randrange(1, 16), rng.randbytes(rng.randrange(0, 48))))
        elif how == 7 and kind == FrameKind.OBJECT:
            objtype, raw, encoding, size = struct.unpack(">B32sBQ", payload)
            field = rng.randrange(4)
            if field == 0:
                objtype = rng.choice([0, 5, 6, 7, 8, 255])
            elif field == 1:
                raw = rng.randbytes(32)
            elif field == 2:
                encoding = rng.choice([0, 1, 2, 3, 255])
            else:
                size = rng.choice([0, 1, size - 1, size + 1, 1 << 63, (1 << 64) - 1]) % (1 << 64)
            frames[i] = (kind, struct.pack(">B32sBQ", objtype, raw, encoding, size))
        elif how == 8 and kind in (FrameKind.HELLO, FrameKind.OPEN, FrameKind.UPDATE):
            text = rng.choice(HOSTILE_JSON)
            if b"%s" in text:
                text = text.replace(b"%s", world.new.encode())
            frames[i] = (kind, text)
        elif how == 9:
            cut = rng.randrange(1, 1 + sum(5 + len(p) for _, p in frames))
        elif how == 10:
            frames.insert(i, (FrameKind.ABORT, b""))
        else:  # a lying length: the frame claims more or less than it carries
            frames[i] = (-1 - kind, payload)  # marker, see encode_mutated
    return frames, cut


def encode_mutated(rng: random.Random, frames: List[Frame], remote: Path, cut: Optional[int]) -> bytes:
    out = bytearray()
    for kind, payload in frames:
        if kind == FrameKind.OPEN and payload == b'{"repo": "REMOTE"}':
            payload = json.dumps({"repo": str(remote)}).encode()
        if kind < 0:
            lie = rng.choice([len(payload) + 1, max(0, len(payload) - 1), 1 << 31, 0xFFFFFFFF])
            out += _frame_bytes(-1 - kind, payload, length=lie)
        else:
            out += _frame_bytes(kind, payload)
    return bytes(out[:cut]) if cut is not None else bytes(out)


@pytest.mark.parametrize("seed", range(160))
def test_mutated_session(world: World, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed * 7919 + 1)
    remote = fresh_remote(world, tmp_path, seed)
    before = state(remote)
    outside = hostile.snapshot(remote.parent / "outside")
    frames, cut = mutate(rng, world.frames, world)
    outcome = run_session(encode_mutated(rng, frames, remote, cut))
    judge(outcome, remote, before, outside, world)


# ---------------------------------------------------------------------------- hand-picked


def _hostile_tree_frames(world: World, names: List[bytes]) -> Tuple[List[Frame], str]:
    """A dirtree holding NAMES (honestly hashed), its dirmeta and a commit on it, as frames."""
    from pyostree.objects import Commit, DirMeta

    src = Repo.open(world.template)
    file_sum = next(c for c, t in src.walk(src.resolve_rev("main")) if t is ObjectType.FILE)
    tree = hostile.encode_dirtree([(n, file_sum) for n in names])
    meta = DirMeta(0, 0, 0o40755).to_bytes()
    tree_sum, meta_sum = hashlib.sha256(tree).hexdigest(), hashlib.sha256(meta).hexdigest()
    commit_bytes = Commit.create(tree_sum, meta_sum, timestamp=1, subject="evil", parent=world.old).to_bytes()
    commit_sum = hashlib.sha256(commit_bytes).hexdigest()
    frames = list(world.frames[:2])
    for objtype, checksum, data in ((ObjectType.DIR_META, meta_sum, meta), (ObjectType.DIR_TREE, tree_sum, tree),
                                    (ObjectType.COMMIT, commit_sum, commit_bytes)):
        frames.append((FrameKind.OBJECT, encode_object_header(ObjectHeader(objtype, checksum, Encoding.METADATA, len(data)))))
        frames.append((FrameKind.DATA, b"\x00" + data))
        frames.append((FrameKind.END, b""))
    frames.append((FrameKind.UPDATE, json.dumps({"refs": [{"ref": "main", "old": world.old, "new": commit_sum}]}).encode()))
    frames.append((FrameKind.COMMIT, b""))
    return frames, commit_sum


@pytest.mark.parametrize("names", [[b"../escaped"], [b".."], [b"."], [b"a/b"], [b""], [b"\xff"],
                                   [b"b", b"a"], [b"a", b"a"]], ids=repr)
def test_dirtree_with_hostile_names_and_honest_hash(world: World, tmp_path: Path, names: List[bytes]) -> None:
    remote = fresh_remote(world, tmp_path, 0)
    before = state(remote)
    outside = hostile.snapshot(remote.parent / "outside")
    frames, _ = _hostile_tree_frames(world, names)
    outcome = run_session(encode(frames, remote))
    assert judge(outcome, remote, before, outside, world) == "error"


@pytest.mark.parametrize("request_path", ["outside", "remote/../outside", "link-out", "remote/objects", "/",
                                          "remote\x00", "nonexistent", "outside/sentinel"])
def test_open_outside_root_or_not_a_repo(world: World, tmp_path: Path, request_path: str) -> None:
    remote = fresh_remote(world, tmp_path, 0)
    root = remote.parent / "root"
    root.mkdir()
    (root / "link-out").symlink_to(remote.parent / "outside")
    shutil.move(str(remote), root / "remote")
    remote = root / "remote"
    before = state(remote)
    outside = hostile.snapshot(remote.parent.parent / "outside")
    frames = [world.frames[0], (FrameKind.OPEN, json.dumps({"repo": request_path}).encode())] + world.frames[2:]
    outcome = run_session(encode(frames, remote), root=str(root))
    assert isinstance(outcome.error, PyOstreeError)
    assert outcome.frames[-1][0] is FrameKind.ERROR
    assert state(remote) == before
    assert hostile.snapshot(remote.parent.parent / "outside") == outside


def test_real_receiver_process_on_a_cut_stream(world: World, tmp_path: Path) -> None:
    """Through ``python -m pyostree receive``: a stream cut mid-object exits 1 with one
    ``error:`` line, no traceback, remote unchanged, staging verified."""
    import sys

    remote = fresh_remote(world, tmp_path, 0)
    before = state(remote)
    data = encode(world.frames, remote)
    cut = data[: len(data) * 2 // 3]
    done = subprocess.run([sys.executable, "-m", "pyostree", "receive"], input=cut, capture_output=True,
                          timeout=SESSION_TIMEOUT)
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    assert done.stderr.count(b"\n") == 1 and done.stderr.startswith(b"error: "), done.stderr
    assert state(remote) == before
    assert check_staging(remote) > 0  # the verified objects before the cut wait for a resume


def test_ref_names_never_write_outside_refs(world: World, tmp_path: Path) -> None:
    """Every UPDATE trick from HOSTILE_JSON, one per session: refused, nothing outside moves."""
    for index, text in enumerate(t for t in HOSTILE_JSON if b'"ref"' in t):
        remote = fresh_remote(world, tmp_path, 100 + index)
        before = state(remote)
        outside = hostile.snapshot(remote.parent / "outside")
        frames = [f if f[0] != FrameKind.UPDATE else (FrameKind.UPDATE, text.replace(b"%s", world.new.encode()))
                  for f in world.frames]
        outcome = run_session(encode(frames, remote))
        assert judge(outcome, remote, before, outside, world) == "error", text
