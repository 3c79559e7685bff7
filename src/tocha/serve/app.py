"""The web app: the page, `POST /predict`, `GET /model`, `GET /health`, and the run's two figures.

Every client mistake is a 4xx with a one-line reason in `{"error": ...}` and the server goes on.
Uploads are refused by their declared size before they are read, and counted while they are read
(a body without a length cannot grow past the limit either). No client input names a file: the
figures are looked up in a fixed table made at start; nothing a client sends is unpickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tocha.data.images import UnreadableImage, peek_bytes
from tocha.serve.batcher import MicroBatcher
from tocha.serve.predictor import Predictor

MAX_FILES = 64
BODY_SECONDS = 30.0  # an upload that takes longer is a stalled client, not a slow network
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


class ClientError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class PixelBudget:
    """Decoded pixels: each upload at most `per_upload` (read from its header, before decoding),
    and the requests decoding at once together at most `in_flight` (a busy server says 503, retry).
    A request decodes its uploads one after another, each shrunk to the model's size at once, so
    what it holds at its peak is its largest upload."""

    def __init__(self, per_upload: int, in_flight: int) -> None:
        self.per_upload, self.in_flight, self.taken = per_upload, in_flight, 0

    def take(self, uploads: list[tuple[str, bytes]]) -> int:
        pixels = 0  # the largest upload's
        for name, data in uploads:
            try:
                _, (width, height) = peek_bytes(data, name)
            except UnreadableImage as e:
                raise ClientError(400, str(e)) from e
            if width * height > self.per_upload:
                raise ClientError(400, f"{name}: {width}x{height} pixels, over the {self.per_upload:,} an "
                                  "upload may have; refused as a possible decompression bomb")  # fmt: skip
            pixels = max(pixels, width * height)
        if self.taken + pixels > self.in_flight:
            raise ClientError(503, "busy decoding other uploads; try again")
        self.taken += pixels
        return pixels

    def give_back(self, pixels: int) -> None:
        self.taken -= pixels


def create_app(predictor: Predictor, top_k: int = 5, max_upload_bytes: int = 10 << 20, max_batch: int = 64,
               *, max_pixels: int = 25_000_000,
               allowed_hosts: list[str] | None = None) -> Starlette:  # fmt: skip
    """The app; `allowed_hosts`: the Host headers it answers (default: any), so a page elsewhere
    cannot reach a loopback-bound server through DNS rebinding."""
    batcher = MicroBatcher(predictor.run, max_batch)
    budget = PixelBudget(max_pixels, 4 * max_pixels)
    page = resources.files("tocha.serve").joinpath("page.html").read_text(encoding="utf-8")
    icon = resources.files("tocha.serve").joinpath("icon.svg").read_bytes()

    async def index(_request: Request) -> Response:
        return HTMLResponse(page)

    async def favicon(_request: Request) -> Response:  # the page links it; /favicon.ico for the rest
        return Response(icon, media_type="image/svg+xml")

    async def model(_request: Request) -> Response:
        return JSONResponse({**predictor.card, "top_k": top_k, "figures": sorted(predictor.figures)})

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "batches": batcher.batches, "images": batcher.images})

    async def figure(request: Request) -> Response:
        path = predictor.figures.get(request.path_params["name"])  # a fixed table: never a client's path
        data = await run_in_threadpool(read_figure, path) if path is not None else None
        return Response(data, media_type="image/png") if data is not None else error(404, "no such figure")

    async def predict(request: Request) -> Response:
        pixels = 0
        try:
            k = requested_top_k(request, top_k, len(predictor.classes))
            uploads = await asyncio.wait_for(read_uploads(request, max_upload_bytes), BODY_SECONDS)
            pixels = budget.take(uploads) if predictor.tensor_shape is None else 0  # .npy: bytes-limited
            images = await run_in_threadpool(lambda: np.stack([predictor.decode(d, n) for n, d in uploads]))
        except TimeoutError:
            return error(408, f"the upload took over {BODY_SECONDS:.0f} s")
        except ClientError as e:
            return error(e.status, e.reason)
        except UnreadableImage as e:
            return error(400, str(e))
        finally:
            budget.give_back(pixels)  # decoded (or refused): the pixels are free again
        answers = predictor.task.answers(await batcher(images), predictor.classes, k)
        key = predictor.task.answer_key(predictor.classes)
        return JSONResponse([{"path": name, key: answer, "converted": predictor.converted(data, name)}
                             for (name, data), answer in zip(uploads, answers, strict=True)])  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    hosts = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    return Starlette(
        routes=[Route("/", index), Route("/favicon.svg", favicon), Route("/favicon.ico", favicon),
                Route("/model", model), Route("/health", health),
                Route("/figures/{name}", figure), Route("/predict", predict, methods=["POST"])],
        lifespan=lifespan, middleware=hosts,
    )  # fmt: skip


def error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def requested_top_k(request: Request, default: int, classes: int) -> int:
    raw = request.query_params.get("top_k")
    if raw is None:
        return min(default, classes)
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= classes:  # "²" is a digit, not ASCII
        raise ClientError(400, f"top_k must be a whole number from 1 to {classes}, not {raw!r}")
    return int(raw)


def read_figure(path: Path) -> bytes | None:
    """A figure's bytes, opened without following a link (one put there since the server started
    reads nothing), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read() if stat.S_ISREG(os.fstat(f.fileno()).st_mode) else None


async def read_uploads(request: Request, limit: int) -> list[tuple[str, bytes]]:
    """(name, bytes) of each image: multipart files, or the raw body as one image."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(413, f"the upload is {int(declared):,} bytes; the limit is {limit:,}")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        uploads = await read_multipart(request, limit)
    elif kind.startswith("image/") or kind in ("application/octet-stream", ""):
        uploads = [("upload", b"".join([chunk async for chunk in limited(request, limit)]))]
    else:
        raise ClientError(415, f"send image files as multipart/form-data or raw image bytes, not {kind}")
    if not uploads:
        raise ClientError(400, "no image in the request")
    empty = [name for name, data in uploads if not data]
    if empty:
        raise ClientError(400, f"{empty[0]}: empty file")
    return uploads


async def read_multipart(request: Request, limit: int) -> list[tuple[str, bytes]]:
    parser = MultiPartParser(request.headers, limited(request, limit), max_files=MAX_FILES, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise ClientError(400, f"malformed multipart body: {e.message}") from e
    uploads: list[tuple[str, bytes]] = []
    for _field, value in form.multi_items():
        if not isinstance(value, str):  # an uploaded file (text fields are ignored)
            uploads.append((value.filename or "upload", await value.read()))
            await value.close()
    return uploads


async def limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks, stopping with 413 as soon as more than `limit` bytes have come."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ClientError(413, f"the upload is over the limit of {limit:,} bytes")
        yield chunk
