"""``pyostree receive``: the server side of a receive-mode push (see docs/protocol.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyostree._lazy import lazy_names

if TYPE_CHECKING:
    from pyostree.receive.server import ReceiveConfig, resolve_repo_path, serve

__all__ = ["ReceiveConfig", "resolve_repo_path", "serve"]

# The server loads on first use (the wire format is pyostree.transport.wire).
__getattr__, __dir__ = lazy_names(globals(), {name: "pyostree.receive.server" for name in __all__})
