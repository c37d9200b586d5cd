"""Adapters that give any read/write callables a real ``io`` binary stream."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = ["CallableReader", "CallableWriter", "ViewWriter"]


class _CallableStream(io.RawIOBase):
    """Runs an optional ``close`` callable once, when the stream is closed."""

    def __init__(self, close: Optional[Callable[[], None]]) -> None:
        super().__init__()
        self._close = close

    def close(self) -> None:
        if not self.closed:
            try:
                if self._close is not None:
                    self._close()
            finally:
                super().close()


class CallableReader(_CallableStream):
    """A raw reader over ``read(n) -> bytes`` (b"" at EOF)."""

    def __init__(self, read: Callable[[int], bytes], close: Optional[Callable[[], None]] = None):
        super().__init__(close)
        self._read = read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read(len(view))
        view[: len(data)] = data
        return len(data)


class CallableWriter(_CallableStream):
    """A raw writer over ``write(bytes)`` that writes everything it is given."""

    def __init__(self, write: Callable[[bytes], None], close: Optional[Callable[[], None]] = None):
        super().__init__(close)
        self._write = write

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        self._write(chunk)
        return len(chunk)


class ViewWriter(_CallableStream):
    """A raw writer over ``write(view)``: no copy, for a callable that is done with the
    bytes when it returns (it copies what it keeps). It must not keep the view or a slice
    of it: ``io.BufferedWriter`` hands ``write`` its own buffer (or the caller's) and
    reuses it afterwards. The view is a flat byte view, released on return."""

    def __init__(self, write: Callable[[memoryview], None],
                 close: Optional[Callable[[], None]] = None):
        super().__init__(close)
        self._write = write

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        with memoryview(data) as view, view.cast("B") as flat:
            self._write(flat)
            return len(flat)
