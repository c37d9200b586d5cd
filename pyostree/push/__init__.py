"""Push local refs to a remote repository over sftp or ``pyostree receive``.

The remote ref ends at the local commit checksum, unchanged; only fast-forwards unless
forced; only objects the remote lacks travel; the remote is consistent at every instant
(children before parents, refs by compare-and-swap, then the summary).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, List, Mapping, Optional, Sequence, Tuple

from pyostree._lazy import lazy_names
from pyostree.errors import PushError, PyOstreeError
from pyostree.objects.names import validate_ref_name

if TYPE_CHECKING:
    from pyostree.push.plan import RefUpdate, TreePrefetch
    from pyostree.push.progress import LogFn, Progress, ProgressFn
    from pyostree.push.publisher import Publisher, RemoteInfo
    from pyostree.repo import Repo
    from pyostree.transport import Destination, ExecChannel, FileTransport, SshOptions

__all__ = [
    "Progress",
    "PushOptions",
    "PushResult",
    "RefUpdate",
    "RemoteInfo",
    "VIA_CHOICES",
    "push",
    "push_with",
    "select_refs",
]

_LAZY = {
    "Progress": "pyostree.push.progress",
    "RefUpdate": "pyostree.push.plan",
    "RemoteInfo": "pyostree.push.publisher",
}
"""Re-exports loaded on first use: ``pyostree receive`` imports ``pyostree.push.refslock``
(so this package) to commit, and needs none of the planning and sending modules."""


__getattr__, __dir__ = lazy_names(globals(), _LAZY)


VIA_CHOICES = ("auto", "sftp", "receive")
DEFAULT_RECEIVE_COMMAND = ("pyostree", "receive")


@dataclass(frozen=True)
class PushOptions:
    """Everything the command line can say about a push except what and where."""

    via: str = "auto"
    force: bool = False
    dry_run: bool = False
    update_summary: Optional[bool] = None   # None: update when the remote has one
    receive_command: Optional[Tuple[str, ...]] = None  # None: pyostree receive
    ssh: Optional["SshOptions"] = None
    compress: bool = True


@dataclass(frozen=True)
class PushResult:
    via: str
    remote_mode: str
    updates: Tuple[RefUpdate, ...]
    up_to_date: Tuple[str, ...]
    objects_sent: int
    bytes_sent: int
    summary_updated: bool
    dry_run: bool
    objects: Tuple[Tuple[str, str], ...] = field(default=())  # (checksum, type name) sent
    objects_reused: int = 0  # staged by an interrupted earlier push, not re-sent


def select_refs(repo: Repo, refs: Sequence[str]) -> dict[str, str]:
    """Local ref name -> commit: the named refs, or every local head (aliases excluded)."""
    if not refs:
        aliases = set(repo.list_aliases())
        heads = {n: c for n, c in repo.list_refs().items() if ":" not in n and n not in aliases}
        if not heads:
            raise PushError("the local repository has no refs to push")
        return heads
    chosen: dict[str, str] = {}
    for ref in refs:
        validate_ref_name(ref, allow_checksum=False)
        commit = repo.read_ref(ref)
        if commit is None:
            raise PushError(f"no local ref {ref!r}")
        chosen[ref] = commit
    return chosen


def _receive_argv(dest: Destination, options: PushOptions) -> List[str]:
    if options.receive_command is not None:
        return list(options.receive_command)
    if dest.kind == "local":
        return [sys.executable, "-m", "pyostree", "receive"]
    return list(DEFAULT_RECEIVE_COMMAND)


def _remote_name(dest: Destination) -> str:
    """How errors name the remote repository: ``[user@]host:path`` or the local path."""
    if dest.kind == "local" or not dest.host:
        return dest.path
    user = f"{dest.user}@" if dest.user else ""
    return f"{user}{dest.host}:{dest.path}"


def _open_publisher(
    dest: Destination, options: PushOptions, log: LogFn,
    on_connected: Callable[[], None] = lambda: None, refs: Sequence[str] = (),
) -> Tuple[Publisher, Callable[[], None], str]:
    """Connect and pick the mode: receive when asked or when ``auto`` can start it.

    Over ssh only the channel the mode needs is opened (no sftp session for receive).
    ``on_connected`` runs once the ssh handshake is done, before the remote side starts.
    ``refs``: the refs being pushed, whose remote values the receiver sends at once.
    """
    from pyostree.push.receive_client import ReceiveClient, ReceiverRefusedError
    from pyostree.transport import LocalFileTransport, SshOptions, connect, local_exec

    exec_fn: Callable[[List[str]], ExecChannel]
    if dest.kind == "local":
        exec_fn = local_exec

        def open_files() -> FileTransport:
            return LocalFileTransport(dest.path)

        def close() -> None:
            pass
    else:
        connection = connect(dest, options.ssh or SshOptions(), on_log=log)
        exec_fn, close = connection.exec, connection.close

        def open_files() -> FileTransport:
            return connection.open_files(dest.path)
    on_connected()
    try:
        if options.via in ("receive", "auto"):
            argv = _receive_argv(dest, options)
            log(f"starting receiver: {shlex.join(argv)}")
            channel: Optional[ExecChannel] = None
            try:
                channel = exec_fn(argv)
                client = ReceiveClient(channel, dest.path, compress=options.compress, refs=refs)
                return client, close, "receive"
            except PyOstreeError as err:
                if channel is not None:
                    channel.close()
                if options.via == "receive" or isinstance(err, ReceiverRefusedError):
                    raise  # auto falls back only when no receiver answers
                log(f"receive mode unavailable ({err}); falling back to sftp")
        files = open_files()

        def close_all() -> None:
            try:
                files.close()
            finally:
                close()

        from pyostree.push.sftp import SftpPublisher

        return SftpPublisher(files, log=log, remote=_remote_name(dest)), close_all, "sftp"
    except BaseException:
        close()
        raise


def push(
    repo: Repo,
    destination: str,
    refs: Sequence[str] = (),
    options: PushOptions = PushOptions(),
    *,
    on_progress: Optional[ProgressFn] = None,
    on_log: Optional[LogFn] = None,
) -> PushResult:
    """Push ``refs`` (default: every local head) of ``repo`` to ``destination``."""
    from pyostree.push.plan import TreePrefetch
    from pyostree.transport import parse_destination

    log: LogFn = on_log or (lambda _message: None)
    if options.via not in VIA_CHOICES:
        raise PushError(f"unknown --via {options.via!r} (expected sftp, receive or auto)")
    local = select_refs(repo, refs)
    dest = parse_destination(destination)
    prefetch = TreePrefetch(repo, local.values())
    try:
        publisher, close, via = _open_publisher(dest, options, log, prefetch.start, refs=list(local))
        try:
            return push_with(publisher, repo, local, options, via=via,
                             on_progress=on_progress, on_log=log, prefetch=prefetch)
        finally:
            try:
                publisher.close()
            finally:
                close()
    finally:
        prefetch.finish()


def push_with(
    publisher: Publisher,
    repo: Repo,
    local: Mapping[str, str],
    options: PushOptions = PushOptions(),
    *,
    via: str = "",
    on_progress: Optional[ProgressFn] = None,
    on_log: Optional[LogFn] = None,
    prefetch: Optional[TreePrefetch] = None,
) -> PushResult:
    """The push itself over an open publisher (``local``: ref -> commit); aborts it on
    error. ``prefetch``: dirtrees loaded ahead (see :class:`TreePrefetch`)."""
    from pyostree.push.convert import local_size_hint
    from pyostree.push.plan import decide_updates, missing_objects
    from pyostree.push.progress import ProgressTracker

    log: LogFn = on_log or (lambda _message: None)
    try:
        info = publisher.info
        # Only the refs being pushed are asked for: a remote may have 100,000.
        remote = publisher.remote_refs(list(local))
        log(f"remote is {info.mode.value} ({len(remote)} of the {len(local)} refs pushed "
            f"exist there), via {via}")
        updates, current = decide_updates(repo, local, remote, force=options.force)
        for ref in current:
            log(f"{ref}: up to date")
        for update in updates:
            verb = "forced update" if update.forced else ("update" if update.old else "new ref")
            log(f"{update.ref}: {verb} {update.old or '(none)'} -> {update.new}")
        if prefetch is not None:
            prefetch.finish()  # done by now, or it would compete with the walk below
        # What the remote's commits reach is not asked about: the pushed refs' old values,
        # and any other head the publisher happens to know (a receiver before protocol v3
        # lists them all). A tree shared with another remote head is asked about in HAVE
        # instead, so nothing the remote lacks is ever skipped.
        known = {**info.refs, **remote}
        names = (missing_objects(repo, updates, known.values(), publisher.have, prefetch)
                 if updates else [])
        total = 0
        if on_progress is not None:
            # An lstat per object, only for the progress estimate: skipped when nobody
            # shows progress (the CLI passes no callback when stderr is not a terminal).
            total = sum(local_size_hint(repo, c, t) for c, t in names)
            log(f"{len(names)} objects to send (~{total} bytes)")
        else:
            log(f"{len(names)} objects to send")
        tracker = ProgressTracker(on_progress, len(names), total)
        summary = False
        if options.dry_run:
            publisher.abort()
        else:
            publisher.send_objects(repo, names, tracker)
            tracker.report("publish")
            # Even with nothing to move: repairs a summary an interrupted push left stale.
            summary = publisher.publish(updates, options.update_summary)
            tracker.report("done")
        return PushResult(
            via=via,
            remote_mode=info.mode.value,
            updates=tuple(updates),
            up_to_date=tuple(current),
            objects_sent=0 if options.dry_run else len(names),
            bytes_sent=tracker.bytes_done,
            summary_updated=summary,
            dry_run=options.dry_run,
            objects=tuple((c, t.name) for c, t in names),
            objects_reused=tracker.objects_reused,
        )
    except BaseException:
        publisher.abort()
        raise
