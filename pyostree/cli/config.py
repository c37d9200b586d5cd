"""``pyostree config get|set|unset [--group=GROUP] KEY [VALUE]``, as ``ostree config``."""

from __future__ import annotations

import argparse
import sys
from typing import List, Tuple

from pyostree.cli.common import open_repo
from pyostree.errors import PyOstreeError

NAME = "config"
SUMMARY = "Change repo configuration settings"
INTERMIXED = True  # ``set --group=G KEY VALUE``: the option sits between the words


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("words", nargs="*", metavar="get KEY|set KEY VALUE|unset KEY")
    parser.add_argument("--group", metavar="GROUP", help="Group name")


def _split_key(args: argparse.Namespace, key: str) -> Tuple[str, str]:
    """ostree's SECTION.KEY (split at the first dot), or the KEY of --group as is."""
    if args.group is not None:
        return args.group, key
    group, dot, name = key.partition(".")
    if not dot:
        raise PyOstreeError('Key must be of the form "sectionname.keyname"')
    return group, name


def run(args: argparse.Namespace) -> int:
    words: List[str] = args.words
    if not words:
        raise PyOstreeError("OPERATION must be specified")
    operation = words[0]
    if operation not in ("get", "set", "unset"):
        raise PyOstreeError(f"Unknown operation {operation}")
    if operation == "set":
        if len(words) < 3:
            raise PyOstreeError("KEY and VALUE must be specified")
    elif len(words) < 2:
        raise PyOstreeError("KEY must be specified")
    group, key = _split_key(args, words[1])
    repo = open_repo(args)
    config = repo.config
    if operation == "get":
        if not config.has_group(group):
            raise PyOstreeError(f"Key file does not have group \u201c{group}\u201d")
        value = config.get(group, key)
        if value is None:
            raise PyOstreeError(
                f"Key file does not have key \u201c{key}\u201d in group \u201c{group}\u201d")
        sys.stdout.write(f"{value}\n")
        return 0
    from pyostree.repo.configwrite import write_config

    if operation == "set":
        config.set(group, key, words[2])
    elif not config.remove(group, key):
        return 0  # ostree ignores a missing key or group, and writes nothing
    write_config(repo.path, config)
    return 0
