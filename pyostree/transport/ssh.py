"""Open a connection to an ssh destination with the chosen vendor (paramiko or OpenSSH)."""

from __future__ import annotations

import abc
from typing import Callable, List, Tuple

from .base import ExecChannel, FileTransport
from .destination import Destination
from .ssh_options import SshOptions, SshOptionError, parse_ssh_option

__all__ = [
    "SshConnection",
    "SshOptions",
    "SshOptionError",
    "parse_ssh_option",
    "connect",
    "open_transport",
    "ExecFunc",
    "CloseFunc",
]

ExecFunc = Callable[[List[str]], ExecChannel]
CloseFunc = Callable[[], None]


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


def connect(dest: Destination, opts: SshOptions) -> SshConnection:
    """Connect and authenticate (host key checked first: unknown/changed keys are refused)."""
    raise NotImplementedError


def open_transport(
    dest: Destination, opts: SshOptions
) -> Tuple[FileTransport, ExecFunc, CloseFunc]:
    """File ops, exec and close for any destination, local or ssh; what push uses."""
    raise NotImplementedError
