"""``pyostree commit``: commit a directory or tar archives, like ``ostree commit``."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Tuple

from pyostree.cli.common import add_signing_arguments, open_repo
from pyostree.errors import PyOstreeError

NAME = "commit"
SUMMARY = "Commit a new revision"


class CommitUsageError(PyOstreeError):
    """The commit command line is inconsistent."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="directory to commit (default: current directory)")
    parser.add_argument("-b", "--branch", help="branch (ref) to update")
    parser.add_argument("-s", "--subject", default="", help="one-line subject")
    parser.add_argument("-m", "--body", default="", help="full description")
    parser.add_argument("--tree", action="append", default=[], metavar="dir=PATH|tar=FILE|ref=REF",
                        help="add a layer (repeatable, later layers win)")
    parser.add_argument("--timestamp", help="commit time: @SECONDS or YYYY-MM-DD[ HH:MM:SS] (UTC)")
    parser.add_argument("--parent", help="parent commit, or 'none'")
    parser.add_argument("--base", metavar="REV",
                        help="Start from the given commit as a base (no modifiers apply)")
    parser.add_argument("--orphan", action="store_true",
                        help="no default parent (and no ref unless -b is given, as in ostree)")
    parser.add_argument("--add-metadata-string", action="append", default=[], metavar="KEY=VALUE",
                        help="string metadata (repeatable)")
    parser.add_argument("--add-metadata", action="append", default=[], metavar="KEY=GVARIANT-TEXT",
                        help="typed metadata: 'str', true/false, 5, uint32 5 (byte, int16, uint16, "
                             "int32, uint32, int64, uint64, double), 1.5, @t 7, ['a', 'b'], @as []")
    parser.add_argument("--owner-uid", type=int, help="set all files' uid")
    parser.add_argument("--owner-gid", type=int, help="set all files' gid")
    parser.add_argument("--canonical-permissions", action="store_true",
                        help="uid/gid 0, mode & 0755, no xattrs")
    parser.add_argument("--no-xattrs", action="store_true", help="do not record xattrs")
    parser.add_argument("--bind-ref", action="append", default=[], metavar="REF",
                        help="also bind the commit to REF")
    parser.add_argument("--no-bindings", action="store_true", help="do not add ref/collection bindings")
    parser.add_argument("--skip-if-unchanged", action="store_true",
                        help="do not commit if the tree equals the parent's")
    add_signing_arguments(parser, "commit")


def _parse_trees(args: argparse.Namespace) -> List[Tuple[str, str]]:
    if not args.tree:
        return [("dir", args.path or ".")]
    layers = []
    for spec in args.tree:
        kind, sep, value = spec.partition("=")
        if not sep or kind not in ("dir", "tar", "ref") or not value:
            raise CommitUsageError(f"invalid --tree={spec}: expected dir=PATH, tar=FILE or ref=REF")
        layers.append((kind, value))
    return layers


def _metadata(args: argparse.Namespace) -> List[Tuple[str, str, object]]:
    from pyostree.repo.commitwrite import split_key_value
    from pyostree.repo.gvtext import parse_gvariant_text

    entries: List[Tuple[str, str, object]] = []
    for text in args.add_metadata_string:
        key, value = split_key_value(text, "--add-metadata-string")
        entries.append((key, "s", value))
    for text in args.add_metadata:
        key, value = split_key_value(text, "--add-metadata")
        type_string, parsed = parse_gvariant_text(value)
        entries.append((key, type_string, parsed))
    return entries


def run(args: argparse.Namespace) -> int:
    from pyostree.repo.commitwrite import CommitRequest, parse_timestamp, write_commit
    from pyostree.repo.treebuilder import TreeBuilder, TreeOptions

    if args.branch is None and not args.orphan:
        raise CommitUsageError("A branch must be specified with --branch, or use --orphan")
    if args.branch is not None:
        from pyostree.repo.refwrite import ref_relpath

        ref_relpath(args.branch)  # reject a bad ref name before reading any file
    repo = open_repo(args)
    signers: list = []  # type: ignore[type-arg]
    if args.gpg_sign or args.sign:
        from pyostree.sign.options import make_signers

        signers = make_signers(sign_keys=args.sign, sign_type=args.sign_type,
                               gpg_keys=args.gpg_sign, gpg_homedir=args.gpg_homedir)
    parent: Optional[str] = None
    orphan_parent = False
    if args.parent is not None:
        if args.parent == "none":
            orphan_parent = True
        else:
            parent = repo.resolve_rev(args.parent)
    request = CommitRequest(
        branch=args.branch,
        subject=args.subject,
        body=args.body,
        timestamp=parse_timestamp(args.timestamp) if args.timestamp is not None else None,
        parent=parent,
        orphan=args.orphan,
        metadata=_metadata(args),
        bind_refs=tuple(args.bind_ref),
        no_bindings=args.no_bindings,
        skip_if_unchanged=args.skip_if_unchanged,
        no_parent=orphan_parent,
    )
    options = TreeOptions(
        canonical_permissions=args.canonical_permissions,
        no_xattrs=args.no_xattrs,
        owner_uid=args.owner_uid,
        owner_gid=args.owner_gid,
    )
    with repo.transaction() as txn:
        with TreeBuilder(txn, options) as builder:
            if args.base is not None:  # the tree below every layer, as ostree's --base
                base = repo.load_commit(repo.resolve_rev(args.base))
                builder.add_repo_tree(base.root_tree, base.root_meta)
            for kind, value in _parse_trees(args):
                if kind == "dir":
                    builder.add_directory(value)
                elif kind == "ref":
                    layer = repo.load_commit(repo.resolve_rev(value))
                    builder.add_repo_tree(layer.root_tree, layer.root_meta)
                else:
                    builder.add_tar(sys.stdin.buffer if value == "-" else value)
            root_tree, root_meta = builder.finish()
        result = write_commit(txn, root_tree, root_meta, request)
        if signers and result.commit is not None:  # signed before its ref moves
            from pyostree.sign.commitmeta import sign_commit

            sign_commit(repo, result.checksum, signers, commit_bytes=result.commit.to_bytes(), txn=txn)
    sys.stdout.write(f"{result.checksum}\n")
    return 0
