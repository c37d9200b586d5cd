"""``config get|set|unset``: the same output, status and config bytes as ``ostree config``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Tuple

import pytest

from cli_diff import last_error_line, ostree, pyostree
from ostree_tool import needs_ostree

pytestmark = needs_ostree

CONFIG = ('# a comment\n\n[core]\nrepo_version=1\nmode=archive-z2\na = x y \na=2\n\n\n'
          '[remote "x.y"]\nurl=http://example.com\n[core]\nb=3\n[empty]\n')

CASES = [
    ("set", "core.commit-update-summary", "true"),
    ("set", "core.a", "3"),
    ("set", "new.key", " leading space, a\\backslash\tand tab"),
    ("set", "--group=remote \"x.y\"", "url", "http://other"),
    ("set", "--group=empty", "k", "v"),
    ("get", "core.mode"),
    ("get", "core.a"),
    ("get", "--group=remote \"x.y\"", "url"),
    ("get", "nogroup.key"),
    ("get", "core.nokey"),
    ("get", "empty.key"),
    ("unset", "core.a"),
    ("unset", "core.nokey"),
    ("unset", "nogroup.key"),
    ("unset", "--group=remote \"x.y\"", "url"),
    ("get", "nodot"),
    ("set", "core.x"),
    ("get",),
    ("frobnicate", "core.x"),
]


def _fresh(tmp_path: Path, name: str) -> Path:
    repo = tmp_path / name
    assert ostree("init", f"--repo={repo}", "--mode=archive").status == 0
    (repo / "config").write_text(CONFIG)
    return repo


@pytest.mark.parametrize("words", CASES, ids=[" ".join(c) for c in CASES])
def test_config_matches_ostree(tmp_path: Path, words: Tuple[str, ...]) -> None:
    theirs_repo, ours_repo = _fresh(tmp_path, "theirs"), _fresh(tmp_path, "ours")
    theirs = ostree("config", f"--repo={theirs_repo}", *words)
    ours = pyostree("config", f"--repo={ours_repo}", *words)
    assert ours == theirs
    assert (ours_repo / "config").read_bytes() == (theirs_repo / "config").read_bytes()


def test_config_without_operation(tmp_path: Path) -> None:
    theirs = ostree("config", f"--repo={_fresh(tmp_path, 'theirs')}")
    ours = pyostree("config", f"--repo={_fresh(tmp_path, 'ours')}")
    assert theirs.status == ours.status == 1
    assert last_error_line(ours) == last_error_line(theirs)


def test_set_then_ostree_and_we_read_it_back(tmp_path: Path) -> None:
    repo = _fresh(tmp_path, "r")
    value = " odd\\value\nwith lines "
    assert pyostree("config", f"--repo={repo}", "set", "core.odd", value).status == 0
    assert ostree("config", f"--repo={repo}", "get", "core.odd").out == value + "\n"
    assert pyostree("config", f"--repo={repo}", "get", "core.odd").out == value + "\n"
    assert ostree("fsck", f"--repo={repo}").status == 0
    shutil.rmtree(repo)
