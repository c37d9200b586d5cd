"""``pyostree demo`` runs end to end on a fresh machine: real ssh on 127.0.0.1, both modes,
a signed commit."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("paramiko")


def test_demo_runs_and_verifies() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pyostree", "demo"], capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "via sftp" in out and "via receive" in out
    assert out.count("(equal)") == 2
    assert "demo OK" in out
    # the second commit was signed before its push, and its signature checks on the remote
    assert "signature:     ed25519: Signature verified successfully" in out
    assert "Traceback" not in done.stderr
