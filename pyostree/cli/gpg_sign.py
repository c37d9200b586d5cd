"""``pyostree gpg-sign``: add or delete GPG signatures of a commit, like ``ostree gpg-sign``."""

from __future__ import annotations

import argparse
import sys

from pyostree.cli.common import open_repo
from pyostree.errors import PyOstreeError

NAME = "gpg-sign"
SUMMARY = "Sign a commit"


class GpgSignUsageError(PyOstreeError):
    """The gpg-sign command line is incomplete."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("commit", nargs="?", metavar="COMMIT")
    parser.add_argument("keys", nargs="*", metavar="KEY-ID")
    parser.add_argument("-d", "--delete", action="store_true",
                        help="delete signatures having any of the GPG KEY-IDs")
    parser.add_argument("--gpg-homedir", metavar="HOMEDIR", help="GPG Homedir to use when looking for keyrings")


def run(args: argparse.Namespace) -> int:
    if args.commit is None:
        raise GpgSignUsageError("Need a COMMIT to sign")
    if not args.keys:
        raise GpgSignUsageError("Need at least one GPG KEY-ID to sign with")
    repo = open_repo(args)
    checksum = repo.resolve_rev(args.commit)
    if args.delete:
        from pyostree.errors import SignError
        from pyostree.sign.commitmeta import delete_gpg_signatures
        from pyostree.sign.gpg import find_key

        keys = []
        for key_id in args.keys:
            try:
                keys.append(find_key(key_id, args.gpg_homedir, secret=False).fingerprints)
            except SignError:
                if all(c in "0123456789abcdefABCDEF" for c in key_id) and len(key_id) >= 8:
                    keys.append((key_id.upper(),))  # a key id or fingerprint of a key we do not have
        deleted = delete_gpg_signatures(repo, checksum, keys)
        sys.stdout.write(f"Signatures deleted: {deleted}\n")
        return 0
    from pyostree.sign.commitmeta import sign_commit
    from pyostree.sign.options import make_signers

    sign_commit(repo, checksum, make_signers(gpg_keys=args.keys, gpg_homedir=args.gpg_homedir))
    return 0
