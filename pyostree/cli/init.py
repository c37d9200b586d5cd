"""``pyostree init``: create a repository like ``ostree init``."""

from __future__ import annotations

import argparse

from pyostree.cli.common import repo_path

NAME = "init"
SUMMARY = "Initialize a new empty repository"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", default="bare",
                        choices=["bare", "archive", "archive-z2", "bare-user", "bare-user-only"],
                        help="storage mode (default: bare)")
    parser.add_argument("--collection-id", help="collection id of this repo (reverse DNS)")


def run(args: argparse.Namespace) -> int:
    from pyostree.repo.init import init_repo

    init_repo(repo_path(args), args.mode, collection_id=args.collection_id)
    return 0
