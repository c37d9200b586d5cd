"""``pyostree show``: a commit (or other object) in ostree's text form, or one metadata key."""

from __future__ import annotations

import argparse
import sys

from pyostree.cli.common import format_variant, open_repo
from pyostree.cli.log import format_commit
from pyostree.errors import NotFoundError

NAME = "show"
SUMMARY = "Output a metadata object"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object", metavar="OBJECT")
    parser.add_argument("--print-metadata-key", metavar="KEY", help="print the value of metadata key KEY")
    parser.add_argument("--print-detached-metadata-key", metavar="KEY",
                        help="print the value of detached metadata key KEY")
    parser.add_argument("--print-related", action="store_true", help='show the "related" commits')
    parser.add_argument("-B", "--no-byteswap", action="store_true",
                        help="do not convert variant data from big endian")
    parser.add_argument("--gpg-homedir", metavar="HOMEDIR",
                        help="GPG Homedir to use when looking for keyrings")
    parser.add_argument("--gpg-verify-remote", metavar="REMOTE", help="use REMOTE name for GPG configuration")


def _print_key(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    checksum = repo.resolve_rev(args.object)
    detached = args.print_detached_metadata_key is not None
    key = args.print_detached_metadata_key if detached else args.print_metadata_key
    if detached:
        metadata = repo.load_commitmeta(checksum)
        if metadata is None:
            raise NotFoundError(f"No detached metadata for commit {checksum}")
    else:
        metadata = repo.load_commit(checksum).metadata
    if key not in metadata:
        raise NotFoundError(f"No such metadata key '{key}'")
    type_string, value = metadata[key]
    sys.stdout.write(format_variant(type_string, value, True, not args.no_byteswap) + "\n")
    return 0


def _print_file(repo: object, checksum: str) -> None:
    from pyostree.repo import Repo

    assert isinstance(repo, Repo)
    try:
        reader = repo.open_content(checksum)
    except NotFoundError:
        raise NotFoundError(f"Couldn't find file object '{checksum}'") from None
    with reader:
        header = reader.header
        out = [f"Object: {checksum}\n", "Type: file\n", "File Type: "]
        if header.is_symlink:
            out.append(f"symlink\nTarget: {header.symlink_target}\n")
        else:
            out.append(f"regular\nSize: {reader.size}\n")
        out.append(f"Mode: 0{header.mode:04o}\nUid: {header.uid}\nGid: {header.gid}\n")
        xattrs = [(name, value) for name, value in header.xattrs]
        out.append(f"Extended Attributes: {{ {format_variant('a(ayay)', xattrs)} }}\n")
    sys.stdout.write("".join(out))


def _gpg_report(args: argparse.Namespace, repo: object, checksum: str) -> str:
    """ostree's "Found N signatures:" block after a GPG-signed commit ("" when unsigned)."""
    import os

    from pyostree.objects.commitmeta import GPG_SIGNATURES_KEY, CommitMeta
    from pyostree.repo import Repo

    assert isinstance(repo, Repo)
    detached = repo.load_commitmeta(checksum)
    signatures = CommitMeta(detached).signatures(GPG_SIGNATURES_KEY) if detached else []
    if not signatures:
        return ""
    from pyostree.objects import ObjectType
    from pyostree.sign.gpg import GLOBAL_KEYRING_DIR, GpgVerifier, describe, remote_keyrings

    global_dir = os.environ.get("OSTREE_GPG_HOME", GLOBAL_KEYRING_DIR)
    keyrings = remote_keyrings(repo, args.gpg_verify_remote, global_dir=global_dir,
                               keyring_dir=args.gpg_homedir)
    results = GpgVerifier(keyrings).verify(repo.read_metadata_bytes(checksum, ObjectType.COMMIT), signatures)
    out = [f"Found {len(results)} signature{'' if len(results) == 1 else 's'}:\n"]
    for result in results:
        out.append("\n" + describe(result, "  "))
    return "".join(out)


def run(args: argparse.Namespace) -> int:
    if args.print_metadata_key is not None or args.print_detached_metadata_key is not None:
        return _print_key(args)
    from pyostree.objects import ObjectType
    from pyostree.objects.checksum import is_checksum

    repo = open_repo(args)
    if args.print_related:
        commit = repo.load_commit(repo.resolve_rev(args.object))
        for name, checksum in commit.related:
            sys.stdout.write(f"{name} {checksum}\n")
        return 0
    if not is_checksum(args.object):
        checksum = repo.resolve_rev(args.object)
        sys.stdout.write(format_commit(checksum, repo.load_commit(checksum)))
        sys.stdout.write(_gpg_report(args, repo, checksum))
        return 0
    checksum = args.object
    if repo.has_object(checksum, ObjectType.COMMIT):
        sys.stdout.write(format_commit(checksum, repo.load_commit(checksum)))
        sys.stdout.write(_gpg_report(args, repo, checksum))
    elif repo.has_object(checksum, ObjectType.DIR_META):
        sys.stdout.write(f"dirmeta {checksum}\n")
    elif repo.has_object(checksum, ObjectType.DIR_TREE):
        sys.stdout.write(f"dirtree {checksum}\n")
    else:
        _print_file(repo, checksum)
    return 0
