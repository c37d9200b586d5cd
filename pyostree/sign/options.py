"""Signers from command-line style options, resolved before anything is written."""

from __future__ import annotations

from typing import List, Optional, Sequence

from pyostree.sign.engine import Signer, check_sign_type

__all__ = ["make_signers"]


def make_signers(
    *,
    sign_keys: Sequence[str] = (),
    sign_type: Optional[str] = None,
    gpg_keys: Sequence[str] = (),
    gpg_homedir: Optional[str] = None,
    wait: bool = True,
) -> List[Signer]:
    """``--gpg-sign=KEYID``s (looked up in the homedir) then ``--sign=KEY``s of SIGN_TYPE.

    A bad key, an unknown type or a missing ``gpg`` raises SignError here, not halfway;
    with WAIT false a GPG key lookup may still be running, and fails on the signer's first use
    (callers that sign before writing anything, like ``update_summary``, lose nothing).
    """
    signers: List[Signer] = []
    if gpg_keys:
        from pyostree.sign.gpg import GpgSigner

        gpg_signers = [GpgSigner(key, gpg_homedir) for key in gpg_keys]
        if wait:
            for signer in gpg_signers:
                signer.check()
        signers.extend(gpg_signers)
    if sign_keys:
        check_sign_type(sign_type)
        from pyostree.sign.ed25519 import Ed25519Signer

        signers.extend(Ed25519Signer.from_base64(key) for key in sign_keys)
    return signers
