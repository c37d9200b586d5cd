"""paramiko, imported without ``invoke``.

``paramiko.config`` imports ``invoke`` (about 40 ms, most of it ``unittest.mock``) for one
feature, ``Match exec`` in an ssh config file. Every module of this package that uses paramiko
imports this one first (``from . import _paramiko`` just above ``import paramiko``), so
paramiko is loaded with ``invoke`` held back; :func:`enable_match_exec` hands it to
paramiko when a config file does use ``Match exec``.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["enable_match_exec"]


def _import_paramiko() -> Any:
    held_back = "paramiko" not in sys.modules and "invoke" not in sys.modules
    if held_back:
        sys.modules["invoke"] = None  # type: ignore[assignment]  # "import invoke" fails fast
    try:
        import paramiko  # type: ignore[import-untyped]
    finally:
        if held_back and "invoke" in sys.modules and sys.modules["invoke"] is None:
            del sys.modules["invoke"]
    return paramiko


paramiko: Any = _import_paramiko()  # the module, untyped


def enable_match_exec() -> None:
    """Give ``paramiko.config`` the ``invoke`` module it was imported without (if it is
    installed; if not, paramiko reports that itself when a ``Match exec`` is evaluated)."""
    config = paramiko.config
    if getattr(config, "invoke", None) is not None:
        return
    try:
        import invoke  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as err:
        config.invoke_import_error = err
        return
    config.invoke = invoke
