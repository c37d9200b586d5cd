"""``pyostree summary -u``: regenerate the repository summary; ``--view``/``--raw`` print it."""

from __future__ import annotations

import argparse
from typing import Any, List

from pyostree.cli.common import add_signing_arguments, open_repo
from pyostree.errors import PyOstreeError

NAME = "summary"
SUMMARY = "Manage summary metadata"


class SummaryUsageError(PyOstreeError):
    """Only ``--update`` is implemented."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-u", "--update", action="store_true", help="update the summary")
    parser.add_argument("-v", "--view", action="store_true", help="View the local summary file")
    parser.add_argument("--raw", action="store_true", help="View the raw bytes of the summary file")
    parser.add_argument("-m", "--add-metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="additional metadata (GVariant text)")
    add_signing_arguments(parser, "summary")


def run(args: argparse.Namespace) -> int:
    from pyostree.repo.summary import parse_extra
    from pyostree.repo.summaryupdate import update_summary

    if not args.update:
        if args.view or args.raw:
            _view(args)
            return 0
        raise SummaryUsageError("summary: only --update, --view and --raw are supported")
    extra = parse_extra([])
    if args.add_metadata:  # commitwrite brings the writing machinery: only when needed
        from pyostree.repo.commitwrite import split_key_value

        extra = parse_extra([split_key_value(text, "--add-metadata") for text in args.add_metadata])
    repo = open_repo(args)
    if not (args.gpg_sign or args.sign):
        update_summary(repo, extra=extra)
        return 0
    from pyostree.sign.commitmeta import sign_commit, summary_signer
    from pyostree.sign.options import make_signers

    signers = make_signers(sign_keys=args.sign, sign_type=args.sign_type,
                           gpg_keys=args.gpg_sign, gpg_homedir=args.gpg_homedir, wait=False)

    def sign_metadata_commit(txn: object, checksum: str, data: bytes) -> None:
        sign_commit(repo, checksum, signers, commit_bytes=data, txn=txn)

    update_summary(repo, extra=extra, sign=summary_signer(signers), sign_commit=sign_metadata_commit)
    return 0


SUMMARY_TYPE = "(a(s(taya{sv}))a{sv})"
#: ot-dump's names for the summary's own keys; others print as ``KEY: VALUE``.
_SUMMARY_KEYS = {
    "ostree.summary.mode": "Repository Mode", "ostree.summary.last-modified": "Last-Modified",
    "ostree.summary.expires": "Expiry", "ostree.summary.tombstone-commits": "Has Tombstone Commits",
    "ostree.summary.collection-id": "Collection ID", "ostree.static-deltas": "Static Deltas",
}
_MAX_SUMMARY = 256 << 20


def _timestamp(seconds: int) -> str:
    """``g_date_time_format(local time, "%FT%T%:::z")``: the offset in hours, minutes if any."""
    import time

    moment = time.localtime(seconds)
    offset = moment.tm_gmtoff or 0
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    zone = f"{sign}{hours:02d}" + (f":{minutes:02d}" if minutes else "")
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + zone


def _be64(value: int) -> int:
    return int.from_bytes(value.to_bytes(8, "little"), "big")


def _ref_lines(collection: object, name: str, entry: Any) -> List[str]:
    from pyostree.cli.common import format_variant
    from pyostree.cli.prune import format_size

    size, checksum, meta = entry
    title = name if collection is None else f"({collection}, {name})"
    lines = [f"* {title}", f"    Latest Commit ({format_size(size)}):", f"      {bytes(checksum).hex()}"]
    for key, (type_string, value) in meta.items():
        if key == "ostree.commit.timestamp" and type_string == "t":
            lines.append(f"    Timestamp ({key}): {_timestamp(_be64(value))}")
        elif key == "ostree.commit.version" and type_string == "s":
            lines.append(f"    Version ({key}): {value}")
        else:
            lines.append(f"    {key}: {format_variant(type_string, value, False)}")
    return lines + [""]


def _view(args: argparse.Namespace) -> None:
    import os
    import sys

    from pyostree.cli.common import format_variant
    from pyostree.gvariant.api import decode

    repo = open_repo(args)
    try:
        with open(os.path.join(repo.path, "summary"), "rb") as handle:
            data = handle.read(_MAX_SUMMARY + 1)
    except FileNotFoundError:
        raise PyOstreeError("openat(summary): No such file or directory") from None
    if len(data) > _MAX_SUMMARY:
        raise PyOstreeError("summary file is too large")
    summary = decode(SUMMARY_TYPE, data)
    if args.raw:
        sys.stdout.write(format_variant(SUMMARY_TYPE, summary, True, byteswap=True) + "\n")
        return
    refs, meta = summary
    collection_id = None
    if "ostree.summary.collection-id" in meta:
        collection_id = meta["ostree.summary.collection-id"][1]
    lines: List[str] = []
    for name, entry in refs:
        lines += _ref_lines(collection_id, name, entry)
    collection_map = meta.get("ostree.summary.collection-map", ("", {}))[1]
    for collection, collection_refs in collection_map.items():
        for name, entry in collection_refs:
            lines += _ref_lines(collection, name, entry)
    for key, (type_string, value) in meta.items():
        if key == "ostree.summary.collection-map":
            continue
        pretty = _SUMMARY_KEYS.get(key)
        if key in ("ostree.summary.last-modified", "ostree.summary.expires") and type_string == "t":
            text = _timestamp(_be64(value))
        elif key == "ostree.summary.tombstone-commits" and type_string == "b":
            text = "Yes" if value else "No"
        elif type_string == "s" and key in ("ostree.summary.mode", "ostree.summary.collection-id"):
            text = value
        else:
            text = format_variant(type_string, value, False)
        lines.append(f"{pretty} ({key}): {text}" if pretty else f"{key}: {text}")
    sys.stdout.write("".join(line + "\n" for line in lines))
