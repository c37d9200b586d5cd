"""The ``pyostree`` command line: one module per command, found at run time.

Protocol for a command module ``pyostree/cli/<name>.py`` (dashes in the command become
underscores in the module name, so ``rev-parse`` lives in ``rev_parse.py``)::

    NAME: str                       # the command as typed, e.g. "rev-parse"
    SUMMARY: str                    # one line shown by ``pyostree`` with no command
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...   # exit status

``main.py`` discovers these modules with ``pkgutil.iter_modules`` (a module without a
``NAME`` is not a command) and imports only the one being run, so a slow import in one
command never delays another. Nobody needs to edit ``main.py`` to add a command.

``--repo`` is handled by the frame (before or after the command); ``args.repo`` is the
resolved path or None, and ``pyostree.cli.common.open_repo(args)`` opens it. Raise a
``pyostree.errors.PyOstreeError`` for any user-facing failure: the frame prints
``error: MESSAGE`` on stderr and exits 1. Only this package prints or reads the environment.
"""
