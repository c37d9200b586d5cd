"""Create a repository with the same layout and ``config`` bytes as ``ostree init``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Union

from pyostree.errors import RepoError

if TYPE_CHECKING:
    from pyostree.repo import Repo, RepoMode

__all__ = ["MODE_NAMES", "config_text", "init_repo", "mode_config_name"]

# `ostree init --mode=X` spelling -> what libostree writes into config.
MODE_NAMES = {
    "archive": "archive-z2",
    "archive-z2": "archive-z2",
    "bare": "bare",
    "bare-user": "bare-user",
    "bare-user-only": "bare-user-only",
}

# Created in this order by libostree; the repo "exists" once objects/ does, so it is last.
_LAYOUT_DIRS = ("tmp", "extensions", "state", "refs", "refs/heads", "refs/mirrors", "refs/remotes", "objects")


def mode_config_name(mode: Union[str, RepoMode]) -> str:
    """Normalise a mode given as text or ``RepoMode`` to its ``core.mode`` spelling."""
    text = getattr(mode, "value", mode)
    if not isinstance(text, str) or text not in MODE_NAMES:
        raise RepoError(f"invalid repo mode {text!r}: expected archive, bare, bare-user or bare-user-only")
    return MODE_NAMES[text]


def config_text(mode: Union[str, RepoMode], collection_id: Optional[str] = None) -> str:
    """The exact ``config`` that ``ostree init`` writes."""
    text = f"[core]\nrepo_version=1\nmode={mode_config_name(mode)}\n"
    if collection_id is not None:
        text += f"collection-id={collection_id}\n"
    return text


def init_repo(
    path: Union[str, "os.PathLike[str]"],
    mode: Union[str, RepoMode],
    collection_id: Optional[str] = None,
) -> Repo:
    """Create ``path`` as a repo; like libostree, an existing repo is left as it is."""
    from pyostree.objects.names import validate_collection_id
    from pyostree.repo import Repo

    root = os.fspath(path)
    text = config_text(mode, collection_id)
    if collection_id is not None:
        validate_collection_id(collection_id)
    if os.path.isdir(os.path.join(root, "objects")):
        return Repo.open(root)
    try:
        os.makedirs(root, 0o775, exist_ok=True)
        config_path = os.path.join(root, "config")
        tmp_config = config_path + ".tmp"
        with open(tmp_config, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp_config, config_path)
        for name in _LAYOUT_DIRS:
            try:
                os.mkdir(os.path.join(root, name), 0o775)
            except FileExistsError:
                pass
        os.makedirs(os.path.join(root, "tmp", "cache"), 0o775, exist_ok=True)
    except OSError as err:
        raise RepoError(f"cannot create repo at {root}: {err.strerror}") from None
    return Repo.open(root)

