"""Push between every pair of modes that matters, in both push modes, checked by the oracle:
``ostree fsck`` on the remote, then a real ``ostree pull`` from it into a fresh repo."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from ostree_tool import SampleRepo, needs_ostree, run_ostree
from test_push_support import (
    commit,
    do_push,
    init,
    make_tree,
    ostree_fsck,
    pull_local,
    pull_over_http,
    rev_parse,
)

pytestmark = needs_ostree


@pytest.mark.parametrize(
    ("local_mode", "remote_mode", "via"),
    [
        ("archive", "archive", "receive"),
        ("archive", "archive", "sftp"),
        ("bare-user", "archive", "receive"),
        ("bare-user", "archive", "sftp"),
        ("bare", "archive", "receive"),
        ("archive", "bare-user", "receive"),
        ("bare-user", "bare-user", "receive"),
        ("archive", "bare-user-only", "sftp"),
        ("archive", "bare-user-only", "receive"),
        ("bare-user-only", "archive", "sftp"),
        ("archive", "bare", "receive"),
    ],
)
def test_push_small_tree(tmp_path: Path, local_mode: str, remote_mode: str, via: str) -> None:
    tree = make_tree(tmp_path / "tree", big=3 * 1024 * 1024 + 5)  # > 1 chunk: multi-frame objects
    src = init(tmp_path / "src", local_mode)
    first = commit(src, tree, subject="one")
    dst = init(tmp_path / "dst", remote_mode)
    run_ostree("summary", "-u", repo=dst)

    result = do_push(src, dst, via=via)
    assert result.via == via
    assert rev_parse(dst, "main") == first
    assert "no errors found" in ostree_fsck(dst)
    assert result.summary_updated  # the remote had a summary: it must list the new ref

    if remote_mode == "archive":
        assert pull_over_http(dst, "main", tmp_path / "client") == first
    else:
        assert pull_local(dst, "main", tmp_path / "client") == first
    run_ostree("fsck", repo=tmp_path / "client")


@pytest.mark.parametrize(
    ("local_mode", "remote_mode", "via"),
    [
        ("bare-user", "archive", "receive"),
        ("bare-user", "archive", "sftp"),
        ("archive", "bare-user", "receive"),
        ("archive", "archive", "sftp"),
    ],
)
def test_push_full_sample_repo(
    tmp_path: Path, ostree_repos: Dict[str, SampleRepo], local_mode: str, remote_mode: str, via: str
) -> None:
    """The session sample: xattrs, uid 1000, setuid, sort traps, deep dirs, detached metadata."""
    sample = ostree_repos[local_mode]
    dst = init(tmp_path / "dst", remote_mode)
    do_push(sample.path, dst, "main", "os/x86_64/stable", via=via)
    assert rev_parse(dst, "main") == sample.refs["main"]
    assert rev_parse(dst, "os/x86_64/stable") == sample.refs["os/x86_64/stable"]
    out = ostree_fsck(dst)
    assert "no errors found" in out
    # Checkout as the oracle sees it: same listing on both sides.
    local_ls = run_ostree("ls", "-R", "-X", "main", repo=sample.path)
    remote_ls = run_ostree("ls", "-R", "-X", "main", repo=dst)
    assert local_ls == remote_ls
    if remote_mode == "archive":
        run_ostree("summary", "-u", repo=dst)
        assert pull_over_http(dst, "main", tmp_path / "client") == sample.refs["main"]


def test_sftp_refuses_bare_user_remote(tmp_path: Path) -> None:
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree"))
    dst = init(tmp_path / "dst", "bare-user")
    from pyostree.errors import PushError

    with pytest.raises(PushError, match="sftp mode cannot write a bare-user remote"):
        do_push(src, dst, via="sftp")
    assert not (dst / "refs" / "heads" / "main").exists()


def test_sftp_refuses_non_canonical_content_for_bare_user_only(
    tmp_path: Path, ostree_repos: Dict[str, SampleRepo]
) -> None:
    from pyostree.errors import PushError

    dst = init(tmp_path / "dst", "bare-user-only")
    with pytest.raises(PushError, match="bare-user-only remote cannot store"):
        do_push(ostree_repos["archive"].path, dst, "main", via="sftp")
    assert not (dst / "refs" / "heads" / "main").exists()
    assert not any((dst / "objects").iterdir())


def test_detached_metadata_travels(tmp_path: Path, ostree_repos: Dict[str, SampleRepo]) -> None:
    sample = ostree_repos["archive"]
    commit_with_meta = sample.commit_with_detached_meta
    src = tmp_path / "src"
    init(src, "archive")
    run_ostree("pull-local", str(sample.path), commit_with_meta, repo=src)
    run_ostree("refs", "--create=withmeta", commit_with_meta, repo=src)
    for via in ("receive", "sftp"):
        dst = init(tmp_path / f"dst-{via}", "archive")
        do_push(src, dst, "withmeta", via=via)
        shown = run_ostree("show", "--print-detached-metadata-key=test.key", "withmeta", repo=dst)
        assert "detached" in shown
