"""Commit and summary signatures: libostree's ed25519 sign engine and GPG through ``gpg``.

Above ``repo`` (it reads commits and writes ``.commitmeta``), below push/receive and the
CLI. ``cryptography`` is imported only when an ed25519 key is used, and ``gpg``/``gpgv``
run only when a GPG signature is made or checked.
"""

from __future__ import annotations

from pyostree.sign.engine import (
    ED25519_SIGNATURES_KEY,
    GPG_SIGNATURES_KEY,
    SIGN_TYPES,
    Signer,
    check_sign_type,
)

__all__ = [
    "ED25519_SIGNATURES_KEY",
    "GPG_SIGNATURES_KEY",
    "SIGN_TYPES",
    "Signer",
    "check_sign_type",
]
