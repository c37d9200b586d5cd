"""Adding and removing signatures in a commit's detached metadata and in ``summary.sig``.

Existing signatures are kept (another key's, another engine's); a key that already signed is
not added twice. Every signature is made before anything is written, so a failing key
leaves the repo as it was.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

from pyostree.errors import SignError
from pyostree.objects.commitmeta import GPG_SIGNATURES_KEY, CommitMeta
from pyostree.objects.types import ObjectType
from pyostree.sign.engine import Signer

__all__ = ["add_signatures", "delete_gpg_signatures", "sign_commit", "summary_signer", "write_commitmeta"]


def add_signatures(meta: CommitMeta, data: bytes, signers: Sequence[Signer]) -> CommitMeta:
    """META with one signature over DATA per signer appended under its engine's key."""
    for signer in signers:
        existing = meta.signatures(signer.metadata_key)
        reason = signer.already_signed(existing)
        if reason is not None:
            raise SignError(reason)
        signature = signer.sign(data)
        if signature in existing:  # deterministic (ed25519): the same key signed already
            continue
        meta = meta.with_signature(signature, signer.metadata_key)
    return meta


def _existing(repo: object, checksum: str) -> CommitMeta:
    from pyostree.repo import Repo

    assert isinstance(repo, Repo)
    return CommitMeta(repo.load_commitmeta(checksum) or {})


def write_commitmeta(repo: object, checksum: str, meta: CommitMeta) -> None:
    """Replace the ``.commitmeta`` of CHECKSUM through a transaction (temp file + rename)."""
    from pyostree.repo import Repo

    assert isinstance(repo, Repo)
    data = meta.to_bytes()
    with repo.transaction() as txn:
        txn.write_commitmeta(checksum, data)


def sign_commit(repo: object, checksum: str, signers: Sequence[Signer], *,
                commit_bytes: Optional[bytes] = None, txn: object = None) -> CommitMeta:
    """Sign the commit object's bytes with every signer and store the merged commitmeta.

    TXN: write into that open transaction (the commit being written in it is passed as
    COMMIT_BYTES); otherwise a transaction of its own.
    """
    from pyostree.repo import Repo

    assert isinstance(repo, Repo)
    data = commit_bytes if commit_bytes is not None else repo.read_metadata_bytes(checksum, ObjectType.COMMIT)
    meta = add_signatures(_existing(repo, checksum), data, signers)
    if txn is not None:
        txn.write_commitmeta(checksum, meta.to_bytes())  # type: ignore[attr-defined]
    else:
        write_commitmeta(repo, checksum, meta)
    return meta


def delete_gpg_signatures(repo: object, checksum: str, fingerprints: Sequence[Sequence[str]]) -> int:
    """``gpg-sign --delete``: drop the signatures made by any of the keys (each given as its
    fingerprints, primary then subkeys); returns how many went."""
    from pyostree.sign.openpgp import parse_signatures

    meta = _existing(repo, checksum)
    signatures = meta.signatures(GPG_SIGNATURES_KEY)
    if not signatures:
        return 0
    kept: List[bytes] = []
    for signature in signatures:
        try:
            packets = parse_signatures(signature)
        except SignError:
            kept.append(signature)
            continue
        if any(packet.issued_by(tuple(fprs)) for packet in packets for fprs in fingerprints):
            continue
        kept.append(signature)
    removed = len(signatures) - len(kept)
    if removed:
        metadata = dict(meta.metadata)
        if kept:
            metadata[GPG_SIGNATURES_KEY] = ("aay", kept)
        else:
            del metadata[GPG_SIGNATURES_KEY]
        write_commitmeta(repo, checksum, CommitMeta(metadata))
    return removed


def summary_signer(signers: Sequence[Signer]) -> Callable[[bytes], bytes]:
    """The ``summary.sig`` maker for ``update_summary``: GPG signatures then the others."""
    ordered = sorted(signers, key=lambda signer: signer.metadata_key != GPG_SIGNATURES_KEY)

    def make(summary: bytes) -> bytes:
        return add_signatures(CommitMeta({}), summary, ordered).to_bytes()

    return make
