"""``checkout -H`` (``--require-hardlinks``) with and without ``-U``, against ``ostree checkout``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli_diff import ostree, pyostree
from ostree_tool import is_root, needs_ostree

pytestmark = needs_ostree

MODES = ["archive", "bare-user", "bare-user-only"] + (["bare"] if is_root() else [])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("user", [True, False])
def test_require_hardlinks_matches_ostree(tmp_path: Path, mode: str, user: bool) -> None:
    repo, tree = tmp_path / "repo", tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_text("f\n")
    (tree / "g").write_text("g\n")
    assert ostree("init", f"--repo={repo}", f"--mode={mode}").status == 0
    assert ostree("commit", f"--repo={repo}", "-b", "x", str(tree)).status == 0
    flags = ["-U", "-H"] if user else ["-H"]
    want = ostree("checkout", f"--repo={repo}", *flags, "x", str(tmp_path / "theirs"))
    got = pyostree("checkout", f"--repo={repo}", *flags, "x", str(tmp_path / "ours"))
    assert got == want
    assert (tmp_path / "ours").exists() == (tmp_path / "theirs").exists()
    if want.status == 0:
        for name in ("g", "d/f"):
            assert os.stat(tmp_path / "ours" / name).st_nlink == os.stat(tmp_path / "theirs" / name).st_nlink > 1
