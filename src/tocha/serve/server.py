"""Run the app under uvicorn on 127.0.0.1 (unless told otherwise) until Ctrl-C or SIGTERM.

The socket is bound here, before uvicorn starts, so `--port 0` (any free port) can print the port
it got. uvicorn handles the signals: it stops accepting, lets requests in flight finish (for at most
`GRACE_SECONDS`: a stalled upload does not keep the server alive), and returns, and `tocha serve`
exits 0. What a client can hold is bounded: its request headers must be in within 10 s
(`serve.protocol`), its upload within 30 s, and at most `MAX_CONNECTIONS` connections are open at
once, fewer where the open-file limit leaves less room (`serve.connections`: past the bound, the
connection that has waited longest for its request's headers is closed). On a loopback address
only the loopback host names are answered.
"""

from __future__ import annotations

import functools
import gc
import ipaddress
import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from tocha.errors import TochaError
from tocha.serve.connections import MAX_CONNECTIONS, Gate, Listener, bound_socket, connection_bound
from tocha.serve.workers import check_workers, serve_workers, threads_each
from tocha.tasks import check_top_k

GRACE_SECONDS = 10  # a stop waits this long at most for requests in flight


def check_options(
    host: str, port: int, top_k: int, max_upload_mb: float, *, max_batch: int, max_pixels: int
) -> None:
    """Every option in its range, before the model is loaded."""
    check_top_k(top_k, "--top-k")
    checks = {
        "--host": (bool(host.strip()), "must name an address (127.0.0.1, this machine only; 0.0.0.0, all)"),
        "--port": (0 <= port <= 65535, "must be 0 to 65535 (0: any free one)"),
        "--max-upload-mb": (
            math.isfinite(max_upload_mb) and 0 < max_upload_mb <= 1024,
            "must be above 0, at most 1024",
        ),
        "--max-batch": (max_batch >= 1, "must be at least 1"),
        "--max-pixels": (max_pixels >= 1, "must be at least 1"),
    }
    for flag, (ok, why) in checks.items():
        if not ok:
            raise TochaError(f"{flag} {why}")


def serve(source: str | Path, host: str = "127.0.0.1", port: int = 8000, top_k: int = 5,
          *, max_upload_mb: float = 10.0, max_batch: int = 64, max_pixels: int = 25_000_000,
          allowed_hosts: list[str] | None = None,
          log: Callable[[str], None] = lambda line: print(line, flush=True),
          model_file: str | Path | None = None, trust_code: bool = False,
          workers: int = 1, reuse_port: bool = False) -> None:  # fmt: skip
    """Serve `source` until Ctrl-C or SIGTERM; `workers` processes on one port (`serve.workers`);
    `reuse_port`: bind as one of them."""
    check_options(host, port, top_k, max_upload_mb, max_batch=max_batch, max_pixels=max_pixels)
    check_workers(workers)
    if workers > 1:
        options = ["--top-k", str(top_k), "--max-upload-mb", str(max_upload_mb),
                   "--max-batch", str(max_batch), "--max-pixels", str(max_pixels)]  # fmt: skip
        options += ["--allowed-hosts", ",".join(allowed_hosts)] if allowed_hosts is not None else []
        options += ["--model-file", str(model_file)] if model_file is not None else []
        options += ["--trust-code"] if trust_code else []
        return serve_workers(source, options, workers, host, port, log)
    try:
        import uvicorn

        from tocha.serve.app import LOOPBACK_HOSTS, create_app
        from tocha.serve.protocol import TimedH11Protocol
    except ImportError as e:
        raise TochaError(f"tocha serve needs {e.name}: pip install 'tocha[serve]'") from None
    from tocha.serve.predictor import load_predictor

    predictor = load_predictor(source, model_file, trust_code)  # once, before the first request
    leave_a_core_to_the_loop()
    if allowed_hosts is None and is_loopback(host):
        allowed_hosts = LOOPBACK_HOSTS  # a page elsewhere cannot rebind its name to this machine
    app = create_app(
        predictor,
        top_k,
        int(max_upload_mb * (1 << 20)),
        max_batch,
        max_pixels=max_pixels,
        allowed_hosts=allowed_hosts,
    )
    bound, limit = connection_bound()  # after the model is loaded: what it keeps open is counted
    # torch's and the model's 300,000 objects live as long as the server: left to the garbage
    # collector, each full collection would walk them all (0.1 to 0.3 s) with every request waiting.
    gc.collect()
    gc.freeze()
    gate = Gate(bound)
    sock = bind(host, port, gate, reuse_port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    card = predictor.card
    log(f"serving {card['model']} ({card['dataset']}, {len(predictor.classes)} classes, {card['runtime']}) "
        f"from {source} at http://{shown}:{bound_port}/ (Ctrl-C to stop)")  # fmt: skip
    if bound < MAX_CONNECTIONS:
        log(f"at most {bound} connections at once: the open-file limit is {limit} (ulimit -n raises it)")
    # loop="asyncio": its accept goes through the Listener's accept(), where the bound is kept.
    # limit_concurrency counts the asking connection too, so with one more than the gate's bound its
    # 503 is left for requests still running after their clients left.
    config = uvicorn.Config(app, log_level="warning", access_log=False, loop="asyncio",
                            http=functools.partial(TimedH11Protocol, gate=gate),
                            limit_concurrency=gate.bound + 1,
                            timeout_graceful_shutdown=GRACE_SECONDS)  # fmt: skip
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again through the handlers
    # it found at start; these make that a no-op, so a requested stop exits 0.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log("stopped")


def leave_a_core_to_the_loop() -> None:
    """torch's threads for the model: one core fewer than this process may use (at least one).
    The event loop needs a core of its own for HTTP and decoding, and torch's OpenMP threads wait
    for each other at every operation: one of them sharing the loop's core, or a load client's,
    makes a 0.2 ms MLP batch take milliseconds. A thread count set by OMP_NUM_THREADS is kept, and
    an ONNX export (onnxruntime, no torch) is left alone."""
    if "torch" not in sys.modules or "OMP_NUM_THREADS" in os.environ:
        return
    import torch

    torch.set_num_threads(min(torch.get_num_threads(), threads_each(1)))


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.1, ::1, localhost)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def bind(host: str, port: int, gate: Gate, shared: bool = False) -> Listener:
    """The listening socket (`shared`: one of several workers' on the same port)."""
    sock = bound_socket(host, port, Listener, shared=shared)
    sock.gate = gate
    sock.listen(128)
    sock.setblocking(False)
    return sock
