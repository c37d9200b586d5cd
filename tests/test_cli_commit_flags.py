"""``commit`` flags of issue 18, against the real ``ostree commit`` on the same inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_diff import ostree, pyostree
from ostree_tool import needs_ostree

pytestmark = needs_ostree


def _repo(tmp_path: Path, name: str) -> Path:
    repo = tmp_path / name
    assert ostree("init", f"--repo={repo}", "--mode=archive").status == 0
    return repo


@pytest.mark.parametrize("stamp", ["INVALID", "2020-13-45", "x\"y'z", "2020-01-01 25:00"])
def test_invalid_timestamp_refused_as_ostree(tmp_path: Path, stamp: str) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("a\n")
    theirs, ours = _repo(tmp_path, "theirs"), _repo(tmp_path, "ours")
    args = ("commit", "-b", "x", f"--timestamp={stamp}", str(tree))
    want = ostree(args[0], f"--repo={theirs}", *args[1:])
    got = pyostree(args[0], f"--repo={ours}", *args[1:])
    assert want.status == 1
    assert got == want
    assert not list((ours / "refs" / "heads").iterdir())


def _content_checksum(repo: Path, ref: str) -> str:
    shown = ostree("show", f"--repo={repo}", ref).out
    return next(line.split()[1] for line in shown.splitlines() if line.startswith("ContentChecksum:"))


@pytest.mark.parametrize("mode", ["archive", "bare-user"])
def test_base_layers_the_tree_on_the_base_commit(tmp_path: Path, mode: str) -> None:
    base_tree, top = tmp_path / "base", tmp_path / "top"
    (base_tree / "sub").mkdir(parents=True)
    (base_tree / "kept").write_text("kept\n")
    (base_tree / "sub" / "over").write_text("old\n")
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "over").write_text("new\n")
    (top / "added").write_text("added\n")
    repos = []
    for tool, name in ((ostree, "theirs"), (pyostree, "ours")):
        repo = tmp_path / name
        assert ostree("init", f"--repo={repo}", f"--mode={mode}").status == 0
        assert ostree("commit", f"--repo={repo}", "-b", "base", "--timestamp=2020-01-01",
                      str(base_tree)).status == 0
        got = tool("commit", f"--repo={repo}", "-b", "x", "--base=base", "--timestamp=2020-01-02",
                   str(top))
        assert got.status == 0 and got.err == "", got
        repos.append(repo)
    assert _content_checksum(repos[1], "x") == _content_checksum(repos[0], "x")
    listing = ostree("ls", f"--repo={repos[1]}", "-R", "x").out
    assert "/kept" in listing and "/added" in listing
    assert ostree("cat", f"--repo={repos[1]}", "x", "/sub/over").out == "new\n"
    assert ostree("fsck", f"--repo={repos[1]}").status == 0


@pytest.mark.parametrize("mode", ["archive", "bare-user"])
def test_commit_cwd_holding_the_repo_skips_the_repo(tmp_path: Path, mode: str) -> None:
    """ostree commits its own repo directory too (staging files with random names, so no
    two runs agree); the walk raced those files ('cannot read ./repo/tmp/staging-...').
    We leave the repo out and commit the rest as ostree would."""
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    for index in range(200):  # enough files that staging runs while the walk lists repo/
        (work / "sub" / f"f{index}").write_text(f"{index}\n" * 50)
    repo = work / "repo"
    assert ostree("init", "--repo=repo", f"--mode={mode}", cwd=work).status == 0
    got = pyostree("commit", "--repo=repo", "-b", "X", cwd=work)
    assert got.status == 0 and got.err == "", got
    listing = ostree("ls", f"--repo={repo}", "-R", "X").out
    assert "/repo" not in listing and "/sub/f199" in listing
    # the same content as ostree's commit of the tree without the repo
    other = tmp_path / "other"
    assert ostree("init", f"--repo={other}", f"--mode={mode}").status == 0
    (tmp_path / "copy").mkdir()
    (work / "sub").rename(tmp_path / "copy" / "sub")
    assert ostree("commit", f"--repo={other}", "-b", "X", str(tmp_path / "copy")).status == 0
    shown = [ostree("show", f"--repo={r}", "X").out.splitlines() for r in (repo, other)]
    content = [[line for line in s if line.startswith("ContentChecksum:")] for s in shown]
    assert content[0] == content[1]
    assert ostree("fsck", f"--repo={repo}").status == 0
