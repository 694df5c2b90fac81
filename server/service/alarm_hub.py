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
    loop, and what a parked reader holds lives until the next event, long enough to be promoted
    to the collector's oldest generation): a deque append and one future per wake-up; no task,
    no queue getter, and no timer per event: the heartbeat timer is armed for the heartbeat
    deadline and, when it finds the deadline moved, re-armed once per heartbeat interval.
    """

    __slots__ = ("matches", "buffer_size", "pending", "lagged", "seen", "ended", "group", "deadline", "_waiter", "_timer")

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
        self.deadline = 0.0  # loop time of the next heartbeat (the reader moves it on every yield)
        self._waiter: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None

    def offer(self, event: StoredAlarmEvent) -> None:
        if event.sequence > self.seen:
            self.seen = event.sequence
        if self.lagged or not self.matches(event):
            return
        if len(self.pending) >= self.buffer_size:
            self.lagged = True  # the reader reports the lag once it has drained what it has
        else:
            self.pending.append(event)
        self._wake(True)

    def end(self, exc: BaseException) -> None:
        self.ended = exc
        self._wake(True)

    def _wake(self, result: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(result)

    def _on_timer(self) -> None:
        self._timer = None
        if self._waiter is None:
            return  # the reader is busy; its next wait() arms the timer again
        loop = self._waiter.get_loop()
        if loop.time() >= self.deadline:
            self._wake(False)
        else:
            self._timer = loop.call_at(self.deadline, self._on_timer)

    async def wait(self) -> bool:
        """Park until an event is offered (or the subscription ends or lags): True; False once
        the heartbeat deadline has passed with nothing new."""
        if self.pending or self.lagged or self.ended is not None:
            return True
        loop = asyncio.get_running_loop()
        if loop.time() >= self.deadline:
            return False
        waiter = self._waiter = loop.create_future()
        if self._timer is None:
            self._timer = loop.call_at(self.deadline, self._on_timer)
        try:
            return await waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


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
            loop = asyncio.get_running_loop()
            sub.deadline = loop.time() + heartbeat_s
            while True:
                if pending:
                    while pending:
                        event = pending.popleft()
                        if event.sequence <= last:
                            continue  # already replayed
                        last = event.sequence
                        yield event
                    sub.deadline = loop.time() + heartbeat_s
                if sub.lagged:
                    raise SubscriberLagged(last, self._buffer)
                if sub.ended is not None:
                    raise sub.ended
                if not await sub.wait() and not pending and not sub.lagged and sub.ended is None:
                    # nothing pending: every event offered so far has been yielded (or filtered out)
                    yield max(last, sub.seen)
                    sub.deadline = loop.time() + heartbeat_s
        finally:
            self._subscriptions.pop(sub, None)
            sub.close()
