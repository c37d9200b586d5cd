"""A write to a remote command that paramiko ends with a bare ``EOFError`` (the channel
closed under it) still gets a message that says what happened, not an empty one."""

from __future__ import annotations

import pytest

from pyostree.errors import TransportError
from pyostree.transport.paramiko_vendor import ParamikoExecChannel


class _ClosedChannel:
    """Just the calls the exec channel makes while writing: the peer is gone."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def sendall(self, data: object) -> None:
        raise self.error


@pytest.mark.parametrize(("error", "detail"), [
    (EOFError(), "connection closed"),
    (OSError("Socket is closed"), "Socket is closed"),
])
def test_write_error_message_is_never_empty(error: BaseException, detail: str) -> None:
    channel = ParamikoExecChannel(_ClosedChannel(error))  # type: ignore[arg-type]
    with pytest.raises(TransportError) as info:
        channel.stdin.write(b"x" * 100)
        channel.stdin.flush()
    assert str(info.value) == f"cannot write to remote command: {detail}"
