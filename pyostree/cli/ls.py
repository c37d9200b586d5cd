"""``pyostree ls``: list a commit's tree in ostree's exact format (``-R``, ``-C``, ``-d``, ``-X``)."""

from __future__ import annotations

import argparse
import stat
import sys
from typing import TYPE_CHECKING, Dict, List, TextIO, Tuple

from pyostree.checkout.tree import TreeEntry, commit_root, resolve_path
from pyostree.cli.common import format_variant, open_repo
from pyostree.errors import NotFoundError

if TYPE_CHECKING:
    from pyostree.objects import DirMeta
    from pyostree.objects.xattrs import Xattrs
    from pyostree.repo import Repo

NAME = "ls"
SUMMARY = "List file paths"
FAST_EXIT = True  # see pyostree.cli.main: nothing to tear down after a listing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rev", metavar="COMMIT")
    parser.add_argument("paths", nargs="*", metavar="PATH")
    parser.add_argument("-d", "--dironly", action="store_true", help="do not recurse into directory arguments")
    parser.add_argument("-R", "--recursive", action="store_true", help="print directories recursively")
    parser.add_argument("-C", "--checksum", action="store_true", help="print checksum")
    parser.add_argument("-X", "--xattrs", action="store_true", help="print extended attributes")
    parser.add_argument("--nul-filenames-only", action="store_true",
                        help="print only filenames, NUL separated")


class _Lister:
    """Formats entries into one output buffer.

    The per-object part of a line ("-00644 0 0   1234 ", " -> target\n") is computed once
    per content object and dirmeta: trees repeat them, and the hot loop of ``ls -R`` is
    then one dictionary lookup and one string concatenation per file.
    """

    def __init__(self, repo: Repo, args: argparse.Namespace, out: TextIO) -> None:
        self.repo = repo
        self.args = args
        self.out = out
        self.dirmetas: Dict[str, DirMeta] = {}
        # Cached per object by file_parts below, not by the stat function.
        self.fast_stat = None if args.xattrs else repo.store.stat_content_function(cache=False)
        self.file_parts: Dict[bytes, Tuple[str, str]] = {}  # by raw digest
        self.with_checksum = bool(args.checksum)
        self.with_xattrs = bool(args.xattrs)
        self.lines: List[str] = []

    def _dirmeta(self, checksum: str) -> DirMeta:
        meta = self.dirmetas.get(checksum)
        if meta is None:
            meta = self.dirmetas[checksum] = self.repo.load_dirmeta(checksum)
        return meta

    def _file_parts(self, raw: bytes, path: str) -> Tuple[str, str]:
        """What goes before and after the path on a content object's line (cached)."""
        parts = self.file_parts.get(raw)
        if parts is not None:
            return parts
        checksum = raw.hex()
        quick = None
        if self.fast_stat is not None:
            try:
                quick = self.fast_stat(checksum)
            except OSError:
                quick = None  # the full reader below words the problem
        xattrs: Xattrs = ()
        if quick is not None:
            mode, uid, gid, size, link = quick
        else:
            with self.repo.open_content(checksum) as reader:
                header = reader.header
                size = reader.size
            mode, uid, gid, link, xattrs = (header.mode, header.uid, header.gid,
                                            header.symlink_target, header.xattrs)
        if stat.S_ISLNK(mode):
            type_char, tail, size = "l", f" -> {link}\n", 0
        elif stat.S_ISREG(mode):
            type_char, tail = "-", "\n"
        else:
            raise NotFoundError(f"{path}: Invalid file type")
        head = f"{type_char}0{mode & 0o7777:04o} {uid} {gid} {size:6d} "
        if self.with_checksum:
            head += f"{checksum} "
        if self.with_xattrs:
            head += f"{{ {format_variant('a(ayay)', list(xattrs))} }} "
        parts = self.file_parts[raw] = (head, tail)
        return parts

    def _dir_line(self, path: str, tree_checksum: str, meta_checksum: str) -> str:
        meta = self._dirmeta(meta_checksum)
        line = f"d0{meta.mode & 0o7777:04o} {meta.uid} {meta.gid}      0 "
        if self.with_checksum:
            line += f"{tree_checksum} {meta_checksum} "
        if self.with_xattrs:
            line += f"{{ {format_variant('a(ayay)', list(meta.xattrs))} }} "
        return f"{line}{path}\n"

    def print_entry(self, entry: TreeEntry) -> None:
        if self.args.nul_filenames_only:
            self.lines.append(entry.path + "\0")
        elif entry.is_dir:
            self.lines.append(self._dir_line(entry.path, entry.checksum, entry.meta_checksum))
        else:
            head, tail = self._file_parts(bytes.fromhex(entry.checksum), entry.path)
            self.lines.append(f"{head}{entry.path}{tail}")

    def _children(self, tree_checksum: str) -> Tuple[List[Tuple[str, bytes]], List[Tuple[str, str, str]]]:
        """(name, raw digest) of the files and (name, tree, meta) of the subdirectories."""
        lists = self.repo.store.read_dirtree_lists(tree_checksum)
        if lists is None:
            tree = self.repo.load_dirtree(tree_checksum)
            return ([(f.name, bytes.fromhex(f.checksum)) for f in tree.files],
                    [(d.name, d.tree_checksum, d.meta_checksum) for d in tree.dirs])
        raw_files, raw_dirs = lists
        return raw_files, [(name, tree.hex(), meta.hex()) for name, tree, meta in raw_dirs]

    def flush(self) -> None:
        self.out.write("".join(self.lines))
        self.lines.clear()

    def print_children(self, directory: TreeEntry, recursive: bool) -> None:
        """Files then subdirectories, in dirtree order; depth first with -R (as ostree)."""
        lines = self.lines
        append = lines.append
        nul = self.args.nul_filenames_only
        file_parts = self.file_parts
        stack = [(directory.path, directory.checksum, directory.meta_checksum)]
        first = True
        while stack:
            path, tree_checksum, meta_checksum = stack.pop()
            if not first:
                append(path + "\0" if nul else self._dir_line(path, tree_checksum, meta_checksum))
            first = False
            files, dirs = self._children(tree_checksum)
            prefix = "/" if path == "/" else path + "/"
            if nul:
                lines.extend([f"{prefix}{name}\0" for name, _ in files])
            else:
                for name, raw in files:
                    parts = file_parts.get(raw) or self._file_parts(raw, prefix + name)
                    append(f"{parts[0]}{prefix}{name}{parts[1]}")
            subdirs = [(prefix + name, tree, meta) for name, tree, meta in dirs]
            if recursive:
                stack.extend(reversed(subdirs))
            else:
                for sub_path, tree, meta in subdirs:
                    append(sub_path + "\0" if nul else self._dir_line(sub_path, tree, meta))
            if len(lines) > 65536:
                self.flush()


def run(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    checksum = repo.resolve_rev(args.rev)
    root = commit_root(repo, checksum)
    lister = _Lister(repo, args, sys.stdout)
    for path in args.paths or ["/"]:
        try:
            entry = resolve_path(repo, root, path)
            lister.print_entry(entry)
        except NotFoundError as err:
            lister.flush()
            if not args.paths:
                raise
            raise NotFoundError(f"Inspecting path '{path}': {err}") from None
        if entry.is_dir and not args.dironly or entry.is_dir and args.recursive:
            try:
                lister.print_children(entry, args.recursive)
            finally:
                lister.flush()
        lister.flush()
    return 0
