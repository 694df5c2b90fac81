"""The alarm event log's live side: append events durably (gap-free sequence numbers from the
store), then fan them out to subscribers.

A subscription replays the log after its cursor, then goes live with no gap and no duplicate: the
subscriber's live buffer is registered *before* the replay reads the log, and live events at or
below the last replayed sequence are skipped. Each subscriber has a bounded buffer; one that falls
behind is ended with `SubscriberLagged` (never slowing the publisher or other subscribers) and
resumes from its cursor.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime
from typing import Any, AsyncIterator, Callable

from driftd.server.domain.errors import ResourceExhausted
from driftd.server.store.sqlite import SqliteStore, StoredAlarmEvent

REPLAY_PAGE = 1000


class SubscriberLagged(ResourceExhausted):
    def __init__(self, last_sequence: int, buffer: int):
        super().__init__(
            f"subscriber fell more than {buffer} events behind; resubscribe with start_after_sequence={last_sequence}",
            retry_after_s=0.0, reason="SUBSCRIBER_LAGGED",
        )
        self.metadata = {"last_sequence": str(last_sequence)}


class Subscription:
    """One subscriber's live side: a bounded buffer of offered events and at most one waiter.

    Cheap per event on purpose (the publisher offers every event to every subscriber on the event
    loop): a deque append and, when the reader is parked, one future result; no task, no queue
    getter, no timer per event. The heartbeat timer is armed once per heartbeat interval.
    """

    __slots__ = ("matches", "buffer_size", "pending", "lagged", "seen", "ended", "group", "_waiter")

    def __init__(self, matches: Callable[[StoredAlarmEvent], bool], buffer_size: int, group: str = "") -> None:
        self.matches = matches
        self.buffer_size = buffer_size
        self.pending: deque[StoredAlarmEvent] = deque()
        self.lagged = False
        # Highest sequence this subscriber has been offered, matching or not: what a heartbeat may
        # report. The store's high-water mark may already cover an event not yet offered (it is
        # appended before the fan-out), and a client resuming from that would miss it.
        self.seen = 0
        self.ended: BaseException | None = None  # set by AlarmHub.end_group: raised to the reader
        self.group = group
        self._waiter: asyncio.Future | None = None

    def offer(self, event: StoredAlarmEvent) -> None:
        if event.sequence > self.seen:
            self.seen = event.sequence
        if self.lagged or not self.matches(event):
            return
        if len(self.pending) >= self.buffer_size:
            self.lagged = True  # the reader reports the lag once it has drained what it has
        else:
            self.pending.append(event)
        self._wake()

    def end(self, exc: BaseException) -> None:
        self.ended = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def wait(self, timeout: float) -> bool:
        """Park until an event is offered (or the subscription ends or lags): True; False after
        `timeout` seconds with nothing new."""
        if self.pending or self.lagged or self.ended is not None:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(False)


class AlarmHub:
    def __init__(self, store: SqliteStore, retention: int, subscriber_buffer: int = 10_000) -> None:
        self._store = store
        self._retention = retention
        self._buffer = subscriber_buffer
        self._subscriptions: dict[Subscription, None] = {}  # insertion-ordered: offered in subscription order
        self._ended_groups: dict[str, BaseException] = {}
        self._lock = asyncio.Lock()  # one append at a time keeps fan-out in sequence order

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    async def publish(self, events: list[tuple[str, str, datetime, dict[str, Any]]]) -> list[StoredAlarmEvent]:
        """Append (monitor_id, alarm_id, time, payload) events to the log, then notify subscribers."""
        if not events:
            return []
        async with self._lock:
            sequences = await asyncio.to_thread(self._append, events)
            stored = [StoredAlarmEvent(seq, m, a, t, p) for seq, (m, a, t, p) in zip(sequences, events)]
            for sub in list(self._subscriptions):
                for event in stored:
                    sub.offer(event)
        return stored

    def end_group(self, group: str, exc: BaseException) -> None:
        """End every subscription of `group` (now and later ones) by raising `exc` to its reader,
        after the events already offered to it (e.g. the gRPC subscriptions when the server drains)."""
        self._ended_groups[group] = exc
        for sub in list(self._subscriptions):
            if sub.group == group:
                sub.end(exc)

    def _append(self, events) -> list[int]:
        sequences = self._store.append_alarm_events(events)
        if sequences and sequences[-1] % 1000 == 0:
            self._store.prune_alarm_events(self._retention)
        return sequences

    def high_water(self) -> int:
        return self._store.alarm_high_water()

    async def subscribe(self, matches: Callable[[StoredAlarmEvent], bool], start_after: int | None,
                        heartbeat_s: float, group: str = "") -> AsyncIterator[StoredAlarmEvent | int]:
        """Yield events (replayed, then live) and, after `heartbeat_s` without one, the highest
        sequence this subscriber has been offered (a safe resume cursor) as an int. Raises OutOfRange (CURSOR_EXPIRED) for a pruned cursor,
        SubscriberLagged when the subscriber falls behind, and the exception given to `end_group`
        for its group."""
        if group in self._ended_groups:
            raise self._ended_groups[group]
        sub = Subscription(matches, self._buffer, group)
        async with self._lock:  # register atomically w.r.t. publish: nothing slips between replay and live
            self._subscriptions[sub] = None
            last = self._store.alarm_high_water() if start_after is None else start_after
            sub.seen = self._store.alarm_high_water()
        try:
            if start_after is not None:
                while True:
                    if sub.ended is not None:
                        raise sub.ended
                    page = await asyncio.to_thread(self._store.read_alarm_events, last, REPLAY_PAGE)
                    for event in page:
                        last = event.sequence
                        if matches(event):
                            yield event
                    if len(page) < REPLAY_PAGE:
                        break
            pending = sub.pending
            while True:
                while pending:
                    event = pending.popleft()
                    if event.sequence <= last:
                        continue  # already replayed
                    last = event.sequence
                    yield event
                if sub.lagged:
                    raise SubscriberLagged(last, self._buffer)
                if sub.ended is not None:
                    raise sub.ended
                if not await sub.wait(heartbeat_s) and not pending and not sub.lagged and sub.ended is None:
                    # nothing pending: every event offered so far has been yielded (or filtered out)
                    yield max(last, sub.seen)
        finally:
            self._subscriptions.pop(sub, None)
