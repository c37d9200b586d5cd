"""Remote disk full (a 4 MiB tmpfs in a private mount namespace) and permission denied on
the remote (root without CAP_DAC_OVERRIDE against read-only directories): the push fails
with a message that says so, the remote stays consistent, and once the cause is gone a
re-push completes without re-sending what was staged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import test_fault_support as F
from ostree_tool import needs_ostree

pytestmark = needs_ostree


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> F.Source:
    """c2 carries 6 MiB of random bytes: more than the 4 MiB remote can hold."""
    return F.build_source(tmp_path_factory.mktemp("disk-src"), files=60, big=6 << 20)


@pytest.mark.skipif(not F.unshare_available(), reason="needs root and unshare -m with tmpfs")
@pytest.mark.parametrize("via,receiver", [("receive", "default"), ("sftp", "default"), ("receive", "early")])
def test_remote_disk_full(big_source: F.Source, tmp_path: Path, via: str, receiver: str) -> None:
    """``early``: the receiver publishes leaves early (every 1 KiB staged), so part of what
    fitted is in objects/ when the disk fills, and must not be sent again either."""
    outcome = F.disk_full_case(big_source, tmp_path / "mnt", via, receive_argv=F.RECEIVERS[receiver])
    assert outcome.fault_hit and outcome.push_status == 1
    assert "No space left on device" in outcome.message, outcome.message
    assert outcome.ref_after_fault == big_source.c1
    assert outcome.resent_staged == 0 and not outcome.data_lost
    assert outcome.resent_published == 0
    if receiver == "early":
        assert outcome.published_early, outcome  # the small objects went ahead of the big one
    else:
        assert outcome.published_new == 0, outcome  # nothing of the push is visible before its commit
        assert outcome.staged > 0  # what fitted waits in the staging dir...
    if via == "sftp":
        assert outcome.reused == outcome.staged  # ...and is not uploaded again


@pytest.mark.skipif(not shutil.which("setpriv") or not F.unshare_available(), reason="needs root and setpriv")
@pytest.mark.parametrize("spot", sorted(F.READ_ONLY_SPOTS))
@pytest.mark.parametrize("via", ["receive", "sftp"])
def test_permission_denied_on_the_remote(tmp_path: Path, via: str, spot: str) -> None:
    source = F.build_source(tmp_path / "src", files=30, big=256 << 10)
    remote = F.fresh_remote(source, tmp_path / "remote")
    outcome = F.permission_case(source, remote, via, spot)
    assert outcome.fault_hit and outcome.push_status == 1
    assert "Permission denied" in outcome.message, outcome.message
    assert outcome.resent_staged == 0 and outcome.resent_published == 0 and not outcome.data_lost
    if spot == "refs":
        assert outcome.ref_after_fault == source.c1
