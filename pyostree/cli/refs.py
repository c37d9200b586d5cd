"""``pyostree refs``: list refs like ``ostree refs`` (prefix, ``--list``, ``--collections``, ``--alias``)."""

from __future__ import annotations

import argparse
import sys
from typing import Dict, Optional

from pyostree.cli.common import open_repo
from pyostree.errors import PyOstreeError, RefError

NAME = "refs"
SUMMARY = "List refs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prefixes", nargs="*", metavar="PREFIX", help="only refs under PREFIX")
    parser.add_argument("--list", action="store_true", help="do not remove the prefix from the refs")
    parser.add_argument("-c", "--collections", action="store_true",
                        help="list (collection id, ref) pairs")
    parser.add_argument("-A", "--alias", action="store_true",
                        help="list aliases (with --create, create an alias)")
    parser.add_argument("--create", metavar="NEWREF", help="create NEWREF pointing at the given revision")
    parser.add_argument("--delete", action="store_true", help="delete refs which match PREFIX")
    parser.add_argument("--force", action="store_true", help="overwrite existing refs when creating")


def cut_prefix(refs: Dict[str, str], prefix: str) -> Dict[str, str]:
    """ostree's ``refs PREFIX``: an exact ref keeps its name, refs below a directory lose it."""
    if prefix in refs:
        return {prefix: refs[prefix]}
    if prefix.endswith(":"):  # "REMOTE:" lists that remote's refs with their full names
        return {name: csum for name, csum in refs.items() if name.startswith(prefix)}
    stem = prefix.rstrip("/")
    remote = stem.split(":", 1)[0] + ":" if ":" in stem else ""
    cut: Dict[str, str] = {}
    for name, checksum in refs.items():
        if name.startswith(stem + "/"):
            cut[remote + name[len(stem) + 1:]] = checksum
    return cut


def _list(args: argparse.Namespace, prefix: Optional[str]) -> None:
    repo = open_repo(args)
    out = sys.stdout
    if args.collections:
        for (collection, ref) in sorted(repo.list_collection_refs()):
            if prefix is None or ref == prefix or ref.startswith(prefix.rstrip("/") + "/"):
                out.write(f"({collection}, {ref})\n")
        return
    if args.alias:
        for alias, target in sorted(repo.list_aliases().items()):
            if prefix is None or alias == prefix or alias.startswith(prefix.rstrip("/") + "/"):
                out.write(f"{alias} -> {target}\n")
        return
    refs = repo.list_refs(prefix)
    if prefix is not None and not args.list:
        refs = cut_prefix(refs, prefix)
    for name in sorted(refs):
        out.write(f"{name}\n")


def _create(args: argparse.Namespace) -> None:
    from pyostree.repo import refwrite

    if len(args.prefixes) != 1:
        raise RefError("You must specify a revision when creating a new ref"
                       if not args.prefixes else
                       "You must specify only 1 existing ref when creating a new ref")
    repo = open_repo(args)
    if args.alias:
        raise PyOstreeError("refs --alias --create is not supported")
    if not args.force and repo.resolve_rev(args.create, allow_missing=True) is not None:
        raise RefError(f"--create specified but ref {args.create} already exists")
    checksum = repo.resolve_rev(args.prefixes[0])
    refwrite.set_ref(repo.path, args.create, checksum)


def _delete(args: argparse.Namespace) -> None:
    from pyostree.repo import refwrite

    if not args.prefixes:
        raise RefError("At least one PREFIX is required when deleting refs")
    repo = open_repo(args)
    aliases = repo.list_aliases()
    for prefix in args.prefixes:
        for refspec in sorted(repo.list_refs(prefix)):
            for alias, target in aliases.items():
                if target == refspec and alias != refspec:
                    raise RefError(f"Ref '{refspec}' has an active alias: '{alias}'")
            refwrite.delete_ref(repo.path, refspec)


def run(args: argparse.Namespace) -> int:
    if args.create is not None:
        _create(args)
    elif args.delete:
        _delete(args)
    elif args.prefixes:
        for prefix in args.prefixes:
            _list(args, prefix)
    else:
        _list(args, None)
    return 0
