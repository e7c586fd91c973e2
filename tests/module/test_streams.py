"""Decoding streams: micro-batches decoded concurrently by CPU threads give what one stream gives."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest
import torch

from genar.module import _genar
from genar.module._streams import STREAM_CACHE_BUDGET_BYTES, choose_streams, run_in_streams

CPU = torch.device("cpu")


@pytest.fixture
def one_torch_thread():
    """PyTorch on one thread, so that one stream and several run the same (single-threaded) kernels bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def recorded_micro_batches(monkeypatch):
    """Record, for every decoded micro-batch, its thread, its KV cache and PyTorch's thread count there."""
    calls = []
    decode_batch = _genar.GenARModule._decode_batch

    def recording(self, features_BD, coords_B2, cache, **kw):
        calls.append((threading.current_thread().name, id(cache), torch.get_num_threads()))
        return decode_batch(self, features_BD, coords_B2, cache, **kw)

    monkeypatch.setattr(_genar.GenARModule, "_decode_batch", recording)
    return calls


def test_streams_decode_what_one_stream_decodes(one_torch_thread, recorded_micro_batches, make_module, module_inputs):
    module = make_module()
    feats, coords, _ = module_inputs(B=7)  # micro-batches of 2: four, the last one short
    values = torch.log2(1 + torch.arange(30.0))
    one = module.decode_expectation(feats, coords, values, micro_batch=2, streams=1)
    one_path = module.generate(feats, coords, micro_batch=2, streams=1, return_all_scales=True)
    recorded_micro_batches.clear()
    three = module.decode_expectation(feats, coords, values, micro_batch=2, streams=3)
    assert torch.equal(three[0], one[0]) and torch.equal(three[1], one[1])
    assert torch.equal(module.generate(feats, coords, micro_batch=2, streams=3, return_all_scales=True), one_path)
    streamed = recorded_micro_batches[:4]  # the decode_expectation call
    threads = {name for name, _, _ in streamed}
    assert len(threads) > 1 and all(name.startswith("genar-stream") for name in threads)
    cache_of = {}
    for name, cache, _ in streamed:  # every thread keeps its own cache
        assert cache_of.setdefault(name, cache) == cache
    assert len(set(cache_of.values())) == len(cache_of)


def test_streams_share_the_threads_and_give_them_back(recorded_micro_batches, make_module, module_inputs):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        module = make_module()
        feats, coords, _ = module_inputs(B=6)
        module.generate(feats, coords, micro_batch=2, streams=2)
        assert torch.get_num_threads() == 2  # the caller's count, whatever the workers set
        assert {n for _, _, n in recorded_micro_batches} == {1}  # two streams on two threads: one each
    finally:
        torch.set_num_threads(before)


def test_sampling_decodes_in_one_stream(recorded_micro_batches, make_module, module_inputs):
    module = make_module()
    feats, coords, _ = module_inputs(B=6)
    module.generate(feats, coords, micro_batch=2, greedy=False, generator=torch.Generator().manual_seed(0))
    assert {name for name, _, _ in recorded_micro_batches} == {threading.current_thread().name}
    with pytest.raises(ValueError, match="`streams=2` with sampling"):
        module.generate(feats, coords, micro_batch=2, greedy=False, streams=2)


def test_automatic_streams(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    auto = lambda **kw: choose_streams(  # noqa: E731
        None, **{"device": CPU, "n_tasks": 16, "bytes_per_stream": 1, "ordered_randomness": False, **kw}
    )
    assert auto() == 8  # one per thread
    assert auto(n_tasks=3) == 3  # one per micro-batch at most
    assert auto(bytes_per_stream=STREAM_CACHE_BUDGET_BYTES // 3) == 3  # the caches within the budget
    assert auto(bytes_per_stream=2 * STREAM_CACHE_BUDGET_BYTES) == 1
    assert auto(ordered_randomness=True) == 1
    assert auto(device=torch.device("cuda")) == 1
    assert choose_streams(4, device=CPU, n_tasks=2, bytes_per_stream=1, ordered_randomness=False) == 2


@pytest.mark.parametrize("streams", [0, -1, 1.5, True, "2"])
def test_streams_must_be_a_positive_integer(streams):
    with pytest.raises(ValueError, match=r"`streams` must be a positive integer or None .*got"):
        choose_streams(streams, device=CPU, n_tasks=4, bytes_per_stream=1, ordered_randomness=False)


def test_streams_are_cpu_threads():
    with pytest.raises(ValueError, match="decoding on cuda takes `streams=1` or None"):
        choose_streams(2, device=torch.device("cuda"), n_tasks=4, bytes_per_stream=1, ordered_randomness=False)
    assert choose_streams(1, device=torch.device("cuda"), n_tasks=4, bytes_per_stream=1, ordered_randomness=False) == 1


def _modes():
    autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
    return torch.is_inference_mode_enabled(), torch.is_grad_enabled(), autocast


@pytest.mark.parametrize(
    "modes",
    [
        lambda: torch.inference_mode(),
        lambda: torch.no_grad(),
        lambda: torch.enable_grad(),
        lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    ],
)
def test_run_in_streams_keeps_the_order_and_the_callers_modes(modes):
    def task(i):
        def run(resource):
            time.sleep(0.02 * (i % 3))  # later tasks finish first
            return i, resource, _modes()

        return run

    with modes():
        expected = _modes()
        out = run_in_streams([task(i) for i in range(7)], ["a", "b", "c"])
    assert [i for i, _, _ in out] == list(range(7))
    assert {r for _, r, _ in out} <= {"a", "b", "c"}
    assert all(mode == expected for _, _, mode in out)


def test_run_in_streams_passes_errors_on():
    def task(i):
        def run(resource):
            if i == 2:
                msg = "micro-batch 2 failed"
                raise RuntimeError(msg)
            return i

        return run

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="micro-batch 2 failed"):
        run_in_streams([task(i) for i in range(5)], [None, None])
    assert torch.get_num_threads() == before


def test_stream_threads_are_kept_between_calls_and_each_holds_one_resource_per_call():
    barrier = threading.Barrier(2)

    def task(i):
        def run(resource):
            if i < 2:
                barrier.wait(timeout=10)  # the first two tasks run at once: on both threads
            return threading.current_thread(), resource  # the Thread itself: idents of ended threads are reused

        return run

    first = run_in_streams([task(i) for i in range(6)], ["a", "b"])
    second = run_in_streams([task(i) for i in range(6)], ["c", "d"])
    threads = {t for t, _ in first}
    assert len(threads) == 2 and {t for t, _ in second} == threads  # the same two threads, not new ones
    assert threading.current_thread() not in threads
    for out, resources in ((first, {"a", "b"}), (second, {"c", "d"})):
        held = {t: {r for u, r in out if u == t} for t in threads}
        assert all(len(r) == 1 for r in held.values())  # a thread keeps its resource for the whole call
        assert set.union(*held.values()) == resources  # and no two threads share one


def test_streams_started_within_a_stream_run_in_its_thread():
    def inner(resource):
        return threading.get_ident(), resource

    def outer(resource):
        return threading.get_ident(), run_in_streams([inner, inner], ["x", "y"])

    for thread, inner_out in run_in_streams([outer, outer], ["a", "b"]):
        assert inner_out == [(thread, "x"), (thread, "x")]  # one after another, with the first resource


def _streams_in_a_forked_child(results) -> None:
    results.put(run_in_streams([(lambda r, i=i: (i, r)) for i in range(3)], ["a", "b"]))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # Python >= 3.12
def test_a_forked_child_starts_its_own_stream_threads():
    barrier = threading.Barrier(2)
    run_in_streams([lambda r: barrier.wait(timeout=10), lambda r: barrier.wait(timeout=10)], ["a", "b"])
    # (both of the parent's threads are started)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_streams_in_a_forked_child, args=(results,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():  # the parent's threads do not exist in the child: its tasks would never run
        child.kill()
        child.join()
    assert child.exitcode == 0
    assert [i for i, _ in results.get(timeout=5)] == [0, 1, 2]


def test_kv_cache_rows_share_the_buffers_and_reserve_grows_them():
    from genar.module import KVCache

    cache = KVCache(2, 4, 2, 6, 3)
    assert cache.reserve(3) is cache and cache.capacity == 4  # room enough: the same buffers
    rows = cache.rows(2, 4)
    assert rows.capacity == 2 and rows.lengths == [0, 0]
    k, v = torch.randn(2, 2, 5, 3), torch.randn(2, 2, 5, 3)
    rows.append(1, k, v)
    assert torch.equal(cache._keys[1][2:4, :, :5], k) and torch.equal(cache._values[1][2:4, :, :5], v)
    with pytest.raises(ValueError, match=r"Rows 3:5 are not within this KV cache's 4 rows"):
        cache.rows(3, 5)
    cache.reserve(8)
    assert cache.capacity == 8 and cache._keys[0].shape == (8, 2, 6, 3) and cache.lengths == [0, 0]


def test_a_callers_cache_grows_once_for_the_streams(one_torch_thread, make_module, module_inputs):
    module = make_module()
    feats, coords, _ = module_inputs(B=8)
    cache = module.new_cache(2)
    module.generate(feats, coords, micro_batch=2, streams=3, cache=cache)
    assert cache.capacity == 6  # two rows for each of three streams
    pointer = cache._keys[0].data_ptr()
    module.generate(feats, coords, micro_batch=2, streams=3, cache=cache)
    assert cache._keys[0].data_ptr() == pointer  # reused by the next call
