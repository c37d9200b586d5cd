"""``pyostree rev-parse``: print the commit checksum a revision names."""

from __future__ import annotations

import argparse
import sys

from pyostree.cli.common import open_repo
from pyostree.errors import NotFoundError, PyOstreeError

NAME = "rev-parse"
SUMMARY = "Output the target of a rev"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("revs", nargs="*", metavar="REV")
    parser.add_argument("-S", "--single", action="store_true",
                        help="if the repository has exactly one commit, print it; else fail")


def run(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    if args.single:
        if args.revs:
            raise PyOstreeError("Cannot specify arguments with --single")
        from pyostree.objects import ObjectType

        found = [checksum for checksum, _ in repo.list_objects(ObjectType.COMMIT)]
        if len(found) > 1:
            raise PyOstreeError("Multiple commit objects found")
        if not found:
            raise NotFoundError("No commit objects found")
        sys.stdout.write(f"{found[0]}\n")
        return 0
    if not args.revs:
        raise PyOstreeError("REV must be specified")
    for rev in args.revs:
        sys.stdout.write(f"{repo.resolve_rev(rev)}\n")
    return 0
