"""Inference off the event loop, with concurrent requests run as one forward pass.

One worker thread runs the model (torch already uses every core for one batch). While it works,
new requests wait in a queue; when it is free it takes everything waiting, up to `max_batch`
images, as one batch. Nothing waits for a timer, so a lone request is never delayed; under load the
batches grow by themselves. `max_batch=1` turns batching off (each request alone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class MicroBatcher:
    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_batch: int = 64) -> None:
        self.run, self.max_batch = run, max_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocha-inference")
        self.queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future]] | None = None
        self.worker: asyncio.Task | None = None
        self.batches = self.images = 0  # counted, for /health

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.worker = asyncio.create_task(self._work())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
        self.executor.shutdown(wait=True)

    async def __call__(self, images: np.ndarray) -> np.ndarray:
        """The model's output for `images` (N, C, H, W), perhaps computed with other requests'."""
        assert self.queue is not None, "start() first"
        done = asyncio.get_running_loop().create_future()
        await self.queue.put((images, done))
        return await done

    async def _work(self) -> None:
        assert self.queue is not None
        loop = asyncio.get_running_loop()
        while True:
            waiting = [await self.queue.get()]
            count = len(waiting[0][0])
            while count < self.max_batch and not self.queue.empty():
                waiting.append(self.queue.get_nowait())
                count += len(waiting[-1][0])
            try:
                out = await loop.run_in_executor(
                    self.executor, self.run, np.concatenate([w[0] for w in waiting])
                )
            except Exception as e:  # the requests fail, the worker goes on
                for _, done in waiting:
                    if not done.done():
                        done.set_exception(e)
                continue
            self.batches, self.images = self.batches + 1, self.images + count
            start = 0
            for images, done in waiting:
                if not done.done():  # a client that went away has cancelled its future
                    done.set_result(out[start : start + len(images)])
                start += len(images)
