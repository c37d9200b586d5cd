"""``pyostree log``: a commit and its ancestors in ostree's exact text format."""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import TYPE_CHECKING, TextIO

from pyostree.cli.common import open_repo
from pyostree.errors import NotFoundError, ObjectError

if TYPE_CHECKING:
    from pyostree.objects import Commit

NAME = "log"
SUMMARY = "Show log starting at commit or ref"
HISTORY_END = "<< History beyond this commit not fetched >>\n"
_INDENT = "    "


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rev", metavar="REV")


def format_timestamp(timestamp: int) -> str:
    """GLib's ``%Y-%m-%d %H:%M:%S +0000`` of a UTC timestamp; years 1..9999 only, like GLib."""
    try:
        moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=timestamp)
    except OverflowError:
        raise ObjectError(f"Failed to read commit: Invalid timestamp: {timestamp}") from None
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} +0000")


def indented_lines(text: str) -> str:
    """ostree's dump_indented_lines: every line indented by four spaces."""
    out = []
    for line in text.split("\n")[:-1]:
        out.append(f"{_INDENT}{line}\n")
    last = text.split("\n")[-1]
    if last:
        out.append(f"{_INDENT}{last}\n")
    return "".join(out)


def format_commit(checksum: str, commit: Commit) -> str:
    """The ``ostree log``/``show`` text of one commit, ending with its blank line."""
    lines = [f"commit {checksum}\n"]
    if commit.parent:
        lines.append(f"Parent:  {commit.parent}\n")
    lines.append(f"ContentChecksum:  {commit.content_checksum}\n")
    lines.append(f"Date:  {format_timestamp(commit.timestamp)}\n")
    version = commit.metadata.get("version")
    if version is not None and version[0] == "s":
        lines.append(f"Version: {version[1]}\n")
    if commit.subject:
        lines.append("\n")
        lines.append(indented_lines(commit.subject))
    else:
        lines.append("(no subject)\n")
    if commit.body:
        lines.append("\n")
        lines.append(indented_lines(commit.body))
    lines.append("\n")
    return "".join(lines)


def write_log(out: TextIO, repo: object, checksum: str) -> None:
    from pyostree.repo import Repo

    assert isinstance(repo, Repo)
    current: str | None = checksum
    first = True
    seen = set()
    while current is not None and current not in seen:
        seen.add(current)
        try:
            commit = repo.load_commit(current)
        except NotFoundError:
            if first:
                raise
            out.write(HISTORY_END)
            return
        out.write(format_commit(current, commit))
        first = False
        current = commit.parent


def run(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    checksum = repo.resolve_rev(args.rev)
    write_log(sys.stdout, repo, checksum)
    return 0
