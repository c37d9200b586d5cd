"""``pyostree ls``: list a commit's tree in ostree's exact format (``-R``, ``-C``, ``-d``, ``-X``)."""

from __future__ import annotations

import argparse
import stat
import sys
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, TextIO, Tuple

from pyostree.checkout.fastpath import stat_function
from pyostree.checkout.tree import TreeEntry, child_path, commit_root, resolve_path
from pyostree.cli.common import format_variant, open_repo
from pyostree.errors import NotFoundError

if TYPE_CHECKING:
    from pyostree.objects import DirMeta, FileEntry
    from pyostree.repo import Repo

NAME = "ls"
SUMMARY = "List file paths"


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
    """Formats entries; caches dirmeta since many directories share one."""

    def __init__(self, repo: Repo, args: argparse.Namespace, out: TextIO) -> None:
        self.repo = repo
        self.args = args
        self.out = out
        self.dirmetas: Dict[str, DirMeta] = {}
        self.fast_stat = None if args.xattrs else stat_function(repo)
        self.lines: List[str] = []

    def _dirmeta(self, checksum: str) -> DirMeta:
        meta = self.dirmetas.get(checksum)
        if meta is None:
            meta = self.dirmetas[checksum] = self.repo.load_dirmeta(checksum)
        return meta

    def print_entry(self, entry: TreeEntry) -> None:
        if self.args.nul_filenames_only:
            self.lines.append(entry.path + "\0")
            return
        target: Optional[str] = None
        xattrs: List[Tuple[bytes, bytes]]
        if entry.is_dir:
            meta = self._dirmeta(entry.meta_checksum)
            type_char, mode, uid, gid, size = "d", meta.mode, meta.uid, meta.gid, 0
            xattrs = list(meta.xattrs)
        else:
            quick = None
            if self.fast_stat is not None:
                try:
                    quick = self.fast_stat(entry.checksum)
                except OSError:
                    quick = None
            if quick is not None:
                mode, uid, gid, size, link = quick.mode, quick.uid, quick.gid, quick.size, quick.symlink_target
                xattrs = []
            else:
                with self.repo.open_content(entry.checksum) as reader:
                    header = reader.header
                    size = reader.size
                mode, uid, gid, link = header.mode, header.uid, header.gid, header.symlink_target
                xattrs = list(header.xattrs)
            if stat.S_ISLNK(mode):
                type_char, target, size = "l", link, 0
            elif stat.S_ISREG(mode):
                type_char = "-"
            else:
                raise NotFoundError(f"{entry.path}: Invalid file type")
        parts = [f"{type_char}0{mode & 0o7777:04o} {uid} {gid} {size:6d} "]
        if self.args.checksum:
            if entry.is_dir:
                parts.append(f"{entry.checksum} {entry.meta_checksum} ")
            else:
                parts.append(f"{entry.checksum} ")
        if self.args.xattrs:
            parts.append(f"{{ {format_variant('a(ayay)', xattrs)} }} ")
        parts.append(entry.path)
        if target is not None:
            parts.append(f" -> {target}")
        parts.append("\n")
        self.lines.append("".join(parts))

    def _print_files_fast(self, parent_path: str, files: Sequence[FileEntry]) -> None:
        """print_entry for plain files, without per-entry objects (ls -R's hot loop)."""
        fast_stat = self.fast_stat
        assert fast_stat is not None
        append = self.lines.append
        prefix = "" if parent_path == "/" else parent_path
        with_checksum = self.args.checksum
        for file_entry in files:
            try:
                quick = fast_stat(file_entry.checksum)
            except OSError:
                quick = None
            if quick is None:
                self.print_entry(TreeEntry(f"{prefix}/{file_entry.name}", False, file_entry.checksum))
                continue
            checksum = f"{file_entry.checksum} " if with_checksum else ""
            if quick.symlink_target:
                append(f"l0{quick.mode & 0o7777:04o} {quick.uid} {quick.gid}      0 {checksum}"
                       f"{prefix}/{file_entry.name} -> {quick.symlink_target}\n")
            else:
                append(f"-0{quick.mode & 0o7777:04o} {quick.uid} {quick.gid} {quick.size:6d} "
                       f"{checksum}{prefix}/{file_entry.name}\n")

    def flush(self) -> None:
        self.out.write("".join(self.lines))
        self.lines.clear()

    def print_children(self, directory: TreeEntry, recursive: bool) -> None:
        """Files then subdirectories, in dirtree order; depth first with -R (as ostree)."""
        stack = [directory]
        first = True
        while stack:
            current = stack.pop()
            if not first:
                self.print_entry(current)
            first = False
            tree = self.repo.load_dirtree(current.checksum)
            if self.fast_stat is not None and not self.args.nul_filenames_only:
                self._print_files_fast(current.path, tree.files)
            else:
                for file_entry in tree.files:
                    self.print_entry(TreeEntry(child_path(current.path, file_entry.name), False,
                                               file_entry.checksum))
            subdirs = [TreeEntry(child_path(current.path, d.name), True, d.tree_checksum,
                                 d.meta_checksum) for d in tree.dirs]
            if recursive:
                stack.extend(reversed(subdirs))
            else:
                for sub in subdirs:
                    self.print_entry(sub)
            if len(self.lines) > 512:
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
