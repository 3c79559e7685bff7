"""The web app: the page, `POST /predict`, `GET /model`, `GET /health`, and the run's two figures.

Every client mistake is a 4xx with a one-line reason in `{"error": ...}` and the server goes on.
Uploads are refused by their declared size before they are read, and counted while they are read
(a body without a length cannot grow past the limit either). No client input names a file: the
figures are looked up in a fixed table made at start; nothing a client sends is unpickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tocha.data.images import UnreadableImage, peek_bytes
from tocha.serve.batcher import MicroBatcher
from tocha.serve.predictor import Header, Predictor

T = TypeVar("T")

MAX_FILES = 64
BODY_SECONDS = 30.0  # an upload that takes longer is a stalled client, not a slow network
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
# A request of at most this many pixels (bytes, for .npy inputs and texts) is decoded on the event
# loop, in under a millisecond (16 MNIST digits: 12,544 pixels); a larger one in a thread.
INLINE_PIXELS, INLINE_BYTES = 128 * 128, 64 << 10


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

    def take(self, uploads: list[tuple[str, bytes]], headers: list[Header]) -> int:
        pixels = 0  # the largest upload's
        for (name, _), (_, (width, height)) in zip(uploads, headers, strict=True):
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


def read_headers(uploads: list[tuple[str, bytes]]) -> list[Header]:
    """Each image's (mode, (width, height)), from its header only: read once, for the pixel budget,
    the choice of where to decode, and the answer's `converted`."""
    try:
        return [peek_bytes(data, name) for name, data in uploads]
    except UnreadableImage as e:
        raise ClientError(400, str(e)) from e


def decoded_here(uploads: list[tuple[str, bytes]], headers: list[Header] | None) -> bool:
    """Whether a request is small enough to decode on the event loop: a 28x28 PNG takes 50 us to
    decode, less than handing it to a thread and back; a photo takes milliseconds, which the loop
    would keep every other request waiting for."""
    if headers is None:  # .npy inputs and texts: their bytes say the work
        return sum(len(data) for _, data in uploads) <= INLINE_BYTES
    return sum(width * height for _, (width, height) in headers) <= INLINE_PIXELS


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
        return JSONResponse({"status": "ok", "pid": os.getpid(), "batches": batcher.batches,
                             "images": batcher.images,
                             "batch_sizes": {str(size): n for size, n in sorted(batcher.sizes.items())},
                             "inline_batches": batcher.inline})  # fmt: skip

    async def figure(request: Request) -> Response:
        path = predictor.figures.get(request.path_params["name"])  # a fixed table: never a client's path
        data = await run_in_threadpool(read_figure, path) if path is not None else None
        return Response(data, media_type="image/png") if data is not None else error(404, "no such figure")

    async def predict(request: Request) -> Response:
        if predictor.task.per_position:
            return error(400, "this run writes text: POST /generate with a JSON prompt")
        pixels = 0
        try:
            k = requested_top_k(request, top_k, len(predictor.classes))
            text = predictor.text is not None
            uploads = await within(BODY_SECONDS, read_uploads(request, max_upload_bytes, text))
            images_sent = predictor.tensor_shape is None and not text  # .npy and text: limited by their bytes
            headers = read_headers(uploads) if images_sent else None
            pixels = budget.take(uploads, headers) if headers is not None else 0

            def decode() -> np.ndarray:
                return np.stack([predictor.decode(data, name) for name, data in uploads])

            images = decode() if decoded_here(uploads, headers) else await run_in_threadpool(decode)
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
        if predictor.text is not None:  # each line's text beside its answer
            return JSONResponse([{"path": name, "text": data.decode(), key: answer}
                                 for (name, data), answer in zip(uploads, answers, strict=True)])  # fmt: skip
        rows = zip(uploads, answers, headers or [None] * len(uploads), strict=True)
        return JSONResponse([{"path": name, key: answer, "converted": predictor.converted(data, name, head)}
                             for (name, data), answer, head in rows])  # fmt: skip

    async def generate(request: Request) -> Response:
        """A next-token run's text after a prompt, streamed token by token as `tocha generate` writes it."""
        if predictor.generate is None:
            return error(400, "this model does not write text: a next-token run, served from its run "
                              "folder or checkpoint, does")  # fmt: skip
        try:
            body = await within(BODY_SECONDS, read_json(request, MAX_PROMPT_BYTES))
            asked = generation_request(body)
        except TimeoutError:
            return error(408, f"the request took over {BODY_SECONDS:.0f} s")
        except ClientError as e:
            return error(e.status, e.reason)
        tokens = predictor.generate(*asked)

        async def stream() -> AsyncIterator[str]:
            while (
                token := await run_in_threadpool(next, tokens, None)
            ) is not None:  # the model off the loop
                yield token

        return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    hosts = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    return Starlette(
        routes=[Route("/", index), Route("/favicon.svg", favicon), Route("/favicon.ico", favicon),
                Route("/model", model), Route("/health", health),
                Route("/figures/{name}", figure), Route("/predict", predict, methods=["POST"]),
                Route("/generate", generate, methods=["POST"])],
        lifespan=lifespan, middleware=hosts,
    )  # fmt: skip


async def within(seconds: float, awaitable: Awaitable[T]) -> T:
    """`awaitable`'s result, or TimeoutError after `seconds`. From Python 3.11 it runs in the
    request's own task: `asyncio.wait_for` wraps it in a new one, a task and a loop turn a request."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:  # not the built-in TimeoutError before 3.11
        raise TimeoutError from None


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


MAX_PROMPT_BYTES, MAX_WRITTEN = 64 << 10, 2000  # /generate: its request, and the tokens it writes at most


async def read_json(request: Request, limit: int) -> Any:
    chunks = b"".join([chunk async for chunk in limited(request, limit)])
    try:
        return json.loads(chunks or b"{}")
    except ValueError as e:
        raise ClientError(400, f"the body is not JSON: {e}") from None


def generation_request(body: Any) -> tuple[str, int, float, int | None, int]:
    """(prompt, length, temperature, top_k, seed) from a JSON object, each checked (a 400 if not)."""
    if not isinstance(body, dict):
        raise ClientError(400, 'send a JSON object: {"prompt": ..., "length": ..., "temperature": ...}')
    prompt, length = body.get("prompt", ""), body.get("length", 200)
    temperature, top_k, seed = body.get("temperature", 1.0), body.get("top_k"), body.get("seed", 0)
    if not isinstance(prompt, str):
        raise ClientError(400, "prompt must be a string")
    if not (isinstance(length, int) and 1 <= length <= MAX_WRITTEN):
        raise ClientError(400, f"length must be a whole number from 1 to {MAX_WRITTEN}")
    if not (isinstance(temperature, int | float) and 0 <= temperature <= 100):
        raise ClientError(400, "temperature must be a number from 0 to 100")
    if top_k is not None and not (isinstance(top_k, int) and top_k >= 1):
        raise ClientError(400, "top_k must be a whole number from 1")
    if not (isinstance(seed, int) and 0 <= seed < 2**63):
        raise ClientError(400, "seed must be a whole number from 0")
    return prompt, length, float(temperature), top_k, seed


async def read_uploads(request: Request, limit: int, text: bool = False) -> list[tuple[str, bytes]]:
    """(name, bytes) of each image: multipart files, or the raw body as one image; for a text run,
    each line of a text/plain body as one text."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(413, f"the upload is {int(declared):,} bytes; the limit is {limit:,}")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if text and kind == "text/plain":
        body = b"".join([chunk async for chunk in limited(request, limit)])
        lines = [line for line in body.split(b"\n") if line.strip()]
        uploads = [(f"line {i}", line.rstrip(b"\r")) for i, line in enumerate(lines, 1)]
    elif kind == "multipart/form-data":
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
