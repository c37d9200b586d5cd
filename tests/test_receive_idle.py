"""``pyostree receive --idle-timeout``: a client that goes silent without closing its end
(a half-open connection) no longer holds the repo lock and the staging dir forever. The
receiver gives up, aborts like after a kill (staged objects kept for a resumed push) and
exits 1 with one ``error:`` line; a slow but live client is not cut off."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from ostree_tool import needs_ostree
from test_push_support import init, object_files
from test_receive_hostile import RawClient

from pyostree.errors import PyOstreeError
from pyostree.objects import FileHeader
from pyostree.objects.types import ObjectType
from pyostree.receive import ReceiveConfig, serve
from pyostree.transport.wire import (
    MAGIC,
    Encoding,
    FrameKind,
    IdleTimeoutError,
    IdleTimeoutReader,
    decode_have_reply,
    encode_have,
)
from pyostree.repo.lock import ofd_lock

pytestmark = needs_ostree


def _content(index: int) -> Tuple[str, bytes]:
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    data = header.framed() + b"idle %d\n" % index * 20
    return hashlib.sha256(data).hexdigest(), data


def _repo_lock_is_free(repo: Path) -> bool:
    return _lock_file_is_free(repo / ".lock")


def _lock_file_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
    try:
        return ofd_lock(fd, True, wait=False)
    finally:
        os.close(fd)


def test_silent_client_is_dropped_and_its_objects_resume(tmp_path: Path) -> None:
    remote = init(tmp_path / "remote", "archive")
    before = object_files(remote)
    client = RawClient("--idle-timeout", "1")
    client.hello(remote)
    sent: List[str] = []
    for index in range(5):
        checksum, data = _content(index)
        client.send_object(ObjectType.FILE, checksum, Encoding.CONTENT, data)
        sent.append(checksum)
    # stdin stays open and silent: only the idle timeout can end this session
    start = time.monotonic()
    frame = client.reader.read()
    assert frame is not None and frame.kind is FrameKind.ERROR
    assert "idle timeout" in json.loads(frame.payload)["message"]
    assert client.proc.wait(timeout=30) == 1
    assert time.monotonic() - start < 20
    assert client.proc.stderr is not None
    lines = client.proc.stderr.read().decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "idle timeout" in lines[0]
    assert client.proc.stdin is not None
    client.proc.stdin.close()
    assert object_files(remote) == before
    assert _repo_lock_is_free(remote)

    again = RawClient()  # a resumed push: the staged objects are found, not re-sent
    again.hello(remote)
    again.send(FrameKind.HAVE, encode_have([(c, ObjectType.FILE) for c in sent]))
    reply = again.reader.expect(FrameKind.HAVE_REPLY)
    assert decode_have_reply(reply.payload, len(sent)) == [True] * len(sent)
    again.send(FrameKind.ABORT)
    assert again.proc.wait(timeout=30) == 0


def test_slow_but_live_client_is_not_cut_off(tmp_path: Path) -> None:
    remote = init(tmp_path / "remote", "archive")
    client = RawClient("--idle-timeout", "1")
    client.hello(remote)
    for index in range(5):  # 2.5 s in all, never 1 s without a byte
        time.sleep(0.5)
        checksum, data = _content(index)
        client.send_object(ObjectType.FILE, checksum, Encoding.CONTENT, data)
    client.send(FrameKind.ABORT)
    assert client.proc.wait(timeout=30) == 0


def test_zero_waits_forever(tmp_path: Path) -> None:
    remote = init(tmp_path / "remote", "archive")
    client = RawClient("--idle-timeout", "0")
    client.hello(remote)
    time.sleep(1.5)
    assert client.proc.poll() is None
    client.send(FrameKind.ABORT)
    assert client.proc.wait(timeout=30) == 0


def test_in_process_serve_releases_the_lock_while_the_peer_is_still_connected(
    tmp_path: Path,
) -> None:
    remote = init(tmp_path / "remote", "archive")
    to_server_r, to_server_w = os.pipe()
    from_server_r, from_server_w = os.pipe()
    errors: List[BaseException] = []

    def run() -> None:
        with open(to_server_r, "rb", buffering=0) as stdin, open(from_server_w, "wb") as stdout:
            try:
                serve(stdin, stdout, ReceiveConfig(idle_timeout=0.5))  # type: ignore[arg-type]
            except PyOstreeError as err:
                errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    hello = b'{"magic":"%s","versions":[1],"compression":[]}' % MAGIC.encode()
    open_ = json.dumps({"repo": str(remote)}).encode()
    have = encode_have([("ab" * 32, ObjectType.FILE)])  # begins the write transaction
    for kind, payload in ((FrameKind.HELLO, hello), (FrameKind.OPEN, open_), (FrameKind.HAVE, have)):
        os.write(to_server_w, bytes([kind]) + len(payload).to_bytes(4, "big") + payload)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], IdleTimeoutError)
    assert _repo_lock_is_free(remote)  # our end of the pipe is still open
    # Nothing was staged: the staging dir went with its lock file (nothing to resume).
    assert list((remote / "tmp").glob("staging-*")) == []
    os.close(to_server_w)
    os.close(from_server_r)


def test_idle_timeout_reader_semantics() -> None:
    read_fd, write_fd = os.pipe()
    try:
        reader = IdleTimeoutReader(read_fd, 0.3, buffer_size=8)
        os.write(write_fd, b"0123456789abcdef")
        assert reader.read(3) == b"012"          # 8 read, 5 kept
        assert reader.read(10) == b"34567"       # the buffer first, never a blocking read
        assert reader.read(100) == b"89abcdef"   # large reads go straight to the fd
        start = time.monotonic()
        with pytest.raises(IdleTimeoutError, match="idle timeout"):
            reader.read(1)
        assert 0.25 <= time.monotonic() - start < 5
        os.write(write_fd, b"x")
        assert reader.read(1) == b"x"            # still usable after a timeout
        os.close(write_fd)
        write_fd = -1
        assert reader.read(4) == b""             # EOF
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    with pytest.raises(ValueError):
        IdleTimeoutReader(0, 0)
