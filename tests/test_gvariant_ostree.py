"""Objects written by the real ``ostree`` binary decode and re-encode byte for byte."""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess

import pytest

from pyostree.gvariant import decode, encode, is_normal

OSTREE = shutil.which("ostree")
pytestmark = pytest.mark.skipif(OSTREE is None, reason="ostree binary not installed")

TYPES = {
    "commit": "(a{sv}aya(say)sstayay)",
    "dirtree": "(a(say)a(sayay))",
    "dirmeta": "(uuua(ayay))",
}


def _ostree(*args: str) -> None:
    assert OSTREE is not None
    subprocess.run([OSTREE, *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    base = tmp_path_factory.mktemp("gvariant-ostree")
    tree = base / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    for i in range(300):
        (tree / f"file-{i:03d}").write_bytes(b"x" * i)
    (tree / "sub" / "\u00e9t\u00e9").write_text("accent")
    (tree / "sub" / "deeper" / "big").write_bytes(os.urandom(70_000))
    os.symlink("../file-001", tree / "sub" / "link")
    path = base / "repo"
    _ostree("init", f"--repo={path}", "--mode=archive")
    _ostree("commit", f"--repo={path}", "--branch=main", "--subject=first", "--body=the body",
            "--add-metadata-string=version=1.0", f"--tree=dir={tree}")
    (tree / "added").write_text("second")
    _ostree("commit", f"--repo={path}", "--branch=main", "--subject=second",
            f"--tree=dir={tree}")
    _ostree("summary", f"--repo={path}", "-u")
    return path


def test_metadata_objects_round_trip(repo: pathlib.Path) -> None:
    seen = {kind: 0 for kind in TYPES}
    for obj in sorted((repo / "objects").glob("*/*")):
        kind = obj.suffix[1:]
        if kind not in TYPES:
            continue
        data = obj.read_bytes()
        type_string = TYPES[kind]
        assert hashlib.sha256(data).hexdigest() == obj.parent.name + obj.stem
        assert is_normal(type_string, data), obj
        assert encode(type_string, decode(type_string, data)) == data, obj
        seen[kind] += 1
    assert seen["commit"] == 2 and seen["dirtree"] >= 3 and seen["dirmeta"] >= 1


def test_commit_fields(repo: pathlib.Path) -> None:
    commits = [decode(TYPES["commit"], p.read_bytes())
               for p in (repo / "objects").glob("*/*.commit")]
    first = next(c for c in commits if c[3] == "first")
    second = next(c for c in commits if c[3] == "second")
    assert first[0]["version"] == ("s", "1.0") and first[4] == "the body"
    assert first[1] == b"" and len(second[1]) == 32
    assert len(first[6]) == 32 and len(first[7]) == 32


def test_summary_round_trips(repo: pathlib.Path) -> None:
    data = (repo / "summary").read_bytes()
    type_string = "(a(s(taya{sv}))a{sv})"
    assert is_normal(type_string, data)
    value = decode(type_string, data)
    assert [ref for ref, _ in value[0]] == ["main"]
    assert encode(type_string, value) == data


def test_archive_file_headers_round_trip(repo: pathlib.Path) -> None:
    count = 0
    for obj in (repo / "objects").glob("*/*.filez"):
        raw = obj.read_bytes()
        length = int.from_bytes(raw[:4], "big")
        header = raw[8:8 + length]
        assert is_normal("(tuuuusa(ayay))", header)
        assert encode("(tuuuusa(ayay))", decode("(tuuuusa(ayay))", header)) == header
        count += 1
    assert count >= 300
