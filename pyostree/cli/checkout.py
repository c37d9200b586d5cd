"""``pyostree checkout``: materialise a commit (or a subdirectory of it) like ``ostree checkout``."""

from __future__ import annotations

import argparse
import os

from pyostree.checkout import CheckoutOptions, checkout_tree, commit_root, resolve_path
from pyostree.cli.common import open_repo
from pyostree.errors import NotFoundError

NAME = "checkout"
SUMMARY = "Check out a commit into a filesystem tree"
FAST_EXIT = True  # see pyostree.cli.main: every file written is closed (and fsynced if asked)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rev", metavar="COMMIT")
    parser.add_argument("destination", nargs="?", metavar="DESTINATION",
                        help="defaults to the commit argument")
    parser.add_argument("-U", "--user-mode", action="store_true",
                        help="do not change file ownership or initialize extended attributes")
    parser.add_argument("--union", action="store_true",
                        help="keep existing directories, overwrite existing files")
    parser.add_argument("--subpath", metavar="PATH", default="/", help="check out sub-directory PATH")
    parser.add_argument("--allow-noent", action="store_true",
                        help="do nothing if the specified path does not exist")
    parser.add_argument("-H", "--require-hardlinks", action="store_true",
                        help="Do not fall back to full copies if hardlinking fails")
    parser.add_argument("-C", "--force-copy", action="store_true", help="never hardlink")
    parser.add_argument("--fsync", metavar="POLICY", choices=("true", "false", "1", "0"),
                        help="whether to fsync the files written (default: no)")


def run(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    commit = repo.resolve_rev(args.rev)
    destination = args.destination if args.destination is not None else args.rev
    options = CheckoutOptions(
        user_mode=args.user_mode,
        union=args.union,
        subpath=args.subpath,
        force_copy=args.force_copy,
        require_hardlinks=args.require_hardlinks,
        fsync=args.fsync in ("true", "1"),
    )
    root = commit_root(repo, commit)
    try:
        entry = resolve_path(repo, root, args.subpath)
    except NotFoundError:
        if args.allow_noent:
            return 0
        raise
    checkout_tree(repo, entry, os.path.abspath(destination), options)
    return 0
