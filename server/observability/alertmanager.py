"""Optional forwarding of alarm events to Alertmanager (API v2), the way Prometheus does it.

`AlertmanagerForwarder` subscribes to the alarm event log (`AlarmHub`) from its high-water mark at
start and POSTs alerts to ``{url}/api/v2/alerts`` as a JSON list of
``{labels, annotations, startsAt, endsAt, generatorURL}``:

* **Labels** (Alertmanager's identity of an alert): the instance labels (``feature``, ``block``,
  ``output``...), then the rule's own labels, then ``alertname`` (rule id), ``monitor`` (monitor id),
  ``severity`` (P1/P2/P3) and ``alarm`` (alarm instance id), which win over same-named ones.
  **Annotations**: ``summary``, ``runbook``, ``value``, ``threshold``, ``baseline``, ``snapshot``
  (empty ones are left out). ``generatorURL`` is ``{external_url}/monitors/<id>/alarms/<alarm>`` when
  ``external_url`` is set.
* A transition **to firing** is sent at once with ``startsAt`` = its event time and
  ``endsAt`` = now + 4 × ``resend_interval_s``. A transition **from firing** (to resolved, inactive
  or no_data) is sent with ``endsAt`` = its event time: Alertmanager's resolved notification.
  Pending and operator events (silenced, acknowledged) are not forwarded.
* Every ``resend_interval_s`` (and once at start) every instance **firing now** is re-sent with a
  fresh ``endsAt``: from the alarm manager's engines, and for monitors whose engine is not loaded
  yet (just after a restart) from the persisted instance states in the store. So Alertmanager never
  times out a live alarm, and a lost POST or a driftd restart heals within one interval (an alert
  rebuilt from state has no ``snapshot`` annotation; the labels, hence Alertmanager's fingerprint,
  are the same as the event's, and so is ``startsAt``). An alert
  this forwarder sent as firing that is no longer firing anywhere (its monitor was deleted, a
  resolved event was lost) is sent resolved with ``endsAt`` = now; `monitor_deleted()` does that
  at once for one monitor.
* If the subscription falls behind (`SubscriberLagged`) it resubscribes from the last sequence it
  saw; if that cursor was pruned meanwhile it goes live and re-sends everything firing.
* Alerts go through a bounded asyncio queue (when full, the oldest entry is dropped and counted)
  to one sender task, which batches what is queued (at most `MAX_BATCH` alerts, the newest per
  label set) into one POST. Connection errors, timeouts, 5xx and 429 are retried up to
  ``max_retries`` times with exponential backoff and jitter (a ``Retry-After`` header is honoured);
  any other 4xx is logged and dropped, never retried. ``endsAt`` of firing alerts is computed per
  attempt, so a delayed delivery never arrives already expired. The HTTP call (urllib, no proxy,
  ``timeout_s``) runs on a dedicated thread: nothing here blocks the event loop or slows alarm
  evaluation.
* ``on_result(outcome, n_alerts)`` is called with outcome ``"sent"`` (delivered), ``"retried"``
  (an attempt failed and will be retried), ``"failed"`` (rejected with a 4xx, or retries exhausted)
  and ``"dropped"`` (queue overflow, or still queued when `stop()`'s deadline passed); the same
  totals are kept in `counts`. Logs go to ``driftd.alertmanager``.

`stop()` cancels the subscription and the resend timer, gives the queued alerts a short deadline to
go out, then cancels the sender. It does not resolve anything: like Prometheus, live alerts stay
active in Alertmanager until their ``endsAt``, and a restarted driftd re-sends them.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import json
import math
import random
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from driftd.server.domain.alarms import FIRING, InstanceState, default_runbook, default_summary
from driftd.server.domain.errors import NotFound, OutOfRange
from driftd.server.logs import get_logger
from driftd.server.observability.prom_rules import alert_name
from driftd.server.service.alarm_hub import AlarmHub, SubscriberLagged
from driftd.server.service.alarm_manager import AlarmManager
from driftd.server.store.sqlite import SqliteStore, StoredAlarmEvent

log = get_logger("driftd.alertmanager")

MAX_BATCH = 500
MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 300.0
OUTCOMES = ("sent", "retried", "failed", "dropped")
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")

Key = tuple[str, str]  # (monitor_id, alarm_id)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _rfc3339(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _num(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return f"{x:.6g}" if isinstance(x, (int, float)) else str(x)


def _label_name(name: str) -> str:
    name = _LABEL_NAME.sub("_", str(name))
    return f"_{name}" if not name or name[0].isdigit() else name


def _parse_time(s: Any, default: datetime) -> datetime:
    try:
        t = datetime.fromisoformat(s)
    except (TypeError, ValueError):
        return default
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (email.utils.parsedate_to_datetime(value) - _utcnow()).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class _Context(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class AlertmanagerForwarder:
    """Forwards firing/resolved alarm instances to Alertmanager; see the module docstring."""

    def __init__(self, url: str, hub: AlarmHub, alarm_manager: AlarmManager, *, resend_interval_s: float = 60.0,
                 timeout_s: float = 5.0, max_retries: int = 5, backoff_s: float = 0.5, queue_size: int = 10_000,
                 external_url: str = "", on_result: Callable[[str, int], None] | None = None,
                 store: SqliteStore | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Alertmanager URL must be http:// or https://, got {url!r}")
        if resend_interval_s <= 0 or timeout_s <= 0 or max_retries < 0 or backoff_s < 0 or queue_size < 1:
            raise ValueError("resend_interval_s and timeout_s must be > 0, max_retries and backoff_s >= 0, queue_size >= 1")
        self.url = url.rstrip("/")
        self.endpoint = f"{self.url}/api/v2/alerts"
        self._hub = hub
        self._manager = alarm_manager
        # the persisted instance states heal a restart before the engines are loaded again
        self._store = store if store is not None else alarm_manager.store
        self.resend_interval_s = resend_interval_s
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.external_url = external_url.rstrip("/")
        self._on_result = on_result
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self._queue: asyncio.Queue[tuple[dict[str, Any], datetime | None]] = asyncio.Queue(maxsize=queue_size)
        self._firing: dict[Key, dict[str, Any]] = {}  # alerts last sent as firing (labels, annotations, startsAt)
        self._cursor: int | None = None
        self._resync = asyncio.Event()
        self._producers: list[asyncio.Task] = []
        self._sender: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe from the log's high-water mark and start the resend timer and the sender.
        Call from the event loop."""
        if self._sender is not None:
            return
        self._cursor = self._hub.high_water()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftd-alertmanager")
        self._sender = asyncio.create_task(self._send_loop(), name="alertmanager-sender")
        self._producers = [asyncio.create_task(self._subscribe_loop(), name="alertmanager-subscriber"),
                           asyncio.create_task(self._resend_loop(), name="alertmanager-resend")]
        log.info("alertmanager_forwarding", url=self.url, resend_interval_s=self.resend_interval_s, since_sequence=self._cursor)

    async def stop(self, deadline_s: float = 2.0) -> None:
        """Stop producing, give what is queued `deadline_s` to go out, then cancel the sender."""
        for task in self._producers:
            task.cancel()
        await asyncio.gather(*self._producers, return_exceptions=True)
        self._producers = []
        if self._sender is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._queue.join()), timeout=deadline_s)
        except asyncio.TimeoutError:
            pass
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)
        self._sender = None
        left = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
            left += 1
        if left:
            log.warning("alertmanager_unsent_at_stop", alerts=left)
            self._result("dropped", left)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def monitor_deleted(self, monitor_id: str) -> None:
        """Send every alert of a deleted monitor resolved now (the periodic resend would do it
        within one interval anyway)."""
        now = _utcnow()
        for key in [k for k in self._firing if k[0] == monitor_id]:
            self._enqueue(self._firing.pop(key), now)

    def resend_now(self) -> None:
        """Re-send everything firing (and resolve what no longer is) without waiting for the timer."""
        self._resync.set()

    @property
    def dropped(self) -> int:
        return self.counts["dropped"]

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    # -- events --------------------------------------------------------------------------------

    async def _subscribe_loop(self) -> None:
        while True:
            try:
                async for item in self._hub.subscribe(lambda e: e.payload.get("kind") == "transition", self._cursor,
                                                      heartbeat_s=30.0):
                    if isinstance(item, int):
                        continue
                    self._cursor = item.sequence
                    try:
                        self.handle_event(item)
                    except Exception as exc:  # one malformed event must not end forwarding
                        log.error("alertmanager_event_failed", sequence=item.sequence, exc_info=exc)
            except SubscriberLagged:
                log.warning("alertmanager_subscriber_lagged", resume_after=self._cursor)
            except OutOfRange:
                log.warning("alertmanager_cursor_expired", cursor=self._cursor)
                self._cursor = None  # live from now on; the resync re-sends everything firing
                self._resync.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("alertmanager_subscription_failed", exc_info=exc)
                await asyncio.sleep(1.0)

    def handle_event(self, event: StoredAlarmEvent) -> None:
        """Turn one alarm transition into a firing or resolved alert (synchronous, never blocks)."""
        p = event.payload
        if p.get("kind", "transition") != "transition":
            return
        key = (event.monitor_id, event.alarm_id)
        when = _parse_time(p.get("event_time"), event.event_time)

        def from_event() -> dict[str, Any]:
            annotations = {"summary": p.get("summary"), "runbook": p.get("runbook"), "value": _num(p.get("value")),
                           "threshold": _num(p.get("threshold")), "baseline": p.get("baseline"), "snapshot": p.get("snapshot")}
            return self._alert(event.monitor_id, event.alarm_id, p.get("rule_id") or event.alarm_id, p.get("severity") or "P3",
                               p.get("labels") or {}, self._rule_labels(event.monitor_id, event.alarm_id), annotations, when)

        if p.get("state") == FIRING:
            alert = self._firing[key] = from_event()
            self._enqueue(alert, None)
        elif p.get("previous_state") == FIRING or key in self._firing:
            # resolved keeps what was sent as firing (Prometheus does the same); startsAt = endsAt if unknown
            alert = self._firing.pop(key, None) or from_event()
            self._enqueue(alert, when)

    def _engines(self) -> dict:
        return self._manager.loaded_engines()

    def _rule_labels(self, monitor_id: str, aid: str) -> dict[str, str]:
        engine = self._engines().get(monitor_id)
        rule = engine.instances.get(aid, (None, ()))[0] if engine is not None else None
        return dict(rule.labels) if rule is not None else {}

    def _alert(self, monitor_id: str, aid: str, rule_id: str, severity: str, instance_labels: dict, rule_labels: dict,
               annotations: dict, starts_at: datetime) -> dict[str, Any]:
        labels = {_label_name(k): str(v) for k, v in {**dict(instance_labels), **dict(rule_labels)}.items()}
        # the same alertname and `rule` label as `driftd export prometheus-rules`: one routing tree serves both
        labels.update(alertname=alert_name(rule_id), rule=rule_id, monitor=monitor_id, severity=severity, alarm=aid)
        alert: dict[str, Any] = {
            "labels": {k: v for k, v in labels.items() if v != ""},
            "annotations": {k: str(v) for k, v in annotations.items() if v not in (None, "")},
            "startsAt": starts_at,
        }
        if self.external_url:
            alert["generatorURL"] = f"{self.external_url}/monitors/{monitor_id}/alarms/{aid}"
        return alert

    # -- periodic resend -----------------------------------------------------------------------

    async def _resend_loop(self) -> None:
        while True:
            try:
                await self.resync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("alertmanager_resend_failed", exc_info=exc)
            try:
                await asyncio.wait_for(self._resync.wait(), timeout=self.resend_interval_s)
            except asyncio.TimeoutError:
                pass
            self._resync.clear()

    async def resync(self) -> None:
        """Queue every instance firing now with a fresh endsAt, and a resolution for every alert
        sent as firing that no longer is."""
        persisted: dict[Key, dict[str, Any]] = {}
        if self._store is not None:
            persisted = await asyncio.to_thread(self._persisted_firing, set(self._engines()))
        # from here on, no await: the engines and self._firing are read and updated in one step
        engines = self._engines()
        firing: dict[Key, dict[str, Any]] = {k: a for k, a in persisted.items() if k[0] not in engines}
        for monitor_id, engine in engines.items():
            for aid, state in list(engine.states.items()):
                if state.state != FIRING:
                    continue
                rule, labels = engine.instances.get(aid, (None, ()))
                firing[(monitor_id, aid)] = self._alert_from_state(monitor_id, aid, rule, labels, state, engine.baseline)
        now = _utcnow()
        for key in [k for k in self._firing if k not in firing]:
            self._enqueue(self._firing.pop(key), now)
        for key, fresh in firing.items():
            alert = self._firing.get(key)
            if alert is None or alert["labels"] != fresh["labels"]:
                alert = self._firing[key] = fresh
            self._enqueue(alert, None)

    def _persisted_firing(self, loaded: set[str]) -> dict[Key, dict[str, Any]]:
        """Firing instances of monitors without a loaded engine, from the store (runs on a thread)."""
        rows: dict[str, list[tuple[str, dict]]] = {}
        for monitor_id, aid, stored in self._store.list_alarm_instances():
            if monitor_id not in loaded and (stored.get("state") or {}).get("state") == FIRING:
                rows.setdefault(monitor_id, []).append((aid, stored))
        out: dict[Key, dict[str, Any]] = {}
        for monitor_id, instances in rows.items():
            try:
                monitor = self._store.get_monitor(monitor_id)
            except NotFound:
                continue
            rules = {r.rule_id: r for r in monitor.spec.rules}
            baseline = f"{monitor.name}/baselines/{monitor.active_baseline_id}" if monitor.active_baseline_id else ""
            for aid, stored in instances:
                rule = rules.get(stored.get("rule_id"))
                labels = tuple(tuple(kv) for kv in stored.get("labels") or ())
                out[(monitor_id, aid)] = self._alert_from_state(monitor_id, aid, rule, labels,
                                                                InstanceState.from_dict(stored["state"]), baseline,
                                                                rule_id=stored.get("rule_id"), severity=stored.get("severity"))
        return out

    def _alert_from_state(self, monitor_id: str, aid: str, rule, labels, state: InstanceState, baseline: str, *,
                          rule_id: str | None = None, severity: str | None = None) -> dict[str, Any]:
        rule_id = rule.rule_id if rule is not None else (rule_id or aid)
        severity = rule.severity.value if rule is not None else (severity or "P3")
        annotations = {"value": _num(state.value), "threshold": _num(state.threshold), "baseline": baseline}
        if rule is not None:
            context = _Context(dict(labels))
            context.update(monitor=monitor_id, rule=rule_id, value=_num(state.value) or "n/a",
                               threshold=_num(state.threshold) or "n/a", baseline=baseline or "(none)", severity=severity,
                               state=FIRING, direction=rule.metric.direction.value if rule.metric else "above",
                               selector=rule.metric.selector if rule.metric else rule_id)
            annotations["summary"] = (rule.summary or default_summary(rule)).format_map(context)
            annotations["runbook"] = (rule.runbook or default_runbook(rule)).format_map(context)
        return self._alert(monitor_id, aid, rule_id, severity, dict(labels), dict(rule.labels) if rule is not None else {},
                           annotations, state.since or _utcnow())

    # -- sending -------------------------------------------------------------------------------

    def _enqueue(self, alert: dict[str, Any], ends_at: datetime | None) -> None:
        """Queue an alert: firing when ends_at is None (endsAt is set per attempt), else resolved."""
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            self._result("dropped", 1)
            if self.counts["dropped"] in (1, 10, 100) or self.counts["dropped"] % 1000 == 0:
                log.warning("alertmanager_queue_full", dropped_total=self.counts["dropped"], queue_size=self._queue.maxsize)
        self._queue.put_nowait((alert, ends_at))

    def _result(self, outcome: str, n: int) -> None:
        self.counts[outcome] += n
        if self._on_result is not None:
            try:
                self._on_result(outcome, n)
            except Exception as exc:
                log.error("alertmanager_on_result_failed", exc_info=exc)

    async def _send_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._deliver(batch)
            except asyncio.CancelledError:
                self._result("dropped", len(batch))
                raise
            except Exception as exc:
                log.error("alertmanager_send_failed", alerts=len(batch), exc_info=exc)
                self._result("failed", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    @staticmethod
    def _dedupe(batch: list[tuple[dict[str, Any], datetime | None]]) -> list[tuple[dict[str, Any], datetime | None]]:
        latest: dict[tuple, tuple[dict[str, Any], datetime | None]] = {}
        for alert, ends_at in batch:
            key = tuple(sorted(alert["labels"].items()))
            latest.pop(key, None)  # re-insert: keep queue order of the newest
            latest[key] = (alert, ends_at)
        return list(latest.values())

    def _render(self, batch: list[tuple[dict[str, Any], datetime | None]]) -> bytes:
        now = _utcnow()
        out = []
        for alert, ends_at in batch:
            end = ends_at if ends_at is not None else now + timedelta(seconds=4 * self.resend_interval_s)
            start = min(alert["startsAt"], now, end)
            item = {"labels": alert["labels"], "annotations": alert["annotations"], "startsAt": _rfc3339(start),
                    "endsAt": _rfc3339(end)}
            if "generatorURL" in alert:
                item["generatorURL"] = alert["generatorURL"]
            out.append(item)
        return json.dumps(out).encode()

    def _post(self, batch) -> tuple[int, float | None, str]:
        """One POST (on the forwarder's thread). Returns (status, retry_after_s, body excerpt);
        raises OSError on connection errors and timeouts."""
        request = urllib.request.Request(self.endpoint, data=self._render(batch), method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "driftd"})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return response.status, None, ""
        except urllib.error.HTTPError as err:
            try:
                text = err.read(2000).decode("utf-8", "replace")
            except OSError:
                text = ""
            return err.code, _retry_after(err.headers.get("Retry-After")), text

    async def _deliver(self, batch: list[tuple[dict[str, Any], datetime | None]]) -> None:
        batch = self._dedupe(batch)
        n = len(batch)
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            retry_after = None
            try:
                status, retry_after, text = await loop.run_in_executor(self._executor, self._post, batch)
                error = f"HTTP {status}"
            except (OSError, http.client.HTTPException, ValueError) as exc:  # refused, reset, timeout, DNS, bad status line
                status, text, error = None, "", f"{type(exc).__name__}: {exc}"
            if status is not None and 200 <= status < 300:
                self._result("sent", n)
                log.debug("alertmanager_sent", alerts=n, attempts=attempt + 1)
                return
            if status is not None and status != 429 and status < 500:
                log.error("alertmanager_rejected", status=status, alerts=n, response=text.strip()[:500])
                self._result("failed", n)
                return
            if attempt >= self.max_retries:
                log.error("alertmanager_unreachable", error=error, alerts=n, attempts=attempt + 1)
                self._result("failed", n)
                return
            if retry_after is None:
                base = min(self.backoff_s * 2 ** attempt, MAX_BACKOFF_S)
                retry_after = base / 2 + random.uniform(0, base / 2)
            log.warning("alertmanager_retry", error=error, alerts=n, attempt=attempt + 1, delay_s=round(retry_after, 3))
            self._result("retried", n)
            await asyncio.sleep(retry_after)
            attempt += 1


__all__ = ["AlertmanagerForwarder", "MAX_BATCH"]
