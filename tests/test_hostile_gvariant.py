"""Hostile GVariant input for every OSTree type: mutated seeds, adversarial framing tables,
deep nesting and huge claimed sizes. Nothing but documented errors may escape:
``gvariant.decode``/``is_normal`` never raise on data, ``objects.*.from_bytes`` raise only
``ObjectError``; the big stress cases run in a child with capped memory and a timeout.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import struct
import subprocess
from typing import Any, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hostile
from hostile import COMMIT_T, DIRTREE_T, METADICT_T, OSTREE_TYPES
from pyostree.errors import ObjectError
from pyostree.gvariant import GVariantError, decode, encode, is_normal
from pyostree.objects import (
    Commit, DirTree, FileEntry, FileHeader, parse_archive_header, parse_content_header,
)

HYPO = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
check = hostile.check
check_gvariant = hostile.check_gvariant


# ---------------------------------------------------------------------------- hypothesis

ostree_types = st.sampled_from(OSTREE_TYPES)


@HYPO
@given(ostree_types, st.integers(0, 2**32 - 1))
def test_mutated_seeds(type_string: str, seed: int) -> None:
    rng = random.Random(seed)
    seeds = hostile.seed_values(rng)
    other = seeds[rng.choice(OSTREE_TYPES)]
    data = seeds[type_string]
    check(type_string, data)  # the seed itself must parse cleanly
    for _ in range(4):
        data = hostile.mutate(rng, type_string, seeds[type_string], other)
        check(type_string, data)


@HYPO
@given(ostree_types, st.binary(max_size=512))
def test_random_bytes(type_string: str, data: bytes) -> None:
    check(type_string, data)


@HYPO
@given(ostree_types, st.integers(0, 2**32 - 1), st.data())
def test_hypothesis_chosen_table_entries(type_string: str, seed: int, draw: st.DataObject) -> None:
    """Hypothesis picks the table and the values itself (so it can shrink them)."""
    data = hostile.seed_values(random.Random(seed))[type_string]
    tables = hostile.framing_tables(type_string, data)
    if not tables:
        check(type_string, data)
        return
    table_start, end, width = draw.draw(st.sampled_from(tables))
    buf = bytearray(data)
    count = (end - table_start) // width
    for _ in range(draw.draw(st.integers(1, 3))):
        k = draw.draw(st.integers(0, count - 1))
        value = draw.draw(st.integers(0, (1 << (8 * width)) - 1))
        pos = end - (k + 1) * width
        buf[pos:pos + width] = value.to_bytes(width, "little")
    check(type_string, bytes(buf))


# ---------------------------------------------------------------------------- exhaustive tables


def test_every_table_entry_gets_every_adversarial_value() -> None:
    """For three seeds of each type: each entry of each framing table, one at a time, set to
    0, 1, just inside/outside the body and the table, the width's maximum."""
    rng = random.Random(5)
    cases = 0
    for _ in range(3):
        seeds = hostile.seed_values(rng)
        for type_string, data in seeds.items():
            for table_start, end, width in hostile.framing_tables(type_string, data):
                for k in range((end - table_start) // width):
                    pos = end - (k + 1) * width
                    for value in hostile.adversarial_offsets(rng, table_start, end, width, len(data)):
                        buf = bytearray(data)
                        buf[pos:pos + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
                        check(type_string, bytes(buf))
                        cases += 1
    assert cases > 1000  # the walker really found nested tables


def test_framing_walker_finds_nested_tables() -> None:
    """The corpus walker is itself checked: a dirtree with 2 files and 1 dir has the tuple's
    table, both arrays' tables and one table per (say)/(sayay) element."""
    seeds = hostile.seed_values(random.Random(0))
    tree = DirTree.from_bytes(seeds[DIRTREE_T])
    tables = hostile.framing_tables(DIRTREE_T, seeds[DIRTREE_T])
    expected = 1 + (1 if tree.files else 0) + (1 if tree.dirs else 0) + len(tree.files) + len(tree.dirs)
    assert len(tables) == expected


# ---------------------------------------------------------------------------- GLib differential


def _glib_ready() -> bool:
    if not shutil.which("/usr/bin/python3"):
        return False
    return subprocess.run(["/usr/bin/python3", "-c", "from gi.repository import GLib"],
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not _glib_ready(), reason="system python3 with gi missing")
def test_structure_aware_mutations_match_glib() -> None:
    """The adversarial-table corpus decodes exactly as GLib decodes it, is_normal included."""
    from test_gvariant_glib import check_cases

    cases = hostile.mutated_corpus(20261125, 2100)
    check_cases(cases, [None] * len(cases))


# ---------------------------------------------------------------------------- nesting


#: (type string of nesting n, the largest n GLib 2.74 accepts: checked with
#: GLib.VariantType.string_is_valid). "()" itself costs no nesting level.
NESTINGS = [
    (hostile.nested_type, 128),
    (lambda n: "a" * n + "y", 128),
    (lambda n: "(" * n + ")" * n, 129),
]


@pytest.mark.parametrize("levels", [126, 127, 128, 129, 130, 200, 5000])
def test_type_strings_at_and_beyond_the_budget(levels: int) -> None:
    """A static type deeper than GLib's budget is a GVariantError (a bad type string, not
    data); inside a variant it is simply the unit. Never a RecursionError."""
    for build, limit in NESTINGS:
        type_string = build(levels)
        try:
            value = decode(type_string, b"\x01\x02\x03\x00")
        except GVariantError:
            assert levels > limit, type_string[:20]
        else:
            assert levels <= limit, type_string[:20]
            check_gvariant(type_string, b"\x01\x02\x03\x00")
            assert value is not None
        inside = b"\x00" + type_string.encode()
        variant = decode("v", inside)
        if levels > limit:
            assert variant == ("()", ())
        for ostree_type in (METADICT_T, COMMIT_T):
            _check_metadata_with_variant(ostree_type, inside)


def _check_metadata_with_variant(type_string: str, variant_bytes: bytes) -> None:
    """Put raw variant bytes under key ``k`` of an a{sv} (alone or as a commit's metadata)."""
    entry = b"k\x00" + bytes(6) + variant_bytes
    width = 1 if len(entry) + 2 < 0x100 else 2 if len(entry) + 4 < 0x10000 else 4
    entry += (2).to_bytes(width, "little")
    metadict = entry + len(entry).to_bytes(width, "little")
    if type_string == METADICT_T:
        check(METADICT_T, metadict)
        return
    seed = Commit({}, None, (), "s", "", 1, "11" * 32, "22" * 32).to_bytes()
    value = list(decode(COMMIT_T, seed))
    value[0] = decode(METADICT_T, metadict)
    check(COMMIT_T, encode(COMMIT_T, tuple(value)))


def test_300_nested_variants_in_every_metadata_slot() -> None:
    nested = hostile.nested_variants(300)
    value = decode("v", nested)
    depth = 0
    while value[0] == "v":
        value, depth = value[1], depth + 1
    assert depth == 127 and value == ("()", ())
    _check_metadata_with_variant(METADICT_T, nested)
    _check_metadata_with_variant(COMMIT_T, nested)
    # and as raw, non-normal garbage appended to every type
    for type_string in OSTREE_TYPES:
        check(type_string, nested)


def test_nested_variants_under_the_limit_are_refused_by_is_normal_only_at_the_limit() -> None:
    for levels, normal in ((126, True), (127, False), (128, False)):
        data = hostile.nested_variants(levels)
        assert is_normal("v", data) is normal, levels


# ---------------------------------------------------------------------------- claimed sizes


def test_claimed_sizes_past_the_data() -> None:
    """Offsets, header lengths and payload sizes that claim far more than is there."""
    for type_string in OSTREE_TYPES:
        for tail in (b"\xff", b"\xff\xff", b"\xff\xff\xff\xff", b"\xfe" * 8):
            check(type_string, b"\x00" * 40 + tail)
            check(type_string, tail)
    # archive header claiming an exabyte of payload: parsed, the size is only reported
    header = FileHeader(0, 0, 0o100644)
    raw = header.to_archive_bytes(2**64 - 1)
    parsed, size = parse_archive_header(io.BytesIO(raw).read)
    assert size == 2**64 - 1 and parsed == header
    # a framed header whose length prefix claims 4 GiB or 0: refused before reading it
    for prefix in (struct.pack(">I4x", 0xFFFFFFFF), struct.pack(">I4x", 0), struct.pack(">I4x", (1 << 20) + 1)):
        for reader in (parse_content_header, parse_archive_header):
            with pytest.raises(ObjectError):
                reader(io.BytesIO(prefix + b"\x00" * 64).read)
    # a prefix claiming more than is there: truncated, not a hang
    with pytest.raises(ObjectError, match="truncated"):
        parse_content_header(io.BytesIO(struct.pack(">I4x", 500) + b"\x00" * 64).read)


# ---------------------------------------------------------------------------- guarded stress

STRESS = r"""
import json, struct, sys, time
from pyostree.errors import ObjectError
from pyostree.gvariant import decode, is_normal
from pyostree.objects import Commit, CommitMeta, DirMeta, DirTree, FileHeader, MAX_METADATA_SIZE
case = sys.argv[1]
t0 = time.monotonic()
def parse_all(data):
    out = []
    for parse in (Commit.from_bytes, DirTree.from_bytes, DirMeta.from_bytes, CommitMeta.from_bytes,
                  FileHeader.from_bytes):
        for verify in (True, False):
            try:
                parse(data, verify=verify)
                out.append("ok")
            except ObjectError as err:
                out.append("ObjectError")
    return out
if case == "over-limit":
    data = bytearray(MAX_METADATA_SIZE + 1)
    result = parse_all(data)
elif case == "huge-fixed-type-in-variant":
    data = b"\x01" * 64 + b"\x00(" + b"t" * 1_000_000 + b")"
    result = [repr(decode("v", data))[:40], is_normal("v", data)] + parse_all(data)
elif case == "default-blowup":
    inner = "(" + "as" * 2000 + ")"
    entry = b"\x00" + inner.encode()
    count = 4000
    data = entry * count + struct.pack("<%dI" % count, *[len(entry) * (i + 1) for i in range(count)])
    meta = b"k\x00" + bytes(6) + data
    value = decode("av", data)
    result = [len(value), is_normal("av", data)] + parse_all(data)
elif case == "wide-tables":
    # 2 MiB of zero offsets: every element of every array is a shared default
    data = bytes(2 << 20)
    result = [len(decode("a(say)", data)), len(decode("a{sv}", data))] + parse_all(data)
elif case == "deep-variants-many":
    one = b"\x2a\x00y" + b"\x00v" * 300
    count = 2000
    ends = [len(one) * (i + 1) for i in range(count)]
    data = one * count + struct.pack("<%dI" % count, *ends)
    result = [len(decode("av", data)), is_normal("av", data)] + parse_all(data)
elif case == "garbage-16m":
    import random
    data = random.Random(1).randbytes(16 << 20)
    result = parse_all(data) + [is_normal("a{sv}", data)]
import resource
print(json.dumps({"result": result, "seconds": time.monotonic() - t0,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


#: case -> address-space cap in MiB (the over-limit case holds a 128 MiB buffer itself).
STRESS_CAPS = {
    "over-limit": 448,
    "default-blowup": 256,
    "wide-tables": 256,
    "deep-variants-many": 256,
    "garbage-16m": 256,
}


def _run_stress(case: str, memory_mb: int) -> List[Any]:
    done = hostile.run_guarded(STRESS, memory_mb=memory_mb, timeout=90, args=[case])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    result: List[Any] = json.loads(done.stdout)["result"]
    return result


@pytest.mark.parametrize("case", sorted(STRESS_CAPS))
def test_stress_in_a_memory_capped_child(case: str) -> None:
    result = _run_stress(case, STRESS_CAPS[case])
    outcomes = [r for r in result if r in ("ok", "ObjectError")]
    assert len(outcomes) == 10  # every parser answered, with a value or an ObjectError
    if case in ("over-limit", "garbage-16m"):
        assert outcomes[::2] == ["ObjectError"] * 5  # verify=True refuses all of them


def test_huge_tuple_type_in_a_variant_is_cheap() -> None:
    """A 1 MB variant naming a 1,000,000-member tuple type must decode (to the unit) within
    256 MiB, as GLib does in ~30 MiB."""
    result = _run_stress("huge-fixed-type-in-variant", 256)
    assert result[0].startswith("('()', ())")


def test_wide_variant_type_over_a_short_body_is_refused_without_a_codec(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Commit metadata holding a variant of a 1M-member tuple type over a body too short
    for any normal value of it is refused by the size rule (TypeNode.min_size): no
    checker or decoder is compiled for the wide type, so it costs one parse of it."""
    from pyostree.gvariant import decoder, normal

    compiled: List[int] = []
    for module in (decoder, normal):
        def counting(node: Any, real: Any = module._compile) -> Any:
            compiled.append(node.length)
            return real(node)
        monkeypatch.setattr(module, "_compile", counting)
    members = 1_000_000
    wide_y = "(" + "y" * members + ")"
    meta = {"x": (wide_y, tuple([0] * members))}
    seeds = {
        METADICT_T: encode(METADICT_T, meta),
        COMMIT_T: encode(COMMIT_T, (meta, b"", [], "s", "b", 0, b"\1" * 32, b"\2" * 32)),
    }
    for kind in "svg":
        wide = "(" + kind * members + ")"  # as long, but each member needs a byte or two
        for type_string, data in seeds.items():
            swapped = data.replace(wide_y.encode(), wide.encode())
            with pytest.raises(ObjectError, match="not normal form"):
                if type_string == COMMIT_T:
                    Commit.from_bytes(swapped, verify=True)
                else:
                    _metadict(swapped)
    assert all(length < 100 for length in compiled), max(compiled)


def _metadict(data: bytes) -> None:
    from pyostree.objects._common import decode_metadata

    decode_metadata(METADICT_T, data, verify=True, what="commitmeta")


def test_one_pass_dirtree_check_agrees_with_from_bytes() -> None:
    """The receiver's one-pass dirtree check (no object per entry) accepts exactly what
    ``DirTree.from_bytes(verify=True)`` accepts, on seeds and 20,000 hostile mutations;
    above 1 MiB its own refusal is the error."""
    from test_gvariant_fastpaths import _hostile_bytes, dirtree_seeds

    from pyostree.objects.dirtree import _check_one_pass, _Refused, validate_dirtree_bytes

    rng = random.Random(5)
    seeds = dirtree_seeds(rng)[0::3]  # the whole dirtrees, not their lists
    accepted = 0
    for index in range(20000):
        data = seeds[index] if index < len(seeds) else _hostile_bytes(rng, rng.choice(seeds))
        try:
            DirTree.from_bytes(data, verify=True)
            valid = True
        except ObjectError:
            valid = False
        try:
            _check_one_pass(data)
            passed = True
        except _Refused:
            passed = False
        assert passed == valid or (valid and data == b""), data.hex()  # b"": GLib's quirk
        accepted += valid
        if not valid:
            with pytest.raises(ObjectError):
                validate_dirtree_bytes(data)
    assert accepted > 500
    big = DirTree.from_entries([FileEntry(f"f{i:07d}", "ab" * 32) for i in range(40000)])
    data = big.to_bytes()
    assert len(data) > 1 << 20
    validate_dirtree_bytes(data)
    unsorted = data.replace(b"f0000001\0", b"f0000000\0", 1)
    with pytest.raises(ObjectError, match="f0000000' is repeated"):
        validate_dirtree_bytes(unsorted)
