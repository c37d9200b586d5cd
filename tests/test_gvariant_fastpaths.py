"""The OSTree fast paths must agree with the generic codec on every input."""

from __future__ import annotations

import random
from typing import Any, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyostree.gvariant import GVariantError, decode, encode, is_normal
from pyostree.gvariant import decoder, encoder, fastpaths, normal, tuplegen
from pyostree.gvariant.types import TypeNode, parse_type

LIST_TYPES = ["a(say)", "a(sayay)", "a{sv}"]


def generic_decode(type_string: str, data: bytes) -> Any:
    fn = decoder._compile_variable_array(parse_type(type_string))
    return fn(data, 0, len(data), 0, {})


def generic_is_normal(type_string: str, data: bytes) -> bool:
    return normal._compile_variable_array(parse_type(type_string))(data, 0, len(data), 0)


def generic_encode(type_string: str, value: Any) -> bytes:
    buf = bytearray()
    encoder._compile_variable_array(parse_type(type_string))(buf, value)
    return bytes(buf)


names = st.text(st.characters(codec="utf-8", blacklist_characters="\x00"),
                max_size=6) | st.just("n" * 300) | st.just("\u00e9" * 140)
checksums = st.binary(max_size=40) | st.just(b"\x01" * 300)
file_lists = st.lists(st.tuples(names, checksums), max_size=5)
dir_lists = st.lists(st.tuples(names, checksums, checksums), max_size=5)


@settings(max_examples=300, deadline=None)
@given(file_lists)
def test_file_list_encode_matches_generic(items: List[Any]) -> None:
    data = encode("a(say)", items)
    assert data == generic_encode("a(say)", items)
    assert decode("a(say)", data) == items
    assert is_normal("a(say)", data)


@settings(max_examples=300, deadline=None)
@given(dir_lists)
def test_dir_list_encode_matches_generic(items: List[Any]) -> None:
    data = encode("a(sayay)", items)
    assert data == generic_encode("a(sayay)", items)
    assert decode("a(sayay)", data) == items
    assert is_normal("a(sayay)", data)


def _hostile_bytes(rng: random.Random, base: bytes) -> bytes:
    buf = bytearray(base)
    for _ in range(rng.randint(1, 3)):
        how = rng.randrange(4)
        if how == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.choice([0, 1, 2, 3, 4, 0x61, 0xff, rng.randrange(256)])
        elif how == 1 and buf:
            del buf[rng.randrange(len(buf)):]
        elif how == 2:
            buf.insert(rng.randrange(len(buf) + 1), rng.randrange(256))
        elif buf:
            buf[-1] = rng.randrange(min(256, len(buf) + 2))
    return bytes(buf)


@pytest.mark.parametrize("type_string", LIST_TYPES)
def test_fast_decode_and_is_normal_match_generic_on_hostile_bytes(type_string: str) -> None:
    rng = random.Random(99)
    seeds = [
        encode("a(say)", [("a", b"\x01\x02"), ("bc", b"\x03"), ("", b"")]),
        encode("a(sayay)", [("d", b"\xaa\xbb", b"\xcc"), ("e", b"", b"\x01")]),
        encode(type_string, []),
        encode("a(say)", [("x" * 300, b"\x05" * 40)]),
        encode("a(sayay)", [("y" * 260, b"\x05" * 3, b"\x06")]),
        encode("a{sv}", {"a": ("s", "x"), "bb": ("u", 7), "": ("ay", b"\x01")}),
        encode("a{sv}", {"k" * 270: ("(yv)", (1, ("s", "z")))}),
        encode("a{sv}", {"v": ("v", ("v", ("i", -1))), "m": ("mb", (True,))}),
    ]
    checked = 0
    for _ in range(4000):
        if rng.random() < 0.2:
            data = bytes(rng.choice([0, 1, 2, 3, 5, 0x61, 0xff]) for _ in range(rng.randint(0, 9)))
        else:
            data = _hostile_bytes(rng, rng.choice(seeds))
        assert decode(type_string, data) == generic_decode(type_string, data), data.hex()
        assert is_normal(type_string, data) == generic_is_normal(type_string, data), data.hex()
        checked += 1
    assert checked == 4000


@pytest.mark.parametrize("type_string,value", [
    ("a(say)", [("a\x00", b"")]), ("a(say)", [("\ud800", b"")]), ("a(say)", [(b"a", b"")]),
    ("a(say)", [("a", "b")]), ("a(say)", [("a", b"", b"")]), ("a(say)", {"a": b""}),
    ("a(sayay)", [("a", b"", 1)]), ("a(sayay)", [("a", b"")]), ("a(sayay)", [(1, b"", b"")]),
])
def test_fast_encoders_reject_like_generic(type_string: str, value: Any) -> None:
    with pytest.raises(GVariantError):
        encode(type_string, value)


def test_memoryview_checksums() -> None:
    items = [("a", memoryview(b"\x01\x02"))]
    assert encode("a(say)", items) == encode("a(say)", [("a", b"\x01\x02")])


variants = st.one_of(
    st.tuples(st.just("s"), names),
    st.tuples(st.just("u"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("ay"), checksums),
    st.tuples(st.just("as"), st.lists(names, max_size=3)),
    st.tuples(st.just("v"), st.tuples(st.just("t"), st.integers(0, 2**64 - 1))),
    st.tuples(st.just("(yv)"), st.tuples(st.integers(0, 255), st.tuples(st.just("b"), st.booleans()))),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(names, variants, max_size=5))
def test_vardict_encode_matches_generic(items: Any) -> None:
    data = encode("a{sv}", items)
    assert data == generic_encode("a{sv}", items)
    assert decode("a{sv}", data) == items
    assert is_normal("a{sv}", data)
    assert generic_is_normal("a{sv}", data)


@pytest.mark.parametrize("value", [
    {1: ("s", "a")}, {"a\x00": ("s", "a")}, {"\udc00": ("s", "a")}, {"a": "s"}, {"a": ("s",)},
    {"a": ("q", 2**16)}, {"a": ("z", 1)}, {"a": (b"s", "x")}, {"a": (["s"], "x")},
])
def test_vardict_encoder_rejects_bad_values(value: Any) -> None:
    with pytest.raises(GVariantError):
        encode("a{sv}", value)


def over_wide_entries() -> List[Any]:
    """Entries whose own framing table is one byte wider than needed (readable, not normal)."""
    value = b"x" * 243 + b"\x00\x00s"  # variant ('s', 'x' * 243)
    sv_entry = b"k\x00" + bytes(6) + value + (2).to_bytes(2, "little")  # 256 bytes, W = 2
    say_entry = b"n\x00" + b"\x01" * 252 + (2).to_bytes(2, "little")
    sayay_entry = b"n\x00" + b"\x01" * 250 + (4).to_bytes(2, "little") + (2).to_bytes(2, "little")
    return [
        ("a{sv}", sv_entry + len(sv_entry).to_bytes(2, "little"), {"k": ("s", "x" * 243)}),
        ("a(say)", say_entry + len(say_entry).to_bytes(2, "little"), [("n", b"\x01" * 252)]),
        ("a(sayay)", sayay_entry + len(sayay_entry).to_bytes(2, "little"),
         [("n", b"\x01\x01", b"\x01" * 248)]),
    ]


@pytest.mark.parametrize("type_string,data,value", over_wide_entries())
def test_over_wide_entry_tables_are_not_normal(type_string: str, data: bytes, value: Any) -> None:
    assert decode(type_string, data) == value == generic_decode(type_string, data)
    assert not is_normal(type_string, data)
    assert not generic_is_normal(type_string, data)


GENERATED = sorted(tuplegen.GENERATED_TYPES)


def sample_value(node: TypeNode, rng: random.Random) -> Any:
    """A small valid value of any type, for seeding mutations."""
    kind = node.kind
    if kind in "ynqiuxth":
        return rng.choice([0, 1, 7])
    if kind == "b":
        return rng.random() < 0.5
    if kind == "d":
        return 1.5
    if kind in "sg":
        return rng.choice(["", "ab", "x" * rng.randint(0, 9)])
    if kind == "o":
        return "/a"
    if kind == "v":
        return rng.choice([("s", "v"), ("u", 3), ("ay", b"\x01\x02"), ("()", ())])
    if kind == "m":
        assert node.element is not None
        return None if rng.random() < 0.5 else (sample_value(node.element, rng),)
    if kind == "a":
        assert node.element is not None
        if node.element.kind == "y":
            return bytes(rng.randint(0, 6))
        items = [sample_value(node.element, rng) for _ in range(rng.randint(0, 3))]
        return dict(items) if node.element.kind == "{" else items
    return tuple(sample_value(m, rng) for m in node.members)


@pytest.mark.parametrize("type_string", GENERATED)
def test_generated_tuple_decoders_match_generic(type_string: str) -> None:
    node = parse_type(type_string)
    generic = decoder._compile_variable_tuple(node)
    fast = decoder.get_decoder(node)
    assert fast is not generic
    rng = random.Random(type_string)
    seeds = [encode(type_string, sample_value(node, rng)) for _ in range(5)] + [b"", b"\x00"]
    for _ in range(1500):
        if rng.random() < 0.3:
            data = bytes(rng.choice([0, 1, 2, 3, 4, 5, 8, 9, 16, 0x61, 0xff])
                         for _ in range(rng.randint(0, 24)))
        else:
            data = _hostile_bytes(rng, rng.choice(seeds))
        seeds.append(data)
        assert fast(data, 0, len(data), 0, {}) == generic(data, 0, len(data), 0, {}), data.hex()


# ---------------------------------------------------------------------------- commit / a{sv}

from pyostree.gvariant import commitpath, decode_checked  # noqa: E402
from pyostree.gvariant.decoder import decode_node  # noqa: E402
from pyostree.gvariant.encoder import encode_node  # noqa: E402
from pyostree.gvariant.normal import is_normal_node  # noqa: E402

COMMIT = commitpath.COMMIT_TYPE


def commit_seeds(rng: random.Random) -> List[bytes]:
    """Commits and metadata dicts exercising every inline case (s, b, as) and the generic
    variant path, across offset widths."""
    metas: List[Any] = [
        {},
        {"version": ("s", "1.0"), "ostree.bootable": ("b", True), "x": ("b", False)},
        {"ostree.ref-binding": ("as", ["a/b", "c"]), "e": ("as", []), "": ("s", "")},
        {"u": ("u", 7), "t": ("t", 2**40), "ay": ("ay", b"\x01\x00"), "v": ("v", ("s", "z")),
         "m": ("mb", (True,)), "aa": ("a{sv}", {"k": ("s", "\u00e9")})},
        {"k" * 300: ("s", "v" * 70_000)},
        {"long": ("as", ["x" * 200, "y" * 100]), "\u4e2d": ("s", "\U0001f600")},
    ]
    out = []
    for meta in metas:
        out.append(encode("a{sv}", meta))
        related = rng.choice([[], [("r", b"\x01" * 32)], [("x" * 300, b"\x02" * 32)]])
        value = (meta, bytes(rng.choice([0, 32])), related, rng.choice(["", "Subject", "\u00e9"]),
                 rng.choice(["", "body\n" * rng.randint(1, 80)]), rng.randrange(2**64),
                 b"\x03" * 32, b"\x04" * 32)
        out.append(encode(COMMIT, value))
    return out


DIRTREE = "(a(say)a(sayay))"


def dirtree_seeds(rng: random.Random) -> List[bytes]:
    out = []
    for files, dirs in [(0, 0), (1, 0), (0, 1), (3, 2), (40, 10)]:
        value = (
            sorted(("f%03d" % i + "x" * rng.choice([0, 0, 300]), bytes([i]) * rng.choice([0, 32]))
                   for i in range(files)),
            sorted(("d%03d" % i, b"\x01" * rng.choice([0, 32]), b"\x02" * rng.choice([0, 32, 300]))
                   for i in range(dirs)))
        out.append(encode(DIRTREE, value))
        out.append(encode("a(say)", value[0]))
        out.append(encode("a(sayay)", value[1]))
    return out


def _dirtree_fast(type_string: str, data: bytes) -> Any:
    if type_string == DIRTREE:
        return fastpaths.decode_dirtree_normal(data)
    if type_string == "a(say)":
        return fastpaths.decode_file_list_normal(data, 0, len(data))
    return fastpaths.decode_dir_list_normal(data, 0, len(data))


@pytest.mark.parametrize("type_string", [DIRTREE, "a(say)", "a(sayay)"])
def test_one_pass_dirtree_decoders_agree_with_generic(type_string: str) -> None:
    rng = random.Random(type_string)
    seeds = dirtree_seeds(rng)
    fast_hits = 0
    for round_index in range(3000):
        if round_index < len(seeds):
            data = seeds[round_index]
        elif rng.random() < 0.15:
            data = bytes(rng.choice([0, 1, 2, 3, 4, 0x61, 0xff]) for _ in range(rng.randint(0, 16)))
        else:
            data = _hostile_bytes(rng, rng.choice(seeds))
        value, normal = _generic(type_string, data)
        fast = _dirtree_fast(type_string, data)
        if fast is not None:
            fast_hits += 1
            assert normal, data.hex()
            assert fast == value and type(fast) is type(value), data.hex()
        assert decode(type_string, data) == value, data.hex()
        assert is_normal(type_string, data) == normal, data.hex()
        assert decode_checked(type_string, data) == (value, normal), data.hex()
    assert fast_hits > 100


def _generic(type_string: str, data: bytes) -> Tuple[Any, bool]:
    node = parse_type(type_string)
    return decode_node(node, data), is_normal_node(node, data)


@pytest.mark.parametrize("type_string", [COMMIT, "a{sv}"])
def test_normal_form_decoders_agree_with_generic_on_hostile_bytes(type_string: str) -> None:
    """The one-pass decoders may answer only for normal bytes, and then with the generic
    value; decode, is_normal and decode_checked agree with the generic code everywhere."""
    rng = random.Random(type_string)
    seeds = commit_seeds(rng)
    fast_hits = 0
    for round_index in range(3000):
        if round_index < len(seeds):
            data = seeds[round_index]
        elif rng.random() < 0.15:
            data = bytes(rng.choice([0, 1, 2, 3, 8, 0x61, 0x62, 0x73, 0xff])
                         for _ in range(rng.randint(0, 24)))
        else:
            data = _hostile_bytes(rng, rng.choice(seeds))
        value, normal = _generic(type_string, data)
        if type_string == COMMIT:
            fast = commitpath.decode_commit_normal(data)
        else:
            fast = commitpath.decode_vardict_normal(data, 0, len(data), 0)
        if fast is not None:
            fast_hits += 1
            assert normal, data.hex()
            assert fast == value and type(fast) is type(value), data.hex()
        assert decode(type_string, data) == value, data.hex()
        assert is_normal(type_string, data) == normal, data.hex()
        assert decode_checked(type_string, data) == (value, normal), data.hex()
        assert decode_checked(type_string, bytearray(data)) == (value, normal)
    assert fast_hits > 100  # the fast path really answers for normal input


def test_every_generated_seed_is_read_by_the_fast_path() -> None:
    for data in commit_seeds(random.Random(1)):
        type_string = "a{sv}" if commitpath.decode_commit_normal(data) is None else COMMIT
        value, normal = _generic(type_string, data)
        assert normal and decode_checked(type_string, data) == (value, True)
        if type_string == "a{sv}":
            assert commitpath.decode_vardict_normal(data, 0, len(data), 0) == value


def test_decode_checked_matches_decode_and_is_normal_for_other_types() -> None:
    rng = random.Random(5)
    for type_string in ["(a(say)a(sayay))", "(uuua(ayay))", "v", "as", "(asas)", "a(asas)"]:
        node = parse_type(type_string)
        seeds = [encode(type_string, sample_value(node, rng)) for _ in range(4)] + [b""]
        for _ in range(300):
            data = _hostile_bytes(rng, rng.choice(seeds))
            assert decode_checked(type_string, data) == (decode(type_string, data),
                                                         is_normal(type_string, data))
    with pytest.raises(GVariantError):
        decode_checked("(", b"")
    with pytest.raises(TypeError):
        decode_checked(COMMIT, "not bytes")


metadata_dicts = st.dictionaries(names, variants | st.tuples(st.just("b"), st.booleans())
                                 | st.tuples(st.just("as"), st.lists(names, max_size=4)),
                                 max_size=6)


@settings(max_examples=300, deadline=None)
@given(metadata_dicts, checksums, file_lists, names, names, st.integers(0, 2**64 - 1))
def test_commit_encode_matches_generic(meta: Any, parent: bytes, related: Any, subject: str,
                                       body: str, timestamp: int) -> None:
    value = (meta, parent, related, subject, body, timestamp, b"\x01" * 32, b"\x02" * 32)
    data = encode(COMMIT, value)
    assert data == encode_node(parse_type(COMMIT), value)
    assert commitpath.encode_commit(value) == data
    assert decode_checked(COMMIT, data) == (value, True)
    assert commitpath.decode_commit_normal(data) == value


@pytest.mark.parametrize("value", [
    ({1: ("s", "a")}, b"", [], "", "", 0, b"", b""),
    ({"a": ("s", "a\x00")}, b"", [], "", "", 0, b"", b""),
    ({"a": ("as", ["\udc00"])}, b"", [], "", "", 0, b"", b""),
    ({"a": ("b", 2)}, b"", [], "", "", 0, b"", b""),
    ({}, "x", [], "", "", 0, b"", b""),
    ({}, b"", [("a",)], "", "", 0, b"", b""),
    ({}, b"", [], "a\x00", "", 0, b"", b""),
    ({}, b"", [], "", "\ud800", 0, b"", b""),
    ({}, b"", [], "", "", -1, b"", b""),
    ({}, b"", [], "", "", 2**64, b"", b""),
    ({}, b"", [], "", "", 0, b"", None),
    ({}, b"", [], "", "", 0, b""),
])
def test_commit_encoder_rejects_like_generic(value: Any) -> None:
    with pytest.raises(GVariantError):
        encode(COMMIT, value)
    with pytest.raises(GVariantError):
        encode_node(parse_type(COMMIT), value)


def test_commit_encoder_accepts_what_generic_accepts() -> None:
    """Values the fast encoder declines (lists, bytearrays, ints for b) still encode."""
    for value in [
        [{"a": ["s", "x"]}, bytearray(b"\x01"), (), "s", "b", True, memoryview(b"\x02"), b""],
        ({"a": ("b", 1), "z": ("as", ("x",))}, b"", [["n", b"\x01"]], "", "", 5, b"", b""),
    ]:
        assert encode(COMMIT, value) == encode_node(parse_type(COMMIT), value)


@pytest.mark.parametrize("sizes", [(1, 2, 3), (100, 100, 60), (250,) * 3, (20_000,) * 4,
                                   (70_000,), (70_000, 1, 2)])
def test_fast_encoders_across_offset_widths(sizes: Tuple[int, ...]) -> None:
    meta = {"k%d" % i: rng_value for i, rng_value in enumerate(
        [("s", "x" * n) for n in sizes] + [("as", ["y" * n for n in sizes])]
        + [("b", True)] * len(sizes))}
    for type_string, value in [("a{sv}", meta),
                               (COMMIT, (meta, b"", [], "s" * sizes[0], "", 1, b"", b""))]:
        data = encode(type_string, value)
        assert data == encode_node(parse_type(type_string), value)
        assert decode_checked(type_string, data) == (value, True)
