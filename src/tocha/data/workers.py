"""Decoding processes that end with the process that started them and never hold its locks.

A `tocha data prepare` killed while it decoded (SIGKILL, or SIGTERM, whose default ends a process
at once) left its pool's processes running, blocked on a queue nobody would write to again and,
being forked copies, holding the folder's lock (`tocha.locks`): running the same command again was
refused, naming the dead process. Two things prevent it:
- the processes are spawned, not forked: a new interpreter inherits none of its parent's open
  files (Python opens them close-on-exec) but the pool's own pipes, so none of its locks;
- each asks the kernel to kill it when its parent ends (Linux's PR_SET_PDEATHSIG); where there is
  no such call, a thread watches the parent's PID.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 0.2  # how often a watching thread looks at its parent, where the kernel cannot


def decoding_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes that die with this one."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
    )


def die_with_parent(parent: int) -> None:
    """In a pool process, first thing: be killed when `parent` ends."""
    if not kernel_kills_orphans():
        threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it ended before the request was made: nobody will send the signal
        os._exit(1)


def kernel_kills_orphans() -> bool:
    """Ask Linux to send this process SIGKILL when its parent ends; False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no C library to call, or no prctl in it
        return False


def watch_parent(parent: int) -> None:
    """End this process once `parent` has ended (an orphan's parent becomes another process)."""
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)
