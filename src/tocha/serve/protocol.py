"""uvicorn's HTTP/1.1 protocol (h11) with a deadline for a request's headers.

uvicorn closes a connection that sits idle between requests, but not one that keeps sending its
headers a byte at a time: a few hundred such clients (slowloris) hold every connection the server
has. Here a connection whose request headers are not complete `HEADER_SECONDS` after it opened (or
after its last response) is closed.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 10.0


class TimedH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.responses = 0  # sent on this connection
        super().connection_made(transport)
        self.arm_header_deadline()

    def on_response_complete(self) -> None:
        self.responses += 1
        super().on_response_complete()
        self.arm_header_deadline()  # the next request on this connection gets its own deadline

    def arm_header_deadline(self) -> None:
        self.loop.call_later(HEADER_SECONDS, self.headers_too_slow, self.responses)

    def headers_too_slow(self, responses: int) -> None:
        """Close the connection if, since the deadline was armed, no response went out and the
        request's headers are still not in full (h11 waits for them: the client's state is IDLE)."""
        still_waiting = self.conn.their_state is h11.IDLE and self.responses == responses
        if still_waiting and not self.transport.is_closing():
            self.transport.close()
