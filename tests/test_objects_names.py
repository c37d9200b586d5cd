"""Name rules (file names, refs, remotes, collection ids) against libostree's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ostree_tool import needs_ostree, run_ostree
from pyostree.errors import ObjectError, RefError
from pyostree.objects.names import (
    parse_refspec,
    validate_collection_id,
    validate_filename,
    validate_ref_name,
    validate_remote_name,
)

VALID_REFS = ["main", "a/b/c", "héllo", "日本", "a..b", "_x", "0abc", "x²", "Ⅻ", "ǅx", "a-b.c_d"]
INVALID_REFS = ["", "-a", ".a", "a//b", "a/", "/a", "a b", "a‿b", "e\u0301", "a~b", "a^", "a:b",
                "foo\n", "a\0b", "\udcff"]


@pytest.mark.parametrize("name", VALID_REFS)
def test_valid_ref_names(name: str) -> None:
    validate_ref_name(name)


@pytest.mark.parametrize("name", INVALID_REFS)
def test_invalid_ref_names(name: str) -> None:
    with pytest.raises(RefError, match="invalid ref"):
        validate_ref_name(name)


def test_checksum_like_ref_refused_only_when_asked() -> None:
    name = "ab" * 32
    validate_ref_name(name)
    with pytest.raises(RefError, match="looks like a checksum"):
        validate_ref_name(name, allow_checksum=False)


def test_remote_name_is_one_fragment() -> None:
    validate_remote_name("origin")
    for bad in ("a/b", "", "-x", "a:b"):
        with pytest.raises(RefError, match="invalid remote name"):
            validate_remote_name(bad)


def test_parse_refspec() -> None:
    assert parse_refspec("main") == (None, "main")
    assert parse_refspec("origin:os/x86_64") == ("origin", "os/x86_64")
    for bad in ("origin:", ":main", "a:b:c", "-r:main", "a/b:c"):
        with pytest.raises(RefError, match="invalid refspec"):
            parse_refspec(bad)


@pytest.mark.parametrize("cid", ["org.example.Os", "a.b", "_a.B_1", "A" * 127 + "." + "B" * 127])
def test_valid_collection_ids(cid: str) -> None:
    validate_collection_id(cid)


@pytest.mark.parametrize(
    "cid", ["", "org", ".org.x", "org.", "org..x", "org.1x", "org.ex-ample", "org.é", "a." + "b" * 254]
)
def test_invalid_collection_ids(cid: str) -> None:
    with pytest.raises(RefError, match="invalid collection ID"):
        validate_collection_id(cid)


@pytest.mark.parametrize("name", ["a", "a.b", "...", ".hidden", "é", " ", "a\\b"])
def test_valid_filenames(name: str) -> None:
    validate_filename(name)


@pytest.mark.parametrize(
    ("name", "problem"),
    [("", "is empty"), (".", "not allowed"), ("..", "not allowed"), ("a/b", "contains '/'"),
     ("a\0b", "contains NUL"), ("\udcff", "not valid UTF-8"), (b"a", "is not a str")],
)
def test_invalid_filenames(name: object, problem: str) -> None:
    with pytest.raises(ObjectError, match=problem):
        validate_filename(name)  # type: ignore[arg-type]


@needs_ostree
def test_ref_rules_agree_with_ostree(tmp_path: Path) -> None:
    """``ostree refs --create`` accepts exactly the names we accept (newline aside: libostree's
    PCRE ``$`` lets ``foo\\n`` through and creates ``foo``; we refuse it)."""
    repo = tmp_path / "repo"
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_bytes(b"x")
    run_ostree("init", "--mode=archive", repo=repo)
    commit = run_ostree("commit", "-b", "zz-base", "--no-bindings", f"--tree=dir={tree}",
                        repo=repo).strip()
    for name in VALID_REFS + [n for n in INVALID_REFS if n not in ("foo\n", "a:b", "\udcff", "a\0b")]:
        try:
            run_ostree("refs", f"--create={name}", commit, repo=repo)
            ostree_ok = True
        except subprocess.CalledProcessError:
            ostree_ok = False
        try:
            validate_ref_name(name)
            ours = True
        except RefError:
            ours = False
        assert ours == ostree_ok, name
