"""The refs lock appears with its content in one step, so a pusher that stalls while
writing it (a loaded machine, a slow link) cannot have it broken as "abandoned" by another."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import BinaryIO, List, Tuple

import pytest

import pyostree.push.refslock as refslock
from pyostree.push.refslock import REFS_LOCK, refs_lock
from pyostree.errors import PushError
from pyostree.transport import LocalFileTransport


class _Stalling(LocalFileTransport):
    """Every write of lock content by the thread named "slow" stalls before it starts."""

    def open_write(self, path: str, mode: int = 0o644) -> BinaryIO:
        handle = super().open_write(path, mode)
        if REFS_LOCK in path and threading.current_thread().name == "slow":
            time.sleep(0.8)
        return handle


def test_a_stalled_lock_writer_is_not_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refslock, "INCOMPLETE_LOCK_SECS", 0.2)  # the stall outlasts it
    (tmp_path / "tmp").mkdir()
    events: List[Tuple[str, str]] = []
    errors: List[BaseException] = []

    def hold(name: str) -> None:
        try:
            with refs_lock(_Stalling(str(tmp_path)), lambda _m: None, wait=30, kernel_lock=False):
                events.append((name, "in"))
                time.sleep(0.5)
                events.append((name, "out"))
        except BaseException as err:  # reported below
            errors.append(err)

    slow = threading.Thread(target=hold, args=("slow",), name="slow")
    slow.start()
    time.sleep(0.3)  # the slow one is inside its stall now
    fast = threading.Thread(target=hold, args=("fast",), name="fast")
    fast.start()
    slow.join(60)
    fast.join(60)
    assert not errors
    assert len(events) == 4
    for first, second in zip(events[::2], events[1::2]):  # in/out pairs never interleave
        assert first[0] == second[0] and (first[1], second[1]) == ("in", "out"), events
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == []  # no temp file left


def test_lock_file_is_never_written_in_place(tmp_path: Path) -> None:
    written: List[str] = []

    class _Recording(LocalFileTransport):
        def open_write(self, path: str, mode: int = 0o644) -> BinaryIO:
            written.append(path)
            return super().open_write(path, mode)

    (tmp_path / "tmp").mkdir()
    files = _Recording(str(tmp_path))
    with refs_lock(files, lambda _m: None):
        (entry,) = (tmp_path / REFS_LOCK).iterdir()
        text = entry.read_text()
        assert text.endswith("\n") and len(text.split()) >= 2
        with pytest.raises(PushError, match="another push"):
            with refs_lock(files, lambda _m: None, wait=0.3):
                pass
    assert written and REFS_LOCK not in written
    assert not (tmp_path / REFS_LOCK).exists()
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == ["pyostree-push-refs.ofd"]
