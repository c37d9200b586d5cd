"""The command-line frame: discovery, --repo/OSTREE_REPO, error mapping, exit codes."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import pytest

import pyostree
from ostree_tool import MAIN_REF, SampleRepo, needs_ostree
from pyostree.cli import main as cli_main
from pyostree.cli.common import format_variant
from pyostree.cli.main import command_names, load_command, main

OWN_COMMANDS = ("refs", "rev-parse", "log", "show", "ls", "cat", "checkout", "fsck")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_commands_are_discovered() -> None:
    names = command_names()
    for name in OWN_COMMANDS:
        assert name in names and names[name]
        module = load_command(name)
        assert module is not None and module.NAME == name
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)


@pytest.mark.parametrize("name", ["main", "common", "rev_parse", "../x", "", "nope", "Refs"])
def test_only_real_commands_load(name: str) -> None:
    assert load_command(name) is None


def test_no_command_prints_usage_and_command_list(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys)
    assert status == 1 and out == ""
    assert err.startswith("usage: pyostree")
    for name in OWN_COMMANDS:
        assert f"\n  {name} " in err
    status, out, err = run(capsys, "--help")
    assert status == 0 and out.startswith("usage: pyostree") and err == ""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"pyostree {pyostree.__version__}\n", "")


def test_unknown_command_and_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "frobnicate")
    assert status == 1 and err.endswith("error: Unknown command 'frobnicate'\n")
    status, out, err = run(capsys, "refs", "--no-such-option", "--repo=.")
    assert status == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


def test_repo_is_required(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OSTREE_REPO", raising=False)
    assert run(capsys, "refs") == (1, "", "error: Command requires a --repo argument\n")


def test_missing_repo_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for args in (("refs",), ("log", "x"), ("ls", "x"), ("fsck",), ("checkout", "x", "y")):
        status, out, err = run(capsys, *args, f"--repo={tmp_path / 'none'}")
        assert status == 1 and out == ""
        assert err.startswith("error: ") and err.count("\n") == 1


@needs_ostree
def test_repo_before_or_after_command_and_from_env(capsys: pytest.CaptureFixture[str],
                                                   ostree_repos: Dict[str, SampleRepo],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    sample = ostree_repos["archive"]
    want = f"{sample.refs[MAIN_REF]}\n"
    assert run(capsys, f"--repo={sample.path}", "rev-parse", MAIN_REF) == (0, want, "")
    assert run(capsys, "--repo", str(sample.path), "rev-parse", MAIN_REF) == (0, want, "")
    assert run(capsys, "rev-parse", MAIN_REF, "--repo", str(sample.path)) == (0, want, "")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OSTREE_REPO", str(sample.path))
    assert run(capsys, "rev-parse", MAIN_REF) == (0, want, "")
    # Like ostree, a repository in the working directory wins over $OSTREE_REPO.
    monkeypatch.chdir(ostree_repos["bare"].path)
    assert run(capsys, "rev-parse", MAIN_REF) == (0, f"{ostree_repos['bare'].refs[MAIN_REF]}\n", "")


@needs_ostree
def test_corrupt_commit_is_one_line_error(capsys: pytest.CaptureFixture[str],
                                          ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> None:
    from ostree_tool import copy_repo

    sample = ostree_repos["archive"]
    repo = copy_repo(sample.path, tmp_path / "repo")
    head = sample.refs[MAIN_REF]
    (repo / "objects" / head[:2] / f"{head[2:]}.commit").write_bytes(b"\x01" * 3)
    for args in (("log", MAIN_REF), ("ls", MAIN_REF), ("show", MAIN_REF)):
        status, out, err = run(capsys, *args, f"--repo={repo}")
        assert status == 1, args
        assert err.startswith("error: ") and err.count("\n") == 1


def test_keyboard_interrupt_exits_130_quietly(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_command("refs")
    assert module is not None

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "run", interrupted)
    assert run(capsys, "refs", "--repo=.") == (130, "", "")


def test_os_errors_become_one_line(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_command("refs")
    assert module is not None

    def failing(args: argparse.Namespace) -> int:
        raise PermissionError(13, "Permission denied", "/some/file")

    monkeypatch.setattr(module, "run", failing)
    assert run(capsys, "refs", "--repo=.") == (1, "", "error: Permission denied: /some/file\n")


@needs_ostree
def test_broken_pipe_is_quiet(ostree_repos: Dict[str, SampleRepo]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pyostree", "cat",
                             f"--repo={ostree_repos['bare'].path}", MAIN_REF, "/big.bin"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(10)) == 10
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == cli_main.BROKEN_PIPE_STATUS
    assert err == b""


@pytest.mark.parametrize("type_string,value,expected", [
    ("a(ayay)", [], "@a(ayay) []"),
    ("a(ayay)", [(b"user.a\0", b"A1"), (b"user.b\0", b"x\0")],
     "[(b'user.a', [byte 0x41, 0x31]), (b'user.b', b'x')]"),
    ("ay", b"a'b\0", 'b"a\'b"'),
    ("ay", b"\x01\xc3\0", "b'\\001\\303'"),
    ("as", ["x", "y"], "['x', 'y']"),
    ("s", "it's", '"it\'s"'),
    ("s", "tab\tnl\n", "'tab\\tnl\\n'"),
    ("u", 5, "uint32 5"),
    ("t", 7, "uint64 7"),
    ("a{sv}", {"a": ("s", "x"), "b": ("u", 1)}, "{'a': <'x'>, 'b': <uint32 1>}"),
    ("a{sv}", {}, "@a{sv} {}"),
    ("aay", [b"ab", b"c\0"], "[[byte 0x61, 0x62], b'c']"),
    ("(yy)", (1, 2), "(byte 0x01, byte 0x02)"),
    ("ms", None, "@ms nothing"),
    ("v", ("as", []), "<@as []>"),
    ("b", True, "true"),
    ("d", 1.5, "1.5"),
])
def test_format_variant_matches_glib(type_string: str, value: object, expected: str) -> None:
    """Expected strings were produced by GLib's g_variant_print (checked again below)."""
    assert format_variant(type_string, value) == expected


def test_format_variant_byteswaps_like_ostree_show() -> None:
    assert format_variant("u", 1, byteswap=True) == "uint32 16777216"
    assert format_variant("t", 1, byteswap=True) == "uint64 72057594037927936"


def test_format_variant_against_glib() -> None:
    """Differential check with the real g_variant_print when system GLib is there."""
    probe = ("import sys\nfrom gi.repository import GLib\n"
             "print(GLib.Variant('a(ayay)', [(b'user.a\\x00', b'A1'), (b'k\\x00', b'v\\x00')]).print_(True))\n"
             "print(GLib.Variant('as', ['it\\'s', 'x\\ty']).print_(True))\n")
    try:
        done = subprocess.run(["/usr/bin/python3", "-c", probe], capture_output=True, text=True,
                              check=False)
    except OSError:
        pytest.skip("no system python3")
    if done.returncode != 0:
        pytest.skip("system python3 has no GLib bindings")
    ours = (format_variant("a(ayay)", [(b"user.a\0", b"A1"), (b"k\0", b"v\0")]) + "\n"
            + format_variant("as", ["it's", "x\ty"]) + "\n")
    assert done.stdout == ours


@needs_ostree
def test_names_are_written_as_utf8_whatever_the_locale(ostree_repos: Dict[str, SampleRepo]) -> None:
    import os

    env = dict(os.environ, PYTHONIOENCODING="ascii", LC_ALL="C")
    done = subprocess.run([sys.executable, "-m", "pyostree", "ls",
                           f"--repo={ostree_repos['archive'].path}", MAIN_REF, "/names"],
                          capture_output=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "/names/é\n".encode() in done.stdout
