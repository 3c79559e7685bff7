"""How many connections `tocha serve` holds at once, and which one goes when another comes.

Every accepted connection takes a file descriptor, whether or not its client ever finishes a
request. Past the process's open-file limit, accept() fails with EMFILE: asyncio logs it and
retries while the slow clients hold every descriptor, requests already in get no file either, and a
stop trips over the retry. So the listening socket (`Listener`) accepts only while fewer than
`Gate.bound` accepted sockets are open: `MAX_CONNECTIONS`, or fewer where the open-file limit
leaves less room (`connection_bound`). At the bound, the connection that has waited longest for a
request's headers (a slow client, or an idle keep-alive one) is closed to make room, so a client
that sends its request at once is served however many others stall; when every connection has a
request in progress, the new one is closed at once.

This works through asyncio's selector event loop, which accepts by calling the listening socket's
`accept()` (`server.serve` runs uvicorn on it, not on uvloop; Windows' proactor loop accepts
without it, so there the bound is not kept).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, Protocol

from tocha.errors import TochaError

MAX_CONNECTIONS = 64
PER_CONNECTION = 2  # its socket, and a file its request opens (a figure; a multipart upload over 1 MB)
SPARE = 16  # descriptors kept for the rest: the event loop's, a log file, a library's late open


class Waiting(Protocol):
    """What the gate needs of a connection (`protocol.TimedH11Protocol`)."""

    transport: asyncio.Transport

    def waiting_since(self) -> float | None:
        """When it started waiting for a request's headers; None while a request is in progress."""
        ...


class Gate:
    """The accepted sockets still open, and the connections made on them."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.sockets: set[socket.socket] = set()  # accepted and not yet closed by the loop
        self.connections: set[Waiting] = set()
        self.shed: set[Waiting] = set()  # closed to make room; their descriptors free on the loop's next turn

    def made(self, connection: Waiting) -> None:
        self.connections.add(connection)

    def lost(self, connection: Waiting) -> None:
        self.connections.discard(connection)
        self.shed.discard(connection)

    def open_sockets(self) -> int:
        self.sockets = {s for s in self.sockets if s.fileno() != -1}  # the loop closes them, not us
        return len(self.sockets)

    def make_room(self) -> bool:
        """At the bound: whether room may come on the loop's next turn, for which it waits. The
        longest-waiting connection is closed now (or one closed before is not gone yet); or some
        accepted sockets are not connections yet (the loop makes them on its next turn) and may be
        waiting then. False when every connection has a request in progress."""
        if self.shed:
            return True
        waiting = [(since, id(c), c) for c in self.connections if (since := c.waiting_since()) is not None]
        if waiting:
            oldest = min(waiting)[2]
            oldest.transport.abort()  # closed on the loop's next turn, however full its buffers
            self.shed.add(oldest)
            return True
        return self.open_sockets() > len(self.connections)


class Listener(socket.socket):
    """The listening socket: accept() keeps the gate's bound."""

    gate: Gate

    def accept(self) -> tuple[socket.socket, Any]:
        while self.gate.open_sockets() >= self.gate.bound:
            if self.gate.make_room():
                # asyncio's accept loop stops here for this turn (as when no one is waiting) and comes
                # back on the next, once the shed connection's descriptor is closed.
                raise BlockingIOError
            conn, _ = super().accept()  # BlockingIOError when no one is waiting
            conn.close()  # every connection is busy with a request: this one is refused
        conn, address = super().accept()
        self.gate.sockets.add(conn)
        return conn, address


def open_descriptors() -> int:
    """Descriptors this process has open (Linux and macOS list them), else a generous guess."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 64


def connection_bound(most: int = MAX_CONNECTIONS) -> tuple[int, int | None]:
    """How many connections can be open at once: `most`, fewer where the open-file limit leaves
    less room (the soft limit is raised towards the hard one first, as far as `most` needs); and the
    limit, None where there is none to read."""
    try:
        import resource
    except ImportError:  # not a Unix: no per-process limit to read
        return most, None
    in_use = open_descriptors()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = in_use + SPARE + PER_CONNECTION * most
    if soft != resource.RLIM_INFINITY and soft < need:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):  # a sandbox may refuse; the bound below then follows the old one
            pass
    if soft == resource.RLIM_INFINITY:
        return most, None
    bound = min(most, (soft - in_use - SPARE) // PER_CONNECTION)
    if bound < 1:
        raise TochaError(
            f"the open-file limit ({soft}) leaves no room for connections ({in_use} already "
            "open): raise it (ulimit -n)"
        )
    return bound, soft


def bound_socket(host: str, port: int, kind: type[socket.socket] = socket.socket, *,
                 shared: bool = False) -> Any:  # fmt: skip
    """A TCP socket of class `kind` bound to (host, port), not yet listening; TochaError naming the
    address where it cannot be bound. `shared`: SO_REUSEPORT, so the workers of `--workers N` bind
    the same port. IPPROTO_TCP is named, not left 0: asyncio turns Nagle's algorithm off
    (TCP_NODELAY) only on sockets that say they are TCP, and with it on a response's body waits for
    the client to acknowledge its headers, which the client delays by up to 40 ms."""
    host = host.strip("[]")
    sock = kind(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise TochaError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    return sock
