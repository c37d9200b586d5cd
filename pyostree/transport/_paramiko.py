"""paramiko, imported without ``invoke`` and without ``importlib.metadata``.

``paramiko.config`` imports ``invoke`` (about 40 ms, most of it ``unittest.mock``) for one
feature, ``Match exec`` in an ssh config file. Every module of this package that uses paramiko
imports this one first (``from . import _paramiko`` just above ``import paramiko``), so
paramiko is loaded with ``invoke`` held back; :func:`enable_match_exec` hands it to
paramiko when a config file does use ``Match exec``.

``paramiko/__init__`` also asks ``importlib.metadata`` for its own version (about 20 ms of
imports, ``email`` among them, for one string). When the version can be read from the name
of paramiko's ``.dist-info`` directory, that import is answered by a stand-in for the time
of ``import paramiko`` only; otherwise the real module is used.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from typing import Any, Dict, Optional

__all__ = ["enable_match_exec"]


def _dist_info_version(name: str) -> Optional[str]:
    """The version in the one ``NAME-VERSION.dist-info`` beside the package ``name``, or None."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    site_dir = os.path.dirname(os.path.abspath(list(spec.submodule_search_locations)[0]))
    try:
        entries = os.listdir(site_dir)
    except OSError:
        return None
    prefix, suffix = f"{name}-", ".dist-info"
    versions = [entry[len(prefix):-len(suffix)] for entry in entries
                if entry.lower().startswith(prefix) and entry.endswith(suffix)]
    versions = [v for v in versions if v[:1].isdigit() and _plain_version(v)]
    return versions[0] if len(versions) == 1 else None


def _plain_version(text: str) -> bool:
    return all(part.isalnum() for part in text.replace("+", ".").split("."))


def _metadata_stand_in(name: str, version: str) -> types.ModuleType:
    """An ``importlib.metadata`` whose ``version()`` knows ``name`` only."""
    module = types.ModuleType("importlib.metadata")

    def version_of(asked: str) -> str:
        if asked != name:
            raise LookupError(f"no metadata stand-in for {asked!r}")
        return version

    setattr(module, "version", version_of)
    return module


def _stand_ins() -> Dict[str, Optional[types.ModuleType]]:
    """What ``sys.modules`` holds while paramiko is imported (None: "import" fails fast)."""
    if "paramiko" in sys.modules:
        return {}
    stand_ins: Dict[str, Optional[types.ModuleType]] = {}
    if "invoke" not in sys.modules:
        stand_ins["invoke"] = None
    if "importlib.metadata" not in sys.modules:
        version = _dist_info_version("paramiko")
        if version is not None:
            stand_ins["importlib.metadata"] = _metadata_stand_in("paramiko", version)
    return stand_ins


def _import_paramiko() -> Any:
    stand_ins = _stand_ins()
    sys.modules.update(stand_ins)  # type: ignore[arg-type]
    try:
        import paramiko  # type: ignore[import-untyped]
    finally:
        for name, module in stand_ins.items():
            if name in sys.modules and sys.modules[name] is module:
                del sys.modules[name]
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
