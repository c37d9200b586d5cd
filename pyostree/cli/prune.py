"""``pyostree prune``: delete unreachable objects (exclusive repo lock)."""

from __future__ import annotations

import argparse
import sys

from pyostree.cli.common import open_repo

NAME = "prune"
SUMMARY = "Search for unreachable objects"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refs-only", action="store_true", help="only keep what refs reach")
    parser.add_argument("--depth", type=int, default=-1, help="parents to keep per ref (-1: all)")
    parser.add_argument("--no-prune", action="store_true", help="only count, delete nothing")


def format_size(size: int) -> str:
    """GLib's ``g_format_size``: decimal units, one decimal, "bytes" below 1 kB."""
    if size < 1000:
        return f"{size} byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB", "PB", "EB"):
        value /= 1000.0
        if value < 1000.0 or unit == "EB":
            return f"{value:.1f}\u00a0{unit}"  # GLib puts a no-break space before units
    return f"{size} bytes"


def run(args: argparse.Namespace) -> int:
    from pyostree.repo.prune import prune

    repo = open_repo(args)
    result = prune(repo, refs_only=args.refs_only, depth=args.depth, dry_run=args.no_prune)
    out = sys.stdout
    out.write(f"Total objects: {result.total}\n")
    if result.pruned == 0:
        out.write("No unreachable objects\n")
    elif args.no_prune:
        out.write(f"Would delete: {result.pruned} objects, freeing {format_size(result.freed_bytes)}\n")
    else:
        out.write(f"Deleted {result.pruned} objects, {format_size(result.freed_bytes)} freed\n")
    return 0
