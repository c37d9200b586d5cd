"""Hostile dirtrees, crafted object by object: checkout must refuse them and write nothing outside."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest

from ostree_tool import needs_ostree, run_ostree
from pyostree.checkout import CheckoutOptions, checkout
from pyostree.errors import CheckoutError, PyOstreeError
from pyostree.objects import Commit, DirEntry, DirMeta, DirTree, FileEntry
from pyostree.repo import Repo

pytestmark = needs_ostree

HOSTILE_REF = "hostile"
EMPTY_TREE = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


def write_metadata(repo_path: Path, data: bytes, ext: str) -> str:
    """Store DATA as a loose metadata object named by its SHA-256, as a writer would."""
    checksum = hashlib.sha256(data).hexdigest()
    directory = repo_path / "objects" / checksum[:2]
    directory.mkdir(exist_ok=True)
    (directory / f"{checksum[2:]}.{ext}").write_bytes(data)
    return checksum


def make_base_repo(path: Path, mode: str, tmp_path: Path) -> Tuple[str, str]:
    """A real repo holding one regular file and one symlink pointing outside; their checksums."""
    tree = tmp_path / f"tree-{mode}"
    tree.mkdir()
    (tree / "hello.txt").write_bytes(b"hello\n")
    os.symlink(str(tmp_path / "outside"), tree / "escape")
    run_ostree("init", f"--mode={mode}", repo=path)
    run_ostree("commit", "--branch=base", f"--tree=dir={tree}", repo=path)
    repo = Repo.open(path)
    root = repo.load_dirtree(repo.load_commit(repo.resolve_rev("base")).root_tree)
    by_name = {entry.name: entry.checksum for entry in root.files}
    return by_name["hello.txt"], by_name["escape"]


def craft_commit(repo_path: Path, files: Sequence[Tuple[str, str]],
                 dirs: Sequence[Tuple[str, str, str]] = (), ref: str = HOSTILE_REF) -> str:
    """A commit whose root dirtree lists exactly FILES and DIRS, in the order given."""
    meta = write_metadata(repo_path, DirMeta(0, 0, 0o40755).to_bytes(), "dirmeta")
    write_metadata(repo_path, DirTree().to_bytes(), "dirtree")
    # The encoder refuses NUL in names: encode a same-length stand-in, then patch the bytes.
    tree = DirTree(tuple(FileEntry(n.replace("\0", "\x01"), c) for n, c in files),
                   tuple(DirEntry(n.replace("\0", "\x01"), t, m or meta) for n, t, m in dirs))
    data = tree.to_bytes()
    for name in [n for n, _ in files] + [n for n, _, _ in dirs]:
        if "\0" in name:
            stand_in = name.replace("\0", "\x01").encode() + b"\0"
            data = data.replace(stand_in, name.encode() + b"\0")
    root = write_metadata(repo_path, data, "dirtree")
    commit = Commit.create(root, meta, timestamp=1577836800, subject="hostile")
    checksum = write_metadata(repo_path, commit.to_bytes(), "commit")
    (repo_path / "refs" / "heads" / ref).write_text(checksum + "\n")
    return checksum


def hostile_cases(hello: str, escape: str) -> List[Tuple[str, List[Tuple[str, str]], List[Tuple[str, str, str]]]]:
    """(id, files, dirs) of trees that must never be checked out."""
    return [
        ("slash", [("a/b", hello)], []),
        ("dotdot-file", [("..", hello)], []),
        ("dot-dir", [], [(".", EMPTY_TREE, "")]),
        ("dotdot-dir", [], [("..", EMPTY_TREE, "")]),
        ("parent-path", [("../escaped", hello)], []),
        ("empty-name", [("", hello)], []),
        ("nul", [("a\0b", hello)], []),
        ("duplicate-file", [("same", hello), ("same", hello)], []),
        ("duplicate-dir", [], [("d", EMPTY_TREE, ""), ("d", EMPTY_TREE, "")]),
        ("file-and-dir", [("escape", escape)], [("escape", EMPTY_TREE, "")]),
    ]


@pytest.fixture(scope="module")
def hostile_repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tuple[Path, List[str]]]:
    """An archive and a bare repo, each with one ref per hostile case."""
    out = {}
    for mode in ("archive", "bare"):
        base = tmp_path_factory.mktemp(f"hostile-{mode}")
        path = base / "repo"
        hello, escape = make_base_repo(path, mode, base)
        names = []
        for case, files, dirs in hostile_cases(hello, escape):
            craft_commit(path, files, dirs, ref=case)
            names.append(case)
        out[mode] = (path, names)
    return out


@pytest.mark.parametrize("mode", ["archive", "bare"])
@pytest.mark.parametrize("case", [c[0] for c in hostile_cases("0" * 64, "0" * 64)])
def test_checkout_refuses_hostile_tree(hostile_repos: dict[str, Tuple[Path, List[str]]],
                                       tmp_path: Path, mode: str, case: str) -> None:
    path, _ = hostile_repos[mode]
    repo = Repo.open(path)
    dest = tmp_path / "box" / "dest"
    dest.parent.mkdir()
    for user_mode in (False, True):
        target = dest.with_name(f"dest-{user_mode}")
        with pytest.raises(PyOstreeError):
            checkout(repo, repo.resolve_rev(case), target, CheckoutOptions(user_mode=user_mode))
    # Nothing may exist outside the destinations (refused trees may leave them half-made).
    assert set(os.listdir(tmp_path / "box")) <= {"dest-False", "dest-True"}
    assert not (tmp_path / "outside").exists()
    assert not (tmp_path / "escaped").exists()


def test_name_used_as_file_and_dir_never_follows_symlink(
        hostile_repos: dict[str, Tuple[Path, List[str]]], tmp_path: Path) -> None:
    """The classic attack: symlink ``escape -> outside`` then a directory ``escape/``."""
    path, _ = hostile_repos["bare"]
    repo = Repo.open(path)
    (tmp_path / "outside").mkdir()
    with pytest.raises(CheckoutError, match="appears twice"):
        checkout(repo, repo.resolve_rev("file-and-dir"), tmp_path / "dest")
    assert os.listdir(tmp_path / "outside") == []


def test_cli_reports_hostile_tree_in_one_line(hostile_repos: dict[str, Tuple[Path, List[str]]],
                                              tmp_path: Path) -> None:
    import subprocess
    import sys

    path, _ = hostile_repos["archive"]
    done = subprocess.run([sys.executable, "-m", "pyostree", "checkout", f"--repo={path}",
                           "parent-path", str(tmp_path / "d")], capture_output=True, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith(b"error: ") and done.stderr.count(b"\n") == 1
    assert not (tmp_path / "escaped").exists()

