"""The ``config`` keys a writer honours (``core.fsync``, locking, zlib level, …)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pyostree.errors import RepoError
from pyostree.repo.lock import DEFAULT_LOCK_TIMEOUT_SECS
from pyostree.repo.staging import DEFAULT_TMP_EXPIRY_SECS

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = ["WriteSettings"]


class WriteSettings:
    """The config keys a writer honours, read once per transaction."""

    def __init__(self, repo: Repo) -> None:
        self.mode_name = _mode_name(repo)
        self.archive = self.mode_name in ("archive", "archive-z2")
        self.fsync = _config_bool(repo, "core", "fsync", True)
        self.locking = _config_bool(repo, "core", "locking", True)
        self.lock_timeout = _config_int(repo, "core", "lock-timeout-secs", DEFAULT_LOCK_TIMEOUT_SECS)
        self.tmp_expiry = _config_int(repo, "core", "tmp-expiry-secs", DEFAULT_TMP_EXPIRY_SECS)
        self.zlib_level = min(9, max(1, _config_int(repo, "archive", "zlib-level", 6)))
        self.collection_id = _config_str(repo, "core", "collection-id")
        self.auto_update_summary = _config_bool(
            repo, "core", "auto-update-summary", _config_bool(repo, "core", "commit-update-summary", False)
        )


def _mode_name(repo: Repo) -> str:
    mode = getattr(repo, "mode", None)
    text = getattr(mode, "value", mode)
    if not isinstance(text, str):
        raise RepoError("repo has no mode")
    return text


def _config_str(repo: Repo, group: str, key: str) -> Optional[str]:
    config = getattr(repo, "config", None)
    if config is None:
        return None
    value = config.get(group, key)
    return None if value is None else str(value).strip()


def _config_bool(repo: Repo, group: str, key: str, default: bool) -> bool:
    text = _config_str(repo, group, key)
    if text is None:
        return default
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise RepoError(f"config key {group}.{key}: invalid boolean {text!r}")


def _config_int(repo: Repo, group: str, key: str, default: int) -> int:
    text = _config_str(repo, group, key)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise RepoError(f"config key {group}.{key}: invalid integer {text!r}") from None
