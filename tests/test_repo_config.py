"""The repository config: GLib keyfile parsing (checked against GLib itself) and modes."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ostree_tool import SampleRepo
from pyostree.errors import RepoError
from pyostree.repo import Repo, RepoConfig, RepoMode
from pyostree.repo.config import parse_core

SYSTEM_PYTHON = "/usr/bin/python3"

# ---------------------------------------------------------------------------- modes


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("archive", RepoMode.ARCHIVE),
        ("archive-z2", RepoMode.ARCHIVE),
        ("bare", RepoMode.BARE),
        ("bare-user", RepoMode.BARE_USER),
        ("bare-user-only", RepoMode.BARE_USER_ONLY),
    ],
)
def test_mode_parse_accepts_both_archive_spellings(text: str, mode: RepoMode) -> None:
    assert RepoMode.parse(text) is mode


def test_mode_parse_refuses_split_xattrs_as_unsupported() -> None:
    with pytest.raises(RepoError, match="Unsupported repository mode 'bare-split-xattrs'"):
        RepoMode.parse("bare-split-xattrs")


@pytest.mark.parametrize("text", ["weird", "", "Bare", "archive-z3"])
def test_mode_parse_refuses_unknown_modes(text: str) -> None:
    with pytest.raises(RepoError, match="Invalid mode"):
        RepoMode.parse(text)


def test_open_reads_mode_and_remote(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    assert repo.mode is RepoMode.parse(sample_repo.mode)
    assert repo.path == sample_repo.path
    assert repo.config.remotes() == ["origin"]
    assert repo.config.get('remote "origin"', "url", "").startswith("file://")
    assert repo.config.getbool('remote "origin"', "gpg-verify", True) is False
    assert repo.collection_id is None


def test_open_accepts_a_str_path(ostree_repos: Dict[str, SampleRepo]) -> None:
    assert Repo.open(str(ostree_repos["bare"].path)).mode is RepoMode.BARE


# ---------------------------------------------------------------------------- core checks


def _core(text: str) -> RepoMode:
    return parse_core(RepoConfig.parse(text))


def test_core_defaults_to_bare_like_libostree() -> None:
    assert _core("[core]\nrepo_version=1\n") is RepoMode.BARE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[core]\nmode=bare\n", "repo_version"),
        ("[core]\nrepo_version=2\nmode=bare\n", "Invalid repository version '2'"),
        ("[core]\nrepo_version= 1 \nmode=bare\n", "Invalid repository version '1 '"),
        ("[core]\nrepo_version=1\nmode=weird\n", "Invalid mode 'weird'"),
        ("[core]\nrepo_version=1\narchive=true\n", "archive-z2"),
        ("[core]\nrepo_version=1\nmode=bare-split-xattrs\n", "Unsupported"),
    ],
)
def test_core_errors_match_libostree(text: str, message: str) -> None:
    with pytest.raises(RepoError, match=message) as info:
        _core(text)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------- keyfile


SAMPLE = """# leading comment

[core]
repo_version=1
mode=archive-z2
  # indented comment
list=a;b\\;c;d;
spaced  =  value with spaces  
escaped=\\sx\\ty\\nz\\\\

[remote "origin"]
url=file:///srv/repo
gpg-verify=false
branches=main;os/x86_64/stable;
[core]
late=1
"""


def test_keyfile_round_trips_byte_for_byte() -> None:
    assert RepoConfig.parse(SAMPLE).to_text() == SAMPLE


def test_keyfile_values() -> None:
    config = RepoConfig.parse(SAMPLE)
    assert config.groups() == ["core", 'remote "origin"']
    assert config.get("core", "mode") == "archive-z2"
    assert config.get("core", "late") == "1"
    assert config.get("core", "spaced") == "value with spaces  "
    assert config.get("core", "escaped") == " x\ty\nz\\"
    assert config.getlist("core", "list") == ["a", "b;c", "d"]
    assert config.getlist('remote "origin"', "branches") == ["main", "os/x86_64/stable"]
    assert config.getbool('remote "origin"', "gpg-verify", True) is False
    assert config.getint("core", "repo_version") == 1
    assert config.get("core", "missing") is None
    assert config.get("nogroup", "x", "dflt") == "dflt"
    assert config.remotes() == ["origin"]


@pytest.mark.parametrize(
    "text",
    [
        "garbage\n",
        "key=value\n[core]\n",
        "[core\nx=1\n",
        "[]\nx=1\n",
        "[core]\n=value\n",
    ],
)
def test_keyfile_rejects_what_glib_rejects(text: str) -> None:
    with pytest.raises(RepoError) as info:
        RepoConfig.parse(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("false", False), ("0", False)])
def test_getbool_accepts_glib_spellings(raw: str, expected: bool) -> None:
    assert RepoConfig.parse(f"[g]\nk={raw}\n").getbool("g", "k") is expected


@pytest.mark.parametrize("raw", ["yes", "TRUE", "2", ""])
def test_getbool_rejects_other_values(raw: str) -> None:
    with pytest.raises(RepoError, match="boolean"):
        RepoConfig.parse(f"[g]\nk={raw}\n").getbool("g", "k")


@pytest.mark.parametrize("raw", ["x", "1.5", "", "0x10"])
def test_getint_rejects_non_numbers(raw: str) -> None:
    with pytest.raises(RepoError, match="number"):
        RepoConfig.parse(f"[g]\nk={raw}\n").getint("g", "k")


def test_set_and_remove_keep_every_other_line() -> None:
    config = RepoConfig.parse(SAMPLE)
    config.set("core", "mode", "bare")
    config.set("core", "collection-id", "org.example.Repo")
    config.set('remote "origin"', "gpg-verify", True)
    config.set("archive", "zlib-level", 9)
    config.remove("core", "late")
    text = config.to_text()
    again = RepoConfig.parse(text)
    assert again.get("core", "mode") == "bare"
    assert again.get("core", "collection-id") == "org.example.Repo"
    assert again.getbool('remote "origin"', "gpg-verify") is True
    assert again.getint("archive", "zlib-level") == 9
    assert again.get("core", "late") is None
    assert "# leading comment" in text and "  # indented comment" in text
    assert again.getlist("core", "list") == ["a", "b;c", "d"]
    config.remove('remote "origin"')
    assert RepoConfig.parse(config.to_text()).remotes() == []


def test_set_escapes_values_it_writes() -> None:
    config = RepoConfig.parse("[g]\n")
    config.set("g", "k", " lead\ttab\\")
    assert RepoConfig.parse(config.to_text()).get("g", "k") == " lead\ttab\\"


_names = st.text(alphabet="abcdefgxyz-_.0123", min_size=1, max_size=8)
_values = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_names, st.lists(st.tuples(_names, _values), max_size=5)), max_size=4))
def test_set_then_get_round_trips(groups: List[tuple[str, List[tuple[str, str]]]]) -> None:
    config = RepoConfig.parse("")
    expected: Dict[tuple[str, str], str] = {}
    for group, pairs in groups:
        for key, value in pairs:
            config.set(group, key, value)
            expected[(group, key)] = value
    text = config.to_text()
    again = RepoConfig.parse(text)
    assert again.to_text() == text
    for (group, key), value in expected.items():
        assert again.get(group, key) == value


# ---------------------------------------------------------------------------- GLib oracle

_GLIB_SCRIPT = r"""
import json, sys
from gi.repository import GLib
out = []
for text in json.load(sys.stdin):
    k = GLib.KeyFile()
    data = text.encode()
    try:
        k.load_from_data(text, len(data), GLib.KeyFileFlags.KEEP_COMMENTS)
    except GLib.Error:
        out.append(None)
        continue
    def string(g, key):
        try:
            return k.get_string(g, key)
        except GLib.Error:
            return None
    out.append({g: {key: [k.get_value(g, key), string(g, key)] for key in k.get_keys(g)[0]}
                for g in k.get_groups()[0]})
print(json.dumps(out))
"""


def _random_keyfile(rng: random.Random) -> str:
    pieces = ["", " ", "\t", "#", "[", "]", "=", ";", "\\", "\\s", "a", "b", "k", "x y", "é", "1"]
    lines: List[str] = []
    if rng.random() < 0.9:
        lines.append("[" + rng.choice(["core", 'remote "o"', "g h", "x"]) + "]")
    for _ in range(rng.randrange(0, 8)):
        kind = rng.random()
        if kind < 0.15:
            lines.append(rng.choice(["", "#c", "  # c", "\t#"]))
        elif kind < 0.25:
            lines.append("[" + "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 3))) + "]")
        elif kind < 0.9:
            key = rng.choice(["k", "key", "k2", " k", "k ", "a-b", "a.b", "k[de]"])
            value = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 5)))
            lines.append(f"{key}{rng.choice(['=', ' = ', '= ', '  ='])}{value}")
        else:
            lines.append("".join(rng.choice(pieces) for _ in range(rng.randrange(1, 4))))
    return "\n".join(lines) + rng.choice(["", "\n"])


def _ours(
    text: str, glib: Optional[Dict[str, Dict[str, List[Optional[str]]]]]
) -> Optional[Dict[str, Dict[str, List[Optional[str]]]]]:
    """Like the GLib script: group -> key -> [raw value, unescaped string].

    GLib drops translations of other locales (``key[de]``) unless asked to keep them; we
    keep them, so they are left out. Where GLib refuses an escape (``\\a``) we keep the
    text as written instead of failing, so only strings GLib accepts are compared.
    """
    try:
        config = RepoConfig.parse(text)
    except RepoError:
        return None
    out: Dict[str, Dict[str, List[Optional[str]]]] = {}
    for g in config.groups():
        out[g] = {}
        for k in config.keys(g):
            if "[" in k:
                continue
            theirs = (glib or {}).get(g, {}).get(k, [None, None])
            out[g][k] = [config.get_raw(g, k), config.get(g, k) if theirs[1] is not None else None]
    return out


@pytest.mark.skipif(
    shutil.which(SYSTEM_PYTHON) is None
    or subprocess.run([SYSTEM_PYTHON, "-c", "import gi"], capture_output=True).returncode != 0,
    reason="system python with gi (GLib) not available",
)
def test_keyfile_parsing_agrees_with_glib() -> None:
    rng = random.Random(4242)
    texts = [_random_keyfile(rng) for _ in range(400)] + [SAMPLE]
    done = subprocess.run(
        [SYSTEM_PYTHON, "-c", _GLIB_SCRIPT], input=json.dumps(texts).encode(),
        capture_output=True, check=True,
    )
    theirs = json.loads(done.stdout)
    mismatches = [
        (text, glib, _ours(text, glib))
        for text, glib in zip(texts, theirs)
        if glib != _ours(text, glib) or list(glib or {}) != list(_ours(text, glib) or {})
    ]
    assert mismatches == [], mismatches[:3]
    assert sum(result is None for result in theirs) > 10  # the generator does make bad files
    unescaped = [v[1] for r in theirs if r for keys in r.values() for v in keys.values()]
    assert any(v is not None and ("\\" in v or " " in v) for v in unescaped)


_keyfile_text = st.lists(
    st.one_of(
        st.sampled_from(["[core]", '[remote "o"]', "[a b]", "", "# c", "  #", "\t"]),
        st.text(alphabet="ak=; \t\\s#[]é", max_size=12),
    ),
    max_size=10,
).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(_keyfile_text)
def test_any_parsable_text_round_trips_exactly(text: str) -> None:
    try:
        config = RepoConfig.parse(text)
    except RepoError as err:
        assert "\n" not in str(err)
        return
    assert config.to_text() == text
    for group in config.groups():
        for key in config.keys(group):
            assert config.get_raw(group, key) is not None
