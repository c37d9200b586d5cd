"""The per-object size estimate (an lstat each) is computed only for a progress callback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest

from ostree_tool import needs_ostree
from test_push_support import commit, init, make_tree, rev_parse

import pyostree.push.convert as convert
from pyostree.objects.types import ObjectType
from pyostree.push import PushOptions, push
from pyostree.push.progress import Progress
from pyostree.push.receive_client import BATCH_OBJECT_MAX
from pyostree.repo import Repo


@needs_ostree
@pytest.mark.parametrize("with_progress", [True, False])
def test_size_estimate_only_for_a_progress_callback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_progress: bool
) -> None:
    tree = make_tree(tmp_path / "tree", files=20, big=3 * BATCH_OBJECT_MAX // 2)
    src = init(tmp_path / "src", "archive")
    head = commit(src, tree)
    dst = init(tmp_path / "dst", "archive")
    hinted: List[str] = []
    real_hint = convert.local_size_hint

    def hint(repo: Repo, checksum: str, objtype: ObjectType) -> int:
        hinted.append(checksum)
        return real_hint(repo, checksum, objtype)

    monkeypatch.setattr(convert, "local_size_hint", hint)
    reports: List[Progress] = []
    logs: List[str] = []
    result = push(Repo.open(src), str(dst), (), PushOptions(via="receive"),
                  on_progress=reports.append if with_progress else None, on_log=logs.append)
    assert rev_parse(dst, "main") == head
    sent = [line for line in logs if "objects to send" in line]
    if with_progress:
        assert len(hinted) == result.objects_sent
        stored = sum(os.lstat(Repo.open(src).store.object_str(c, ObjectType[t])).st_size
                     for c, t in result.objects)
        assert sent == [f"{result.objects_sent} objects to send (~{stored} bytes)"]
        assert reports and reports[-1].phase == "done"
        assert reports[-1].bytes_total == max(stored, result.bytes_sent)
        assert reports[-1].objects_done == result.objects_sent
    else:
        assert hinted == []
        assert sent == [f"{result.objects_sent} objects to send"]
    assert result.bytes_sent > 3 * BATCH_OBJECT_MAX // 2
