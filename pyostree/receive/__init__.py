"""``pyostree receive``: the server side of a receive-mode push (see docs/protocol.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyostree.receive.server import ReceiveConfig, resolve_repo_path, serve

__all__ = ["ReceiveConfig", "resolve_repo_path", "serve"]


def __getattr__(name: str) -> Any:
    """The server loads on first use: a pushing client imports only the protocol."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from pyostree.receive import server

    return getattr(server, name)
