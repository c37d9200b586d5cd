"""Property test: our g_variant_print equals GLib's for the types ls -X and show print."""

from __future__ import annotations

import json
import subprocess
from typing import Any, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyostree.cli.common import format_variant

GLIB_PRINTER = r"""
import json, sys
from gi.repository import GLib

def build(type_string, value):
    if type_string == "a{sv}":
        return {k: GLib.Variant(t, build(t, v)) for k, (t, v) in value.items()}
    if type_string == "ay":
        return bytes(value)
    if type_string == "a(ayay)":
        return [(bytes(n), bytes(v)) for n, v in value]
    return value

for line in sys.stdin:
    type_string, value, annotate = json.loads(line)
    variant = GLib.Variant(type_string, build(type_string, value))
    print(json.dumps(variant.print_(annotate)))
"""

_TEXT = st.text(st.characters(whitelist_categories=("L", "N", "P", "S", "Zs", "Cc", "Mn"),
                              blacklist_characters="\0"),
                max_size=12)
_BYTES = st.binary(max_size=10)
_NAMES = st.binary(min_size=1, max_size=8).filter(lambda b: b"\0" not in b).map(lambda b: b + b"\0")
_INNER = st.one_of(
    st.tuples(st.just("s"), _TEXT),
    st.tuples(st.just("u"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("t"), st.integers(0, 2**64 - 1)),
    st.tuples(st.just("b"), st.booleans()),
    st.tuples(st.just("as"), st.lists(_TEXT, max_size=3)),
)
_VALUES = st.one_of(
    st.tuples(st.just("a(ayay)"), st.lists(st.tuples(_NAMES, _BYTES), max_size=4)),
    st.tuples(st.just("as"), st.lists(_TEXT, max_size=4)),
    st.tuples(st.just("s"), _TEXT),
    st.tuples(st.just("ay"), _BYTES),
    st.tuples(st.just("a{sv}"), st.dictionaries(_TEXT, _INNER, max_size=3)),
)


def _glib_available() -> bool:
    try:
        done = subprocess.run(["/usr/bin/python3", "-c", "from gi.repository import GLib"],
                              capture_output=True, check=False)
    except OSError:
        return False
    return done.returncode == 0


pytestmark = pytest.mark.skipif(not _glib_available(), reason="system python3 with GLib needed")


def _jsonable(type_string: str, value: Any) -> Any:
    if type_string == "ay":
        return list(value)
    if type_string == "a(ayay)":
        return [[list(n), list(v)] for n, v in value]
    return value


def _ours(type_string: str, value: Any, annotate: bool) -> str:
    if type_string == "a(ayay)":
        value = [(bytes(n), bytes(v)) for n, v in value]
    return format_variant(type_string, value, annotate)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_VALUES, st.booleans()), min_size=1, max_size=25))
def test_format_variant_equals_glib(cases: List[Tuple[Tuple[str, Any], bool]]) -> None:
    lines = "".join(json.dumps([t, _jsonable(t, v), a]) + "\n" for (t, v), a in cases)
    done = subprocess.run(["/usr/bin/python3", "-c", GLIB_PRINTER], input=lines, text=True,
                          capture_output=True, check=True)
    theirs = [json.loads(line) for line in done.stdout.splitlines()]
    ours = [_ours(t, v, a) for (t, v), a in cases]
    assert ours == theirs
