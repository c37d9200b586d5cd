"""Where a push goes: a local repo path or ``[user@]host:path`` over ssh.

Parsing follows scp's rules so users can type what they already know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import TransportError

__all__ = ["Destination", "DestinationError", "parse_destination"]


class DestinationError(TransportError, ValueError):
    """A destination string cannot be understood."""


@dataclass(frozen=True)
class Destination:
    """A parsed destination; ``kind`` is ``"local"`` or ``"ssh"``."""

    kind: str
    path: str
    host: Optional[str] = None
    user: Optional[str] = None
    port: Optional[int] = None


def parse_destination(text: str) -> Destination:
    """Parse ``[user@]host:path``, ``ssh://[user@]host[:port]/path``, ``file://path`` or a path.

    Like scp, a colon only means ssh when it comes before any ``/``: ``./a:b`` is local.
    """
    raise NotImplementedError
