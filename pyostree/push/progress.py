"""What a push reports while it runs; the CLI renders it, the library never prints."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["Progress", "ProgressFn", "LogFn", "ProgressTracker"]


@dataclass(frozen=True)
class Progress:
    """A snapshot: ``bytes_total`` is an estimate (local object sizes)."""

    phase: str
    objects_done: int
    objects_total: int
    bytes_done: int
    bytes_total: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.bytes_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> Optional[float]:
        """Seconds left at the current rate, or None when unknown."""
        if self.rate <= 0 or self.bytes_total <= self.bytes_done:
            return None
        return (self.bytes_total - self.bytes_done) / self.rate


ProgressFn = Callable[[Progress], None]
LogFn = Callable[[str], None]


class ProgressTracker:
    """Counts objects and bytes and calls the callback at most every ``interval`` s."""

    def __init__(
        self, callback: Optional[ProgressFn], objects_total: int, bytes_total: int,
        *, interval: float = 0.2,
    ) -> None:
        self._callback = callback
        self._start = time.monotonic()
        self._last = 0.0
        self._interval = interval
        self.objects_total = objects_total
        self.bytes_total = bytes_total
        self.objects_done = 0
        self.objects_reused = 0
        self.bytes_done = 0

    def add_bytes(self, count: int) -> None:
        self.bytes_done += count
        self._maybe_report("send")

    def object_done(self) -> None:
        self.objects_done += 1
        self._maybe_report("send")

    def object_reused(self) -> None:
        """An object a previous, interrupted push had already staged: not re-sent."""
        self.objects_reused += 1

    def _maybe_report(self, phase: str) -> None:
        now = time.monotonic()
        if self._callback is not None and now - self._last >= self._interval:
            self._last = now
            self.report(phase)

    def report(self, phase: str) -> None:
        if self._callback is not None:
            self._callback(Progress(
                phase, self.objects_done, self.objects_total, self.bytes_done,
                max(self.bytes_total, self.bytes_done), time.monotonic() - self._start,
            ))
