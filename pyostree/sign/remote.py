"""A remote's signature settings, as libostree's pull reads them (for receive and pull).

``sign-verify`` / ``sign-verify-summary``: true (every engine that has keys), false, or a
list of engine names (each must have keys); keys come from ``verification-ENGINE-file``
and ``verification-ENGINE-key``.
"""

from __future__ import annotations

from typing import Optional, Tuple

from pyostree.errors import SignError
from pyostree.sign.ed25519 import PUBLIC_KEY_SIZE, Ed25519Verifier, read_key_file, decode_key
from pyostree.sign.engine import SIGN_TYPES

__all__ = ["remote_ed25519_verifier", "sign_verify_engines"]


def _option(repo: object, remote: str, key: str) -> Optional[str]:
    from pyostree.repo import Repo

    assert isinstance(repo, Repo)
    group = f'remote "{remote}"'
    if repo.config.get(group, "url") is None and repo.config.get(group, "metalink") is None:
        raise SignError(f"Remote \"{remote}\" not found")
    return repo.config.get(group, key)


def remote_ed25519_verifier(repo: object, remote: str, *, required: bool = False) -> Optional[Ed25519Verifier]:
    """The trusted keys of REMOTE's ``verification-ed25519-file`` plus ``-key``; None (or,
    if REQUIRED, libostree's error) when it configures neither."""
    path = _option(repo, remote, "verification-ed25519-file")
    inline = _option(repo, remote, "verification-ed25519-key")
    if path is None and inline is None:
        if required:
            raise SignError("No keys found for required signapi type ed25519")
        return None
    keys = []
    if path is not None:
        try:
            keys.extend(read_key_file(path, PUBLIC_KEY_SIZE, "public"))
        except SignError:
            raise SignError(f"Failed loading 'ed25519' keys from '{path}'") from None
    if inline is not None:
        try:
            key = decode_key(inline, PUBLIC_KEY_SIZE, "public")
        except SignError:
            raise SignError("Failed loading 'ed25519' keys from inline `verification-key`") from None
        if key not in keys:
            keys.append(key)
    return Ed25519Verifier(tuple(keys))


def sign_verify_engines(repo: object, remote: str, key: str = "sign-verify") -> Tuple[str, ...]:
    """The engines KEY (``sign-verify`` or ``sign-verify-summary``) asks for; () when off."""
    raw = _option(repo, remote, key)
    if raw is None or raw == "" or raw in ("false", "0"):
        return ()
    if raw in ("true", "1"):
        return SIGN_TYPES
    names = tuple(name.strip() for name in raw.replace(",", ";").split(";") if name.strip())
    for name in names:
        if name not in SIGN_TYPES:
            raise SignError("Requested signature type is not implemented")
    return names
