"""pyostree init/commit against the real ``ostree``: same config, same checksums, same objects."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from ostree_tool import ALL_MODES, is_root, needs_ostree, run_ostree
from pyostree.cli.main import main as pyostree_main

pytestmark = needs_ostree

STAMP = "2020-01-01T00:00:00Z"


def py(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the pyostree CLI in-process; return stdout, fail on a non-zero status."""
    capsys.readouterr()
    status = pyostree_main(list(argv))
    out, err = capsys.readouterr()
    assert status == 0, err
    return out


def py_fail(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    status = pyostree_main(list(argv))
    out, err = capsys.readouterr()
    assert status != 0, out
    return err


def object_files(repo: Path) -> Dict[str, os.stat_result]:
    found = {}
    for dirpath, _dirs, files in os.walk(repo / "objects"):
        for name in files:
            path = Path(dirpath) / name
            found[str(path.relative_to(repo / "objects"))] = path.lstat()
    return found


def both_init(tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, *extra: str) -> Tuple[Path, Path]:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    py(capsys, "init", f"--repo={ours}", f"--mode={mode}", *extra)
    run_ostree("init", f"--mode={mode}", *extra, repo=theirs)
    return ours, theirs


def _listing(root: Path) -> List[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("collection", [None, "org.example.Test"])
def test_init_matches_ostree(tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, collection: str) -> None:
    extra = [f"--collection-id={collection}"] if collection else []
    ours, theirs = both_init(tmp_path, capsys, mode, *extra)
    assert (ours / "config").read_bytes() == (theirs / "config").read_bytes()
    assert _listing(ours) == _listing(theirs)
    assert stat.S_IMODE((ours / "objects").stat().st_mode) == stat.S_IMODE((theirs / "objects").stat().st_mode)


def test_init_existing_repo_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    py(capsys, "init", f"--repo={tmp_path}", "--mode=archive")
    py(capsys, "init", f"--repo={tmp_path}", "--mode=bare")
    assert "mode=archive-z2" in (tmp_path / "config").read_text()


def test_init_rejects_bad_collection_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = py_fail(capsys, "init", f"--repo={tmp_path / 'r'}", "--mode=bare", "--collection-id=bad")
    assert "bad" in err
    assert not (tmp_path / "r" / "objects").exists()


COMMIT_ARGS = (
    "-b", "test/main", "-s", "Initial", "-m", "Body text", f"--timestamp={STAMP}",
    "--add-metadata-string=version=1.0", "--add-metadata=num=uint32 5",
    "--add-metadata=list=['a', 'b']", "--bind-ref=zz/other", "--bind-ref=aa",
)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_commit_matches_ostree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sample_tree: Path, mode: str
) -> None:
    ours, theirs = both_init(tmp_path, capsys, mode)
    mine = py(capsys, "commit", f"--repo={ours}", *COMMIT_ARGS, str(sample_tree)).strip()
    real = run_ostree("commit", *COMMIT_ARGS, str(sample_tree), repo=theirs).strip()
    assert mine == real
    assert (ours / "refs/heads/test/main").read_text() == f"{real}\n"
    our_objects, their_objects = object_files(ours), object_files(theirs)
    assert sorted(our_objects) == sorted(their_objects)
    for rel, theirs_st in their_objects.items():
        our_st = our_objects[rel]
        assert stat.S_IFMT(our_st.st_mode) == stat.S_IFMT(theirs_st.st_mode), rel
        assert stat.S_IMODE(our_st.st_mode) == stat.S_IMODE(theirs_st.st_mode), rel
        if mode != "archive":
            assert (our_st.st_uid, our_st.st_gid) == (theirs_st.st_uid, theirs_st.st_gid), rel
            if rel.endswith(".file") and stat.S_ISREG(theirs_st.st_mode):
                assert our_st.st_mtime == theirs_st.st_mtime == 0, rel
        if not stat.S_ISLNK(theirs_st.st_mode):
            ours_bytes = (ours / "objects" / rel).read_bytes()
            assert ours_bytes == (theirs / "objects" / rel).read_bytes(), rel
            ours_x = sorted(os.listxattr(ours / "objects" / rel))
            assert ours_x == sorted(os.listxattr(theirs / "objects" / rel)), rel
            for name in ours_x:
                assert os.getxattr(ours / "objects" / rel, name) == os.getxattr(theirs / "objects" / rel, name)
    run_ostree("fsck", repo=ours)
    assert not [p for p in (ours / "tmp").iterdir() if p.name != "cache"]


@pytest.mark.parametrize(
    "options",
    [
        ("--canonical-permissions",),
        ("--no-xattrs",),
        ("--owner-uid=5", "--owner-gid=7"),
        ("--orphan",),
        ("--no-bindings",),
    ],
)
def test_commit_options_match_ostree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sample_tree: Path, options: Tuple[str, ...]
) -> None:
    ours, theirs = both_init(tmp_path, capsys, "bare", "--collection-id=org.example.C")
    args = (*options, "-b", "main", f"--timestamp={STAMP}", "-s", "s", str(sample_tree))
    assert py(capsys, "commit", f"--repo={ours}", *args) == run_ostree("commit", *args, repo=theirs)


def test_parent_chaining_and_skip_if_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sample_tree: Path
) -> None:
    ours, theirs = both_init(tmp_path, capsys, "archive")
    results: List[Tuple[str, str]] = []
    steps = [
        ("-s", "one", f"--timestamp={STAMP}"),
        ("-s", "two", "--timestamp=2020-01-02"),
        ("-s", "three", "--skip-if-unchanged", "--timestamp=2020-01-03"),
        ("-s", "four", "--parent=none", "--timestamp=@1600000000"),
    ]
    for step in steps:
        args = ("-b", "main", *step, str(sample_tree))
        results.append((py(capsys, "commit", f"--repo={ours}", *args), run_ostree("commit", *args, repo=theirs)))
    for mine, real in results:
        assert mine == real
    assert results[2][0] == results[1][0]  # skipped: the parent is printed and kept
    assert (ours / "refs/heads/main").read_text() == results[3][0]


def _tar_bytes(entries: List[Tuple[str, bytes, int, str]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data, mode, kind in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.mtime = 1
            info.uid, info.gid = (1000, 100) if name.endswith("owned") else (0, 0)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = data.decode()
                archive.addfile(info)
            elif kind == "hard":
                info.type = tarfile.LNKTYPE
                info.linkname = data.decode()
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["archive", "bare-user"])
def test_tar_layers_match_ostree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sample_tree: Path, mode: str
) -> None:
    first = tmp_path / "first.tar"
    first.write_bytes(_tar_bytes([
        ("./", b"", 0o750, "dir"), ("sub", b"", 0o700, "dir"), ("sub/f", b"tar file\n", 0o640, "file"),
        ("sub/owned", b"o\n", 0o600, "file"), ("sub/link", b"f", 0o777, "sym"), ("hello.txt", b"from tar\n", 0o644, "file"),
        ("hl", b"sub/f", 0o644, "hard"),
    ]))
    second = tmp_path / "second.tar"
    second.write_bytes(_tar_bytes([("sub/g", b"second\n", 0o644, "file"), ("names", b"", 0o711, "dir")]))
    ours, theirs = both_init(tmp_path, capsys, mode)
    args = ("-b", "t", f"--timestamp={STAMP}", f"--tree=tar={first}", f"--tree=dir={sample_tree}", f"--tree=tar={second}")
    assert py(capsys, "commit", f"--repo={ours}", *args) == run_ostree("commit", *args, repo=theirs)
    run_ostree("fsck", repo=ours)


def test_ref_layer_matches_ostree(tmp_path: Path, capsys: pytest.CaptureFixture[str], sample_tree: Path) -> None:
    ours, theirs = both_init(tmp_path, capsys, "bare-user")
    overlay = tmp_path / "overlay"
    (overlay / "names").mkdir(parents=True)
    (overlay / "names" / "a").write_text("replaced\n")
    (overlay / "new").write_text("new\n")
    base = ("-b", "base", f"--timestamp={STAMP}", str(sample_tree))
    assert py(capsys, "commit", f"--repo={ours}", *base) == run_ostree("commit", *base, repo=theirs)
    args = ("-b", "layered", f"--timestamp={STAMP}", "--tree=ref=base", f"--tree=dir={overlay}")
    assert py(capsys, "commit", f"--repo={ours}", *args) == run_ostree("commit", *args, repo=theirs)


def test_tar_missing_parent_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(_tar_bytes([("./", b"", 0o755, "dir"), ("a/b", b"x", 0o644, "file")]))
    ours, _theirs = both_init(tmp_path, capsys, "archive")
    err = py_fail(capsys, "commit", f"--repo={ours}", "-b", "t", f"--tree=tar={bad}")
    assert "no such file or directory: a" in err
    assert not (ours / "refs/heads/t").exists()


def test_tar_without_root_entry_is_an_empty_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top = tmp_path / "top.tar"
    top.write_bytes(_tar_bytes([("f", b"x", 0o644, "file")]))
    ours, _theirs = both_init(tmp_path, capsys, "archive")
    assert "empty tree" in py_fail(capsys, "commit", f"--repo={ours}", "-b", "t", f"--tree=tar={top}")


def test_fifo_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    os.mkfifo(tree / "fifo")
    ours, _theirs = both_init(tmp_path, capsys, "bare")
    assert "not a regular file or symlink" in py_fail(capsys, "commit", f"--repo={ours}", "-b", "x", str(tree))
    assert not list((ours / "objects").iterdir())


@pytest.mark.parametrize(
    "argv, message",
    [
        (("commit", "."), "A branch must be specified"),
        (("commit", "-b", "x", "--timestamp=yesterday", "."), "Could not parse 'yesterday'"),
        (("commit", "-b", "x", "--add-metadata=k=[1, 'a']", "."), "string where i was expected"),
        (("commit", "-b", "x", "--add-metadata-string=novalue", "."), "expected KEY=VALUE"),
        (("commit", "-b", "x", "--tree=zip=foo", "."), "invalid --tree"),
        (("commit", "-b", "a//b", "."), "invalid refspec"),
    ],
)
def test_commit_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: Tuple[str, ...], message: str,
) -> None:
    ours, _theirs = both_init(tmp_path, capsys, "archive")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    argv = tuple("src" if a == "." else a for a in argv)
    assert message in py_fail(capsys, argv[0], f"--repo={ours}", *argv[1:])


@pytest.mark.skipif(not is_root(), reason="needs root for foreign owners")
def test_bare_user_only_canonicalises(tmp_path: Path, capsys: pytest.CaptureFixture[str], sample_tree: Path) -> None:
    ours, theirs = both_init(tmp_path, capsys, "bare-user-only")
    args = ("-b", "m", f"--timestamp={STAMP}", str(sample_tree))
    mine = py(capsys, "commit", f"--repo={ours}", *args)
    assert mine == run_ostree("commit", *args, repo=theirs)
    listing = subprocess.run(["ostree", "ls", "-R", f"--repo={ours}", "m"], capture_output=True, text=True, check=True)
    assert " 1000 " not in listing.stdout


@pytest.mark.parametrize("level", ["1", "9"])
def test_archive_zlib_level_is_honoured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sample_tree: Path, level: str
) -> None:
    ours, theirs = both_init(tmp_path, capsys, "archive")
    for repo in (ours, theirs):
        with open(repo / "config", "a", encoding="utf-8") as handle:
            handle.write(f"[archive]\nzlib-level={level}\n")
    args = ("-b", "main", f"--timestamp={STAMP}", str(sample_tree))
    assert py(capsys, "commit", f"--repo={ours}", *args) == run_ostree("commit", *args, repo=theirs)
    for rel in object_files(theirs):
        assert (ours / "objects" / rel).read_bytes() == (theirs / "objects" / rel).read_bytes(), rel
