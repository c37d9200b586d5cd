"""``pyostree fsck``: verify every object reachable from refs and commits, ostree-style output."""

from __future__ import annotations

import argparse
import sys

from pyostree.cli.common import open_repo
from pyostree.fsck import FsckProgress, fsck

NAME = "fsck"
SUMMARY = "Check the repository for consistency"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="only print error messages")
    parser.add_argument("-a", "--all", action="store_true",
                        help="don't stop on first error (always the case here)")


class _ProgressPrinter:
    """ostree's non-tty progress: the first and the last ``fsck objects (i/n) p%`` lines."""

    def __init__(self, quiet: bool) -> None:
        self.started = False
        self.announced = quiet  # -q drops the stage lines, not the progress (as ostree)

    def __call__(self, progress: FsckProgress) -> None:
        if not self.announced:
            self.announced = True
            sys.stdout.write(f"Verifying content integrity of {progress.commits} commit objects...\n")
        if progress.total == 0:
            return
        if not self.started and progress.done < progress.total:
            self.started = True
            self._line(1, progress.total)
        elif progress.done == progress.total:
            if not self.started:
                self.started = True
                self._line(1, progress.total)
            self._line(progress.total, progress.total)

    @staticmethod
    def _line(done: int, total: int) -> None:
        sys.stdout.write(f"fsck objects ({done}/{total}) {done * 100 // total}%\n")
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    out = sys.stdout
    if not args.quiet:
        out.write("Validating refs...\nValidating refs in collections...\nEnumerating commits...\n")
        out.flush()
    printer = _ProgressPrinter(args.quiet)
    result = fsck(repo, progress=printer)
    for problem in result.problems:
        sys.stderr.write(f"{problem}\n")
    if result.partial_commits:
        out.write(f"{result.partial_commits} partial commits not verified\n")
    out.flush()
    if result.problems:
        sys.stderr.write("error: Repository corruption encountered\n")
        return 1
    if result.fsck_partial_commits:
        sys.stderr.write(f"error: {result.partial_commits} partial commits from fsck-detected corruption\n")
        return 1
    out.write(f"object fsck of {result.commits_checked} commits completed successfully - "
              "no errors found.\n")
    return 0
