"""The read commands print exactly what ``ostree`` 2022.7 prints, in all four modes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List, Tuple

import pytest

from ostree_tool import (
    ALIAS_REF,
    MAIN_REF,
    REMOTE_REF,
    SLASH_REF,
    SampleRepo,
    needs_ostree,
    require_ostree,
)
from pyostree.cli.main import main

pytestmark = needs_ostree


def ostree(repo: Path, *args: str) -> Tuple[int, bytes, bytes]:
    done = subprocess.run([require_ostree(), *args, f"--repo={repo}"], capture_output=True,
                          check=False, env=dict(os.environ, LC_ALL="C.UTF-8"))
    return done.returncode, done.stdout, done.stderr


def ours(capsysbinary: pytest.CaptureFixture[bytes], repo: Path, *args: str) -> Tuple[int, bytes, bytes]:
    status = main([*args, f"--repo={repo}"])
    captured = capsysbinary.readouterr()
    return status, captured.out, captured.err


def assert_same(capsysbinary: pytest.CaptureFixture[bytes], repo: Path, *args: str,
                sort_lines: bool = False) -> bytes:
    want = ostree(repo, *args)
    got = ours(capsysbinary, repo, *args)
    assert want[0] == 0, want[2]
    assert got[0] == 0, got[2]
    if sort_lines:
        assert sorted(got[1].splitlines()) == sorted(want[1].splitlines())
    else:
        assert got[1] == want[1]
    assert got[2] == b""
    return got[1]


LS_CASES: List[Tuple[str, ...]] = [
    ("ls", "-R", MAIN_REF),
    ("ls", "-R", "-C", MAIN_REF),
    ("ls", "-X", MAIN_REF, "/", "/xattrs.txt", "/xattr-dir"),
    ("ls", MAIN_REF, "names", "/deep/d0"),
    ("ls", "-d", MAIN_REF, "/names", "/link-rel", "hello.txt"),
    ("ls", "-R", "-C", SLASH_REF, "/names"),
    ("ls", "--nul-filenames-only", "-R", MAIN_REF),
    ("ls", "-R", "-C", MAIN_REF + "^"),
]


@pytest.mark.parametrize("args", LS_CASES, ids=[" ".join(c) for c in LS_CASES])
def test_ls_matches_ostree(capsysbinary: pytest.CaptureFixture[bytes], sample_repo: SampleRepo,
                           args: Tuple[str, ...]) -> None:
    assert_same(capsysbinary, sample_repo.path, *args)


@pytest.mark.parametrize("path", ["/nonexist", "/names/", "//names", "names//b", "/hello.txt/x",
                                  "/deep/./d0", "../x", ""])
def test_ls_bad_paths_fail_like_ostree(capsysbinary: pytest.CaptureFixture[bytes],
                                       ostree_repos: dict[str, SampleRepo], path: str) -> None:
    repo = ostree_repos["archive"].path
    want = ostree(repo, "ls", MAIN_REF, path)
    got = ours(capsysbinary, repo, "ls", MAIN_REF, path)
    assert want[0] == got[0] == 1
    assert got[2] == want[2]


def test_cat_streams_file_contents(capsysbinary: pytest.CaptureFixture[bytes],
                                   sample_repo: SampleRepo) -> None:
    out = assert_same(capsysbinary, sample_repo.path, "cat", MAIN_REF, "/hello.txt", "big.bin",
                      "/names/z.d/inside", "/empty")
    assert out.startswith(b"hello, third\n")


def test_cat_follows_symlinks_inside_the_commit(capsysbinary: pytest.CaptureFixture[bytes],
                                                ostree_repos: dict[str, SampleRepo]) -> None:
    assert_same(capsysbinary, ostree_repos["bare-user"].path, "cat", MAIN_REF, "/link-rel")


@pytest.mark.parametrize("path", ["/names", "/link-dangling", "/missing"])
def test_cat_errors_like_ostree(capsysbinary: pytest.CaptureFixture[bytes],
                                ostree_repos: dict[str, SampleRepo], path: str) -> None:
    repo = ostree_repos["bare"].path
    want = ostree(repo, "cat", MAIN_REF, path)
    got = ours(capsysbinary, repo, "cat", MAIN_REF, path)
    assert want[0] == got[0] == 1
    assert got[2].startswith(b"error: ") and got[2].count(b"\n") == 1


def test_log_matches_ostree(capsysbinary: pytest.CaptureFixture[bytes], sample_repo: SampleRepo) -> None:
    out = assert_same(capsysbinary, sample_repo.path, "log", MAIN_REF)
    assert out.count(b"commit ") == len(sample_repo.main_history)
    assert_same(capsysbinary, sample_repo.path, "log", SLASH_REF)
    assert_same(capsysbinary, sample_repo.path, "log", sample_repo.main_history[1][:10])


def test_log_stops_where_history_was_not_fetched(capsysbinary: pytest.CaptureFixture[bytes],
                                                 ostree_repos: dict[str, SampleRepo],
                                                 tmp_path: Path) -> None:
    from ostree_tool import copy_repo

    sample = ostree_repos["archive"]
    repo = copy_repo(sample.path, tmp_path / "repo")
    oldest = sample.main_history[-1]
    os.unlink(repo / "objects" / oldest[:2] / f"{oldest[2:]}.commit")
    out = assert_same(capsysbinary, repo, "log", MAIN_REF)
    assert out.endswith(b"<< History beyond this commit not fetched >>\n")


@pytest.mark.parametrize("rev", [MAIN_REF, SLASH_REF, ALIAS_REF, REMOTE_REF, MAIN_REF + "^^"])
def test_rev_parse_matches_ostree(capsysbinary: pytest.CaptureFixture[bytes],
                                  sample_repo: SampleRepo, rev: str) -> None:
    assert_same(capsysbinary, sample_repo.path, "rev-parse", rev)


def test_rev_parse_prefix_and_several(capsysbinary: pytest.CaptureFixture[bytes],
                                      ostree_repos: dict[str, SampleRepo]) -> None:
    sample = ostree_repos["bare"]
    assert_same(capsysbinary, sample.path, "rev-parse", sample.main_history[0][:12], MAIN_REF)


def test_rev_parse_single(capsysbinary: pytest.CaptureFixture[bytes],
                          ostree_repos: dict[str, SampleRepo], tmp_path: Path) -> None:
    repo = ostree_repos["archive"].path
    want, got = ostree(repo, "rev-parse", "--single"), ours(capsysbinary, repo, "rev-parse", "--single")
    assert want[0] == got[0] == 1
    assert got[2] == b"error: Multiple commit objects found\n"


@pytest.mark.parametrize("args", [(), ("--list",), ("os",), ("os/x86_64",), (SLASH_REF,),
                                  ("--list", "os"), ("origin:",), ("--collections",), ("--alias",),
                                  ("nonexist",), (ALIAS_REF,)])
def test_refs_match_ostree(capsysbinary: pytest.CaptureFixture[bytes], sample_repo: SampleRepo,
                           args: Tuple[str, ...]) -> None:
    assert_same(capsysbinary, sample_repo.path, "refs", *args, sort_lines=True)


@pytest.mark.parametrize("args", [("show", MAIN_REF), ("show", SLASH_REF),
                                  ("show", "--print-metadata-key=version", MAIN_REF),
                                  ("show", "--print-metadata-key=ostree.ref-binding", MAIN_REF),
                                  ("show", "--print-detached-metadata-key=test.key", MAIN_REF + "^")])
def test_show_matches_ostree(capsysbinary: pytest.CaptureFixture[bytes], sample_repo: SampleRepo,
                             args: Tuple[str, ...]) -> None:
    assert_same(capsysbinary, sample_repo.path, *args)


def test_show_objects_by_checksum(capsysbinary: pytest.CaptureFixture[bytes],
                                  sample_repo: SampleRepo) -> None:
    from pyostree.repo import Repo

    repo = Repo.open(sample_repo.path)
    commit = repo.load_commit(repo.resolve_rev(MAIN_REF))
    tree = repo.load_dirtree(commit.root_tree)
    for checksum in [sample_repo.refs[MAIN_REF], commit.root_tree, commit.root_meta,
                     *(entry.checksum for entry in tree.files)]:
        assert_same(capsysbinary, sample_repo.path, "show", checksum)


@pytest.mark.parametrize("args", [("show", "--print-metadata-key=nokey", MAIN_REF),
                                  ("show", "--print-detached-metadata-key=x", SLASH_REF),
                                  ("show", "0" * 64), ("log", "nope"), ("rev-parse", "nope"),
                                  ("ls", "nope"), ("cat", MAIN_REF, "/nope")])
def test_missing_things_fail_with_one_line(capsysbinary: pytest.CaptureFixture[bytes],
                                           ostree_repos: dict[str, SampleRepo],
                                           args: Tuple[str, ...]) -> None:
    repo = ostree_repos["bare-user-only"].path
    want = ostree(repo, *args)
    got = ours(capsysbinary, repo, *args)
    assert want[0] == got[0] == 1
    assert got[1] == b""
    assert got[2].startswith(b"error: ") and got[2].count(b"\n") == 1


def test_truncated_and_wrong_mode_objects_fail_in_one_line(capsysbinary: pytest.CaptureFixture[bytes],
                                                           ostree_repos: dict[str, SampleRepo],
                                                           tmp_path: Path) -> None:
    import struct

    from ostree_tool import copy_repo
    from pyostree.objects import ObjectType
    from pyostree.repo import Repo

    archive = copy_repo(ostree_repos["archive"].path, tmp_path / "archive")
    repo = Repo.open(archive)
    root = repo.load_dirtree(repo.load_commit(repo.resolve_rev(MAIN_REF)).root_tree)
    big = next(e.checksum for e in root.files if e.name == "big.bin")
    big_path = repo.object_path(big, ObjectType.FILE)
    os.truncate(big_path, big_path.stat().st_size // 3)
    status, _, err = ours(capsysbinary, archive, "cat", MAIN_REF, "/big.bin")
    assert status == 1 and err.startswith(b"error: ") and err.count(b"\n") == 1

    bare_user = copy_repo(ostree_repos["bare-user"].path, tmp_path / "bare-user")
    repo = Repo.open(bare_user)
    hello = next(e.checksum for e in root.files if e.name == "hello.txt")
    os.setxattr(repo.object_path(hello, ObjectType.FILE), "user.ostreemeta",
                struct.pack(">III", 0, 0, 0o010644))  # a FIFO: not a valid content object
    for args in (("ls", MAIN_REF, "/hello.txt"), ("cat", MAIN_REF, "/hello.txt"), ("ls", "-R", MAIN_REF)):
        status, _, err = ours(capsysbinary, bare_user, *args)
        assert status == 1, args
        assert err.startswith(b"error: ") and err.count(b"\n") == 1
