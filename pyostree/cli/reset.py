"""``pyostree reset REF CHECKSUM``: point an existing ref at another commit."""

from __future__ import annotations

import argparse

from pyostree.cli.common import open_repo
from pyostree.errors import NotFoundError

NAME = "reset"
SUMMARY = "Reset a REF to a previous COMMIT"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ref", metavar="REF")
    parser.add_argument("commit", metavar="COMMIT", help="checksum or revision to point REF at")


def run(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    with repo.transaction() as txn:
        if repo.read_ref(args.ref) is None:
            raise NotFoundError(f"Refspec '{args.ref}' not found")
        checksum = repo.resolve_rev(args.commit)
        txn.set_ref(args.ref, checksum)
    return 0
