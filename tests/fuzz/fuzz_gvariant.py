"""Long-running GVariant/objects fuzzer (not collected by pytest).

    .venv/bin/python tests/fuzz/fuzz_gvariant.py --seconds 600            # atheris if installed
    .venv/bin/python tests/fuzz/fuzz_gvariant.py --seconds 60 --engine random --glib

Each input is checked with the same properties as tests/test_hostile_gvariant.py
(``hostile.check``: decode/is_normal total, normal form a fixed point, object parsers raise
only ObjectError). The random engine uses the structure-aware mutators of tests/hostile.py;
``--glib`` also compares every input with GLib in batches (system python3 with gi).
Failing inputs are written to ``--out`` (default ./fuzz-failures) as ``TYPE HEX`` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import List, Tuple

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

import hostile  # noqa: E402


class Failures:
    """Collects failing inputs on disk, one line each, and counts them."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.count = 0

    def record(self, type_string: str, data: bytes, why: str) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "failures.txt", "a") as handle:
            handle.write(f"{type_string} {data.hex()} # {why.splitlines()[-1][:200]}\n")
        self.count += 1


def run_check(failures: Failures, type_string: str, data: bytes) -> None:
    try:
        hostile.check(type_string, data)
    except Exception:  # noqa: BLE001 -- anything at all is a finding
        failures.record(type_string, data, traceback.format_exc())


def glib_batch(failures: Failures, cases: List[Tuple[str, bytes]]) -> None:
    """Compare a batch with GLib through tests/glib_oracle.py."""
    from pyostree.gvariant import decode, is_normal
    from test_gvariant_glib import ask_glib, same, untag

    for (type_string, data), answer in zip(cases, ask_glib(cases)):
        if not same(decode(type_string, data), untag(answer["value"])):
            failures.record(type_string, data, "decode differs from GLib")
        elif is_normal(type_string, data) != answer["normal"]:
            failures.record(type_string, data, "is_normal differs from GLib")


def random_engine(args: argparse.Namespace, failures: Failures) -> int:
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds
    done = 0
    batch: List[Tuple[str, bytes]] = []
    while time.monotonic() < deadline:
        seeds = hostile.seed_values(rng)
        for _ in range(50):
            type_string = rng.choice(hostile.OSTREE_TYPES)
            if rng.random() < 0.05:
                data = rng.randbytes(rng.randrange(64))
            else:
                data = hostile.mutate(rng, type_string, seeds[type_string], seeds[rng.choice(hostile.OSTREE_TYPES)])
            run_check(failures, type_string, data)
            done += 1
            if args.glib:
                batch.append((type_string, data))
        if args.glib and len(batch) >= 2000:
            glib_batch(failures, batch)
            batch = []
    if args.glib and batch:
        glib_batch(failures, batch)
    return done


def atheris_engine(args: argparse.Namespace, failures: Failures) -> int:
    import atheris  # type: ignore[import-not-found]

    atheris.instrument_all()  # coverage feedback from pyostree (already imported via hostile)
    types = hostile.OSTREE_TYPES
    corpus = Path(args.out) / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    for index in range(20):  # seed corpus: valid objects of every type
        for k, (type_string, data) in enumerate(hostile.seed_values(rng).items()):
            (corpus / f"seed-{index}-{k}").write_bytes(bytes([types.index(type_string)]) + data)
    count = [0]

    def one_input(raw: bytes) -> None:
        if not raw:
            return
        type_string = types[raw[0] % len(types)]
        count[0] += 1
        hostile.check(type_string, raw[1:])  # an exception here is a crash atheris reports

    atheris.Setup([sys.argv[0], f"-max_total_time={args.seconds}", f"-seed={args.seed}",
                   f"-artifact_prefix={args.out}/", "-rss_limit_mb=2048", str(corpus)], one_input)
    atheris.Fuzz()
    return count[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--glib", action="store_true", help="compare with GLib too (random engine)")
    parser.add_argument("--out", default="fuzz-failures")
    args = parser.parse_args()
    failures = Failures(Path(args.out))
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # type: ignore[import-not-found]  # noqa: F401
            engine = "random" if args.glib else "atheris"
        except ImportError:
            engine = "random"
    started = time.monotonic()
    if engine == "atheris":
        # libFuzzer exits the process itself when the time is up or on a crash
        atheris_engine(args, failures)
        return 0
    inputs = random_engine(args, failures)
    print(json.dumps({"engine": engine, "seed": args.seed, "inputs": inputs, "failures": failures.count,
                      "seconds": round(time.monotonic() - started, 1)}))
    return 1 if failures.count else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
