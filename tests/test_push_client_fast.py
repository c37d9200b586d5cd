"""The receive client's fast paths: OBJECTS frames built from pieces must give exactly
what the codec gave for the joined entries; small files are read whole or not at all."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
from ostree_tool import needs_ostree
from test_push_support import commit, do_push, init, make_tree, rev_parse

import pyostree.push.convert as convert
from pyostree.objects.types import ObjectType
from pyostree.push.receive_client import _Batch
from pyostree.transport.wire import DataCodec, Encoding, decode_batch, encode_batch_entry

_CSUM_A = "ab" * 32
_CSUM_B = "0f" * 32


def _entries(compressible: bool) -> List[Tuple[str, ObjectType, Encoding, bytes]]:
    if compressible:
        return [(_CSUM_A, ObjectType.DIR_TREE, Encoding.METADATA, b"tree " * 200),
                (_CSUM_B, ObjectType.FILE, Encoding.CONTENT, b"")]
    return [(_CSUM_A, ObjectType.FILE, Encoding.FILEZ, os.urandom(3000)),
            (_CSUM_B, ObjectType.FILE, Encoding.FILEZ, b"x")]


@pytest.mark.parametrize("zstd", [True, False])
@pytest.mark.parametrize("compressible", [True, False])
def test_batch_payload_is_the_codec_encoding_of_the_entries(compressible: bool, zstd: bool) -> None:
    entries = _entries(compressible)
    batch = _Batch()
    for checksum, objtype, encoding, data in entries:
        assert batch.fits(len(data), compressible)
        batch.add(checksum, objtype, encoding, data, compressible)
    assert not batch.fits(10, not compressible)  # the two kinds never share a frame
    codec = DataCodec(zstd)
    payload = batch.take_payload(codec)
    body = b"".join(encode_batch_entry(t, c, e, d) for c, t, e, d in entries)
    assert payload == codec.encode(body, compress=compressible)
    decoded = decode_batch(codec.decode(payload))
    assert [(o.header.checksum, o.header.objtype, o.header.encoding, bytes(o.data)) for o in decoded] \
        == [(c, t, e, d) for c, t, e, d in entries]
    # emptied: the next frame starts afresh, with its own kind
    assert batch.objects == 0 and batch.size == 0
    batch.add(_CSUM_A, ObjectType.FILE, Encoding.FILEZ, b"z", False)
    assert batch.take_payload(codec) == codec.encode(
        encode_batch_entry(ObjectType.FILE, _CSUM_A, Encoding.FILEZ, b"z"), compress=False)


@pytest.mark.parametrize("size,whole", [(0, True), (1, True), (99, True), (100, True), (101, False)])
def test_small_file_read_whole_or_none(tmp_path: Path, size: int, whole: bool) -> None:
    path = tmp_path / "f"
    data = os.urandom(size)
    path.write_bytes(data)
    assert convert._read_small_file(str(path), 100) == (data if whole else None)


def test_small_file_read_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"x")
    os.symlink("target", tmp_path / "link")
    with pytest.raises(OSError):
        convert._read_small_file(str(tmp_path / "link"), 100)


def test_metadata_goes_before_content_each_kind_in_order() -> None:
    from pyostree.push.receive_client import metadata_first

    names = [("a" * 64, ObjectType.FILE), ("b" * 64, ObjectType.DIR_TREE),
             ("c" * 64, ObjectType.FILE), ("d" * 64, ObjectType.DIR_META),
             ("e" * 64, ObjectType.COMMIT)]
    assert metadata_first(names) == [names[1], names[3], names[4], names[0], names[2]]
    assert metadata_first([]) == []


@needs_ostree
def test_the_client_sends_every_metadata_object_before_any_content(tmp_path: Path) -> None:
    """What the receiver reads, captured on its stdin: all of the commit's dirtrees,
    dirmeta and the commit come before the first content object (the receiver's writer
    thread stages them while its workers take the content behind them)."""
    import zstandard

    src = init(tmp_path / "src", "archive")
    head = commit(src, make_tree(tmp_path / "tree", files=30))
    dst = init(tmp_path / "dst", "archive")
    capture = tmp_path / "stdin"
    tee = (f"import shutil, subprocess, sys\n"
           f"p = subprocess.Popen([sys.executable, '-m', 'pyostree', 'receive'], stdin=subprocess.PIPE)\n"
           f"f = open({str(capture)!r}, 'wb')\n"
           f"while True:\n"
           f"    b = sys.stdin.buffer.read1(65536)\n"
           f"    if not b: break\n"
           f"    f.write(b); f.flush(); p.stdin.write(b); p.stdin.flush()\n"
           f"p.stdin.close(); sys.exit(p.wait())\n")
    do_push(src, dst, "main", receive_command=(sys.executable, "-c", tee))
    assert rev_parse(dst, "main") == head
    data = capture.read_bytes()
    order: List[ObjectType] = []
    pos = 0
    while pos < len(data):
        kind, length = data[pos], int.from_bytes(data[pos + 1:pos + 5], "big")
        payload = data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if kind == 15:  # OBJECTS
            body = payload[1:] if payload[0] == 0 else \
                zstandard.ZstdDecompressor().decompress(payload[1:], max_output_size=2 << 20)
            order += [obj.header.objtype for obj in decode_batch(body)]
    first_file = order.index(ObjectType.FILE)
    assert ObjectType.FILE not in order[:first_file]
    assert all(t is ObjectType.FILE for t in order[first_file:])
    assert order.count(ObjectType.COMMIT) == 1 and order.count(ObjectType.DIR_TREE) >= 3
