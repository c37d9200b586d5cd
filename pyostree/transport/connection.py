"""What an ssh vendor hands back: one session that opens sftp transports and exec channels.

It lives below ``ssh.py`` and both vendors, so that ``ssh.py`` (which picks a vendor) and the
vendors (which implement this) do not import each other.
"""

from __future__ import annotations

import abc
from typing import List

from .base import ExecChannel, FileTransport

__all__ = ["SshConnection"]


class SshConnection(abc.ABC):
    """One authenticated ssh session that hands out sftp file transports and exec channels."""

    @abc.abstractmethod
    def open_files(self, root: str) -> FileTransport:
        """An sftp FileTransport rooted at the repo path ``root`` (relative = from home)."""

    @abc.abstractmethod
    def exec(self, argv: List[str]) -> ExecChannel:
        """Run ``argv`` remotely (shell-quoted into one exec request)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the session and everything opened from it."""

    def __enter__(self) -> "SshConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
