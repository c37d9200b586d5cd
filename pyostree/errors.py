"""The one root of every error pyostree raises on purpose.

Callers catch :class:`PyOstreeError` and show ``str(err)`` as a one-line message;
anything else escaping the library is a bug.
"""

from __future__ import annotations


class PyOstreeError(Exception):
    """Root of all pyostree errors."""


class ObjectError(PyOstreeError, ValueError):
    """An object's bytes are malformed or fail OSTree's validation."""


class ChecksumMismatchError(ObjectError):
    """An object's content does not hash to the name it is stored under."""


class RepoError(PyOstreeError):
    """The repository is missing, unreadable or misconfigured."""


class NotFoundError(RepoError):
    """A ref, revision, object or path does not exist."""


class RefError(PyOstreeError, ValueError):
    """A ref name or refspec is not valid."""


class LockError(RepoError):
    """The repository lock could not be taken in time."""


class CheckoutError(PyOstreeError):
    """A checkout was refused because it would write something unsafe or wrong."""


class TransportError(PyOstreeError):
    """A transport (local, sftp, ssh exec) failed."""


class PushError(PyOstreeError):
    """A push was refused or failed; the remote is left consistent."""


class SignError(PyOstreeError):
    """Signing or signature verification failed (bad key, bad signature, no gpg)."""
