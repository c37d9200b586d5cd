"""Rewrite a repository's ``config`` the way ``ostree config set/unset`` does."""

from __future__ import annotations

import os
from pathlib import Path

from pyostree.repo.config import RepoConfig
from pyostree.repo.fsutil import fsync_dir, unlink_quietly, write_all

__all__ = ["write_config"]


def write_config(repo_path: "os.PathLike[str] | str", config: RepoConfig) -> None:
    """Replace REPO_PATH/config atomically with CONFIG in GKeyFile's canonical form."""
    target = Path(repo_path) / "config"
    temp = target.with_name(f".config-{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        try:
            write_all(fd, config.to_keyfile_text().encode("utf-8", "surrogateescape"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, target)
    except BaseException:
        unlink_quietly(str(temp))
        raise
    fsync_dir(str(target.parent))
