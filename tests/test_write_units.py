"""Smaller pieces of the write side: GVariant text, tree builder API, refs, timestamps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ostree_tool import needs_ostree, run_ostree
from pyostree import gvariant
from pyostree.errors import PyOstreeError, RefError, RepoError
from pyostree.repo import Repo
from pyostree.repo.commitwrite import CommitRequest, parse_timestamp, write_commit
from pyostree.repo.gvtext import GVariantTextError, parse_gvariant_text
from pyostree.repo.init import init_repo
from pyostree.repo.lock import RepoLock
from pyostree.repo.refwrite import set_ref
from pyostree.repo.treebuilder import TreeBuildError, TreeBuilder

# ---- GVariant text ----------------------------------------------------------------------

_INT_TYPES = {
    "byte": ("y", 0, 255), "int16": ("n", -(1 << 15), (1 << 15) - 1), "uint16": ("q", 0, 0xFFFF),
    "int32": ("i", -(1 << 31), (1 << 31) - 1), "uint32": ("u", 0, 0xFFFFFFFF),
    "int64": ("x", -(1 << 63), (1 << 63) - 1), "uint64": ("t", 0, (1 << 64) - 1),
}


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_texts = st.text(st.characters(codec="utf-8", blacklist_characters="\0"), max_size=20)
_ints = st.sampled_from(sorted(_INT_TYPES)).flatmap(
    lambda name: st.integers(_INT_TYPES[name][1], _INT_TYPES[name][2]).map(
        lambda n: (f"{name} {n}", _INT_TYPES[name][0], n)
    )
)
_strings = _texts.map(lambda text: (_quote(text), "s", text))
_bools = st.booleans().map(lambda b: ("true" if b else "false", "b", b))
_scalars = st.one_of(_ints, _strings, _bools)
_string_arrays = st.lists(_texts, max_size=5).map(
    lambda items: ("[" + ", ".join(_quote(t) for t in items) + "]" if items else "@as []", "as", items)
)


@given(st.one_of(_scalars, _string_arrays))
def test_gvariant_text_roundtrip(case: Tuple[str, str, object]) -> None:
    text, type_string, value = case
    assert parse_gvariant_text(text) == (type_string, value)
    gvariant.encode(type_string, value)  # and the encoder accepts the result


GLIB_CASES = [
    "'plain'", '"double quoted"', "'esc\\'aped \\\\ \\n'", "true", "false", "5", "-7", "1.5",
    "uint32 5", "byte 0x12", "int64 -9", "uint64 18446744073709551615", "@t 7", "double 3",
    "['a', 'b']", "@as []", "[uint32 1, 2]", "[true, false]", "'\\u00e9t\\u00e9'",
]


@needs_ostree
def test_gvariant_text_matches_glib() -> None:
    script = (
        "import json,sys\nfrom gi.repository import GLib\n"
        "out=[]\nfor t in json.load(sys.stdin):\n"
        "    v=GLib.Variant.parse(None,t,None,None)\n"
        "    out.append([v.get_type_string(), bytes(v.get_data_as_bytes().get_data()).hex()])\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(["/usr/bin/python3", "-c", script], input=json.dumps(GLIB_CASES),
                          capture_output=True, text=True, check=True)
    for text, (type_string, data) in zip(GLIB_CASES, json.loads(done.stdout)):
        ours_type, ours_value = parse_gvariant_text(text)
        assert ours_type == type_string, text
        assert gvariant.encode(ours_type, ours_value).hex() == data, text


@pytest.mark.parametrize(
    "text",
    ["", "'open", "[1, 'a']", "[]", "uint32 -1", "byte 256", "int16 40000", "nonsense", "'a' 'b'",
     "[1 2]", "@as", "uint32 1.5", "'\\u12'"],
)
def test_gvariant_text_rejects(text: str) -> None:
    with pytest.raises(GVariantTextError):
        parse_gvariant_text(text)


# ---- timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("@0", 0), ("@1577836800", 1577836800), ("2020-01-01", 1577836800), ("2020-01-01T00:00:00Z", 1577836800),
     ("2020-01-01 01:00:00+01:00", 1577836800), ("2020-01-01 00:00", 1577836800)],
)
def test_parse_timestamp(text: str, expected: int) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["1577836800", "yesterday", "2020-13-01", "2020-01-01 25:00", ""])
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(PyOstreeError):
        parse_timestamp(text)


# ---- tree builder (in-memory) -----------------------------------------------------------


@needs_ostree
def test_in_memory_tree(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r", "bare-user")
    with repo.transaction() as txn:
        builder = TreeBuilder(txn)
        builder.add_dir("/", mode=0o755)
        builder.add_file("etc/motd", b"hello\n", mode=0o640, uid=1000, gid=1000,
                         xattrs=((b"user.k\0", b"v"),))
        builder.add_file("big", (bytes([n]) * 1000 for n in range(50)))
        builder.add_symlink("etc/link", "motd")
        builder.add_dir("etc", mode=0o700)
        checksum = builder.add_file("copy", b"hello\n", mode=0o640, uid=1000, gid=1000,
                                    xattrs=((b"user.k\0", b"v"),))
        builder.add_checksum("again", checksum)
        tree, meta = builder.finish()
        commit = write_commit(txn, tree, meta, CommitRequest(branch="mem", timestamp=0)).checksum
    root = tmp_path / "r"
    assert run_ostree("cat", "mem", "/etc/motd", repo=root) == "hello\n"
    listing = run_ostree("ls", "-R", "mem", repo=root)
    assert "d00700 0 0      0 /etc" in listing
    assert "-00640 1000 1000      6 /etc/motd" in listing
    assert "l00777 0 0      0 /etc/link -> motd" in listing
    assert "/again" in listing and "/big" in listing
    assert repo.read_ref("mem") == commit
    run_ostree("fsck", repo=root)


@pytest.mark.parametrize(
    "steps, message",
    [
        ([("file", "a"), ("dir", "a")], "can't replace a file with a directory"),
        ([("dir", "a"), ("file", "a")], "can't replace a directory with a file"),
        ([("file", "a"), ("file", "a/b")], "can't replace a file with a directory"),
        ([("file", "x/../y")], "not allowed"),
        ([("file", "/")], "invalid file path"),
    ],
)
def test_tree_builder_conflicts(tmp_path: Path, steps: List[Tuple[str, str]], message: str) -> None:
    repo = Repo.init(tmp_path / "r", "archive")
    with repo.transaction() as txn:
        builder = TreeBuilder(txn, workers=0)
        with pytest.raises(PyOstreeError, match=message):
            for kind, path in steps:
                if kind == "file":
                    builder.add_file(path, b"x")
                else:
                    builder.add_dir(path)


def test_tree_builder_empty_tree_and_disk_errors(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r", "archive")
    with repo.transaction() as txn:
        with pytest.raises(TreeBuildError, match="empty tree"):
            TreeBuilder(txn).finish()
        with pytest.raises(TreeBuildError, match="cannot read"):
            TreeBuilder(txn).add_directory(tmp_path / "missing")
        (tmp_path / "file").write_text("x")
        with pytest.raises(TreeBuildError, match="not a directory"):
            TreeBuilder(txn).add_directory(tmp_path / "file")
        bad_tar = tmp_path / "bad.tar"
        bad_tar.write_bytes(b"not a tar at all" * 100)
        with pytest.raises(TreeBuildError, match="invalid tar"):
            TreeBuilder(txn).add_tar(bad_tar)


def test_non_utf8_file_name_is_rejected(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    with open(os.fsencode(tree) + b"/bad\xff", "wb"):
        pass
    repo = Repo.init(tmp_path / "r", "archive")
    with repo.transaction() as txn:
        with pytest.raises(PyOstreeError, match="UTF-8"):
            TreeBuilder(txn).add_directory(tree)


# ---- init, refs, locks ------------------------------------------------------------------


def test_init_rejects_bad_mode(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="invalid repo mode"):
        init_repo(tmp_path / "r", "zip")
    assert not (tmp_path / "r").exists()


def test_set_ref_validation(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r", "archive")
    good = "a" * 64
    with pytest.raises(RefError):
        set_ref(repo.path, good, good)  # a ref named like a checksum
    with pytest.raises(PyOstreeError):
        set_ref(repo.path, "main", "not-a-checksum")
    set_ref(repo.path, "main", good)
    set_ref(repo.path, "origin:main", good)
    assert (repo.path / "refs/remotes/origin/main").read_text() == good + "\n"
    os.symlink("main", repo.path / "refs/heads/alias")
    with pytest.raises(RefError, match="alias"):
        set_ref(repo.path, "alias", "b" * 64)
    set_ref(repo.path, "main", None)
    assert not (repo.path / "refs/heads/main").exists()


def test_collection_ref_goes_to_mirrors(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r", "archive", collection_id="org.example.Own")
    with repo.transaction() as txn:
        txn.set_collection_ref("org.example.Other", "app/stable", "c" * 64)
        txn.set_collection_ref("org.example.Own", "local", "d" * 64)
    assert (repo.path / "refs/mirrors/org.example.Other/app/stable").read_text() == "c" * 64 + "\n"
    assert (repo.path / "refs/heads/local").read_text() == "d" * 64 + "\n"


def test_lock_release_without_acquire(tmp_path: Path) -> None:
    with pytest.raises(PyOstreeError):
        RepoLock(str(tmp_path)).release()


@needs_ostree
def test_auto_update_summary(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r", "archive")
    with open(repo.path / "config", "a", encoding="utf-8") as handle:
        handle.write("auto-update-summary=true\n")
    (repo.path / "summary.sig").write_bytes(b"stale")
    repo = Repo.open(repo.path)
    tree = tmp_path / "t"
    tree.mkdir()
    with repo.transaction() as txn:
        builder = TreeBuilder(txn)
        builder.add_directory(tree)
        commit = write_commit(txn, *builder.finish(), CommitRequest(branch="main", timestamp=0)).checksum
    assert commit in run_ostree("summary", "-v", repo=repo.path)
    assert not (repo.path / "summary.sig").exists()
    shutil.rmtree(tree)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "a/b", "c/d/e", "é", "Z", "10", "9"]), min_size=1, max_size=6))
def test_ref_names_roundtrip_through_ostree(tmp_path_factory: pytest.TempPathFactory, names: List[str]) -> None:
    """Whatever refs we write, ``ostree refs`` lists them (dir/file clashes are refused)."""
    repo = Repo.init(tmp_path_factory.mktemp("refs") / "r", "archive")
    written = set()
    for name in names:
        try:
            set_ref(repo.path, name, "e" * 64)
            written.add(name)
        except RefError:
            assert any(other.startswith(name + "/") or name.startswith(other + "/") for other in written)
    assert set(repo.list_refs()) == written
