"""pyostree checkout must produce exactly what ``ostree checkout`` produces, in every mode."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from ostree_tool import ALIAS_REF, MAIN_REF, SampleRepo, is_root, needs_ostree, run_ostree
from pyostree.checkout import CheckoutOptions, CheckoutProgress, checkout
from pyostree.errors import CheckoutError, NotFoundError
from pyostree.repo import Repo

pytestmark = needs_ostree

Snapshot = Dict[str, Dict[str, object]]


def snapshot(root: Path, *, with_nlink: bool = True) -> Snapshot:
    """Everything a checkout decides: type+mode, owner, xattrs, targets, bytes, dir mtimes."""
    result: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        names = dirnames + filenames + ([""] if dirpath == str(root) else [])
        for name in names:
            path = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(path)
            record: Dict[str, object] = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid}
            try:
                record["xattrs"] = {key: os.getxattr(path, key, follow_symlinks=False)
                                    for key in os.listxattr(path, follow_symlinks=False)
                                    if key.startswith(("user.", "trusted."))}
            except OSError:
                record["xattrs"] = {}
            if stat.S_ISLNK(st.st_mode):
                record["target"] = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    record["data"] = handle.read()
                if with_nlink:
                    record["linked"] = st.st_nlink > 1
            else:
                record["mtime"] = st.st_mtime_ns
            result[os.path.relpath(path, root)] = record
    return result


def assert_same_tree(expected: Path, actual: Path, *, with_nlink: bool = True) -> None:
    want, got = snapshot(expected, with_nlink=with_nlink), snapshot(actual, with_nlink=with_nlink)
    assert sorted(got) == sorted(want)
    diffs = {path: (want[path], got[path]) for path in want if want[path] != got[path]}
    assert not diffs


def pyostree_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pyostree", *args], capture_output=True, check=False)


@pytest.mark.parametrize("user_mode", [False, True], ids=["root", "user"])
def test_checkout_matches_ostree(sample_repo: SampleRepo, tmp_path: Path, user_mode: bool) -> None:
    flags = ["-U"] if user_mode else []
    run_ostree("checkout", *flags, MAIN_REF, str(tmp_path / "ostree"), repo=sample_repo.path)
    repo = Repo.open(sample_repo.path)
    commit = repo.resolve_rev(MAIN_REF)
    checkout(repo, commit, tmp_path / "ours", CheckoutOptions(user_mode=user_mode))
    # ostree -U from an archive repo hardlinks into its uncompressed-objects-cache; we copy.
    archive_user = sample_repo.mode == "archive" and user_mode
    assert_same_tree(tmp_path / "ostree", tmp_path / "ours", with_nlink=not archive_user)


def test_checkout_hardlinks_only_where_ostree_does(ostree_repos: Dict[str, SampleRepo],
                                                   tmp_path: Path) -> None:
    cases = [("bare", False, True), ("bare", True, False), ("bare-user", False, False),
             ("bare-user", True, True), ("bare-user-only", False, True), ("archive", False, False)]
    for mode, user_mode, linked in cases:
        repo = Repo.open(ostree_repos[mode].path)
        dest = tmp_path / f"{mode}-{user_mode}"
        checkout(repo, repo.resolve_rev(MAIN_REF), dest, CheckoutOptions(user_mode=user_mode))
        assert (os.lstat(dest / "big.bin").st_nlink > 1) is linked, (mode, user_mode)
        assert os.lstat(dest / "empty").st_nlink == 1  # zero-length files are always copied


@pytest.mark.skipif(not is_root(), reason="ownership needs root")
def test_user_mode_clears_setuid_and_keeps_own_uid(ostree_repos: Dict[str, SampleRepo],
                                                   tmp_path: Path) -> None:
    repo = Repo.open(ostree_repos["archive"].path)
    commit = repo.resolve_rev(MAIN_REF)
    checkout(repo, commit, tmp_path / "u", CheckoutOptions(user_mode=True))
    checkout(repo, commit, tmp_path / "r")
    assert os.lstat(tmp_path / "u" / "setuid-bin").st_mode & 0o7777 == 0o755
    assert os.lstat(tmp_path / "r" / "setuid-bin").st_mode & 0o7777 == 0o4755
    assert os.lstat(tmp_path / "r" / "owned.txt").st_uid == 1000
    assert os.lstat(tmp_path / "u" / "owned.txt").st_uid == os.geteuid()


def test_subpath_matches_ostree(ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> None:
    path = ostree_repos["bare-user"].path
    run_ostree("checkout", "-U", "--subpath=/names", MAIN_REF, str(tmp_path / "o"), repo=path)
    done = pyostree_cli("checkout", f"--repo={path}", "-U", "--subpath=/names", MAIN_REF,
                        str(tmp_path / "p"))
    assert done.returncode == 0, done.stderr
    assert_same_tree(tmp_path / "o", tmp_path / "p")


def test_subpath_missing_and_allow_noent(ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> None:
    path = ostree_repos["archive"].path
    done = pyostree_cli("checkout", f"--repo={path}", "--subpath=/nope", MAIN_REF, str(tmp_path / "x"))
    assert done.returncode == 1
    assert done.stderr.decode() == "error: No such file or directory: /nope\n"
    done = pyostree_cli("checkout", f"--repo={path}", "--allow-noent", "--subpath=/nope", MAIN_REF,
                        str(tmp_path / "x"))
    assert done.returncode == 0 and not (tmp_path / "x").exists()


def test_subpath_must_be_a_directory(ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> None:
    repo = Repo.open(ostree_repos["archive"].path)
    with pytest.raises(CheckoutError, match="not a directory"):
        checkout(repo, repo.resolve_rev(MAIN_REF), tmp_path / "x", CheckoutOptions(subpath="hello.txt"))


def test_existing_destination_refused_unless_union(ostree_repos: Dict[str, SampleRepo],
                                                  tmp_path: Path) -> None:
    path = ostree_repos["archive"].path
    dest = tmp_path / "dest"
    dest.mkdir()
    done = pyostree_cli("checkout", f"--repo={path}", MAIN_REF, str(dest))
    assert done.returncode == 1
    assert done.stderr.decode().count("\n") == 1 and b"already exists" in done.stderr
    (dest / "hello.txt").write_bytes(b"stale\n")
    (dest / "keep.txt").write_bytes(b"kept\n")
    done = pyostree_cli("checkout", f"--repo={path}", "--union", MAIN_REF, str(dest))
    assert done.returncode == 0, done.stderr
    assert (dest / "hello.txt").read_bytes() == b"hello, third\n"
    assert (dest / "keep.txt").read_bytes() == b"kept\n"
    assert [p for p in os.listdir(dest) if p.startswith(".pyostree")] == []


def test_union_replaces_symlink_without_following_it(ostree_repos: Dict[str, SampleRepo],
                                                     tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"outside\n")
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "hello.txt")
    repo = Repo.open(ostree_repos["bare"].path)
    checkout(repo, repo.resolve_rev(MAIN_REF), dest, CheckoutOptions(union=True))
    assert outside.read_bytes() == b"outside\n"
    assert not os.path.islink(dest / "hello.txt")


def test_union_refuses_symlinked_directory(ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(elsewhere, dest / "names")
    repo = Repo.open(ostree_repos["archive"].path)
    with pytest.raises(CheckoutError, match="/names"):
        checkout(repo, repo.resolve_rev(MAIN_REF), dest, CheckoutOptions(union=True))
    assert os.listdir(elsewhere) == []


def test_progress_callback_reports_every_directory(ostree_repos: Dict[str, SampleRepo],
                                                   tmp_path: Path) -> None:
    repo = Repo.open(ostree_repos["bare-user-only"].path)
    seen: List[CheckoutProgress] = []
    stats = checkout(repo, repo.resolve_rev(ALIAS_REF), tmp_path / "d", progress=seen.append)
    n_dirs = sum(len(dirnames) for _, dirnames, _ in os.walk(tmp_path / "d")) + 1
    assert len(seen) == n_dirs == stats.directories
    assert seen[0].path == "/" and sorted(p.path for p in seen) == sorted({p.path for p in seen})
    assert [p.directories for p in seen] == list(range(1, n_dirs + 1))
    entries = [os.path.join(d, x) for d, dn, fn in os.walk(tmp_path / "d") for x in dn + fn]
    assert stats.files == sum(not stat.S_ISDIR(os.lstat(e).st_mode) for e in entries)


def test_checkout_of_missing_revision_fails(ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> None:
    repo = Repo.open(ostree_repos["archive"].path)
    with pytest.raises(NotFoundError):
        checkout(repo, "0" * 64, tmp_path / "x")
    done = pyostree_cli("checkout", f"--repo={ostree_repos['archive'].path}", "no-such-ref",
                        str(tmp_path / "y"))
    assert done.returncode == 1 and done.stderr.startswith(b"error: ")
    assert done.stderr.count(b"\n") == 1


def test_checkout_destination_defaults_to_rev(ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pyostree", "checkout",
                           f"--repo={ostree_repos['archive'].path}", MAIN_REF],
                          cwd=tmp_path, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / MAIN_REF / "hello.txt").is_file()


@pytest.mark.parametrize("mode", ["archive", "bare-user"])
def test_thread_pool_and_sequential_agree(ostree_repos: Dict[str, SampleRepo], tmp_path: Path,
                                          mode: str) -> None:
    repo = Repo.open(ostree_repos[mode].path)
    commit = repo.resolve_rev(MAIN_REF)
    one = checkout(repo, commit, tmp_path / "one", workers=1)
    three = checkout(repo, commit, tmp_path / "three", workers=3)
    assert (one.files, one.directories, one.bytes_copied) == (three.files, three.directories,
                                                              three.bytes_copied)
    assert_same_tree(tmp_path / "one", tmp_path / "three")
