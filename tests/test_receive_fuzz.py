"""Random frames after a valid handshake: the receiver only ever fails with a
PyOstreeError (sent as an ERROR frame), never another exception, and never changes refs."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostree_tool import needs_ostree
from test_push_support import init

from pyostree.errors import PyOstreeError
from pyostree.receive import serve
from pyostree.transport.wire import MAGIC, FrameKind, FrameReader

pytestmark = needs_ostree

_frames = st.lists(
    st.tuples(st.sampled_from([int(k) for k in FrameKind] + [0, 99]), st.binary(max_size=200)),
    max_size=8,
)


def _stream(repo: Path, frames: List[Tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for kind, payload in [
        (int(FrameKind.HELLO), b'{"magic":"%s","versions":[1],"compression":["zstd"]}' % MAGIC.encode()),
        (int(FrameKind.OPEN), b'{"repo":"%s"}' % str(repo).encode()),
        *frames,
    ]:
        out += struct.pack(">BI", kind, len(payload)) + payload
    return bytes(out)


def serve_or_refuse(stream: bytes) -> None:
    """One receive session over ``stream``: it either succeeds or fails with a
    PyOstreeError whose ERROR frame is the last thing it wrote (never another exception)."""
    stdout = io.BytesIO()
    try:
        serve(io.BytesIO(stream), stdout)
    except PyOstreeError:
        stdout.seek(0)
        reader = FrameReader(stdout)
        kinds = []
        while (frame := reader.read()) is not None:
            kinds.append(frame.kind)
        assert kinds[-1] is FrameKind.ERROR


@pytest.fixture(scope="module")
def fuzz_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init(tmp_path_factory.mktemp("fuzz") / "repo", "archive")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=_frames)
def test_random_frames_never_crash_the_receiver(fuzz_repo: Path, frames: List[Tuple[int, bytes]]) -> None:
    serve_or_refuse(_stream(fuzz_repo, frames))
    assert not any((fuzz_repo / "refs" / "heads").iterdir())
    assert not any((fuzz_repo / "objects").iterdir())
