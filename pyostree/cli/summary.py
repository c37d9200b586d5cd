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


def run(args: argparse.Namespace) -> int:
    from pyostree.repo.commitwrite import split_key_value
    from pyostree.repo.summary import parse_extra
    from pyostree.repo.summaryupdate import update_summary

    if not args.update:
        raise SummaryUsageError("summary: only --update is supported")
    pairs = [split_key_value(text, "--add-metadata") for text in args.add_metadata]
    repo = open_repo(args)
    update_summary(repo, extra=parse_extra(pairs))
    return 0
