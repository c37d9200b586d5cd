"""prune, pull-local and reset against the real ``ostree``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import List, Set

import pytest

from ostree_tool import ALL_MODES, needs_ostree, run_ostree
from pyostree.cli.main import main as pyostree_main
from pyostree.errors import ChecksumMismatchError
from pyostree.repo import Repo
from pyostree.repo.pull_local import pull_local

pytestmark = needs_ostree


def objects(repo: Path) -> Set[str]:
    return {str(p.relative_to(repo / "objects")) for p in (repo / "objects").rglob("*") if not p.is_dir()}


def py(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    status = pyostree_main(list(argv))
    out, err = capsys.readouterr()
    assert status == 0, err
    return out


def history_repo(tmp_path: Path, mode: str = "archive") -> Path:
    repo = tmp_path / "hist"
    run_ostree("init", f"--mode={mode}", repo=repo)
    tree = tmp_path / "tree"
    tree.mkdir()
    for index in range(4):
        (tree / f"f{index}").write_text(f"file {index}\n")
        (tree / "changing").write_text(f"version {index}\n")
        run_ostree("commit", "-b", "main", f"--timestamp=@{1600000000 + index}", str(tree), repo=repo)
    (tree / "side").write_text("side\n")
    run_ostree("commit", "-b", "side", "--timestamp=@1600000100", str(tree), repo=repo)
    run_ostree("commit", "--orphan", "--timestamp=@1600000200", str(tmp_path), repo=repo)
    return repo


@pytest.mark.parametrize("args", [("--refs-only",), ("--refs-only", "--depth=1"), ("--refs-only", "--depth=0"), ()])
def test_prune_matches_ostree(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: List[str]) -> None:
    base = history_repo(tmp_path)
    (base / "refs/heads/side").unlink()
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    shutil.copytree(base, ours, symlinks=True)
    shutil.copytree(base, theirs, symlinks=True)
    mine = py(capsys, "prune", f"--repo={ours}", *args)
    real = run_ostree("prune", *args, repo=theirs)
    assert objects(ours) == objects(theirs)
    assert mine == real
    run_ostree("fsck", repo=ours)


def test_prune_no_prune_deletes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = history_repo(tmp_path)
    before = objects(repo)
    out = py(capsys, "prune", f"--repo={repo}", "--refs-only", "--depth=0", "--no-prune")
    assert "Would delete" in out
    assert objects(repo) == before


@pytest.mark.parametrize("dest_mode", ALL_MODES)
def test_pull_local_all_refs_into_every_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str], dest_mode: str) -> None:
    src = history_repo(tmp_path, "bare-user-only")
    dest = tmp_path / "dest"
    run_ostree("init", f"--mode={dest_mode}", repo=dest)
    py(capsys, "pull-local", f"--repo={dest}", str(src))
    assert run_ostree("refs", repo=dest) == run_ostree("refs", repo=src)
    assert (dest / "refs/heads/main").read_text() == (src / "refs/heads/main").read_text()
    run_ostree("fsck", repo=dest)
    assert not list((dest / "state").iterdir())


def test_pull_local_depth_and_remote_match_ostree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = history_repo(tmp_path)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for repo in (ours, theirs):
        run_ostree("init", "--mode=archive", repo=repo)
    py(capsys, "pull-local", f"--repo={ours}", "--depth=1", "--remote=origin", str(src), "main")
    run_ostree("pull-local", "--depth=1", "--remote=origin", str(src), "main", repo=theirs)
    assert objects(ours) == objects(theirs)
    assert (ours / "refs/remotes/origin/main").read_text() == (theirs / "refs/remotes/origin/main").read_text()
    assert sorted(p.name for p in (ours / "state").iterdir()) == sorted(p.name for p in (theirs / "state").iterdir())
    run_ostree("fsck", repo=ours)


def test_pull_local_rejects_corrupt_source(tmp_path: Path) -> None:
    src = history_repo(tmp_path, "bare-user")
    for victim in (src / "objects").rglob("*.file"):
        victim.write_bytes(b"corrupted!" + victim.read_bytes())
    dest = tmp_path / "dest"
    run_ostree("init", "--mode=archive", repo=dest)
    with pytest.raises(ChecksumMismatchError):
        pull_local(Repo.open(dest), Repo.open(src), ["main", "side"], depth=-1)
    assert not objects(dest)
    assert not (dest / "refs/heads/main").exists()


def test_reset_matches_ostree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = history_repo(tmp_path)
    old = run_ostree("rev-parse", "main^^", repo=repo).strip()
    py(capsys, "reset", f"--repo={repo}", "main", "main^^")
    assert (repo / "refs/heads/main").read_text() == f"{old}\n"
    assert pyostree_main(["reset", f"--repo={repo}", "nope", old]) == 1
    assert "not found" in capsys.readouterr().err


def test_prune_takes_the_exclusive_lock(tmp_path: Path) -> None:
    from pyostree.errors import LockError
    from pyostree.repo.prune import prune

    repo_path = history_repo(tmp_path)
    with open(repo_path / "config", "a", encoding="utf-8") as handle:
        handle.write("lock-timeout-secs=0\n")
    repo = Repo.open(repo_path)
    before = objects(repo_path)
    with repo.transaction():
        with pytest.raises(LockError, match="exclusive"):
            prune(repo, refs_only=True, depth=0)
    assert objects(repo_path) == before


def test_prune_writes_tombstones_like_ostree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = history_repo(tmp_path)
    with open(base / "config", "a", encoding="utf-8") as handle:
        handle.write("tombstone-commits=true\n")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    shutil.copytree(base, ours, symlinks=True)
    shutil.copytree(base, theirs, symlinks=True)
    py(capsys, "prune", f"--repo={ours}", "--refs-only", "--depth=0")
    run_ostree("prune", "--refs-only", "--depth=0", repo=theirs)
    assert objects(ours) == objects(theirs)
    tombstones = sorted(p for p in (ours / "objects").rglob("*.tombstone-commit"))
    assert tombstones
    for path in tombstones:
        assert path.read_bytes() == (theirs / path.relative_to(ours)).read_bytes()
