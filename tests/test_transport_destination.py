"""parse_destination: every accepted form, and the ones we refuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyostree.transport import Destination, DestinationError, parse_destination
from pyostree.transport.base import check_relpath
from pyostree.errors import TransportError


@pytest.mark.parametrize(
    "text, expected",
    [
        ("host:repo", Destination("ssh", "repo", host="host")),
        ("user@host:/srv/repo", Destination("ssh", "/srv/repo", host="host", user="user")),
        ("host:~/repo", Destination("ssh", "~/repo", host="host")),
        ("a@b@host:r", Destination("ssh", "r", host="host", user="a@b")),
        ("[::1]:repo", Destination("ssh", "repo", host="::1")),
        ("me@[fe80::1]:/r", Destination("ssh", "/r", host="fe80::1", user="me")),
        ("ssh://host/srv/repo", Destination("ssh", "/srv/repo", host="host")),
        ("ssh://u@host:2222/srv/repo", Destination("ssh", "/srv/repo", host="host", user="u", port=2222)),
        ("ssh://host/~/repo", Destination("ssh", "~/repo", host="host")),
        ("ssh://[::1]:22/r", Destination("ssh", "/r", host="::1", port=22)),
        ("/srv/repo", Destination("local", "/srv/repo")),
        ("repo", Destination("local", "repo")),
        ("./a:b", Destination("local", "./a:b")),
        (":repo", Destination("local", ":repo")),
        ("/abs/with:colon", Destination("local", "/abs/with:colon")),
        ("file:///srv/repo", Destination("local", "/srv/repo")),
        ("file://rel/repo", Destination("local", "rel/repo")),
    ],
)
def test_parse_destination_forms(text: str, expected: Destination) -> None:
    assert parse_destination(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "host:",
        "u@:repo",
        "@host:repo",
        "-oProxyCommand=x:repo",
        "user@-host:repo",
        "-user@host:repo",
        "ho st:repo",
        "ssh://host",
        "ssh://host/",
        "ssh://:22/r",
        "ssh://host:0/r",
        "ssh://host:65536/r",
        "ssh://host:abc/r",
        "ssh://host:/r",
        "ssh://[::1/r",
        "ssh://[::1]x/r",
        "[::1:repo",
        "file://",
        "host:re\npo",
        "nul\0:x",
    ],
)
def test_parse_destination_rejects(text: str) -> None:
    with pytest.raises(DestinationError):
        parse_destination(text)


def test_destination_error_is_transport_error() -> None:
    with pytest.raises(TransportError, match="empty host"):
        parse_destination("u@:repo")


@pytest.mark.parametrize("good, normal", [("", ""), (".", ""), ("a", "a"), ("a/b.c/d", "a/b.c/d")])
def test_check_relpath_accepts(good: str, normal: str) -> None:
    assert check_relpath(good) == normal


@pytest.mark.parametrize("bad", ["/a", "..", "a/..", "a//b", "./a", "a/", "a\0b"])
def test_check_relpath_rejects(bad: str) -> None:
    with pytest.raises(TransportError):
        check_relpath(bad)


_SAFE = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, blacklist_characters="@:/[]", blacklist_categories=("Zs", "Cc")), min_size=1, max_size=12)


@given(st.text(max_size=40))
def test_parse_destination_never_crashes(text: str) -> None:
    try:
        dest = parse_destination(text)
    except DestinationError:
        return
    assert dest.kind in ("local", "ssh") and dest.path
    if dest.kind == "ssh":
        assert dest.host and not dest.host.startswith("-")


@given(_SAFE.filter(lambda s: not s.startswith("-")), _SAFE.filter(lambda s: not s.startswith("-")), _SAFE)
def test_scp_form_round_trips(user: str, host: str, path: str) -> None:
    assert parse_destination(f"{user}@{host}:{path}") == Destination("ssh", path, host=host, user=user)
    expected = path if path == "~" else "/" + path  # ssh://h/~ is the home directory
    assert parse_destination(f"ssh://{user}@{host}:2222/{path}") == Destination(
        "ssh", expected, host=host, user=user, port=2222
    )
