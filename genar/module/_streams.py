"""Streams: parts of a batch worked on concurrently by CPU threads that each run PyTorch with fewer threads.

With one stream, every operator of a decoding or training step is split across all of PyTorch's threads. GenAR
runs many small operators (LayerNorm, modulation, residual adds, softmaxes at scales of 1 to 200 positions), where
that split costs more than it gains: the threads meet at a barrier after every operator. Working on independent
parts of a batch (decoding's micro-batches, training's shares of a batch) on several threads at once, each running
its operators on ``threads // streams`` threads, keeps every core busy without those barriers (PyTorch releases the
GIL inside its operators). A spot's decoded result does not depend on which stream decodes it; training adds up
the parts' gradients (``genar.train.GenARTrainingPlan``).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

#: Automatic streams are limited so that their KV caches (one per stream) take at most this many bytes together:
#: at the paper's width, where decoding is bound by its matrix products and streams gain nothing, one cache of 64
#: spots is ~740 MB and decoding keeps one stream.
STREAM_CACHE_BUDGET_BYTES = 512 * 1024**2

Resource = TypeVar("Resource")
Result = TypeVar("Result")


def check_streams(streams: int | None) -> int | None:
    """``streams`` if it is a positive integer or None (automatic); else a ValueError that names it."""
    if streams is not None and (isinstance(streams, bool) or not isinstance(streams, int) or streams < 1):
        msg = f"`streams` must be a positive integer or None (automatic); got {streams!r}."
        raise ValueError(msg)
    return streams


def choose_streams(
    streams: int | None,
    *,
    device: torch.device,
    n_tasks: int,
    bytes_per_stream: int,
    ordered_randomness: bool,
) -> int:
    """How many decoding streams to run.

    Parameters
    ----------
    streams
        The caller's choice; ``None`` for automatic: on the CPU, as many as PyTorch has threads, at most one per
        micro-batch, and no more than :data:`STREAM_CACHE_BUDGET_BYTES` allows; elsewhere, one.
    device
        Where decoding runs.
    n_tasks
        Micro-batches to decode.
    bytes_per_stream
        Memory of one stream's KV cache.
    ordered_randomness
        Whether decoding draws random numbers (sampling): their order, and so the samples, would depend on the
        threads' timing, so sampling decodes in one stream.
    """
    if check_streams(streams) is not None:
        if streams > 1 and device.type != "cpu":
            msg = f"`streams` > 1 runs CPU threads; decoding on {device.type} takes `streams=1` or None."
            raise ValueError(msg)
        if streams > 1 and ordered_randomness:
            msg = (
                f"`streams={streams}` with sampling: the samples would depend on the threads' timing. Sample with "
                "`streams=1` or None, or decode greedily."
            )
            raise ValueError(msg)
        return min(streams, max(1, n_tasks))
    if device.type != "cpu" or ordered_randomness:
        return 1
    affordable = max(1, STREAM_CACHE_BUDGET_BYTES // max(1, bytes_per_stream))
    return max(1, min(torch.get_num_threads(), n_tasks, affordable))


#: Long-lived stream threads, one pool per number of streams (see :func:`run_in_streams`).
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()
#: Marks the pools' own threads, so that a task that runs streams itself runs them in its own thread.
_IN_STREAM = threading.local()


def _forget_pools_after_fork() -> None:
    """In a forked child the pools' threads do not exist: start afresh (the parent's pools are untouched)."""
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_after_fork)


def _mark_stream_thread() -> None:
    _IN_STREAM.active = True


def stream_pool(n: int) -> ThreadPoolExecutor:
    """The process's ``n`` stream threads, started on first use and kept for every later call.

    Fresh threads for every batch made training's steps slower: each new thread's memory (its stack, and what the
    allocator hands it) is mapped and faulted in anew, and what it freed goes back to the system when it ends.
    Config ``small``, 2 CPU cores, fresh and kept threads alternating step by step in one process (20 steps each):
    median step 1.96 s with fresh threads, 1.71 s with kept ones; 0.36 s against 0.02 s of system time and ~133,000
    against ~8,000 minor page faults per step. Decoding (which reuses its KV caches) was the same within noise.
    """
    with _POOLS_LOCK:
        pool = _POOLS.get(n)
        if pool is None:
            pool = _POOLS[n] = ThreadPoolExecutor(n, thread_name_prefix="genar-stream", initializer=_mark_stream_thread)
        return pool


def run_in_streams(tasks: Sequence[Callable[[Resource], Result]], resources: Sequence[Resource]) -> list[Result]:
    """Run ``tasks`` on ``len(resources)`` threads, each holding one resource; results in the order of ``tasks``.

    Each thread runs PyTorch on ``torch.get_num_threads() // len(resources)`` threads (at least one) in the caller's
    inference mode, gradient mode and CPU autocast (PyTorch keeps them per thread), and passes its own resource
    (a KV cache, say) to every task it runs. The threads are the process's long-lived stream threads
    (:func:`stream_pool`); a task that itself runs streams runs them one after another in its own thread. The
    caller's thread count is restored afterwards (a worker's setting can leak into it).
    """
    if len(resources) == 1 or getattr(_IN_STREAM, "active", False):
        return [task(resources[0]) for task in tasks]
    threads = torch.get_num_threads()
    per_stream = max(1, threads // len(resources))
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()
    autocast = torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")
    free: queue.SimpleQueue = queue.SimpleQueue()
    for resource in resources:
        free.put(resource)
    held: dict[int, Resource] = {}  # thread -> its resource in this call; a pool of len(resources) threads

    def run(task: Callable[[Resource], Result]) -> Result:
        thread = threading.get_ident()
        if thread not in held:
            held[thread] = free.get_nowait()
        torch.set_num_threads(per_stream)
        with (
            torch.inference_mode(inference),
            torch.set_grad_enabled(grad),
            torch.autocast("cpu", enabled=autocast[0], dtype=autocast[1]),
        ):
            return task(held[thread])

    futures = [stream_pool(len(resources)).submit(run, task) for task in tasks]
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        for f in futures:  # no task of this call outlives it (a running one cannot be cancelled)
            if not f.cancelled():
                f.exception()
        raise
    finally:
        torch.set_num_threads(threads)
