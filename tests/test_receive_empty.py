"""REPO's ``empty`` hint: a repo with no ref, no object and no staging dir says so, and the
push client then asks no HAVE; anything a push could resume from makes it ask again."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Tuple

from ostree_tool import needs_ostree, run_ostree
from test_push_semantics import _PopenChannel
from test_push_support import commit, init, make_tree, receive_process
from test_receive_hostile import RawClient

from pyostree.objects.types import ObjectType
from pyostree.push.receive_client import ReceiveClient
from pyostree.transport.wire import FrameKind
from pyostree.repo import Repo
from pyostree.repo.staging import STAGING_PREFIX, read_boot_id

pytestmark = needs_ostree


def _repo_answer(repo: Path) -> Dict[str, object]:
    client = RawClient()
    answer = client.hello(repo)
    client.send(FrameKind.ABORT)
    assert client.proc.wait(timeout=30) == 0
    return answer


def _files(src: Path) -> List[Tuple[str, ObjectType]]:
    names = []
    for path in (src / "objects").rglob("*.filez"):
        names.append((path.parent.name + path.name[:-len(".filez")], ObjectType.FILE))
    return sorted(names)


def _leftover_staging(dst: Path, src: Path, checksum: str) -> Path:
    """A staging dir of this boot, as an interrupted push leaves it, holding one object."""
    staging = dst / "tmp" / f"{STAGING_PREFIX}{read_boot_id()}-Resume"
    (staging / checksum[:2]).mkdir(parents=True)
    name = f"{checksum[2:]}.filez"
    shutil.copyfile(src / "objects" / checksum[:2] / name, staging / checksum[:2] / name)
    return staging


def test_empty_only_with_nothing_to_find(tmp_path: Path) -> None:
    src = init(tmp_path / "src", "archive")
    head = commit(src, make_tree(tmp_path / "tree", files=5))
    fresh = init(tmp_path / "fresh", "archive")
    assert _repo_answer(fresh)["empty"] is True

    staged = init(tmp_path / "staged", "archive")
    _leftover_staging(staged, src, _files(src)[0][0])
    assert _repo_answer(staged)["empty"] is False

    no_refs = init(tmp_path / "norefs", "archive")
    run_ostree("pull-local", str(src), head, repo=no_refs)
    assert not list((no_refs / "refs" / "heads").iterdir())
    assert _repo_answer(no_refs)["empty"] is False

    with_refs = init(tmp_path / "refs", "archive")
    run_ostree("pull-local", str(src), "main", repo=with_refs)
    answer = _repo_answer(with_refs)
    assert answer["empty"] is False and answer["refs"] == {"main": head}


def _client(dst: Path) -> ReceiveClient:
    return ReceiveClient(_PopenChannel(receive_process()), str(dst))


def test_client_asks_nothing_of_an_empty_remote(tmp_path: Path) -> None:
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=5))
    dst = init(tmp_path / "dst", "archive")
    client = _client(dst)
    try:
        names = _files(src)
        assert client.have(names) == [False] * len(names)
        # A HAVE would have begun the receiver's transaction, and with it a staging dir.
        assert not [p for p in (dst / "tmp").iterdir() if p.name.startswith(STAGING_PREFIX)]
    finally:
        client.abort()
        client.close()


def test_client_asks_a_remote_with_something_to_resume(tmp_path: Path) -> None:
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=5))
    dst = init(tmp_path / "dst", "archive")
    names = _files(src)
    _leftover_staging(dst, src, names[0][0])
    client = _client(dst)
    try:
        assert client.have(names) == [True] + [False] * (len(names) - 1)
    finally:
        client.abort()
        client.close()
    Repo.open(dst)  # still a repo

