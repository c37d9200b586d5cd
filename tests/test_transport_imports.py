"""Start-up cost of pushes: what each side imports (checked in fresh interpreters).

The OpenSSH vendor's exec path (receive mode) never imports paramiko; the receiver never
imports paramiko, and zstandard only once a compressed frame arrives; the paramiko vendor
loads paramiko without ``invoke`` (``paramiko.config`` wants it for ``Match exec`` only),
and a config file with ``Match exec`` still works; nor ``importlib.metadata`` (paramiko's
``__version__``), whose version comes from the ``.dist-info`` name instead.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from ostree_tool import needs_ostree
from test_push_support import commit, init, make_tree

from pyostree.push import PushOptions, push
from pyostree.repo import Repo

HEAVY = ("paramiko", "invoke", "zstandard", "cryptography")

RECEIVER = """
import atexit, runpy, sys
path = sys.argv[1]
def dump():
    with open(path, "w") as out:
        out.write("\\n".join(sorted({m.split(".")[0] for m in sys.modules})))
atexit.register(dump)
sys.argv = ["pyostree", "receive"]
runpy.run_module("pyostree", run_name="__main__", alter_sys=True)
"""


def _loaded_after(code: str) -> List[str]:
    """The heavy top-level modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


def test_openssh_exec_path_does_not_import_paramiko() -> None:
    code = (
        "from pyostree.push import push\n"
        "from pyostree.push.receive_client import ReceiveClient\n"
        "from pyostree.transport import Destination, SshOptions, connect\n"
        "conn = connect(Destination('ssh', 'repo', host='127.0.0.1'), SshOptions(vendor='openssh'))\n"
        "conn.close()\n"
    )
    assert _loaded_after(code) == []


def test_openssh_sftp_path_skips_invoke() -> None:
    code = (
        "from pyostree.errors import TransportError\n"
        "from pyostree.transport import Destination, SshOptions, connect\n"
        "conn = connect(Destination('ssh', 'repo', host='127.0.0.1'), SshOptions(port=1, vendor='openssh'))\n"
        "try:\n    conn.open_files('repo')\nexcept TransportError:\n    pass\n"  # nothing listens on port 1
    )
    assert _loaded_after(code) == ["paramiko", "cryptography"]


def test_receive_help_imports_nothing_heavy() -> None:
    assert _loaded_after("import contextlib, io\n"
                         "from pyostree.cli.main import main\n"
                         "with contextlib.redirect_stdout(io.StringIO()):\n"
                         "    try:\n        main(['receive', '--help'])\n"
                         "    except SystemExit:\n        pass") == []


def test_paramiko_vendor_skips_invoke() -> None:
    assert _loaded_after("import pyostree.transport.paramiko_vendor") == ["paramiko", "cryptography"]


def test_paramiko_vendor_skips_importlib_metadata() -> None:
    code = ("import sys\nimport pyostree.transport.paramiko_vendor\nimport paramiko\n"
            "print(paramiko.__version__, paramiko.Transport._CLIENT_ID, "
            "' '.join(m for m in ('importlib.metadata', 'email') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    version = importlib.metadata.version("paramiko")
    assert done.stdout.split() == [version, f"paramiko_{version}"]


def _package(root: Path, name: str, *dist_infos: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    for dist_info in dist_infos:
        (root / dist_info).mkdir()


@pytest.mark.parametrize("dist_infos, expected", [
    (("pkgv-1.2.3.dist-info",), "1.2.3"),
    (("pkgv-1.2.3.dist-info", "pkgv_extra-0.1.dist-info", "pkgv-tools-2.0.dist-info"), "1.2.3"),
    ((), None),  # no metadata beside it: the real importlib.metadata decides
    (("pkgv-1.0.dist-info", "pkgv-2.0.dist-info"), None),  # two installs: ambiguous
    (("pkgv-1.0 beta.dist-info",), None),  # not a plain version
])
def test_dist_info_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           dist_infos: tuple[str, ...], expected: Optional[str]) -> None:
    from pyostree.transport._paramiko import _dist_info_version

    _package(tmp_path, "pkgv", *dist_infos)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _dist_info_version("pkgv") == expected
    assert _dist_info_version("no_such_package_here") is None


def test_metadata_stand_in_answers_for_its_package_only() -> None:
    from pyostree.transport._paramiko import _metadata_stand_in

    stand_in = _metadata_stand_in("paramiko", "5.1.0")
    assert stand_in.version("paramiko") == "5.1.0"
    with pytest.raises(LookupError):
        stand_in.version("cryptography")


def test_paramiko_vendor_still_evaluates_match_exec(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text('Match exec "true"\n    Port 2222\nHost *\n    User someone\n')
    code = (
        "from pyostree.transport import Destination, SshOptions\n"
        "from pyostree.transport.paramiko_vendor import resolve\n"
        f"r = resolve(Destination('ssh', 'repo', host='example.invalid'), SshOptions(config_file={str(config)!r}))\n"
        "print(r.port, r.user)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2222", "someone"]


def _receiver_modules(src: Path, dst: Path, tmp_path: Path) -> List[str]:
    out = tmp_path / "modules.txt"
    out.unlink(missing_ok=True)
    command = (sys.executable, "-c", RECEIVER, str(out))
    push(Repo.open(src), str(dst), (), PushOptions(via="receive", receive_command=command))
    return [m for m in out.read_text().split() if m in HEAVY]


@needs_ostree
def test_receiver_imports_zstandard_only_for_compressed_frames(tmp_path: Path) -> None:
    src = init(tmp_path / "src", "bare-user")  # sends the canonical stream: compressible
    tree = make_tree(tmp_path / "tree")
    (tree / "text.txt").write_bytes(b"compressible text\n" * 10_000)
    commit(src, tree)
    dst = init(tmp_path / "dst", "archive")
    assert _receiver_modules(src, dst, tmp_path) == ["zstandard"]  # a full push: zstd frames
    assert _receiver_modules(src, dst, tmp_path) == []  # a no-op push: no data at all


@needs_ostree
def test_a_receive_mode_push_loads_neither_sftp_nor_object_code_before_it_connects(tmp_path: Path) -> None:
    """Before the receiver answers, the client has loaded only what connecting needs: the
    sftp publisher never (receive mode), the object and GVariant code later (the tree
    prefetch loads it while the remote side starts)."""
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree"))
    dst = init(tmp_path / "dst", "archive")
    probe = (
        "import sys\n"
        "import pyostree.push as push_module\n"
        "from pyostree.push import PushOptions, push\n"
        "from pyostree.repo import Repo\n"
        "seen = {}\n"
        "real = push_module._open_publisher\n"
        "def spy(dest, options, log, on_connected, **kwargs):\n"
        "    def connected():\n"
        "        seen['at_connect'] = set(sys.modules)\n"
        "        on_connected()\n"
        "    return real(dest, options, log, connected, **kwargs)\n"
        "push_module._open_publisher = spy\n"
        f"push(Repo.open({str(src)!r}), {str(dst)!r}, (), PushOptions(via='receive'))\n"
        "wanted = ('pyostree.push.sftp', 'pyostree.gvariant', 'pyostree.objects.content')\n"
        "print(' '.join(m for m in wanted if m in seen['at_connect']))\n"
        "print(' '.join(m for m in wanted if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    at_connect, at_end = done.stdout.split("\n")[:2]
    assert at_connect.split() == []
    assert "pyostree.push.sftp" not in at_end.split()
    assert "pyostree.gvariant" in at_end.split()  # the probe can tell loaded from not


def _transport_import_graph() -> dict:
    """Module -> the pyostree.transport modules it imports (at any depth in its code)."""
    import ast

    import pyostree.transport as package

    root = Path(package.__file__).parent
    graph = {}
    for path in sorted(root.glob("*.py")):
        name = path.stem
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    targets.add(node.module.split(".")[0])
                else:
                    targets.update(alias.name for alias in node.names)
        graph[name] = targets & {p.stem for p in root.glob("*.py")}
    return graph


def test_transport_modules_import_no_circle() -> None:
    graph = _transport_import_graph()
    assert "ssh" not in graph["paramiko_vendor"] and "ssh" not in graph["openssh_vendor"]
    state: dict = {}

    def visit(name: str, trail: List[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", f"import circle: {' -> '.join(trail + [name])}"
        state[name] = "open"
        for target in sorted(graph[name]):
            visit(target, trail + [name])
        state[name] = "done"

    for module in sorted(graph):
        visit(module, [])
