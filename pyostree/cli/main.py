"""Entry point of ``pyostree``: finds the command module, parses, runs, maps errors to exit codes.

Only the module of the command being run is imported, so start-up stays cheap whatever
other commands pull in (paramiko, zstandard...). A command module that sets
``FAST_EXIT = True`` (it leaves no threads, temporary files or unclosed writes behind) lets
the program end with ``os._exit`` once its output is flushed, skipping the interpreter's
teardown: after a walk over thousands of entries that alone costs 10-20 ms.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from types import ModuleType
from typing import NoReturn, Optional, Sequence

import pyostree
import pyostree.cli
from pyostree.errors import PyOstreeError

__all__ = ["main", "command_names", "load_command"]

PROG = "pyostree"
USAGE_ERROR_STATUS = 1
INTERRUPTED_STATUS = 130
BROKEN_PIPE_STATUS = 141
_COMMAND_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_FRAME_MODULES = frozenset({"main", "common"})


class UsageError(PyOstreeError):
    """The command line itself is wrong (unknown option, missing argument)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports misuse like ostree: ``error: ...`` and exit status 1."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, minus its ``import shutil`` (bz2, lzma...) on every run:
    argparse builds a formatter for each option added, help or not."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: Optional[int] = None) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _module_names() -> list[str]:
    import pkgutil  # only for listing: running one command imports it directly

    names = []
    for info in pkgutil.iter_modules(pyostree.cli.__path__):
        if info.name.startswith("_") or info.name in _FRAME_MODULES:
            continue
        names.append(info.name)
    return sorted(names)


def load_command(name: str) -> Optional[ModuleType]:
    """The command module for ``name`` as typed, or None if there is no such command."""
    if not _COMMAND_NAME.match(name):
        return None
    module_name = name.replace("-", "_")
    if module_name in _FRAME_MODULES:
        return None
    qualified = f"pyostree.cli.{module_name}"
    try:
        module = importlib.import_module(qualified)
    except ModuleNotFoundError as err:
        if err.name == qualified:
            return None
        raise
    if getattr(module, "NAME", None) != name:
        return None
    return module


def command_names() -> dict[str, str]:
    """Every discoverable command and its one-line summary (imports them all)."""
    commands: dict[str, str] = {}
    for module_name in _module_names():
        try:
            module = importlib.import_module(f"pyostree.cli.{module_name}")
        except Exception:  # a half-written command must not break the listing
            continue
        name = getattr(module, "NAME", None)
        if isinstance(name, str):
            commands[name] = str(getattr(module, "SUMMARY", ""))
    return dict(sorted(commands.items()))


def _split_command(argv: Sequence[str]) -> Optional[str]:
    """The first word that is not a global option: the command name."""
    skip_value = False
    for word in argv:
        if skip_value:
            skip_value = False
            continue
        if word == "--":
            return None
        if word == "--repo":
            skip_value = True
            continue
        if word.startswith("-"):
            continue
        return word
    return None


def _add_repo_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="path to the OSTree repository (else the current directory if it is one, "
        "else $OSTREE_REPO)",
    )


def _usage_text() -> str:
    lines = [f"usage: {PROG} [--repo=PATH] COMMAND [OPTIONS...]", "", "Commands:"]
    commands = command_names()
    width = max((len(name) for name in commands), default=0)
    for name, summary in commands.items():
        lines.append(f"  {name.ljust(width)}  {summary}".rstrip())
    lines.append("")
    lines.append(f"Run '{PROG} COMMAND --help' for the options of a command.")
    return "\n".join(lines) + "\n"


def _build_parser(name: str, module: ModuleType) -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, add_help=False, formatter_class=_Formatter)
    _add_repo_option(parser)
    subparsers = parser.add_subparsers(dest="command", parser_class=_Parser)
    add_parser = getattr(module, "add_parser", None)
    if not hasattr(module, "add_arguments") and callable(add_parser):
        add_parser(subparsers)  # the older protocol of docs/DESIGN.md
        return parser
    summary = str(getattr(module, "SUMMARY", ""))
    sub = subparsers.add_parser(name, help=summary, description=summary, formatter_class=_Formatter)
    _add_repo_option(sub)
    module.add_arguments(sub)
    return parser


def _exec_extension(name: str, argv: list[str]) -> None:
    """Like ostree, run ``ostree-NAME`` from $PATH for an unknown command, with every
    argument (the command name included); returns only if there is none."""
    import shutil

    if "/" in name or not _COMMAND_NAME.match(name):
        return
    path = shutil.which(f"ostree-{name}")
    if path is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(path, [path, *argv])


def _parse_intermixed(name: str, module: ModuleType, argv: list[str]) -> argparse.Namespace:
    """Options anywhere between the positionals, as GOption allows (``config set --group=G
    KEY VALUE``), for a module that sets ``INTERMIXED = True``."""
    summary = str(getattr(module, "SUMMARY", ""))
    parser = _Parser(prog=f"{PROG} {name}", description=summary, formatter_class=_Formatter)
    _add_repo_option(parser)
    module.add_arguments(parser)
    words = list(argv)
    words.remove(name)
    args = parser.parse_intermixed_args(words)
    args.command = name
    return args


def _resolve_repo(explicit: Optional[str]) -> Optional[str]:
    """``--repo``, else the working directory if it is a repo, else ``$OSTREE_REPO`` (as ostree)."""
    if explicit is not None:
        return explicit
    if os.path.isdir("objects") and os.path.isfile("config"):
        return "."
    env_repo = os.environ.get("OSTREE_REPO", "")
    return env_repo or None


def _run(argv: list[str]) -> tuple[int, bool]:
    """Exit status, and whether the command allows a fast exit (``FAST_EXIT``)."""
    name = _split_command(argv)
    if name is None:
        if "--version" in argv:
            sys.stdout.write(f"{PROG} {pyostree.__version__}\n")
            return 0, False
        wants_help = "-h" in argv or "--help" in argv
        (sys.stdout if wants_help else sys.stderr).write(_usage_text())
        return (0 if wants_help else USAGE_ERROR_STATUS), False
    module = load_command(name)
    if module is None:
        _exec_extension(name, argv)
        sys.stderr.write(_usage_text())
        raise UsageError(f"Unknown command '{name}'")
    if getattr(module, "INTERMIXED", False) is True:
        args = _parse_intermixed(name, module, argv)
    else:
        args = _build_parser(name, module).parse_args(argv)
    args.repo = _resolve_repo(getattr(args, "repo", None))
    status = module.run(args)
    return int(status or 0), getattr(module, "FAST_EXIT", False) is True


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _utf8_stdio() -> None:
    """Names go out as UTF-8 whatever the locale (ostree turns them into "?" under LC_ALL=C)."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        reconfigure = getattr(stream, "reconfigure", None)
        if encoding != "utf8" and reconfigure is not None:
            try:
                reconfigure(encoding="utf-8", errors="surrogateescape")
            except (ValueError, OSError):
                pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one ``pyostree`` command line and return its exit status.

    Called without ARGV, as the program itself, a ``FAST_EXIT`` command that succeeded
    ends the process here (see the module's docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _utf8_stdio()
    try:
        status, fast_exit = _run(args)
        sys.stdout.flush()
        if fast_exit and argv is None:
            _exit_now(status)
        return status
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE_STATUS
    except KeyboardInterrupt:
        return INTERRUPTED_STATUS
    except PyOstreeError as err:
        _print_error(str(err))
        return USAGE_ERROR_STATUS
    except OSError as err:
        _print_error(_describe_os_error(err))
        return USAGE_ERROR_STATUS


def _exit_now(status: int) -> None:
    """``os._exit(STATUS)`` after flushing stdio, unless another thread is still running."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _describe_os_error(err: OSError) -> str:
    message = err.strerror or str(err)
    if err.filename is not None:
        return f"{message}: {os.fsdecode(err.filename)}"
    return message


def _print_error(message: str) -> None:
    one_line = " ".join(message.splitlines()) or "unknown error"
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        _silence_stdout()
    sys.stderr.write(f"error: {one_line}\n")
    sys.stderr.flush()
