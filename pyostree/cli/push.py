"""``pyostree push``: publish local refs to a remote repository over ssh or a local path."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Optional

NAME = "push"
SUMMARY = "Push refs to a remote repository (sftp or 'pyostree receive')"
#: See pyostree.cli.main: a push that returned has closed its connection, joined its threads
#: and committed (closed and synced) everything it wrote; the frame still checks for threads.
FAST_EXIT = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("destination", metavar="DEST",
                        help="[user@]host:path, ssh://[user@]host[:port]/path, a path or file://path")
    parser.add_argument("refs", metavar="REF", nargs="*", help="refs to push (default: every local ref)")
    parser.add_argument("-n", "--dry-run", action="store_true", help="show what would be sent, change nothing")
    parser.add_argument("-f", "--force", action="store_true", help="allow non-fast-forward updates")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log decisions to stderr")
    parser.add_argument("-p", "--port", type=int, help="ssh port")
    parser.add_argument("-i", "--identity", action="append", default=[], metavar="IDENTITY",
                        help="ssh private key file (repeatable)")
    parser.add_argument("-o", dest="ssh_options", action="append", default=[], metavar="SSH_OPTION",
                        help="ssh option KEY=VALUE (repeatable)")
    parser.add_argument("--via", choices=("auto", "sftp", "receive"), default="auto",
                        help="sftp file operations, the 'pyostree receive' protocol, or auto (receive, else sftp)")
    parser.add_argument("--receive-command", metavar="CMD",
                        help="remote command of receive mode (default: pyostree receive)")
    parser.add_argument("--ssh", choices=("paramiko", "openssh"), default="paramiko", help="ssh implementation")
    summary = parser.add_mutually_exclusive_group()
    summary.add_argument("--update-summary", dest="update_summary", action="store_true", default=None,
                         help="always regenerate the remote summary")
    summary.add_argument("--no-update-summary", dest="update_summary", action="store_false",
                         help="never touch the remote summary")


def _human(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def _render_progress(progress: "object") -> None:
    from pyostree.push import Progress

    assert isinstance(progress, Progress)
    eta = progress.eta
    eta_text = f" ETA {eta:.0f}s" if eta is not None else ""
    line = (f"{progress.phase}: {progress.objects_done}/{progress.objects_total} objects, "
            f"{_human(progress.bytes_done)}/{_human(progress.bytes_total)}, "
            f"{_human(progress.rate)}/s{eta_text}")
    sys.stderr.write("\r\x1b[K" + line)
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from pyostree.cli.common import open_repo
    from pyostree.push import PushOptions, push
    from pyostree.transport import SshOptions, parse_ssh_option

    repo = open_repo(args)
    ssh = SshOptions(
        port=args.port,
        identity_files=tuple(args.identity),
        options=tuple(parse_ssh_option(o, vendor=args.ssh) for o in args.ssh_options),
        vendor=args.ssh,
        home=os.environ.get("HOME"),
        agent_socket=os.environ.get("SSH_AUTH_SOCK"),
    )
    receive_command: Optional[tuple[str, ...]] = None
    if args.receive_command:
        receive_command = tuple(shlex.split(args.receive_command))
    options = PushOptions(
        via=args.via, force=args.force, dry_run=args.dry_run,
        update_summary=args.update_summary, receive_command=receive_command, ssh=ssh,
    )
    show_progress = not args.quiet and sys.stderr.isatty()

    def log(message: str) -> None:
        if args.verbose:
            if show_progress:
                sys.stderr.write("\r\x1b[K")
            print(f"push: {message}", file=sys.stderr, flush=True)

    try:
        result = push(repo, args.destination, args.refs, options,
                      on_progress=_render_progress if show_progress else None, on_log=log)
    finally:
        if show_progress:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
    if args.quiet:
        return 0
    prefix = "would update" if result.dry_run else "updated"
    for update in result.updates:
        old = update.old or "(new)"
        forced = " (forced)" if update.forced else ""
        print(f"{prefix} {update.ref}: {old} -> {update.new}{forced}")
    for ref in result.up_to_date:
        print(f"{ref}: up to date")
    if result.dry_run:
        print(f"would send {len(result.objects)} objects via {result.via}")
    else:
        summary = ", summary updated" if result.summary_updated else ""
        reused = f", {result.objects_reused} reused from an interrupted push" if result.objects_reused else ""
        print(f"sent {result.objects_sent - result.objects_reused} objects "
              f"({_human(result.bytes_sent)}) via {result.via} "
              f"(remote mode {result.remote_mode}){reused}{summary}")
    return 0
