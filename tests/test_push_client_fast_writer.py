"""The copy-free raw writer the paramiko exec channel writes through."""

from __future__ import annotations

import array
import io
from typing import List

import pytest

from pyostree.transport._streams import ViewWriter


def test_view_writer_passes_flat_views_released_after_the_call() -> None:
    got: List[bytes] = []
    views: List[memoryview] = []

    def write(view: memoryview) -> None:
        assert view.format == "B" and view.ndim == 1
        got.append(bytes(view))
        views.append(view)

    stream = io.BufferedWriter(ViewWriter(write), buffer_size=16)
    ints = array.array("I", [1, 2, 3, 4, 5, 6, 7, 8])  # 32 bytes: passes the buffer by
    assert stream.write(b"abc") == 3
    assert stream.write(ints) == 32
    assert stream.write(b"0123456789" * 5) == 50
    stream.flush()
    assert b"".join(got) == b"abc" + ints.tobytes() + b"0123456789" * 5
    for view in views:
        with pytest.raises(ValueError):
            len(view)  # released: nobody can read a buffer BufferedWriter reuses
    got.clear()
    assert ViewWriter(write).write(ints) == 32  # bytes, not items, of a typed buffer
    assert got == [ints.tobytes()]


def test_view_writer_closes_once() -> None:
    closed: List[int] = []
    writer = ViewWriter(lambda view: None, lambda: closed.append(1))
    writer.close()
    writer.close()
    assert closed == [1]
