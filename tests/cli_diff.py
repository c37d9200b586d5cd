"""Run the real ``ostree`` and ``pyostree`` on the same command line; compare what they say."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import NamedTuple, Sequence

from ostree_tool import require_ostree
from pyostree.cli.main import main


class Outcome(NamedTuple):
    status: int
    out: str
    err: str


def ostree(*args: str, cwd: "Path | None" = None) -> Outcome:
    env = dict(os.environ, LC_ALL="C.UTF-8")
    done = subprocess.run([require_ostree(), *args], capture_output=True, check=False, env=env,
                          cwd=cwd)
    return Outcome(done.returncode, done.stdout.decode("utf-8", "replace"),
                   done.stderr.decode("utf-8", "replace"))


def pyostree(*args: str, cwd: "Path | None" = None) -> Outcome:
    """Our ``main`` in this process (stdout/stderr captured as text)."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            status = main(list(args))
    finally:
        os.chdir(old)
    return Outcome(status, out.getvalue(), err.getvalue())


def last_error_line(outcome: Outcome) -> Outcome:
    """ostree prints its --help before some usage errors (item 9 of issue 18 is not done
    yet): compare only the final ``error: ...`` line there."""
    lines = outcome.err.splitlines()
    return Outcome(outcome.status, outcome.out, lines[-1] + "\n" if lines else "")


def both(args: Sequence[str], ours_cwd: "Path | None" = None,
         theirs_cwd: "Path | None" = None) -> "tuple[Outcome, Outcome]":
    sys.stdout.flush()
    return ostree(*args, cwd=theirs_cwd), pyostree(*args, cwd=ours_cwd)
