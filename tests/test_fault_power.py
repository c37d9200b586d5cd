"""Power loss, simulated: the remote lives on ext4 on a loop device in a private mount
namespace; at a random point of a push its processes stop and the file system is shut down
without flushing (``EXT4_IOC_SHUTDOWN``, no log flush: what was not synced is gone), then
mounted again (the journal replays) under a new boot id. The remote must pass ``ostree
fsck`` and ``pyostree fsck``, ``main`` must be the old or the new commit (the new one if the
push had reported success), and a re-push must complete (benchmarks/bench_faults.py runs
the same for many iterations; docs/RELIABILITY.md says what the model leaves out)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import test_fault_support as F
from ostree_tool import needs_ostree

pytestmark = [needs_ostree,
              pytest.mark.skipif(not F.power_loss_available(), reason="needs root, unshare -m, loop and ext4")]

CUT_SCRIPT = r"""
import fcntl, os, subprocess, sys
image, mnt = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
import test_fault_support as F
subprocess.run(["mount", "-o", F.POWER_MOUNT_OPTIONS, image, mnt], check=True)
def write(name, data, sync):
    with open(os.path.join(mnt, name), "wb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
write("synced", b"kept\n", True)
fd = os.open(mnt, os.O_RDONLY)
os.fsync(fd)
write("unsynced", b"dropped\n", False)
write("renamed.tmp", b"renamed\n", False)
os.rename(os.path.join(mnt, "renamed.tmp"), os.path.join(mnt, "renamed"))
fcntl.ioctl(fd, F.EXT4_IOC_SHUTDOWN, F.EXT4_GOING_FLAGS_NOLOGFLUSH.to_bytes(4, "little"))
os.close(fd)
subprocess.run(["umount", mnt], check=True)
subprocess.run(["mount", "-o", F.POWER_MOUNT_OPTIONS, image, mnt], check=True)
print(sorted(n for n in os.listdir(mnt) if n != "lost+found"), open(os.path.join(mnt, "synced")).read().strip())
subprocess.run(["umount", mnt], check=True)
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> F.Source:
    return F.build_source(tmp_path_factory.mktemp("power-src"), files=40, big=256 << 10)


def test_the_cut_keeps_what_was_synced_and_drops_the_rest(tmp_path: Path) -> None:
    """The model itself: a synced file survives the cut, an unsynced one and an unsynced
    rename do not."""
    image = tmp_path / "disk.img"
    subprocess.run(["truncate", "-s", "16M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    (tmp_path / "mnt").mkdir()
    done = subprocess.run(["unshare", "-m", "--", F.PY, "-c", CUT_SCRIPT, str(image), str(tmp_path / "mnt"),
                           str(Path(F.__file__).parent)], capture_output=True, text=True, timeout=F.WAIT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['synced'] kept"


@pytest.mark.parametrize("mode,receiver", [("archive", "default"), ("archive", "early"), ("bare-user", "default")])
def test_power_loss_during_and_after_a_push(tmp_path: Path, mode: str, receiver: str) -> None:
    source = F.build_source(tmp_path / "src", files=40, big=256 << 10, remote_mode=mode)
    image = F.power_loss_image(source, tmp_path / "disk.img")
    seconds = F.power_loss_push_seconds(source, image, tmp_path / "calibrate", F.RECEIVERS[receiver])
    outcomes = [F.power_loss_case(source, image, tmp_path / f"cut{index}", "receive", seconds * fraction,
                                  F.RECEIVERS[receiver])
                for index, fraction in enumerate((0.2, 0.6, 3.0))]
    for outcome in outcomes:
        assert not outcome.data_lost, outcome
    assert any(o.fault_hit for o in outcomes), outcomes  # at least one cut landed mid-push
    assert outcomes[-1].push_status == 0 and outcomes[-1].ref_after_fault == source.c2  # the ack held


def test_power_loss_catches_a_receiver_that_does_not_sync(source: F.Source, tmp_path: Path) -> None:
    """Without its fsyncs and syncfs the receiver still reports success, and the cut after
    it takes the push away: the case must see that as data lost."""
    image = F.power_loss_image(source, tmp_path / "disk.img")
    seconds = F.power_loss_push_seconds(source, image, tmp_path / "calibrate", F.NOSYNC_RECEIVE_ARGV)
    outcome = F.power_loss_case(source, image, tmp_path / "cut", "receive", seconds * 3, F.NOSYNC_RECEIVE_ARGV)
    assert outcome.push_status == 0 and not outcome.fault_hit
    assert outcome.ref_after_fault == source.c1 and outcome.data_lost, outcome


@pytest.mark.parametrize("via", ["receive", "sftp"])
def test_an_acknowledged_push_survives_a_power_loss_without_a_summary(tmp_path: Path, via: str) -> None:
    """The remote has no summary file, so no later fsync carries the ref's rename along:
    the receiver (sftp mode to a local path: the client) must fsync ``refs/heads/`` before
    it reports success, or a power cut right after takes ``main`` back to the old commit
    (it did, in both modes, until the ref's directories were fsynced)."""
    source = F.build_source(tmp_path / "src", files=40, big=256 << 10)
    (source.template / "summary").unlink()
    image = F.power_loss_image(source, tmp_path / "disk.img")
    seconds = F.power_loss_push_seconds(source, image, tmp_path / "calibrate", via=via)
    outcome = F.power_loss_case(source, image, tmp_path / "cut", via, seconds * 3)
    assert outcome.push_status == 0 and not outcome.fault_hit
    assert outcome.ref_after_fault == source.c2 and not outcome.data_lost, outcome
