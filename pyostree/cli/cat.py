"""``pyostree cat``: stream the contents of files in a commit to stdout."""

from __future__ import annotations

import argparse
import sys

from pyostree.checkout.tree import commit_root, resolve_path
from pyostree.cli.common import open_repo
from pyostree.errors import NotFoundError, PyOstreeError

NAME = "cat"
SUMMARY = "Concatenate contents of files"
MAX_SYMLINK_HOPS = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rev", metavar="COMMIT")
    parser.add_argument("paths", nargs="+", metavar="PATH")


def run(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    root = commit_root(repo, repo.resolve_rev(args.rev))
    out = sys.stdout.buffer
    sys.stdout.flush()
    for path in args.paths:
        entry = resolve_path(repo, root, path)
        for _ in range(MAX_SYMLINK_HOPS):
            if entry.is_dir:
                raise PyOstreeError("Can't open directory")
            with repo.open_content(entry.checksum) as reader:
                if not reader.header.is_symlink:
                    for chunk in reader.iter_chunks():
                        out.write(chunk)
                    break
                target = reader.header.symlink_target
            # Like ostree, a symlink is followed inside the commit (absolute = commit root).
            parent_path = entry.path.rsplit("/", 1)[0] or "/"
            parent = resolve_path(repo, root, parent_path)
            entry = resolve_path(repo, root, target, start=parent)
        else:
            raise NotFoundError(f"{path}: Too many levels of symbolic links")
    out.flush()
    return 0
