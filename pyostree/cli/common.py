"""Helpers shared by command modules: opening the repo, writing output."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Optional

from pyostree.errors import RepoError

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = ["MISSING_REPO_MESSAGE", "open_repo", "repo_path", "write_bytes"]

MISSING_REPO_MESSAGE = "Command requires a --repo argument"


def repo_path(args: argparse.Namespace) -> str:
    """The repo path the frame resolved (--repo, cwd, $OSTREE_REPO), or a clear error."""
    path: Optional[str] = getattr(args, "repo", None)
    if not path:
        raise RepoError(MISSING_REPO_MESSAGE)
    return path


def open_repo(args: argparse.Namespace) -> Repo:
    """Open the repository the command line names; RepoError if there is none."""
    from pyostree.repo import Repo  # imported late: commands that need no repo stay light

    return Repo.open(repo_path(args))


def write_bytes(data: bytes) -> None:
    """Write raw bytes to stdout after whatever text is already buffered."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
