"""The local-filesystem transport: same contract as sftp, straight system calls."""

from __future__ import annotations

import os
import stat as statmod
from typing import IO, TYPE_CHECKING, BinaryIO, List, Optional, Tuple, Union, cast

from ..errors import TransportError
from ._errors import oserror_to_transport, translate_oserror
from .base import ExecChannel, FileTransport, RemoteExistsError, RemoteStat, check_relpath

if TYPE_CHECKING:
    import subprocess  # imported where used: a paramiko push never needs it (nor shutil)

__all__ = ["LocalFileTransport", "local_exec", "LocalExecChannel", "SubprocessExecChannel"]


class LocalFileTransport(FileTransport):
    """Files under ``root`` on this machine; modes given at create are subject to the umask."""

    def __init__(self, root: Union[str, "os.PathLike[str]"]) -> None:
        self._root = os.fspath(root)
        self._closed = False

    @property
    def root(self) -> str:
        """The directory on this machine: its kernel can take locks there for us."""
        return self._root

    def _full(self, path: str) -> str:
        if self._closed:
            raise TransportError("local transport is closed")
        rel = check_relpath(path)
        return os.path.join(self._root, rel) if rel else self._root

    def stat(self, path: str) -> Optional[RemoteStat]:
        full = self._full(path)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as err:
            raise oserror_to_transport("stat", path, err) from err
        return RemoteStat(size=st.st_size, mode=st.st_mode)

    def read_bytes(self, path: str, max_size: int) -> bytes:
        full = self._full(path)
        with translate_oserror("read", path):
            fd = os.open(full, os.O_RDONLY | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                data = f.read(max_size + 1)
        if len(data) > max_size:
            raise TransportError(f"{path} is larger than the {max_size}-byte limit")
        return data

    def open_read(self, path: str) -> BinaryIO:
        full = self._full(path)
        with translate_oserror("open", path):
            fd = os.open(full, os.O_RDONLY | os.O_CLOEXEC)
            return os.fdopen(fd, "rb")

    def open_write(self, path: str, mode: int = 0o644) -> BinaryIO:
        full = self._full(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        with translate_oserror("create", path):
            fd = os.open(full, flags, mode & 0o7777)
            return os.fdopen(fd, "wb")

    def listdir(self, path: str) -> List[str]:
        full = self._full(path)
        with translate_oserror("list", path):
            return os.listdir(full)

    def mkdir(self, path: str, mode: int = 0o775, exist_ok: bool = True) -> None:
        full = self._full(path)
        try:
            os.mkdir(full, mode & 0o7777)
        except FileExistsError as err:
            if exist_ok and os.path.isdir(full) and not os.path.islink(full):
                return
            raise RemoteExistsError(f"cannot mkdir {path}: File exists") from err
        except OSError as err:
            raise oserror_to_transport("mkdir", path, err) from err

    def rename(self, src: str, dst: str, *, replace: bool) -> None:
        full_src, full_dst = self._full(src), self._full(dst)
        with translate_oserror("rename", f"{src} to {dst}"):
            if replace:
                os.replace(full_src, full_dst)
                return
            st = os.lstat(full_src)
            if statmod.S_ISDIR(st.st_mode):
                # No portable no-replace rename for directories: check, then rename.
                if os.path.lexists(full_dst):
                    raise FileExistsError(17, "File exists")
                os.rename(full_src, full_dst)
            else:
                # link() refuses an existing target atomically, like OpenSSH's sftp rename.
                os.link(full_src, full_dst, follow_symlinks=False)
                os.unlink(full_src)

    def remove(self, path: str) -> None:
        full = self._full(path)
        with translate_oserror("remove", path):
            os.unlink(full)

    def rmtree(self, path: str) -> None:
        full = self._full(path)
        if not check_relpath(path):
            raise TransportError("refusing to rmtree the transport root")
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return
        with translate_oserror("rmtree", path):
            if statmod.S_ISDIR(st.st_mode):
                import shutil

                shutil.rmtree(full)
            else:
                os.unlink(full)

    def symlink(self, target: str, path: str) -> None:
        full = self._full(path)
        with translate_oserror("symlink", path):
            os.symlink(target, full)

    def readlink(self, path: str) -> str:
        full = self._full(path)
        with translate_oserror("readlink", path):
            return os.readlink(full)

    def chmod(self, path: str, mode: int) -> None:
        full = self._full(path)
        with translate_oserror("chmod", path):
            os.chmod(full, mode & 0o7777)

    def utime(self, path: str, times: Tuple[int, int]) -> None:
        full = self._full(path)
        with translate_oserror("utime", path):
            os.utime(full, times)

    def fsync(self, path: str) -> None:
        full = self._full(path)
        with translate_oserror("fsync", path):
            fd = os.open(full, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        self._closed = True


class SubprocessExecChannel(ExecChannel):
    """A subprocess with piped stdio; closing kills it if it still runs, and reaps it."""

    def __init__(self, proc: "subprocess.Popen[bytes]") -> None:
        self._proc = proc
        self.stdin = cast(BinaryIO, proc.stdin)
        self.stdout = cast(BinaryIO, proc.stdout)
        self.stderr = cast(BinaryIO, proc.stderr)

    def wait(self) -> int:
        return self._proc.wait()

    def close(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            try:
                cast(IO[bytes], stream).close()
            except OSError:
                pass
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()


LocalExecChannel = SubprocessExecChannel


def local_exec(argv: List[str]) -> ExecChannel:
    """Run ``argv`` as a subprocess with piped stdio (no shell)."""
    if not argv:
        raise TransportError("cannot run an empty command")
    import subprocess

    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as err:
        raise TransportError(f"cannot run {argv[0]}: {err.strerror or err}") from err
    return LocalExecChannel(proc)
