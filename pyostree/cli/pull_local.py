"""``pyostree pull-local SRC [REF...]``: copy commits from another local repository."""

from __future__ import annotations

import argparse
import sys

from pyostree.cli.common import open_repo

NAME = "pull-local"
SUMMARY = "Copy data from SRC_REPO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC_REPO")
    parser.add_argument("refs", nargs="*", metavar="REF", help="refs or checksums (default: all refs)")
    parser.add_argument("--depth", type=int, default=0, help="parents to copy (-1: all)")
    parser.add_argument("--remote", help="write refs as REMOTE:REF")
    parser.add_argument("--commit-metadata-only", action="store_true",
                        help="Fetch only the commit metadata")
    parser.add_argument("--untrusted", action="store_true",
                        help="verify objects (always done; accepted for compatibility)")


def run(args: argparse.Namespace) -> int:
    from pyostree.repo import Repo
    from pyostree.repo.pull_local import pull_local

    dest = open_repo(args)
    src = Repo.open(args.src)
    result = pull_local(dest, src, args.refs, depth=args.depth, remote=args.remote,
                        commit_metadata_only=args.commit_metadata_only)
    # ostree's own line; it counts no content bytes when it imports objects as they are stored
    sys.stdout.write(f"{result.metadata} metadata, {result.content} content objects imported; "
                     "0 bytes content written\n")
    return 0
