"""Concurrent requests run as one forward pass, on the event loop when that is cheaper than a thread.

Requests put their images in a list; a flush, scheduled with `call_soon` by the first of them,
runs everything waiting (up to `max_batch` images) as one batch. The requests that came in the
same turn of the event loop are thus batched without any timer, so a lone request is never
delayed, and under load the batches grow by themselves. `max_batch=1` turns batching off.

Where a batch runs is measured, not configured. A model whose forward pass takes less than
`INLINE_SECONDS` (an MLP, a small CNN: a tenth of a millisecond) runs on the event loop: handing
it to a thread would cost more than the work, twice over, since the thread and the loop then take
turns at the GIL while the loop is busy with other requests. A slower model (a ResNet) runs in one
worker thread, so that the loop reads and decodes the next requests meanwhile; while it works, new
requests wait and go together into the next batch. The first two batches run in the thread, and
tell how long a forward takes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

INLINE_SECONDS = 1e-3  # a forward pass expected to take less runs on the event loop
SMOOTHING = 0.2  # weight of the latest batch in the running cost per image
OUTLIER = 4.0  # a batch counts at most this many times the running cost per image

Waiting = tuple[np.ndarray, asyncio.Future]  # a request's images, and where its outputs go


class MicroBatcher:
    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_batch: int = 64) -> None:
        self.run, self.max_batch = run, max_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocha-inference")
        self.waiting: list[Waiting] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.flushing = False  # a flush is scheduled on the loop
        self.busy = False  # a batch is running in the thread: the next waits for it
        self.seconds_per_image: float | None = None  # a forward pass's, as measured; None: not yet
        self.forwards = 0  # forward passes run, failed ones too
        self.batches = self.images = 0  # counted, for /health
        self.sizes: Counter[int] = Counter()  # images per batch -> batches of that size, for /health
        self.inline = 0  # batches run on the event loop

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        for _, done in self.waiting:
            done.cancel()
        self.waiting.clear()
        self.executor.shutdown(wait=True)

    async def __call__(self, images: np.ndarray) -> np.ndarray:
        """The model's output for `images` (N, C, H, W), perhaps computed with other requests'."""
        assert self.loop is not None, "start() first"
        done = self.loop.create_future()
        self.waiting.append((images, done))
        self._schedule()
        return await done

    def _schedule(self) -> None:
        """Flush on the loop's next turn, after the requests of this turn have put their images."""
        if not (self.flushing or self.busy or not self.waiting):
            assert self.loop is not None
            self.flushing = True
            self.loop.call_soon(self._flush)

    def _take(self) -> list[Waiting]:
        """The requests of the next batch, oldest first: at least one, up to `max_batch` images."""
        count = taken = 0
        for images, _ in self.waiting:
            if taken and count + len(images) > self.max_batch:
                break
            count, taken = count + len(images), taken + 1
        batch, self.waiting = self.waiting[:taken], self.waiting[taken:]
        return batch

    def _flush(self) -> None:
        self.flushing = False
        batch = [(images, done) for images, done in self._take() if not done.cancelled()]
        if not batch:  # every client of this batch went away
            self._schedule()
            return
        images = np.concatenate([w[0] for w in batch]) if len(batch) > 1 else batch[0][0]
        if self.seconds_per_image is not None and self.seconds_per_image * len(images) < INLINE_SECONDS:
            self.inline += 1
            self._answer(batch, len(images), *self._timed(images))
            self._schedule()  # whatever came meanwhile, on the next turn (the loop reads sockets first)
            return
        self.busy = True
        assert self.loop is not None
        ran = self.loop.run_in_executor(self.executor, self._timed, images, time.thread_time)
        ran.add_done_callback(lambda f: self._finished(batch, len(images), f))

    def _timed(
        self, images: np.ndarray, clock: Callable[[], float] = time.perf_counter
    ) -> tuple[np.ndarray | None, Exception | None, float]:
        """The model's output (or its error) and the seconds `clock` counted for it. On the loop,
        wall time is the model's (nothing else runs meanwhile); in the thread, only its CPU time
        is (`time.thread_time`): waiting for the GIL while the loop is busy is not the model's,
        and would keep a fast model in the thread for good."""
        started = clock()
        try:
            return self.run(images), None, clock() - started
        except Exception as e:  # the batch's requests fail; the server goes on
            return None, e, clock() - started

    def _finished(self, batch: list[Waiting], count: int, ran: asyncio.Future) -> None:
        self.busy = False
        if ran.cancelled():  # the loop is stopping
            return
        self._answer(batch, count, *ran.result())
        self._schedule()

    def _learn(self, per_image: float) -> None:
        """The running cost per image: the latest batch's, weighted by SMOOTHING. The first batch
        pays torch's one-time set-up (milliseconds for a 0.1 ms MLP) and is left out."""
        self.forwards += 1
        if self.forwards == 1:
            return
        before = self.seconds_per_image
        if before is None:
            self.seconds_per_image = per_image
            return
        # A forward pass on the loop interrupted by the kernel (the cores are shared) counts at most
        # OUTLIER times the running cost: one such batch would otherwise send the next ten to the thread.
        per_image = min(per_image, OUTLIER * before)
        self.seconds_per_image = before + SMOOTHING * (per_image - before)

    def _answer(self, batch: list[Waiting], count: int,
                out: np.ndarray | None, error: Exception | None, seconds: float) -> None:  # fmt: skip
        """Each request its rows of `out` (or the error), and the cost per image learnt."""
        self._learn(seconds / count)
        if error is None:
            self.batches, self.images = self.batches + 1, self.images + count
            self.sizes[count] += 1
        start = 0
        for images, done in batch:
            if not done.done():  # a client that went away has cancelled its future
                if error is None:
                    done.set_result(out[start : start + len(images)])  # type: ignore[index]
                else:
                    done.set_exception(error)
            start += len(images)
