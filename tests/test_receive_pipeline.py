"""The receiver stages small content objects in worker threads while it reads: a bad
object is still answered with an ERROR at once (even when the client has nothing more to
send), good objects around it never become visible, and big objects stream inline."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import List, Tuple

import pytest

from ostree_tool import needs_ostree
from test_push_support import init, object_files
from test_receive_hostile import RawClient

from pyostree.errors import PyOstreeError
from pyostree.objects import FileHeader
from pyostree.objects.types import ObjectType
from pyostree.receive import server as server_module
from pyostree.transport.wire import (
    MAGIC,
    DataCodec,
    Encoding,
    FrameKind,
    FrameReader,
    FrameWriter,
    ObjectHeader,
    decode_json,
    encode_object_header,
)

pytestmark = needs_ostree


def _content(index: int, size: int = 100) -> Tuple[str, bytes]:
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    payload = (b"%06d" % index) * (size // 6 + 1)
    data = header.framed() + payload[:size]
    return hashlib.sha256(data).hexdigest(), data


def test_bad_object_among_good_ones(tmp_path: Path) -> None:
    remote = init(tmp_path / "remote", "archive")
    before = object_files(remote)
    client = RawClient()
    client.hello(remote)
    for index in range(50):
        checksum, data = _content(index)
        if index == 25:
            data = data[:-1] + b"!"  # hashes to something else
        client.send_object(ObjectType.FILE, checksum, Encoding.CONTENT, data)
    assert "checksum" in client.error()
    assert object_files(remote) == before


def test_bad_last_object_answered_without_more_frames(tmp_path: Path) -> None:
    """The client sent everything and waits: the worker's failure must reach it."""
    remote = init(tmp_path / "remote", "archive")
    client = RawClient()
    client.hello(remote)
    checksum, data = _content(1)
    client.send_object(ObjectType.FILE, checksum, Encoding.CONTENT, data + b"x", size=len(data) + 1)
    assert "checksum" in client.error()


class _InProcess:
    """serve() in a thread over two pipes, so module settings can be patched."""

    def __init__(self) -> None:
        c2s_r, c2s_w = os.pipe()
        s2c_r, s2c_w = os.pipe()
        self.server_in, self.server_out = os.fdopen(c2s_r, "rb"), os.fdopen(s2c_w, "wb")
        self.client_out, self.client_in = os.fdopen(c2s_w, "wb"), os.fdopen(s2c_r, "rb")
        self.error: List[BaseException] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.writer = FrameWriter(self.client_out)
        self.reader = FrameReader(self.client_in)

    def _serve(self) -> None:
        try:
            server_module.serve(self.server_in, self.server_out)
        except PyOstreeError as err:
            self.error.append(err)
        finally:
            self.server_out.close()

    def send(self, kind: FrameKind, payload: bytes = b"") -> None:
        self.writer.write(kind, payload)

    def send_object(self, checksum: str, data: bytes) -> None:
        self.send(FrameKind.OBJECT, encode_object_header(
            ObjectHeader(ObjectType.FILE, checksum, Encoding.CONTENT, len(data))))
        codec = DataCodec(False)
        for start in range(0, len(data), 1 << 20):
            self.send(FrameKind.DATA, codec.encode(data[start:start + (1 << 20)], compress=False))
        self.send(FrameKind.END)


def test_small_and_big_objects_mixed_with_a_tight_memory_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "SMALL_OBJECT", 4096)
    monkeypatch.setattr(server_module, "STAGER_MAX_BYTES", 8192)
    remote = init(tmp_path / "remote", "archive")
    session = _InProcess()
    session.send(FrameKind.HELLO, b'{"magic":"%s","versions":[1],"compression":[]}' % MAGIC.encode())
    session.send(FrameKind.OPEN, b'{"repo":"%s"}' % str(remote).encode())
    session.writer.flush()
    session.reader.expect(FrameKind.WELCOME)
    session.reader.expect(FrameKind.REPO)
    sent = []
    for index in range(40):
        checksum, data = _content(index, size=3000 if index % 5 else (1 << 20) + 5000)
        session.send_object(checksum, data)
        sent.append(checksum)
    # A HAVE after the objects must see every one of them (the workers are drained first).
    from pyostree.transport.wire import decode_have_reply, encode_have

    session.send(FrameKind.HAVE, encode_have([(c, ObjectType.FILE) for c in sent]))
    session.writer.flush()
    assert all(decode_have_reply(session.reader.expect(FrameKind.HAVE_REPLY).payload, len(sent)))
    session.send(FrameKind.UPDATE, b'{"refs":[],"summary":false}')
    session.send(FrameKind.COMMIT)
    session.writer.flush()
    done = decode_json(session.reader.expect(FrameKind.DONE))
    assert done["objects"] == 40
    session.client_out.close()
    session.thread.join(timeout=30)
    assert not session.error
    stored = {p.parent.name + p.stem for p in (remote / "objects").rglob("*.filez")}
    assert stored == set(sent)
