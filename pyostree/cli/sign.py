"""``pyostree sign``: ed25519 commit signatures, like ``ostree sign`` (libostree's sign engine)."""

from __future__ import annotations

import argparse
import sys
from typing import List

from pyostree.cli.common import open_repo
from pyostree.errors import PyOstreeError

NAME = "sign"
SUMMARY = "Sign a commit"


class SignUsageError(PyOstreeError):
    """The sign command line is incomplete."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("commit", nargs="?", metavar="COMMIT")
    parser.add_argument("keys", nargs="*", metavar="KEY-ID",
                        help="base64 secret keys (public keys with --verify or --delete)")
    parser.add_argument("-d", "--delete", action="store_true", help="delete signatures having any of the KEY-IDs")
    parser.add_argument("--verify", action="store_true", help="verify signatures")
    parser.add_argument("-s", "--sign-type", metavar="NAME", help="signature type to use (defaults to 'ed25519')")
    parser.add_argument("--keys-file", metavar="NAME", help="read keys from file")
    parser.add_argument("--keys-dir", metavar="NAME",
                        help="redefine system-wide directories with public and revoked keys for verification")


def _public_keys(texts: List[str]) -> List[bytes]:
    from pyostree.sign.ed25519 import PUBLIC_KEY_SIZE, SECRET_KEY_SIZE, decode_key

    keys = []
    for text in texts:
        try:
            keys.append(decode_key(text, PUBLIC_KEY_SIZE, "public"))
        except PyOstreeError:
            keys.append(decode_key(text, SECRET_KEY_SIZE, "public")[32:])
    return keys


def _verify(args: argparse.Namespace, repo: object, checksum: str, data: bytes, signatures: List[bytes]) -> int:
    from pyostree.errors import SignError
    from pyostree.sign.ed25519 import load_verifier

    for key in args.keys:  # ostree: the first key that verifies wins; bad keys are skipped
        try:
            message = load_verifier(keys=[key]).verify(data, signatures)
        except SignError:
            continue
        sys.stdout.write(message + "\n")
        return 0
    if args.keys and args.keys_file is None:
        raise SignError("No valid signatures found")
    verifier = load_verifier(keys_file=args.keys_file, keys_dir=args.keys_dir)
    sys.stdout.write(verifier.verify(data, signatures) + "\n")
    return 0


def run(args: argparse.Namespace) -> int:
    from pyostree.objects.commitmeta import ED25519_SIGNATURES_KEY, CommitMeta
    from pyostree.objects.types import ObjectType
    from pyostree.sign.engine import check_sign_type

    if args.commit is None:
        raise SignUsageError("Need a COMMIT to sign or verify")
    if not args.verify and args.keys_file is None and not args.keys:
        raise SignUsageError("Need at least one KEY-ID to sign with")
    repo = open_repo(args)
    checksum = repo.resolve_rev(args.commit)
    check_sign_type(args.sign_type)
    data = repo.read_metadata_bytes(checksum, ObjectType.COMMIT)
    meta = CommitMeta(repo.load_commitmeta(checksum) or {})
    signatures = meta.signatures(ED25519_SIGNATURES_KEY)
    if args.verify:
        return _verify(args, repo, checksum, data, signatures)
    from pyostree.sign.commitmeta import sign_commit, write_commitmeta

    if args.delete:
        from pyostree.sign.ed25519 import Ed25519Verifier

        doomed = _public_keys(args.keys)
        kept = [sig for sig in signatures if not _made_by(Ed25519Verifier(tuple(doomed)), data, sig)]
        metadata = dict(meta.metadata)
        if kept:
            metadata[ED25519_SIGNATURES_KEY] = ("aay", kept)
        else:
            metadata.pop(ED25519_SIGNATURES_KEY, None)
        if len(kept) != len(signatures):
            write_commitmeta(repo, checksum, CommitMeta(metadata))
        sys.stdout.write(f"Signatures deleted: {len(signatures) - len(kept)}\n")
        return 0
    from pyostree.sign.ed25519 import Ed25519Signer, read_secret_keys

    signers = [Ed25519Signer.from_base64(key) for key in args.keys]
    if args.keys_file is not None:
        signers.extend(read_secret_keys(args.keys_file))
    sign_commit(repo, checksum, signers, commit_bytes=data)
    return 0


def _made_by(verifier: object, data: bytes, signature: bytes) -> bool:
    from pyostree.errors import SignError
    from pyostree.sign.ed25519 import Ed25519Verifier

    assert isinstance(verifier, Ed25519Verifier)
    try:
        verifier.verify(data, [signature])
    except SignError:
        return False
    return True
