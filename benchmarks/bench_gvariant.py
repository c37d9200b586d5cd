"""pyostree.gvariant against GLib's C validation pass over the same bytes.

Workloads: a dirtree ``(a(say)a(sayay))`` of 10,000 files and 1,000 dirs (sorted names,
32-byte checksums) and a commit ``(a{sv}aya(say)sstayay)`` with six metadata keys.
The peer is ``GLib.Variant.new_from_bytes(..., trusted=False).is_normal_form()`` in a system
``python3`` subprocess that times itself. Goals: decode <= 2x that pass, encode <= 1x.
``checked`` is ``decode_checked`` (value and is_normal together), what a verified object load
costs; without it a load pays decode + is_normal.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile
import timeit
from typing import Any, Callable, Dict, Optional

from pyostree.gvariant import decode, decode_checked, encode, is_normal

DIRTREE = "(a(say)a(sayay))"
COMMIT = "(a{sv}aya(say)sstayay)"
SYSTEM_PYTHON = "/usr/bin/python3"

GLIB_TIMER = r"""
import json, sys, timeit
from gi.repository import GLib
out = {}
for name, type_string, path in json.loads(sys.argv[1]):
    data = GLib.Bytes(open(path, "rb").read())
    vtype = GLib.VariantType(type_string)
    def run():
        assert GLib.Variant.new_from_bytes(vtype, data, False).is_normal_form()
    number = 20 if len(data.get_data()) > 100000 else 5000
    out[name] = min(timeit.repeat(run, number=number, repeat=5)) / number
print(json.dumps(out))
"""


def digest(seed: str) -> bytes:
    return hashlib.sha256(seed.encode()).digest()


def dirtree_value() -> Any:
    files = [("file-%05d.txt" % i, digest("f%d" % i)) for i in range(10_000)]
    dirs = [("dir-%04d" % i, digest("t%d" % i), digest("m%d" % i)) for i in range(1_000)]
    return (sorted(files), sorted(dirs))


def commit_value() -> Any:
    metadata = {
        "version": ("s", "41.20240101.0"),
        "ostree.ref-binding": ("as", ["fedora/x86_64/silverblue"]),
        "ostree.collection-binding": ("s", "org.example.Os"),
        "rpmostree.inputhash": ("s", digest("in").hex()),
        "ostree.bootable": ("b", True),
        "ostree.linux": ("s", "6.6.8-200.fc39.x86_64"),
    }
    return (metadata, digest("parent"), [], "Release 41", "", 0x257D936500000000,
            digest("tree"), digest("meta"))


def best(fn: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def glib_times(workloads: Dict[str, tuple[str, bytes]]) -> Optional[Dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for name, (type_string, data) in workloads.items():
            path = pathlib.Path(tmp) / name
            path.write_bytes(data)
            jobs.append((name, type_string, str(path)))
        try:
            done = subprocess.run([SYSTEM_PYTHON, "-c", GLIB_TIMER, json.dumps(jobs)],
                                  capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError) as err:
            print(f"GLib peer unavailable: {err}", file=sys.stderr)
            return None
    result: Dict[str, float] = json.loads(done.stdout)
    return result


def fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return "%.2f ms" % (seconds * 1e3)
    return "%.1f us" % (seconds * 1e6)


def main() -> int:
    values = {"dirtree": (DIRTREE, dirtree_value()), "commit": (COMMIT, commit_value())}
    workloads = {name: (t, encode(t, v)) for name, (t, v) in values.items()}
    for name, (type_string, value) in values.items():
        assert decode(type_string, workloads[name][1]) == value
        assert decode_checked(type_string, workloads[name][1]) == (value, True)
    peer = glib_times(workloads)
    print("%-8s %9s | %10s %10s %10s %10s | %11s | %7s %7s %7s" % (
        "workload", "bytes", "encode", "decode", "is_normal", "checked", "GLib C pass",
        "enc/C", "dec/C", "chk/C"))
    for name, (type_string, value) in values.items():
        data = workloads[name][1]
        number = 10 if len(data) > 100_000 else 2000
        t_enc = best(lambda: encode(type_string, value), number)
        t_dec = best(lambda: decode(type_string, data), number)
        t_norm = best(lambda: is_normal(type_string, data), number)
        t_chk = best(lambda: decode_checked(type_string, data), number)
        c_pass = peer.get(name) if peer else None
        ratios = ("%6.2fx %6.2fx %6.2fx" % (t_enc / c_pass, t_dec / c_pass, t_chk / c_pass)
                  if c_pass else "    n/a     n/a     n/a")
        print("%-8s %9d | %10s %10s %10s %10s | %11s | %s" % (
            name, len(data), fmt(t_enc), fmt(t_dec), fmt(t_norm), fmt(t_chk),
            fmt(c_pass) if c_pass else "n/a", ratios))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
