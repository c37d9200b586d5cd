"""What every signing engine offers, and the engine names ostree knows."""

from __future__ import annotations

from typing import List, Optional, Protocol, Sequence

from pyostree.errors import SignError
from pyostree.objects.commitmeta import ED25519_SIGNATURES_KEY, GPG_SIGNATURES_KEY

__all__ = ["ED25519_SIGNATURES_KEY", "GPG_SIGNATURES_KEY", "SIGN_TYPES", "Signer", "check_sign_type"]

#: ``--sign-type`` values; libostree 2022.7 knows ``ed25519`` (with libsodium) and ``dummy``.
SIGN_TYPES = ("ed25519",)

#: More signatures than this under one key is hostile, not a publisher's history.
MAX_SIGNATURES = 1024


class Signer(Protocol):
    """One key that signs bytes; its signatures live in ``metadata_key`` (an ``aay``)."""

    metadata_key: str

    def sign(self, data: bytes) -> bytes:
        """A detached signature over DATA."""

    def already_signed(self, signatures: Sequence[bytes]) -> Optional[str]:
        """Why adding a signature by this key to SIGNATURES would duplicate one, or None."""


def check_sign_type(name: Optional[str]) -> str:
    """The engine name for ``--sign-type`` (default ed25519); ostree's error otherwise."""
    name = "ed25519" if name is None else name
    if name not in SIGN_TYPES:
        raise SignError("Requested signature type is not implemented")
    return name


def bounded(signatures: List[bytes], what: str) -> List[bytes]:
    """Refuse a signature list too long to check at a bounded cost."""
    if len(signatures) > MAX_SIGNATURES:
        raise SignError(f"{what}: {len(signatures)} signatures, more than {MAX_SIGNATURES}")
    return signatures
