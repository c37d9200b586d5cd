"""Known answers for pyostree.gvariant: every dump of spec gvariant.md §5, §7 and §10."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest

from pyostree.errors import PyOstreeError
from pyostree.gvariant import GVariantError, decode, encode, is_normal
from pyostree.gvariant.types import is_valid_signature, is_valid_type_string, parse_type

H = bytes.fromhex

NORMAL_VECTORS = [
    # §10.1 dirtree file list
    ("a(say)", [("a", H("0102")), ("bc", H("03"))], "61 00 01 02 02 62 63 00 03 03 05 0a"),
    # §10.2 dirtree dir list
    ("a(sayay)", [("d", H("aabb"), H("cc"))], "64 00 aa bb cc 04 02 07"),
    # §10.3 dirtree
    ("(a(say)a(sayay))",
     ([("a", H("0102")), ("bc", H("03"))], [("d", H("aabb"), H("cc"))]),
     "61 00 01 02 02 62 63 00 03 03 05 0a 64 00 aa bb cc 04 02 07 0c"),
    ("(a(say)a(sayay))", ([], []), "00"),
    # §10.4 dirmeta, mode stored big-endian
    ("(uuua(ayay))", (0, 0, 0xED410000, [(b"user.k\x00", b"v")]),
     "00 00 00 00 00 00 00 00 00 00 41 ed 75 73 65 72 2e 6b 00 76 07 09"),
    # §10.5 file header of a symlink
    ("(tuuuusa(ayay))", (0, 0, 0, 0xFFA10000, 0, "a/b", []),
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 a1 ff 00 00 00 00 61 2f 62 00 1c"),
    # §10.6 commit
    ("(a{sv}aya(say)sstayay)",
     ({"version": ("s", "1")}, H("1122"), [], "s", "", 0x257D936500000000, H("3344"), H("5566")),
     "76 65 72 73 69 6f 6e 00 31 00 00 73 08 0d 11 22 73 00 00 00 00 00 00 00 00 00 00 00"
     " 65 93 7d 25 33 44 55 66 22 13 12 10 10 0e"),
    # §10.7 summary
    ("(a(s(taya{sv}))a{sv})", ([("main", (182, H("7788"), {}))], {"m": ("b", True)}),
     "6d 61 69 6e 00 00 00 00 b6 00 00 00 00 00 00 00 77 88 00 00 00 00 00 00 0a 05 1a"
     " 00 00 00 00 00 6d 00 00 00 00 00 00 00 01 00 62 02 0c 1b"),
    # §3 layouts and padding
    ("(yi)", (1, 2), "01 00 00 00 02 00 00 00"),
    ("(iy)", (2, 1), "02 00 00 00 01 00 00 00"),
    ("(ty)", (3, 4), "03 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00"),
    ("(yt)", (4, 3), "04 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00"),
    ("(())", ((),), "00"),
    ("()", (), "00"),
    ("{yy}", (1, 2), "01 02"),
    # §4.1 widths
    ("as", ["x" * 253], "78" * 253 + "00 fe"),
    ("as", ["x" * 254], "78" * 254 + "00 ff 00"),
    # §5.3 maybes
    ("ms", ("",), "00 00"),
    ("ms", None, ""),
    ("mmy", (None,), "00"),
    ("m(ay)", ((b"",),), "00"),
    ("mi", (7,), "07 00 00 00"),
    # §5.5 zero-length tuples and empty arrays
    ("(ay)", (b"",), ""),
    ("(as)", ([],), ""),
    ("(ayay)", (b"", b""), "00"),
    ("a{sv}", {}, ""),
    ("av", [], ""),
    # §5.6 variants
    ("v", ("u", 5), "05 00 00 00 00 75"),
    ("v", ("()", ()), "00 00 28 29"),
    ("v", ("y", 42), "2a 00 79"),
    # §6 example (little-endian half)
    ("(ua(sq))", (1, [("a", 2)]), "01 00 00 00 61 00 02 00 02 05"),
    # basics
    ("b", True, "01"),
    ("b", False, "00"),
    ("n", -2, "fe ff"),
    ("x", -1, "ff ff ff ff ff ff ff ff"),
    ("t", 2**64 - 1, "ff ff ff ff ff ff ff ff"),
    ("h", 3, "03 00 00 00"),
    ("d", -0.0, "00 00 00 00 00 00 00 80"),
    ("s", "", "00"),
    ("o", "/", "2f 00"),
    ("o", "/a_1/B", "2f 61 5f 31 2f 42 00"),
    ("g", "", "00"),
    ("g", "{sv}a(iu)", "7b 73 76 7d 61 28 69 75 29 00"),
    ("ab", [True, False], "01 00"),
    ("an", [1, -1], "01 00 ff ff"),
    ("a{sv}", {"k": ("b", True)}, "6b 00 00 00 00 00 00 00 01 00 62 02 0c"),
]


@pytest.mark.parametrize("type_string,value,dump", NORMAL_VECTORS)
def test_known_normal_forms(type_string: str, value: Any, dump: str) -> None:
    data = H(dump.replace(" ", ""))
    assert encode(type_string, value) == data
    assert decode(type_string, data) == value
    assert is_normal(type_string, data)


NON_NORMAL_VECTORS = [
    # §10.9
    ("as", "61 62 00 63 64 00 65 66 00 03 02 09", ["ab", "", ""]),
    ("aay", "01 02 03 02 01 03", [b"\x01\x02", b"", b""]),
    ("aay", "09 02 01", [b"", b""]),
    ("a(sayay)", "64 00 aa bb cc 02 04 07", [("", b"", b"")]),
    ("(tss)", "00 61 62 00 01", (0, "", "ab")),
    ("(uuua(ayay))", "00 00 00 00 00 00 00 00 00 00 41", (0, 0, 0, [])),
    ("ms", "61 00 01", ("a",)),
    ("b", "07", True),
    ("v", "2a 00 79 79", ("()", ())),
    ("s", "66 6f 6f 00 62 61 72", ""),
    # §7.7 worked cases
    ("(ayayayayay)", "03 02 01", (b"\x03", b"\x02", b"\x01", b"", b"")),
    ("(ayayiay)", "01 00 02", (b"", b"", 0, b"")),
    ("(yyaiyyaiyy)", "12 34 56 78 01", (0x12, 0x34, [], 0, 0, [], 0, 0)),
    ("(sss)", "aa", ("", "", "")),
    ("(ss)", "61 62 00 63 64 00 07", ("", "")),
    # §7.2 wrong fixed size, §7.3 strings
    ("i", "07 33 90", 0),
    ("(yi)", "01 02", (0, 0)),
    ("s", "", ""),
    ("s", "61 00 62 00", ""),
    ("s", "ff 00", ""),
    ("s", "ed a0 80 00", ""),
    ("o", "61 00", "/"),
    ("o", "2f 61 2f 00", "/"),
    ("o", "2f 2f 00", "/"),
    ("g", "6d 79 00", ""),
    ("g", "28 00", ""),
    # §7.8 variants
    ("v", "", ("()", ())),
    ("v", "01 00 00 79", ("()", ())),
    ("v", "00 72", ("()", ())),
    ("v", "2a 79", ("()", ())),
    # §7.4 maybes
    ("mi", "01 02", None),
    ("ms", "05", ("",)),
    # §7.5 fixed arrays
    ("ai", "01 02 03", []),
    ("ab", "00 02", [False, True]),
]


@pytest.mark.parametrize("type_string,dump,value", NON_NORMAL_VECTORS)
def test_non_normal_inputs_decode_like_glib(type_string: str, dump: str, value: Any) -> None:
    data = H(dump.replace(" ", ""))
    assert decode(type_string, data) == value
    assert not is_normal(type_string, data)


@pytest.mark.parametrize("type_string,dump", [
    ("(a(say)a(sayay))", ""),    # GLib's second normal form of ([], [])
    ("(asas)", ""),
    ("a(asas)", "00 00"),
    ("mmy", "00"),
])
def test_glib_zero_width_quirk_is_normal(type_string: str, dump: str) -> None:
    data = H(dump.replace(" ", ""))
    assert is_normal(type_string, data)
    assert encode(type_string, decode(type_string, data)) != data or type_string == "mmy"


def test_over_wide_offset_table_decodes_but_is_not_normal() -> None:
    data = b"x" * 253 + b"\x00" + H("fe00")
    assert decode("as", data) == ["x" * 253]
    assert not is_normal("as", data)


def test_variant_depth_limit() -> None:
    data = b"\x2a\x00y"  # one variant holding a byte
    for _ in range(126):
        data += b"\x00v"
    value = decode("v", data)
    for _ in range(126):
        assert value[0] == "v"
        value = value[1]
    assert value == ("y", 42)
    assert is_normal("v", data)
    deeper = data + b"\x00v"
    value = decode("v", deeper)
    for _ in range(127):
        value = value[1]
    assert value == ("()", ())
    assert not is_normal("v", deeper)


def test_float_bits_survive() -> None:
    nan = struct.unpack("<d", H("010000000000f87f"))[0]
    data = encode("d", nan)
    assert data == H("010000000000f87f")
    again = decode("d", data)
    assert math.isnan(again) and struct.pack("<d", again) == data
    assert encode("ad", [math.inf, -math.inf]) == struct.pack("<2d", math.inf, -math.inf)


def test_ay_accepts_bytes_like() -> None:
    for raw in (b"ab", bytearray(b"ab"), memoryview(b"ab")):
        assert encode("ay", raw) == b"ab"
    assert type(decode("ay", bytearray(b"ab"))) is bytes
    assert decode("(ayay)", memoryview(H("61 62 01"))) == (b"a", b"b")


def test_dict_order_and_duplicate_keys() -> None:
    assert list(decode("a{sy}", encode("a{sy}", {"z": 1, "a": 2}))) == ["z", "a"]
    twice = encode("a{sy}", [("k", 1), ("j", 2), ("k", 3)])
    assert decode("a{sy}", twice) == {"k": 3, "j": 2}
    assert list(decode("a{sy}", twice)) == ["k", "j"]
    assert is_normal("a{sy}", twice)


# -- type strings -------------------------------------------------------------------

@pytest.mark.parametrize("good", [
    "y", "as", "a{sv}", "{sv}", "()", "(())", "mmv", "(a(say)a(sayay))", "a" * 128 + "y",
    "(" * 129 + ")" * 129, "a{y(())}", "h",
])
def test_valid_type_strings(good: str) -> None:
    assert is_valid_type_string(good)
    parse_type(good)


@pytest.mark.parametrize("bad", [
    "", "yy", "a", "m", "(", ")", "(y", "y)", "{", "{s}", "{svv}", "{vs}", "{(y)s}", "r", "*",
    "?", "ar", "a{?s}", "e", "a" * 129 + "y", "(" * 130 + ")" * 130, "(" * 100000, "a" * 100000,
    "{sv", "z", "\x00", "é",
])
def test_bad_type_strings_rejected(bad: str) -> None:
    assert not is_valid_type_string(bad)
    with pytest.raises(GVariantError):
        encode(bad, 0)
    with pytest.raises(GVariantError):
        decode(bad, b"")
    with pytest.raises(GVariantError):
        is_normal(bad, b"")


def test_type_string_must_be_str() -> None:
    with pytest.raises(GVariantError):
        decode(b"y", b"\x00")  # type: ignore[arg-type]
    with pytest.raises(GVariantError):
        decode(["y"], b"\x00")  # type: ignore[arg-type]


def test_error_is_a_pyostree_value_error() -> None:
    assert issubclass(GVariantError, PyOstreeError)
    assert issubclass(GVariantError, ValueError)


@pytest.mark.parametrize("signature,ok", [
    ("", True), ("yy", True), ("{sv}", True), ("a{sv}(ii)", True), ("my", False), ("a", False),
    ("(", False), ("r", False), ("a" * 128 + "y", True), ("a" * 129 + "y", False), ("y\x00", False),
])
def test_signatures(signature: str, ok: bool) -> None:
    assert is_valid_signature(signature) is ok


# -- bad values -----------------------------------------------------------------------

@pytest.mark.parametrize("type_string,value", [
    ("y", 256), ("y", -1), ("n", 0x8000), ("n", -0x8001), ("q", -1), ("q", 0x10000),
    ("i", 2**31), ("i", -(2**31) - 1), ("u", -1), ("u", 2**32), ("h", 2**31), ("x", 2**63),
    ("x", -(2**63) - 1), ("t", -1), ("t", 2**64), ("y", 1.0), ("u", "1"), ("u", None),
    ("b", 2), ("b", "yes"), ("b", None), ("d", "1.0"), ("d", 10**400), ("d", None),
    ("s", "a\x00b"), ("s", "\ud800"), ("s", b"abc"), ("s", 1), ("o", ""), ("o", "a"),
    ("o", "/a/"), ("o", "//"), ("o", "/a-b"), ("o", "/\u00e9"), ("g", "m"), ("g", "a"),
    ("g", "(y"), ("g", "r"), ("ay", "abc"), ("ay", [1, 2]), ("as", "abc"), ("as", {"a": 1}),
    ("as", ["a", 1]), ("a{sy}", [1, 2]), ("a{sy}", {"a": 256}), ("a{sy}", {1: 1}),
    ("(yy)", (1,)), ("(yy)", (1, 2, 3)), ("(yy)", 5), ("()", (1,)), ("{sy}", ("a",)),
    ("my", 5), ("my", (1, 2)), ("my", [1]), ("v", 5), ("v", ("y",)), ("v", ("yy", 1)),
    ("v", ("y", 256)), ("v", (1, 1)), ("ai", [2**31]), ("ad", ["x"]), ("ab", [3]),
])
def test_bad_values_rejected(type_string: str, value: Any) -> None:
    with pytest.raises(GVariantError):
        encode(type_string, value)


def test_data_must_be_bytes_like() -> None:
    for bad in (5, "ab", None, [1, 2]):
        with pytest.raises(TypeError):
            decode("ay", bad)
        with pytest.raises(TypeError):
            is_normal("ay", bad)
