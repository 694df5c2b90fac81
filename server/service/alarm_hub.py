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
from dataclasses import dataclass, field
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


@dataclass(eq=False)  # identity semantics: kept in a set
class Subscription:
    matches: Callable[[StoredAlarmEvent], bool]
    buffer_size: int
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    lagged: bool = False
    # Highest sequence this subscriber has been offered, matching or not: what a heartbeat may
    # report. The store's high-water mark may already cover an event not yet offered (it is
    # appended before the fan-out), and a client resuming from that would miss it.
    seen: int = 0

    def offer(self, event: StoredAlarmEvent) -> None:
        self.seen = max(self.seen, event.sequence)
        if self.lagged or not self.matches(event):
            return
        if self.queue.qsize() >= self.buffer_size:
            self.lagged = True
            self.queue.put_nowait(None)  # wakes the reader, which then reports the lag
            return
        self.queue.put_nowait(event)


class AlarmHub:
    def __init__(self, store: SqliteStore, retention: int, subscriber_buffer: int = 10_000) -> None:
        self._store = store
        self._retention = retention
        self._buffer = subscriber_buffer
        self._subscriptions: set[Subscription] = set()
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

    def _append(self, events) -> list[int]:
        sequences = self._store.append_alarm_events(events)
        if sequences and sequences[-1] % 1000 == 0:
            self._store.prune_alarm_events(self._retention)
        return sequences

    def high_water(self) -> int:
        return self._store.alarm_high_water()

    async def subscribe(self, matches: Callable[[StoredAlarmEvent], bool], start_after: int | None,
                        heartbeat_s: float) -> AsyncIterator[StoredAlarmEvent | int]:
        """Yield events (replayed, then live) and, after `heartbeat_s` without one, the highest
        sequence this subscriber has been offered (a safe resume cursor) as an int. Raises OutOfRange (CURSOR_EXPIRED) for a pruned cursor and
        SubscriberLagged when the subscriber falls behind."""
        sub = Subscription(matches, self._buffer)
        async with self._lock:  # register atomically w.r.t. publish: nothing slips between replay and live
            self._subscriptions.add(sub)
            last = self._store.alarm_high_water() if start_after is None else start_after
            sub.seen = self._store.alarm_high_water()
        try:
            if start_after is not None:
                while True:
                    page = await asyncio.to_thread(self._store.read_alarm_events, last, REPLAY_PAGE)
                    for event in page:
                        last = event.sequence
                        if matches(event):
                            yield event
                    if len(page) < REPLAY_PAGE:
                        break
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), timeout=heartbeat_s)
                except asyncio.TimeoutError:
                    # the queue is empty: every event offered so far has been yielded (or filtered out)
                    yield max(last, sub.seen)
                    continue
                if event is None:
                    raise SubscriberLagged(last, self._buffer)
                if event.sequence <= last:
                    continue  # already replayed
                last = event.sequence
                yield event
        finally:
            self._subscriptions.discard(sub)
