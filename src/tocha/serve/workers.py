"""`tocha serve --workers N`: N server processes on one port, for more cores than one event loop
can use.

Each worker is a whole `tocha serve` of its own: the model loaded in it, its own batches, its own
bound on connections and its own `/health` (which says its `pid`). They listen on the same address
with SO_REUSEPORT, and the kernel hands each new connection to one of them. This process starts
them with the options it was given, holds the port for them while they load (bound, not
listening: it takes no connection itself), prints the address once every worker listens, passes
Ctrl-C and SIGTERM on to them, and stops them all if one of them fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tocha.errors import TochaError
from tocha.serve.connections import bound_socket

MAX_WORKERS = 64
START_SECONDS = 300  # a worker that has not said it listens by then (its model still loading) fails the start
STOP_SECONDS = 30  # after a stop is passed on: each worker's grace for requests in flight, and more


def check_workers(workers: int) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise TochaError(f"--workers must be 1 to {MAX_WORKERS}")
    if workers > 1 and not sys.platform.startswith("linux"):
        raise TochaError("--workers above 1 needs Linux (its SO_REUSEPORT shares one port among processes)")


def hold_port(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with SO_REUSEPORT and not listening: the port is this
    server's while its workers start, and no connection comes to it (only listening sockets get one)."""
    return bound_socket(host, port, shared=True)


def threads_each(workers: int) -> int:
    """torch threads for each of `workers` server processes: the cores this process may run on
    shared out, one of each share left to its event loop (at least one)."""
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may run on (Linux)
    except AttributeError:  # not on this system: the machine's
        cores = os.cpu_count() or 1
    return max(1, cores // workers - 1)


def serve_workers(source: str | Path, options: list[str], workers: int, host: str, port: int,
                  log: Callable[[str], None]) -> None:  # fmt: skip
    """Run `workers` processes of `tocha serve SOURCE OPTIONS` on one port until a stop or a failure."""
    held = hold_port(host, port)
    port = held.getsockname()[1]
    command = [sys.executable, "-m", "tocha", "serve", str(source), *options, "--host", host,
               "--port", str(port), "--reuse-port"]  # fmt: skip
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(threads_each(workers)))
    stopping = threading.Event()
    procs: list[subprocess.Popen] = []
    told: set[int] = set()  # the workers already sent SIGTERM

    def stop(*_: object) -> None:
        """Pass a stop on, once to each worker, as SIGTERM: it lets the requests in flight finish."""
        stopping.set()
        for proc in procs:
            if proc.pid not in told and proc.poll() is None:
                told.add(proc.pid)
                proc.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for _ in range(workers):
            # Each in a session of its own: Ctrl-C in a terminal reaches this process alone, which
            # passes it on once (uvicorn takes a Ctrl-C after a first stop as "stop now").
            procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env,
                                          start_new_session=True, preexec_fn=stop_with_parent))  # fmt: skip
        first = started(procs, stopping)
        if stopping.is_set():
            return
        pids = " ".join(str(proc.pid) for proc in procs)
        log(f"{first.split(' (Ctrl-C')[0]} with {workers} worker processes ({pids}) (Ctrl-C to stop)")
        failed = watch(procs, stopping)
        if failed is not None:
            raise TochaError(
                f"worker {failed.pid} exited with status {failed.returncode}; the others were stopped"
            )
    finally:
        stop()
        for proc in procs:
            try:
                proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        held.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log("stopped")


def started(procs: list[subprocess.Popen], stopping: threading.Event) -> str:
    """The first worker's "serving ..." line, once every worker has printed its own ("" if a stop
    came first); TochaError where one exits first or takes over `START_SECONDS`. Each worker's
    later lines are passed on."""
    lines: list[str | None] = [None] * len(procs)
    for i, proc in enumerate(procs):
        threading.Thread(target=first_line, args=(proc, lines, i), daemon=True).start()
    deadline = time.monotonic() + START_SECONDS
    while not stopping.wait(0.05):
        if all(line is not None for line in lines) or time.monotonic() > deadline:
            break
        if any(line is None and proc.poll() is not None for proc, line in zip(procs, lines, strict=True)):
            time.sleep(0.2)  # its last words read, if it had any
            break
    if stopping.is_set():
        return ""
    for proc, line in zip(procs, lines, strict=True):
        if not line or not line.startswith("serving "):
            status = proc.poll()
            said = f" (exit status {status}; its error is above)" if status is not None else ""
            raise TochaError(f"worker {proc.pid} did not start{said}")
    return str(lines[0]).rstrip("\n")


def stop_with_parent() -> None:
    """In a worker, before it runs: SIGTERM when this process dies, however it dies (Linux's
    PR_SET_PDEATHSIG), so no worker outlives a killed server."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def first_line(proc: subprocess.Popen, lines: list[str | None], index: int) -> None:
    """Read a worker's first line into `lines[index]`, then pass on the rest of its output (its
    notes on limits), leaving out its own "stopped" (this process says it once)."""
    assert proc.stdout is not None
    lines[index] = proc.stdout.readline()
    for line in proc.stdout:
        if line.strip() != "stopped":
            print(f"worker {proc.pid}: {line}", end="", flush=True)


def watch(procs: list[subprocess.Popen], stopping: threading.Event) -> subprocess.Popen | None:
    """Wait until a stop is asked (None) or a worker exits by itself (that worker)."""
    while not stopping.wait(0.2):
        for proc in procs:
            if proc.poll() is not None:
                return proc
    return None
