"""Turn OSError from any backend into one-line TransportErrors that name the operation."""

from __future__ import annotations

import contextlib
import errno
from typing import Iterator

from ..errors import TransportError
from .base import RemoteExistsError, RemoteNotFoundError

__all__ = ["translate_oserror", "oserror_to_transport"]


def oserror_to_transport(op: str, path: str, err: OSError) -> TransportError:
    """The TransportError subclass matching ``err``'s errno, with a one-line message."""
    reason = err.strerror or str(err) or type(err).__name__
    shown = path or "."
    message = f"cannot {op} {shown}: {reason}"
    if err.errno == errno.EEXIST or isinstance(err, FileExistsError):
        return RemoteExistsError(message)
    if err.errno == errno.ENOENT or isinstance(err, FileNotFoundError):
        return RemoteNotFoundError(message)
    return TransportError(message)


@contextlib.contextmanager
def translate_oserror(op: str, path: str) -> Iterator[None]:
    """Re-raise OSError inside the block as a TransportError for ``op`` on ``path``."""
    try:
        yield
    except TransportError:
        raise
    except OSError as err:
        raise oserror_to_transport(op, path, err) from err
