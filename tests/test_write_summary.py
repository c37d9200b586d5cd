"""``pyostree summary -u`` against ``ostree summary -u``: equal once decoded, timestamps aside."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from ostree_tool import needs_ostree, run_ostree
from pyostree import gvariant
from pyostree.cli.main import main as pyostree_main
from pyostree.repo import Repo
from pyostree.repo.summary import SUMMARY_TYPE, build_summary

pytestmark = needs_ostree

VOLATILE = {"ostree.summary.last-modified"}


def decode(path: Path) -> Any:
    return gvariant.decode(SUMMARY_TYPE, path.read_bytes())


def make_repo(tmp_path: Path, collection: Optional[str]) -> Path:
    repo = tmp_path / "base"
    extra = [f"--collection-id={collection}"] if collection else []
    run_ostree("init", "--mode=archive", *extra, repo=repo)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("x\n")
    for ref, stamp, version in (("b/main", "2020-01-01", "1.0"), ("a", "2021-02-03", None), ("B", "2020-05-05", "2")):
        args = ["commit", "-b", ref, f"--timestamp={stamp}", str(tree)]
        if version:
            args.append(f"--add-metadata-string=version={version}")
        run_ostree(*args, repo=repo)
    if collection:
        head = (repo / "refs/heads/a").read_text()
        for name in ("org.other.Main/app/stable", "org.aaa.First/x"):
            target = repo / "refs/mirrors" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(head)
    return repo


def summarise(capsys: pytest.CaptureFixture[str], repo: Path, *extra: str) -> None:
    assert pyostree_main(["summary", "-u", f"--repo={repo}", *extra]) == 0, capsys.readouterr().err


def without_volatile(meta: Dict[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in meta.items() if key not in VOLATILE}


@pytest.mark.parametrize("collection", [None, "org.example.Own"])
def test_summary_matches_ostree(tmp_path: Path, capsys: pytest.CaptureFixture[str], collection: Optional[str]) -> None:
    base = make_repo(tmp_path, collection)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    shutil.copytree(base, ours, symlinks=True)
    shutil.copytree(base, theirs, symlinks=True)
    (ours / "summary.sig").write_bytes(b"stale")
    summarise(capsys, ours, "-m", "foo='bar'", "-m", "num=uint32 3")
    run_ostree("summary", "-u", "-m", "foo='bar'", "-m", "num=uint32 3", repo=theirs)
    assert not (ours / "summary.sig").exists()
    our_refs, our_meta = decode(ours / "summary")
    their_refs, their_meta = decode(theirs / "summary")
    assert [name for name, _ in our_refs] == [name for name, _ in their_refs]
    for (name, mine), (_name, real) in zip(our_refs, their_refs):
        if name == "ostree-metadata":  # a fresh commit each time: only its size is stable
            assert mine[0] == real[0]
            continue
        assert mine == real
    assert without_volatile(our_meta) == without_volatile(their_meta)
    stamp = struct.unpack(">Q", struct.pack("<Q", our_meta["ostree.summary.last-modified"][1]))[0]
    assert stamp > 1_600_000_000
    if collection:
        assert "ostree.summary.collection-map" in our_meta
        run_ostree("fsck", repo=ours)


def test_summary_sizes_are_little_endian(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, None)
    refs, _meta = gvariant.decode(SUMMARY_TYPE, build_summary(Repo.open(repo), now=0))
    for name, (size, raw, _meta2) in refs:
        assert size == (repo / "objects" / raw.hex()[:2] / f"{raw.hex()[2:]}.commit").stat().st_size


def test_summary_rejects_bad_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path, None)
    assert pyostree_main(["summary", "-u", f"--repo={repo}", "-m", "foo=bar"]) == 1
    assert "cannot parse GVariant text" in capsys.readouterr().err
    assert not (repo / "summary").exists()
