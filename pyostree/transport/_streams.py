"""Adapters that give any read/write callables a real ``io`` binary stream."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = ["CallableReader", "CallableWriter"]


class CallableReader(io.RawIOBase):
    """A raw reader over ``read(n) -> bytes`` (b"" at EOF)."""

    def __init__(self, read: Callable[[int], bytes], close: Optional[Callable[[], None]] = None):
        super().__init__()
        self._read = read
        self._close = close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                if self._close is not None:
                    self._close()
            finally:
                super().close()


class CallableWriter(io.RawIOBase):
    """A raw writer over ``write(bytes)`` that writes everything it is given."""

    def __init__(self, write: Callable[[bytes], None], close: Optional[Callable[[], None]] = None):
        super().__init__()
        self._write = write
        self._close = close

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        self._write(chunk)
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            try:
                if self._close is not None:
                    self._close()
            finally:
                super().close()
