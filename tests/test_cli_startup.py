"""Start-up cost of the read commands: what they import, and help text unchanged by the
frame's cheaper argparse formatter."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ostree_tool import MAIN_REF, SampleRepo, needs_ostree
from pyostree.cli import main as cli_main

# Nothing a read command needs; each costs milliseconds (or far more) to import.
NOT_ON_THE_READ_PATH = ("shutil", "pkgutil", "concurrent.futures", "threading", "queue",
                        "subprocess", "tempfile", "unicodedata", "paramiko", "zstandard",
                        "pyostree.checkout.materialize", "pyostree.repo.transaction",
                        "pyostree.push", "pyostree.transport")

_PROBE = """
import json, os, sys
from pyostree.cli.main import main
sys.stdout = open(os.devnull, "w")
status = main(sys.argv[1:])
sys.stdout = sys.__stdout__
print(json.dumps([status, sorted(sys.modules)]))
"""


@needs_ostree
@pytest.mark.parametrize("argv", [("ls", "-R", MAIN_REF), ("ls", "-R", "-C", MAIN_REF),
                                  ("cat", MAIN_REF, "/hello.txt"), ("rev-parse", MAIN_REF)])
def test_read_commands_import_nothing_heavy(sample_repo: SampleRepo, argv: tuple[str, ...]) -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE, f"--repo={sample_repo.path}", *argv],
                          capture_output=True, text=True, check=True)
    status, modules = json.loads(proc.stdout)
    assert status == 0
    assert not set(NOT_ON_THE_READ_PATH) & set(modules), sorted(set(NOT_ON_THE_READ_PATH) & set(modules))


@pytest.mark.parametrize("columns", ["40", "100", ""])
def test_help_is_argparse_help(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                               columns: str) -> None:
    """The frame's formatter only skips ``import shutil``: same width rules, same text."""
    monkeypatch.setenv("COLUMNS", columns)
    with pytest.raises(SystemExit):
        cli_main.main(["ls", "--help"])
    ours = capsys.readouterr().out
    module = cli_main.load_command("ls")
    assert module is not None
    parser = argparse.ArgumentParser(prog=cli_main.PROG, add_help=False)
    cli_main._add_repo_option(parser)
    sub = parser.add_subparsers(dest="command").add_parser("ls", help=module.SUMMARY,
                                                           description=module.SUMMARY)
    cli_main._add_repo_option(sub)
    module.add_arguments(sub)
    assert ours == sub.format_help()
    assert ours.startswith("usage: pyostree ls")


@needs_ostree
def test_fast_exit_loses_no_output(sample_repo: SampleRepo, tmp_path: Path,
                                   capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """``ls``/``checkout`` end with os._exit when run as the program: output still complete."""
    argv = [f"--repo={sample_repo.path}", "ls", "-R", "-C", MAIN_REF]
    assert cli_main.main(argv) == 0  # in-process: returns as usual
    want = capsysbinary.readouterr().out
    assert want.count(b"\n") > 20
    piped = subprocess.run([sys.executable, "-m", "pyostree", *argv], capture_output=True, check=True)
    assert piped.stdout == want and piped.stderr == b""
    out_file = tmp_path / "out"
    with open(out_file, "wb") as handle:
        subprocess.run([sys.executable, "-m", "pyostree", *argv], stdout=handle, check=True)
    assert out_file.read_bytes() == want
    dest = tmp_path / "co"
    subprocess.run([sys.executable, "-m", "pyostree", f"--repo={sample_repo.path}", "checkout",
                    "-U", MAIN_REF, str(dest)], check=True)
    assert (dest / "hello.txt").is_file()
    failed = subprocess.run([sys.executable, "-m", "pyostree", *argv[:-1], "no-such-ref"],
                            capture_output=True)
    assert failed.returncode == 1 and failed.stderr.startswith(b"error: ")
