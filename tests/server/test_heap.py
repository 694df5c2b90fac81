"""Heap freezing after warm-ups (driftd.server.heap): collected first, debounced, off when configured off."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref

import pytest

from driftd.server import heap
from support import start_served, stop_served


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def clean_heap(monkeypatch):
    monkeypatch.setattr(heap, "DEBOUNCE_S", 0.05)
    gc.unfreeze()
    yield
    heap.configure(False)
    with heap._collecting:  # a freeze already under way finishes before the heap is unfrozen
        gc.unfreeze()  # the rest of the suite collects as usual


def wait_until(check, timeout_s: float = 10.0) -> bool:
    """Poll `check` until true or `timeout_s` passes (a freeze runs on a timer thread, and its
    collection takes a while on a big heap); its last value."""
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(check())


def wait_for_freeze(timeout_s: float = 10.0) -> bool:
    return wait_until(lambda: gc.get_freeze_count() > 0, timeout_s)


def cyclic_garbage() -> weakref.ref:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_freeze_collects_cycles_first_and_then_freezes_what_is_alive():
    heap.configure(True)
    garbage = cyclic_garbage()
    alive = Node()
    alive.other = alive
    assert garbage() is not None  # only the cycle collector can free it
    assert heap.request_freeze("test")
    assert wait_for_freeze()
    assert garbage() is None, "cyclic garbage was frozen instead of collected"
    assert gc.is_tracked(alive) and gc.get_freeze_count() > 0
    later = cyclic_garbage()
    gc.collect()
    assert later() is None, "objects created after a freeze are collected as usual"


def test_a_cycle_frozen_while_alive_is_reclaimed_by_the_next_freeze():
    heap.configure(True)
    a, b = Node(), Node()
    a.other, b.other = b, a
    was_frozen = weakref.ref(a)
    assert heap.request_freeze("first") and wait_for_freeze()
    del a, b  # garbage now, but frozen: a plain collection skips it
    gc.collect()
    assert was_frozen() is not None
    frozen_before = gc.get_freeze_count()
    assert heap.request_freeze("second")
    assert wait_until(lambda: was_frozen() is None) and frozen_before > 0


def test_requests_are_debounced_into_one_collection(monkeypatch):
    freezes = []
    monkeypatch.setattr(heap.gc, "freeze", lambda: freezes.append(time.monotonic()))
    heap.configure(True)
    for _ in range(5):
        heap.request_freeze("many monitors warming up")
        time.sleep(0.01)
    wait_until(lambda: freezes)
    time.sleep(0.2)
    assert len(freezes) == 1


def test_off_means_no_freeze_and_no_pending_request(monkeypatch):
    freezes = []
    monkeypatch.setattr(heap.gc, "freeze", lambda: freezes.append(1))
    heap.configure(True)
    assert heap.request_freeze("pending")
    heap.configure(False)  # drops the pending request
    assert not heap.request_freeze("ignored")
    time.sleep(0.2)
    assert freezes == []


@pytest.mark.parametrize("enabled", [True, False])
async def test_a_server_freezes_after_its_warm_up_only_when_configured(tmp_path, enabled):
    served = await start_served(tmp_path / "data", gc_freeze=enabled)
    try:
        frozen = await asyncio.to_thread(wait_for_freeze, 10.0 if enabled else 0.5)
        assert frozen is enabled
    finally:
        await stop_served(served)
    # a stopped server leaves nothing frozen: the exiting interpreter collects every cycle
    # (frozen ones stayed alive to the end, and triton's bindings printed them as leaks)
    assert gc.get_freeze_count() == 0


def test_thaw_drops_a_pending_freeze_and_turns_freezing_off():
    heap.configure(True)
    assert heap.request_freeze("pending", delay_s=0.3)
    heap.thaw()
    time.sleep(0.6)
    assert gc.get_freeze_count() == 0  # the pending freeze never ran
    assert not heap.request_freeze("after stop")  # off until configured again
    gc.freeze()
    heap.thaw()
    assert gc.get_freeze_count() == 0


def test_thaw_wins_against_a_freeze_whose_timer_already_fired(monkeypatch):
    """The timer fired (its request is no longer pending) and thaw() runs before the freeze takes
    `_collecting`: the freeze must not happen after the thaw."""
    real = heap._collecting
    gate = threading.Event()

    class GatedLock:  # parks the timer thread between firing and taking the lock
        def __enter__(self):
            if isinstance(threading.current_thread(), threading.Timer):
                gate.wait(5.0)
            return real.__enter__()

        def __exit__(self, *exc):
            return real.__exit__(*exc)

    monkeypatch.setattr(heap, "_collecting", GatedLock())
    heap.configure(True)
    assert heap.request_freeze("fired", delay_s=0.01)
    timer = heap._timer
    assert wait_until(lambda: heap._timer is None, 5.0)  # fired: nothing pending any more
    heap.thaw()  # in the gap
    gate.set()
    timer.join(5.0)
    assert not timer.is_alive() and gc.get_freeze_count() == 0
