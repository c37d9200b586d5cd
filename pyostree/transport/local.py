"""The local-filesystem transport: same contract as sftp, straight system calls."""

from __future__ import annotations

import os
from typing import BinaryIO, List, Optional, Tuple, Union

from .base import ExecChannel, FileTransport, RemoteStat

__all__ = ["LocalFileTransport", "local_exec"]


class LocalFileTransport(FileTransport):
    """Files under ``root`` on this machine."""

    def __init__(self, root: Union[str, "os.PathLike[str]"]) -> None:
        raise NotImplementedError


def local_exec(argv: List[str]) -> ExecChannel:
    """Run ``argv`` as a subprocess with piped stdio (no shell)."""
    raise NotImplementedError
