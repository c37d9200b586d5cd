"""Entry point of the ``pyostree`` command (placeholder until the commands land)."""

from __future__ import annotations

import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    print("usage: pyostree [--repo=PATH] COMMAND ...", file=sys.stderr)
    return 1 if args else 0
