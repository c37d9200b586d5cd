"""``pyostree summary -u``: regenerate the repository summary."""

from __future__ import annotations

import argparse

from pyostree.cli.common import open_repo
from pyostree.errors import PyOstreeError

NAME = "summary"
SUMMARY = "Manage summary metadata"


class SummaryUsageError(PyOstreeError):
    """Only ``--update`` is implemented."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-u", "--update", action="store_true", help="update the summary")
    parser.add_argument("-m", "--add-metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="additional metadata (GVariant text)")
    parser.add_argument("--gpg-sign", action="append", default=[], metavar="KEY-ID",
                        help="GPG Key ID to sign the summary with (repeatable)")
    parser.add_argument("--gpg-homedir", metavar="HOMEDIR", help="GPG Homedir to use when looking for keyrings")
    parser.add_argument("--sign", action="append", default=[], metavar="KEY-ID",
                        help="key to sign the summary with (repeatable)")
    parser.add_argument("--sign-type", metavar="NAME", help="signature type to use (defaults to 'ed25519')")


def run(args: argparse.Namespace) -> int:
    from pyostree.repo.summary import parse_extra
    from pyostree.repo.summaryupdate import update_summary

    if not args.update:
        raise SummaryUsageError("summary: only --update is supported")
    extra = parse_extra([])
    if args.add_metadata:  # commitwrite brings the writing machinery: only when needed
        from pyostree.repo.commitwrite import split_key_value

        extra = parse_extra([split_key_value(text, "--add-metadata") for text in args.add_metadata])
    repo = open_repo(args)
    if not (args.gpg_sign or args.sign):
        update_summary(repo, extra=extra)
        return 0
    from pyostree.sign.commitmeta import sign_commit, summary_signer
    from pyostree.sign.options import make_signers

    signers = make_signers(sign_keys=args.sign, sign_type=args.sign_type,
                           gpg_keys=args.gpg_sign, gpg_homedir=args.gpg_homedir, wait=False)

    def sign_metadata_commit(txn: object, checksum: str, data: bytes) -> None:
        sign_commit(repo, checksum, signers, commit_bytes=data, txn=txn)

    update_summary(repo, extra=extra, sign=summary_signer(signers), sign_commit=sign_metadata_commit)
    return 0
