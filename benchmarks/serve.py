"""`tocha serve` under load: requests per second and latency, with and without micro-batching.

    python benchmarks/serve.py [--clients 16] [--seconds 10] [--data-dir ../shared/data]

For TinyVGG, an MLP and the ResNet (trained one epoch on Fashion-MNIST), a real `tocha serve` process on
127.0.0.1 is loaded by `--clients` concurrent clients (asyncio + httpx, in this one process) for
`--seconds`, each sending one PNG per request, or 16 PNGs per request as multipart. Each setting runs
with micro-batching on (`--max-batch 64`) and off (`--max-batch 1`). Reported: requests/s, images/s,
p50 and p99 latency, errors, and the server's resident memory before and after. The clients share
the 2 CPU cores with the server, so the figures are those of the whole machine under load.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED_DATA, emit, machine, train_quietly
from PIL import Image

# The speed of serving does not depend on how well a model is trained: the ResNet trains on a slice.
MODELS = {"tinyvgg": {}, "mlp": {}, "resnet": {"data.train_limit": 2000}}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(url: str, pngs: list[bytes], per_request: int, clients: int, seconds: float) -> dict:
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
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {"requests_per_second": round(len(latencies) / elapsed, 1),
            "images_per_second": round(len(latencies) * per_request / elapsed, 1),
            "p50_ms": round(1000 * quantiles[49], 1), "p99_ms": round(1000 * quantiles[98], 1),
            "requests": len(latencies), "errors": errors}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    args = parser.parse_args()
    emit({"benchmark": "serve", "clients": args.clients, "seconds": args.seconds, **machine()})
    out = Path(tempfile.mkdtemp())
    for model, extra in MODELS.items():
        settings = {"data.name": "fashion-mnist", "model.name": model, "train.epochs": 1, **extra}
        run = train_quietly(settings, args.data_dir, out / model)
        pngs = []
        for image in run.data.test.images[:64]:
            buffer = io.BytesIO()
            Image.fromarray(image[0].numpy()).save(buffer, format="PNG")
            pngs.append(buffer.getvalue())
        for max_batch in (64, 1):
            command = [sys.executable, "-m", "tocha", "serve", str(run.run_dir), "--port", "0",
                       "--max-batch", str(max_batch)]  # fmt: skip
            server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            url = server.stdout.readline().split(" at ")[1].split(" ")[0] + "predict"
            try:
                asyncio.run(load(url, pngs, 1, args.clients, 1.0))  # warm-up
                before = rss_mb(server.pid)
                for per_request in (1, 16):
                    result = asyncio.run(load(url, pngs, per_request, args.clients, args.seconds))
                    after = rss_mb(server.pid)
                    emit({"model": model, "max_batch": max_batch, "images_per_request": per_request, **result,
                          "rss_mb_before": round(before, 1), "rss_mb_after": round(after, 1)})  # fmt: skip
            finally:
                server.terminate()
                server.wait(timeout=60)


if __name__ == "__main__":
    main()
