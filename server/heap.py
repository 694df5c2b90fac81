"""Keep full garbage collections short: once warm, move the long-lived heap out of the collector's view.

A serving process holds ~500,000 gc-tracked objects that live as long as it does (torch, the
compiled update kernels, protobuf descriptors). CPython's full (generation-2) collection scans all
of them, with the GIL held, every few hundred thousand surviving allocations: on the 2-core
reference machine a pause of a few hundred milliseconds that lands on whatever the event loop is
doing, e.g. an alarm fan-out (bench/bench_alarms.py, see bench/README.md "Alarms").

`gc.freeze()` moves every object alive at that moment into the permanent generation, which
collections skip. Reference counting still frees frozen objects; only reference cycles among them
are not reclaimed while frozen. So a freeze runs only after warm-ups (start-up, a monitor runtime
compiling its kernels: rare, admin-driven events), when what is alive is mostly the long-lived
state, and each one first unfreezes and collects everything: whatever became cyclic garbage since
the last freeze (a replaced runtime, a stream that was open then) is reclaimed then. That full
collection is the pause a freeze costs (~300-450 ms on the 2-core machine), once per warm-up
instead of every few hundred thousand allocations. Requests are debounced (`DEBOUNCE_S`): many
monitors warming up at start-up cost one collection, not one each.

    configure(True)                       # build_server, from Settings.gc_freeze
    request_freeze("kernel_warm_up")      # any thread; the collection + freeze runs DEBOUNCE_S later
    thaw()                                # server stop: freezing off, everything collectable again
"""

from __future__ import annotations

import gc
import threading
import time

from driftd.server.logs import get_logger

log = get_logger("driftd.heap")
DEBOUNCE_S = 1.0

_lock = threading.Lock()  # the timer bookkeeping
_collecting = threading.Lock()  # one unfreeze-collect-freeze at a time
_enabled = False
_timer: threading.Timer | None = None


def configure(enabled: bool) -> None:
    """Turn freezing on or off for this process (off: pending requests are dropped)."""
    global _enabled
    with _lock:
        _enabled = enabled
    if not enabled:
        cancel_pending()


def request_freeze(reason: str, delay_s: float | None = None) -> bool:
    """Collect, then freeze, `delay_s` (default `DEBOUNCE_S`) after the last request; False when off."""
    global _timer
    with _lock:
        if not _enabled:
            return False
        if _timer is not None:
            _timer.cancel()
        _timer = threading.Timer(DEBOUNCE_S if delay_s is None else delay_s, _freeze, args=(reason,))
        _timer.daemon = True
        _timer.start()
    return True


def cancel_pending() -> None:
    global _timer
    with _lock:
        if _timer is not None:
            _timer.cancel()
            _timer = None


def thaw() -> None:
    """Drop a pending freeze and unfreeze the heap (server stop). Frozen objects are never collected,
    not even while the interpreter exits: reference cycles among them stayed alive to the end, and
    extension modules report those as leaks (triton's nanobind printed ~60 lines of "leaked
    instances / types / functions" after `driftd demo`). Turns freezing off: a freeze whose timer
    already fired re-checks that under `_collecting` and does not freeze afterwards."""
    configure(False)  # also drops a pending request
    with _collecting:  # a freeze already under way finishes first
        gc.unfreeze()


def _freeze(reason: str) -> None:
    global _timer
    with _lock:  # bookkeeping only: the event loop may call request_freeze meanwhile
        if not _enabled or _timer is None or threading.current_thread() is not _timer:
            return  # turned off, or superseded by a later request
        _timer = None
    with _collecting:
        if not _enabled:  # thaw() (or configure(False)) came between the timer firing and here
            return
        started = time.perf_counter()
        gc.unfreeze()  # reclaim what became cyclic garbage since the last freeze
        collected = gc.collect()
        gc.freeze()
        elapsed_ms = (time.perf_counter() - started) * 1e3
    log.info("heap_frozen", reason=reason, frozen_objects=gc.get_freeze_count(), collected=collected,
             pause_ms=round(elapsed_ms, 1))
