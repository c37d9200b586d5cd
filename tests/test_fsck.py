"""fsck: clean repos pass with ostree's output; every corrupt or missing object is named."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set


from ostree_tool import MAIN_REF, SampleRepo, copy_repo, needs_ostree, run_ostree
from pyostree.fsck import FsckProgress, ProblemKind, fsck
from pyostree.objects import ObjectType
from pyostree.repo import Repo
from test_checkout_hostile import craft_commit, hostile_cases, make_base_repo

pytestmark = needs_ostree


def run_fsck(repo: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyostree", "fsck", f"--repo={repo}", *extra],
                          capture_output=True, text=True, check=False)


def ostree_fsck(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ostree", "fsck", "-a", f"--repo={repo}"], capture_output=True,
                          text=True, check=False, env=dict(os.environ, LC_ALL="C.UTF-8"))


def named_objects(text: str, candidates: Set[str]) -> Set[str]:
    return {checksum for checksum in candidates if checksum in text}


def content_object(repo: Repo, path_in_tree: str) -> str:
    root = repo.load_dirtree(repo.load_commit(repo.resolve_rev(MAIN_REF)).root_tree)
    return next(entry.checksum for entry in root.files if entry.name == path_in_tree)


def test_clean_repo_output_matches_ostree(sample_repo: SampleRepo) -> None:
    ours = run_fsck(sample_repo.path)
    theirs = ostree_fsck(sample_repo.path)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert ours.stderr == ""


def test_library_result_and_progress(sample_repo: SampleRepo) -> None:
    seen: List[FsckProgress] = []
    result = fsck(Repo.open(sample_repo.path), progress=seen.append)
    assert result.ok and result.problems == ()
    assert result.commits_checked == len(sample_repo.commits)
    assert result.partial_commits == 0
    assert seen[-1].done == seen[-1].total == result.objects_checked
    assert [p.done for p in seen] == sorted(p.done for p in seen)


def _corrupt_payload(repo: Repo, checksum: str) -> None:
    """Change the file's bytes without touching the header: a checksum mismatch."""
    from pyostree.objects import ArchiveDeflater

    path = repo.object_path(checksum, ObjectType.FILE)
    if repo.mode.value.startswith("archive"):
        with open(path, "rb") as handle:
            data = handle.read()
        header_len = struct.unpack(">I", data[:4])[0] + 8
        with repo.open_content(checksum) as reader:
            original = reader.read()
        deflater = ArchiveDeflater()
        payload = deflater.compress(original.upper()) + deflater.flush()
        path.write_bytes(data[:header_len] + payload)
    else:
        os.chmod(path, 0o644)
        with open(path, "r+b") as handle:
            handle.write(b"H")


def test_corrupt_content_and_dirtree_are_named(sample_repo: SampleRepo, tmp_path: Path) -> None:
    path = copy_repo(sample_repo.path, tmp_path / "repo")
    repo = Repo.open(path)
    hello = content_object(repo, "hello.txt")
    _corrupt_payload(repo, hello)
    commit = repo.load_commit(repo.resolve_rev(MAIN_REF))
    names_tree = next(d.tree_checksum for d in repo.load_dirtree(commit.root_tree).dirs
                      if d.name == "names")
    tree_path = repo.object_path(names_tree, ObjectType.DIR_TREE)
    data = bytearray(tree_path.read_bytes())
    data[0] ^= 0x01
    tree_path.write_bytes(bytes(data))

    ours = run_fsck(path)
    assert ours.returncode == 1
    lines = ours.stderr.splitlines()
    assert lines[-1] == "error: Repository corruption encountered"
    assert any(hello in line and "Corrupted file object" in line for line in lines)
    assert any(f"{names_tree}.dirtree" in line and "Corrupted dirtree object" in line for line in lines)
    theirs = ostree_fsck(path)
    assert theirs.returncode == 1
    assert named_objects(theirs.stderr, {hello, names_tree}) == {hello, names_tree}


def test_truncated_and_missing_objects(ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> None:
    path = copy_repo(ostree_repos["archive"].path, tmp_path / "repo")
    repo = Repo.open(path)
    big = content_object(repo, "big.bin")
    big_path = repo.object_path(big, ObjectType.FILE)
    os.truncate(big_path, big_path.stat().st_size // 2)
    hello = content_object(repo, "hello.txt")
    os.unlink(repo.object_path(hello, ObjectType.FILE))

    result = fsck(repo)
    by_checksum = {p.checksum: p for p in result.problems}
    assert by_checksum[hello].kind is ProblemKind.MISSING
    assert by_checksum[big].kind in (ProblemKind.INVALID, ProblemKind.CORRUPT)
    assert str(by_checksum[hello]).startswith("Object missing in commits ")
    assert str(by_checksum[hello]).endswith(f": {hello}.file")
    ours = run_fsck(path)
    assert ours.returncode == 1
    assert sum(1 for line in ours.stderr.splitlines() if big in line) == 1
    assert sum(1 for line in ours.stderr.splitlines() if hello in line) == 1
    theirs = ostree_fsck(copy_repo(path, tmp_path / "for-ostree"))  # it marks commits partial
    assert named_objects(theirs.stderr, {hello, big}) == {hello, big}


def test_missing_dirmeta_and_ref_to_missing_commit(ostree_repos: Dict[str, SampleRepo],
                                                   tmp_path: Path) -> None:
    path = copy_repo(ostree_repos["bare-user"].path, tmp_path / "repo")
    repo = Repo.open(path)
    commit = repo.load_commit(repo.resolve_rev(MAIN_REF))
    os.unlink(repo.object_path(commit.root_meta, ObjectType.DIR_META))
    ghost = "ab" * 32
    (path / "refs" / "heads" / "ghost").write_text(ghost + "\n")
    ours = run_fsck(path)
    assert ours.returncode == 1
    assert f"Ref ghost: points to missing commit {ghost}" in ours.stderr.splitlines()
    assert any(line.startswith("Object missing in commits ") and
               line.endswith(f"{commit.root_meta}.dirmeta") for line in ours.stderr.splitlines())


def test_invalid_mode_is_reported(ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> None:
    path = copy_repo(ostree_repos["bare-user"].path, tmp_path / "repo")
    repo = Repo.open(path)
    hello = content_object(repo, "hello.txt")
    fifo_meta = struct.pack(">III", 0, 0, 0o010644)  # (uuua(ayay)) with no xattrs
    os.setxattr(repo.object_path(hello, ObjectType.FILE), "user.ostreemeta", fifo_meta)
    result = fsck(repo)
    assert [p.checksum for p in result.problems] == [hello]
    assert result.problems[0].kind is ProblemKind.INVALID
    assert run_fsck(path).returncode == 1


def test_partial_commits_are_counted_not_verified(ostree_repos: Dict[str, SampleRepo],
                                                  tmp_path: Path) -> None:
    path = copy_repo(ostree_repos["archive"].path, tmp_path / "repo")
    repo = Repo.open(path)
    head = repo.resolve_rev(MAIN_REF)
    commit = repo.load_commit(head)
    hello = content_object(repo, "hello.txt")
    os.unlink(repo.object_path(hello, ObjectType.FILE))
    partial_marker = path / "state" / f"{head}.commitpartial"
    partial_marker.write_bytes(b"")
    others = [c for c in ostree_repos["archive"].commits if c != head]
    assert all(hello not in {e.checksum for e in repo.load_dirtree(repo.load_commit(c).root_tree).files}
               for c in others)  # so only the partial commit reaches the deleted object
    result = fsck(repo)
    assert result.partial_commits == 1 and result.problems == () and result.ok
    ours = run_fsck(path)
    assert ours.returncode == 0
    assert "1 partial commits not verified\n" in ours.stdout
    partial_marker.write_bytes(b"f")
    ours = run_fsck(path)
    assert ours.returncode == 1
    assert ours.stderr == "error: 1 partial commits from fsck-detected corruption\n"
    assert commit.root_tree


def test_hostile_dirtrees_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    hello, escape = make_base_repo(path, "archive", tmp_path)
    crafted = {}
    for case, files, dirs in hostile_cases(hello, escape):
        crafted[case] = craft_commit(path, files, dirs, ref=case)
    repo = Repo.open(path)
    result = fsck(repo)
    reported_commits = {c for p in result.problems for c in p.commits}
    assert reported_commits == set(crafted.values())
    assert all(p.kind is ProblemKind.INVALID and p.objtype_name == "dirtree" for p in result.problems)
    # libostree 2022.7 only notices '/', '.' and '..'; we also catch empty, NUL and duplicates.
    theirs = ostree_fsck(path)
    assert theirs.returncode == 1
    ours = run_fsck(path)
    assert ours.returncode == 1
    assert len(ours.stderr.splitlines()) == len(crafted) + 1


def test_unsorted_dirtree_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    hello, escape = make_base_repo(path, "bare", tmp_path)
    craft_commit(path, [("b", hello), ("a", hello)], ref="unsorted")
    result = fsck(Repo.open(path))
    assert len(result.problems) == 1 and "out of order" in result.problems[0].detail
    assert run_ostree("fsck", repo=path)  # libostree does not check the order


def test_fsck_errors_on_missing_repo(tmp_path: Path) -> None:
    done = run_fsck(tmp_path / "nope")
    assert done.returncode == 1
    assert done.stdout == "" and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1


def test_quiet_keeps_progress_and_summary_like_ostree(ostree_repos: Dict[str, SampleRepo]) -> None:
    path = ostree_repos["bare-user-only"].path
    ours = run_fsck(path, "-q")
    theirs = subprocess.run(["ostree", "fsck", "-q", f"--repo={path}"], capture_output=True,
                            text=True, check=False)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout


def test_bare_user_metadata_tampering_is_caught(ostree_repos: Dict[str, SampleRepo],
                                                tmp_path: Path) -> None:
    """uid/mode live in user.ostreemeta in bare-user repos: changing them is corruption."""
    path = copy_repo(ostree_repos["bare-user"].path, tmp_path / "repo")
    repo = Repo.open(path)
    big, hello = content_object(repo, "big.bin"), content_object(repo, "hello.txt")
    os.setxattr(repo.object_path(big, ObjectType.FILE), "user.ostreemeta",
                struct.pack(">III", 0, 0, 0o100755))
    os.setxattr(repo.object_path(hello, ObjectType.FILE), "user.ostreemeta",
                struct.pack(">III", 7, 0, 0o100644))
    result = fsck(repo)
    assert sorted(p.checksum for p in result.problems) == sorted([big, hello])
    assert all(p.kind is ProblemKind.CORRUPT for p in result.problems)


def test_deflate_bomb_is_reported_without_inflating_it(ostree_repos: Dict[str, SampleRepo],
                                                       tmp_path: Path) -> None:
    from pyostree.objects import ArchiveDeflater

    path = copy_repo(ostree_repos["archive"].path, tmp_path / "repo")
    repo = Repo.open(path)
    hello = content_object(repo, "hello.txt")
    object_path = repo.object_path(hello, ObjectType.FILE)
    data = object_path.read_bytes()
    header_end = struct.unpack(">I", data[:4])[0] + 8
    deflater = ArchiveDeflater(level=9)
    bomb = b"".join(deflater.compress(b"\0" * (1 << 20)) for _ in range(64)) + deflater.flush()
    object_path.write_bytes(data[:header_end] + bomb)
    result = fsck(repo)
    assert [p.checksum for p in result.problems] == [hello]
    assert result.problems[0].kind in (ProblemKind.INVALID, ProblemKind.CORRUPT)


def test_unreadable_ref_is_reported(ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> None:
    path = copy_repo(ostree_repos["bare"].path, tmp_path / "repo")
    (path / "refs" / "heads" / "garbage").write_text("not a checksum\n")
    ours = run_fsck(path)
    assert ours.returncode == 1
    assert ours.stderr.splitlines()[-1] == "error: Repository corruption encountered"
    assert any(line.startswith("Listing refs: ") and "garbage" in line for line in ours.stderr.splitlines())
    assert ostree_fsck(path).returncode == 1
