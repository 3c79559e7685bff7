"""`tocha serve` under load against the bare stack it runs on: requests per second, latency, batches.

    python benchmarks/serve.py [--clients 16] [--seconds 8] [--models tinyvgg,mlp,resnet]
                               [--client httpx|raw] [--workers 1] [--data-dir ../shared/data]

For TinyVGG, an MLP and the ResNet (trained one epoch on Fashion-MNIST), a real `tocha serve` process on
127.0.0.1 is loaded by `--clients` concurrent clients (asyncio + httpx, in this one process; or with
`--client raw`, asyncio streams sending requests made in advance, which cost the machine less) for
`--seconds`, each sending one PNG per request, or 16 PNGs per request as multipart. Each setting runs
with micro-batching on (`--max-batch 64`) and off (`--max-batch 1`). Before each model, the same
client loads the bare stack, a Starlette + uvicorn endpoint that reads the body and answers a small
JSON (`--bare`, this script as a server): what `tocha serve` costs is its ratio to that, measured in
the same run. The clients share the cores with the server, so the figures are those of the whole
machine under load; compare them within one run only.

Reported for each: requests/s, images/s, p50 and p99 latency, errors, the ratio of requests/s to the
bare stack's, the batches the server formed (images per batch -> batches, from `/health`; counted
during the measurement only) and its resident memory before and after (with `--workers N`, each
worker's, the mean: `/health` then answers for the worker that took the connection).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import SHARED_DATA, emit, machine, train_quietly
from PIL import Image

# The speed of serving does not depend on how well a model is trained: the ResNet trains on a slice.
MODELS = {"tinyvgg": {}, "mlp": {}, "resnet": {"data.train_limit": 2000}}
PER_REQUEST = (1, 16)  # images per request: one raw PNG, or 16 as multipart


def workers_rss_mb(pid: int) -> float:
    """Resident memory of the server: its own, or with `--workers` that of each worker process
    (the mean; the process that started them holds no model)."""
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]  # fmt: skip
    return statistics.mean(rss_mb(c) for c in children) if children else rss_mb(pid)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(url: str, pngs: list[bytes], per_request: int, clients: int, seconds: float,
               client_kind: str = "httpx") -> dict:  # fmt: skip
    if client_kind == "raw":
        return await load_raw(url, pngs, per_request, clients, seconds)
    import httpx

    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(c: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop_at:
            batch = [pngs[(i + j) % len(pngs)] for j in range(per_request)]
            i += per_request
            started = time.perf_counter()
            if per_request == 1:
                r = await c.post(url, content=batch[0], headers={"Content-Type": "image/png"})
            else:
                r = await c.post(
                    url, files=[("file", (f"{j}.png", b, "image/png")) for j, b in enumerate(batch)]
                )
            latencies.append(time.perf_counter() - started)
            errors += r.status_code != 200

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as c:
        await asyncio.gather(*(client(c, k * 7) for k in range(clients)))
    return figures(latencies, errors, per_request, time.perf_counter() - started)


async def load_raw(url: str, pngs: list[bytes], per_request: int, clients: int, seconds: float) -> dict:
    """`load` with a client that costs the machine little: each of `clients` keeps one HTTP/1.1
    connection (asyncio streams) and sends requests made in advance, reading each answer by its
    Content-Length. httpx spends several times the server's own time on each request, and on two
    shared cores that is time the server waits for."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    requests = [raw_request(f"{host}:{port}", path, [pngs[(i + j) % len(pngs)] for j in range(per_request)])
                for i in range(0, len(pngs), per_request)]  # fmt: skip
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        i = offset
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            errors += status.split(b" ")[1] != b"200"
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k * 7) for k in range(clients)))
    return figures(latencies, errors, per_request, time.perf_counter() - started)


def raw_request(host: str, path: str, images: list[bytes]) -> bytes:
    """One POST as bytes: a PNG as the body, or several as multipart/form-data."""
    if len(images) == 1:
        body, kind = images[0], b"image/png"
    else:
        boundary = b"tochabenchboundary"
        parts = [b"--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%d.png\"\r\n"
                 b"Content-Type: image/png\r\n\r\n%s\r\n" % (boundary, j, image)
                 for j, image in enumerate(images)]  # fmt: skip
        body, kind = b"".join(parts) + b"--%s--\r\n" % boundary, b"multipart/form-data; boundary=" + boundary
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n").encode()
    return head + b"Content-Type: " + kind + b"\r\n\r\n" + body


def figures(latencies: list[float], errors: int, per_request: int, elapsed: float) -> dict:
    quantiles = statistics.quantiles(latencies, n=100)
    return {"requests_per_second": round(len(latencies) / elapsed, 1),
            "images_per_second": round(len(latencies) * per_request / elapsed, 1),
            "p50_ms": round(1000 * quantiles[49], 1), "p99_ms": round(1000 * quantiles[98], 1),
            "requests": len(latencies), "errors": errors}  # fmt: skip


def bare_server() -> None:
    """The bare stack: Starlette + uvicorn on a free port of 127.0.0.1, reading the body and answering
    a small JSON; prints its URL as `tocha serve` does."""
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def predict(request: Request) -> JSONResponse:
        return JSONResponse({"bytes": len(await request.body())})

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as uvicorn.run makes it
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"bare stack at http://127.0.0.1:{sock.getsockname()[1]}/ (Ctrl-C to stop)", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


@contextmanager
def running(command: list[str]) -> Iterator[tuple[subprocess.Popen, str]]:
    """A server process and its /predict URL, from the line it prints; stopped at the end."""
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        yield server, server.stdout.readline().split(" at ")[1].split(" ")[0] + "predict"  # type: ignore[union-attr]
    finally:
        server.terminate()
        server.wait(timeout=60)


def batch_sizes(url: str) -> dict[int, int]:
    """Images per batch -> batches formed so far, from the server's /health."""
    import httpx

    health = httpx.get(url.removesuffix("predict") + "health", timeout=10).json()
    return {int(size): n for size, n in health.get("batch_sizes", {}).items()}


def formed(before: dict[int, int], after: dict[int, int]) -> dict[str, object]:
    """The batches formed between two readings: their sizes, and the mean images per batch."""
    sizes = {size: n - before.get(size, 0) for size, n in sorted(after.items()) if n > before.get(size, 0)}
    batches = sum(sizes.values())
    mean = sum(size * n for size, n in sizes.items()) / batches if batches else 0.0
    return {"batches": batches, "mean_batch": round(mean, 2), "batch_sizes": json.dumps(sizes)}


def measure_bare(pngs: list[bytes], args: argparse.Namespace) -> dict[int, dict]:
    """The bare stack's figures for each number of images per request."""
    with running([sys.executable, __file__, "--bare"]) as (_, url):
        asyncio.run(load(url, pngs, 1, args.clients, 1.0, args.client))  # warm-up
        return {
            n: asyncio.run(load(url, pngs, n, args.clients, args.seconds, args.client)) for n in PER_REQUEST
        }


def measure_tocha(model: str, run_dir: Path, pngs: list[bytes], bare: dict[int, dict],
                  args: argparse.Namespace) -> None:  # fmt: skip
    for max_batch in (64, 1):
        command = [sys.executable, "-m", "tocha", "serve", str(run_dir), "--port", "0",
                   "--max-batch", str(max_batch), "--workers", str(args.workers)]  # fmt: skip
        with running(command) as (server, url):
            asyncio.run(load(url, pngs, 1, args.clients, 1.0, args.client))  # warm-up
            before = workers_rss_mb(server.pid)
            for per_request in PER_REQUEST:
                sizes = batch_sizes(url)
                result = asyncio.run(load(url, pngs, per_request, args.clients, args.seconds, args.client))
                base = bare[per_request]
                emit({"model": model, "max_batch": max_batch, "images_per_request": per_request, **result,
                      "bare_requests_per_second": base["requests_per_second"], "bare_p50_ms": base["p50_ms"],
                      "bare_p99_ms": base["p99_ms"],
                      "ratio_to_bare": round(result["requests_per_second"] / base["requests_per_second"], 2),
                      **formed(sizes, batch_sizes(url)), "rss_mb_before": round(before, 1),
                      "rss_mb_after": round(workers_rss_mb(server.pid), 1),
                      "workers": args.workers})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, of " + ", ".join(MODELS))
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="httpx",
        help="the load client: httpx (asyncio), or raw asyncio streams (costs the machine less)",
    )
    parser.add_argument("--workers", type=int, default=1, help="tocha serve's --workers")
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)  # run as the bare stack
    args = parser.parse_args()
    if args.bare:
        return bare_server()
    emit({"benchmark": "serve", "clients": args.clients, "client": args.client, "seconds": args.seconds,
          **machine()})  # fmt: skip
    out = Path(tempfile.mkdtemp())
    for model in args.models.split(","):
        settings = {"data.name": "fashion-mnist", "model.name": model, "train.epochs": 1, **MODELS[model]}
        run = train_quietly(settings, args.data_dir, out / model)
        pngs = []
        for image in run.data.test.images[:64]:
            buffer = io.BytesIO()
            Image.fromarray(image[0].numpy()).save(buffer, format="PNG")
            pngs.append(buffer.getvalue())
        bare = measure_bare(pngs, args)
        emit({"model": model, "server": "bare", **{f"{n}_per_request": bare[n] for n in PER_REQUEST}})
        measure_tocha(model, run.run_dir, pngs, bare, args)


if __name__ == "__main__":
    main()
