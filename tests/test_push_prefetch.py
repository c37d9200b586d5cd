"""TreePrefetch: the dirtrees a push walks are loaded while it connects, and the walk then
finds them parsed; a guess that fails or stops early changes nothing but speed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Sequence, Set, Tuple

import pytest

from ostree_tool import needs_ostree
from test_push_support import two_commit_history

from pyostree.errors import NotFoundError
from pyostree.objects.types import ObjectType
from pyostree.push.plan import ObjectName, RefUpdate, TreePrefetch, missing_objects, reachable
from pyostree.repo import Repo

pytestmark = needs_ostree


@pytest.fixture
def history(tmp_path: Path) -> Tuple[Repo, str, str]:
    """c1, then c2 (parent c1) with one file changed and one added."""
    src, c1, c2 = two_commit_history(tmp_path, files=40, changed="sub/file1.txt")
    return Repo.open(src), c1, c2


def _counting_loads(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> List[str]:
    loaded: List[str] = []
    real = repo.load_dirtree

    def load(checksum: str):  # type: ignore[no-untyped-def]
        loaded.append(checksum)
        return real(checksum)

    monkeypatch.setattr(repo, "load_dirtree", load)
    return loaded


def _none_present(names: Sequence[ObjectName]) -> List[bool]:
    return [False] * len(names)


def test_the_walk_loads_nothing_the_prefetch_loaded(history: Tuple[Repo, str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    repo, c1, c2 = history
    prefetch = TreePrefetch(repo, [c2])
    prefetch.start()
    prefetch._thread.join()  # let it finish its guess: head and parent
    loaded = _counting_loads(repo, monkeypatch)
    with_prefetch = missing_objects(repo, [RefUpdate("main", c1, c2)], [c1], _none_present, prefetch)
    assert loaded == []
    without = missing_objects(repo, [RefUpdate("main", c1, c2)], [c1], _none_present)
    assert with_prefetch == without
    assert loaded, "the walk without a prefetch loads dirtrees (so the count above means something)"


def test_a_prefetch_never_started_or_stopped_early_gives_the_same_answer(
        history: Tuple[Repo, str, str]) -> None:
    repo, c1, c2 = history
    expected = reachable(repo, c2, set())
    idle = TreePrefetch(repo, [c2])
    assert reachable(repo, c2, set(), idle) == expected
    idle.finish()  # never started: returns at once
    stopped = TreePrefetch(repo, [c2])
    stopped.finish()
    stopped.start()  # after finish: the thread sees the stop flag and loads nothing more
    stopped.finish()
    seen: Set[ObjectName] = set()
    assert reachable(repo, c2, seen, stopped) == expected
    assert (c2, ObjectType.COMMIT) in seen


def test_a_failing_guess_leaves_the_error_to_the_walk(history: Tuple[Repo, str, str]) -> None:
    repo, _c1, c2 = history
    root = repo.load_commit(c2).root_tree
    os.unlink(repo.object_path(root, ObjectType.DIR_TREE))
    prefetch = TreePrefetch(repo, [c2, "00" * 32])  # a missing tree and an absent commit
    prefetch.start()
    prefetch.finish()
    with pytest.raises(NotFoundError, match=root):
        reachable(repo, c2, set(), prefetch)
