"""``pyostree receive``: serve one push on stdin/stdout (run by ``pyostree push`` over ssh).

Suitable as a forced command in ``authorized_keys``:
``command="pyostree receive --root /srv/repos"``. The repository is named by the client
in the protocol, not on this command line, so ``--root`` is what confines it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Tuple

from pyostree.errors import PyOstreeError

NAME = "receive"
SUMMARY = "Receive a push on stdin/stdout (server side of 'pyostree push --via=receive')"
DEFAULT_IDLE_TIMEOUT = 600.0
FAST_EXIT = False
"""Set by ``run`` after a clean session (see pyostree.cli.main): the client waits for our
exit status, and the interpreter's teardown alone costs it ~7 ms."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", metavar="DIR",
        help="only allow repositories under DIR (relative paths are taken from DIR)",
    )
    parser.add_argument(
        "--idle-timeout", metavar="SECONDS", type=float, default=DEFAULT_IDLE_TIMEOUT,
        help="give up when the client sends nothing for SECONDS (releasing the repo lock; "
        f"staged objects are kept for a resumed push); 0 waits forever (default: {DEFAULT_IDLE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--workers", metavar="N", type=int, default=None,
        help="verify and stage archive objects in N processes; 0 does it all in this one "
        "(default: one per CPU, at most 4, none on a single CPU)",
    )
    parser.add_argument(
        "--allow-modes", metavar="MODE[,MODE...]", default="archive,bare-user-only",
        help="repository modes a client may push to (archive, bare-user-only, bare-user, "
        "bare; default: archive,bare-user-only, the modes a publisher serves)",
    )
    parser.add_argument(
        "--allow-privileged-files", action="store_true",
        help="into a bare repo, accept files with setuid/setgid bits or a "
        "security.capability xattr (refused by default)",
    )
    parser.add_argument(
        "--allow-commitmeta-replace", action="store_true",
        help="let a push replace a commit's existing detached metadata (signatures) "
        "with other bytes (refused by default)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log decisions to stderr")


def run(args: argparse.Namespace) -> int:
    from pyostree.receive import ReceiveConfig, serve

    global FAST_EXIT
    FAST_EXIT = False

    def log(message: str) -> None:
        if args.verbose:
            print(f"receive: {message}", file=sys.stderr, flush=True)

    if not args.idle_timeout >= 0:  # also refuses nan
        print("error: --idle-timeout must be 0 or a positive number of seconds", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 0:
        print("error: --workers must be 0 or more", file=sys.stderr)
        return 2
    modes = _parse_modes(args.allow_modes)
    if modes is None:
        print(f"error: --allow-modes: unknown mode in {args.allow_modes!r} "
              f"(use {', '.join(_MODES)})", file=sys.stderr)
        return 2
    config = ReceiveConfig(root=args.root, idle_timeout=args.idle_timeout or None,
                           workers=args.workers, allow_modes=modes,
                           allow_privileged_files=args.allow_privileged_files,
                           allow_commitmeta_replace=args.allow_commitmeta_replace)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer, config, log=log)
    except PyOstreeError as err:
        # Already sent to the client as an ERROR frame; stderr is for the server's log.
        print(f"error: {err}", file=sys.stderr)
        return 1
    FAST_EXIT = _exit_handlers_done()
    return 0


_MODES = ("archive", "archive-z2", "bare-user-only", "bare-user", "bare")


def _parse_modes(text: str) -> Optional[Tuple[str, ...]]:
    """The comma-separated modes, None if one is not a repo mode."""
    modes = tuple(name.strip() for name in text.split(",") if name.strip())
    if not modes or any(name not in _MODES for name in modes):
        return None
    return modes


def _exit_handlers_done() -> bool:
    """After a clean session (transaction committed or aborted, workers joined, stdout
    flushed) run the exit handlers now, so the fast exit skips only the teardown; unless
    another thread still runs: then the interpreter ends as usual."""
    import atexit
    import threading

    if threading.active_count() > 1:
        return False
    atexit._run_exitfuncs()  # logging's, say (imported with concurrent.futures)
    return True
