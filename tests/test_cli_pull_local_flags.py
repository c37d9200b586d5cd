"""``pull-local`` against the real ``ostree pull-local``: output, objects and state files."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from cli_diff import ostree, pyostree
from ostree_tool import needs_ostree

pytestmark = needs_ostree


def _files(repo: Path) -> List[str]:
    return sorted(str(p.relative_to(repo)) for sub in ("objects", "state")
                  for p in (repo / sub).rglob("*") if p.is_file())


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    assert ostree("init", f"--repo={src}", "--mode=archive").status == 0
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_text("f\n")
    (tree / "g").write_text("g\n")
    for stamp in ("2020-01-01", "2020-01-02"):
        (tree / "g").write_text(stamp)
        assert ostree("commit", f"--repo={src}", "-b", "main", f"--timestamp={stamp}",
                      str(tree)).status == 0
    return src


@pytest.mark.parametrize("extra", [["--commit-metadata-only"], ["--commit-metadata-only", "--depth=1"], []])
def test_pull_local_matches_ostree(tmp_path: Path, extra: List[str]) -> None:
    src = _source(tmp_path)
    repos = []
    for tool, name in ((ostree, "theirs"), (pyostree, "ours")):
        repo = tmp_path / name
        assert ostree("init", f"--repo={repo}", "--mode=archive").status == 0
        repos.append((repo, tool("pull-local", f"--repo={repo}", *extra, str(src), "main")))
    (theirs, want), (ours, got) = repos
    assert got == want
    assert _files(ours) == _files(theirs)
    # the partial commit is completed by a later full pull, and both fscks are clean
    full = [flag for flag in extra if flag != "--commit-metadata-only"]
    assert pyostree("pull-local", f"--repo={ours}", *full, str(src), "main").status == 0
    assert not list((ours / "state").iterdir())
    assert ostree("fsck", f"--repo={ours}").status == 0
    assert pyostree("fsck", f"--repo={ours}").status == 0
