"""``pyostree receive``: the server side of a receive-mode push (see docs/protocol.md)."""

from __future__ import annotations

from pyostree.receive.server import ReceiveConfig, resolve_repo_path, serve

__all__ = ["ReceiveConfig", "resolve_repo_path", "serve"]
