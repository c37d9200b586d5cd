"""ServerAliveInterval and ServerAliveCountMax for a paramiko transport, as OpenSSH does them.

paramiko's own keepalive (``Transport.set_keepalive``) sends a request that wants no reply,
so it cannot tell a dead server from a quiet one. This asks for a reply every interval;
after ``count_max`` intervals without one the transport is closed, which ends every read
and write blocked on it (a push then fails instead of hanging on a vanished server).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

__all__ = ["ServerAlive"]

#: The request OpenSSH sends; servers that do not know it answer "failure", which is an answer.
_REQUEST = "keepalive@openssh.com"


class ServerAlive(threading.Thread):
    """Watches one transport until it ends or :meth:`stop` is called."""

    def __init__(self, transport: Any, interval: float, count_max: int,
                 on_dead: Optional[Callable[[str], None]] = None) -> None:
        super().__init__(daemon=True, name="ssh-server-alive")
        self._transport = transport
        self._interval = interval
        self._count_max = max(count_max, 1)
        self._stopped = threading.Event()
        self._on_dead = on_dead
        self.dead_reason: Optional[str] = None

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        answered = threading.Event()
        asking: Optional[threading.Thread] = None
        missed = 0
        while not self._stopped.wait(self._interval):
            if not self._transport.is_active():
                return
            if asking is None or answered.is_set():
                missed = 0
                answered.clear()
                asking = threading.Thread(target=self._ask, args=(answered,), daemon=True,
                                          name="ssh-server-alive-request")
                asking.start()
                continue
            missed += 1
            if missed >= self._count_max:
                self.dead_reason = (f"server not responding: no answer to {self._count_max} keepalive(s) "
                                    f"{self._interval:g} s apart")
                if self._on_dead is not None:
                    self._on_dead(self.dead_reason)
                self._transport.close()
                return

    def _ask(self, answered: threading.Event) -> None:
        try:
            # Blocks until the reply (success or failure) arrives or the transport ends.
            self._transport.global_request(_REQUEST, wait=True)
        except Exception:  # noqa: BLE001 - a dead transport: the watcher sees it next round
            return
        if self._transport.is_active():
            answered.set()
