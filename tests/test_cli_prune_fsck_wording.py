"""``prune`` and ``fsck`` print ostree's lines on the same repos (issue 18's wording items)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import List

import pytest

from cli_diff import ostree, pyostree
from ostree_tool import needs_ostree

pytestmark = needs_ostree


def _repo(tmp_path: Path) -> Path:
    repo, tree = tmp_path / "repo", tmp_path / "tree"
    tree.mkdir()
    assert ostree("init", f"--repo={repo}", "--mode=archive").status == 0
    for stamp in ("2020-01-01", "2020-01-02", "2020-01-03"):
        (tree / "f").write_text(stamp * 100)
        assert ostree("commit", f"--repo={repo}", "-b", "x", f"--timestamp={stamp}",
                      str(tree)).status == 0
    return repo


@pytest.mark.parametrize("flags", [[], ["--refs-only", "--depth=0"], ["--refs-only", "--depth=0", "--no-prune"],
                                   ["--refs-only", "--depth=1"]])
@pytest.mark.parametrize("command", ["prune", "fsck"])
def test_output_matches_ostree(tmp_path: Path, command: str, flags: List[str]) -> None:
    theirs = _repo(tmp_path)
    ours = tmp_path / "ours"
    shutil.copytree(theirs, ours, symlinks=True)
    if command == "fsck":
        flags = []
    assert pyostree(command, f"--repo={ours}", *flags) == ostree(command, f"--repo={theirs}", *flags)
    if command == "prune":  # a second run finds nothing more, in the same words
        assert pyostree(command, f"--repo={ours}", *flags) == ostree(command, f"--repo={theirs}", *flags)
