"""Run the app under uvicorn on 127.0.0.1 (unless told otherwise) until Ctrl-C or SIGTERM.

The socket is bound here, before uvicorn starts, so `--port 0` (any free port) can print the port
it got. uvicorn handles the signals: it stops accepting, lets requests in flight finish, and
returns, and `tocha serve` exits 0.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path

from tocha.errors import TochaError


def serve(source: str | Path, host: str = "127.0.0.1", port: int = 8000, top_k: int = 5,
          max_upload_mb: float = 10.0, max_batch: int = 64,
          log: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:  # fmt: skip
    try:
        import uvicorn

        from tocha.serve.app import create_app
    except ImportError as e:
        raise TochaError(f"tocha serve needs {e.name}: pip install 'tocha[serve]'") from None
    from tocha.serve.predictor import load_predictor

    if top_k < 1:
        raise TochaError("--top-k must be at least 1")
    predictor = load_predictor(source)  # once, before the first request
    app = create_app(predictor, top_k, int(max_upload_mb * (1 << 20)), max_batch)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    card = predictor.card
    log(f"serving {card['model']} ({card['dataset']}, {len(predictor.classes)} classes, {card['runtime']}) "
        f"from {source} at http://{shown}:{bound_port}/ (Ctrl-C to stop)")  # fmt: skip
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=30)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again through the handlers
    # it found at start; these make that a no-op, so a requested stop exits 0.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log("stopped")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise TochaError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sock.listen(128)
    sock.setblocking(False)
    return sock
