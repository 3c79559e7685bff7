"""The web app: the page, `POST /predict`, `GET /model`, `GET /health`, and the run's two figures.

Every client mistake is a 4xx with a one-line reason in `{"error": ...}` and the server goes on.
Uploads are refused by their declared size before they are read, and counted while they are read
(a body without a length cannot grow past the limit either). No client input names a file: the
figures are looked up in a fixed table made at start; nothing a client sends is unpickled.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib import resources

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tocha.data.images import UnreadableImage
from tocha.serve.batcher import MicroBatcher
from tocha.serve.predictor import Predictor

MAX_FILES = 64


class ClientError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def create_app(predictor: Predictor, top_k: int = 5, max_upload_bytes: int = 10 << 20,
               max_batch: int = 64) -> Starlette:  # fmt: skip
    batcher = MicroBatcher(predictor.run, max_batch)
    page = resources.files("tocha.serve").joinpath("page.html").read_text(encoding="utf-8")

    async def index(_request: Request) -> Response:
        return HTMLResponse(page)

    async def model(_request: Request) -> Response:
        return JSONResponse({**predictor.card, "top_k": top_k, "figures": sorted(predictor.figures)})

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "batches": batcher.batches, "images": batcher.images})

    async def figure(request: Request) -> Response:
        path = predictor.figures.get(request.path_params["name"])  # a fixed table: never a client's path
        return FileResponse(path) if path is not None else error(404, "no such figure")

    async def predict(request: Request) -> Response:
        try:
            k = requested_top_k(request, top_k, len(predictor.classes))
            uploads = await read_uploads(request, max_upload_bytes)
            images = await run_in_threadpool(lambda: np.stack([predictor.decode(d, n) for n, d in uploads]))
        except ClientError as e:
            return error(e.status, e.reason)
        except UnreadableImage as e:
            return error(400, str(e))
        answers = predictor.task.answers(await batcher(images), predictor.classes, k)
        key = predictor.task.answer_key(predictor.classes)
        return JSONResponse([{"path": name, key: answer}
                             for (name, _), answer in zip(uploads, answers, strict=True)])  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    return Starlette(
        routes=[Route("/", index), Route("/model", model), Route("/health", health),
                Route("/figures/{name}", figure), Route("/predict", predict, methods=["POST"])],
        lifespan=lifespan,
    )  # fmt: skip


def error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def requested_top_k(request: Request, default: int, classes: int) -> int:
    raw = request.query_params.get("top_k")
    if raw is None:
        return min(default, classes)
    if not raw.isdigit() or not 1 <= int(raw) <= classes:
        raise ClientError(400, f"top_k must be a whole number from 1 to {classes}, not {raw!r}")
    return int(raw)


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
