"""uvicorn's HTTP/1.1 protocol (h11) with a deadline for a request's headers, kept by the gate.

uvicorn closes a connection that sits idle between requests, but not one that keeps sending its
headers a byte at a time: a few hundred such clients (slowloris) hold every connection the server
has. Here a connection whose request headers are not complete `HEADER_SECONDS` after it opened (or
after its last response) is closed; and it tells the gate (`serve.connections`) when it started
waiting, so that the one waiting longest is closed first when the server is at its bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from tocha.serve.connections import Gate

HEADER_SECONDS = 10.0


class TimedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, gate: Gate | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.responses = 0  # sent on this connection
        self.deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self.arm_header_deadline()
        if self.gate is not None:
            self.gate.made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.gate is not None:
            self.gate.lost(self)
        if self.deadline is not None:
            self.deadline.cancel()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self.responses += 1
        super().on_response_complete()
        self.arm_header_deadline()  # the next request on this connection gets its own deadline

    def arm_header_deadline(self) -> None:
        """The deadline for the next request's headers; the previous one is cancelled, so a busy
        connection keeps one timer on the loop, not one per request for 10 s."""
        if self.deadline is not None:
            self.deadline.cancel()
        self.armed_at = self.loop.time()
        self.deadline = self.loop.call_later(HEADER_SECONDS, self.headers_too_slow, self.responses)

    def waiting_since(self) -> float | None:
        """When it began waiting for a request's headers (h11 waits for them: the client's state is
        IDLE); None while a request is in progress or the connection is closing."""
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            return self.armed_at
        return None

    def headers_too_slow(self, responses: int) -> None:
        """Close the connection if, since the deadline was armed, no response went out and the
        request's headers are still not in full."""
        if self.responses == responses and self.waiting_since() is not None:
            self.transport.close()
