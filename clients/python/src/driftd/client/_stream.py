"""Reading a gRPC response stream without trusting its iterator to end.

grpcio's blocking stream iterator (`for response in call`) can stay blocked after the call is
already over: seen with grpcio 1.85.3 on a stream opened as the server went away. The call got its
status (UNAVAILABLE, "failed to connect to all addresses") but its pending receive operations never
completed, so `__next__` waited forever, and `cancel()` does nothing on a finished call. A loop that
reconnects only when that iterator ends then never reconnects.

`StreamReader` therefore iterates the call in a thread of its own and hands each message to a
callback. Its owner waits in `wait()`, which returns when the reader ends, or when the call has been
over for `grace_s` and the reader still has not noticed; that reader is abandoned (a parked daemon
thread, which grpc wakes every 0.1 s to re-check) and the call's own status is the outcome.
`responses()` wraps it as a plain iterator for callers that consume a stream in a loop.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterator

import grpc

# How long a reader may lag behind its call's end before it is abandoned. Normally it notices at once
# (grpc delivers the status and the pending receive together); this only bounds the broken case.
READER_GRACE_S = 1.0


class StreamReader:
    """Iterate `call` in a daemon thread, passing each response to `on_message`.

    `on_message` returning True stops the reader (the caller decides whether to cancel the call).

    >>> class Done(grpc.RpcError):
    ...     def done(self): return True
    ...     def cancel(self): return False
    ...     def __iter__(self): return iter([1, 2])
    >>> seen = []
    >>> reader = StreamReader(Done(), seen.append, name="example")
    >>> reader.wait(), seen, reader.error
    (True, [1, 2], None)
    """

    def __init__(self, call: Any, on_message: Callable[[Any], bool | None], *, name: str) -> None:
        self.call = call
        self.error: BaseException | None = None
        self.abandoned = False
        # when the reader last went back to waiting on the call (not while on_message holds it up):
        # how long the stream itself has been silent
        self.listening_since = time.monotonic()
        self._over_since: float | None = None
        self._handing_over = False  # inside on_message (e.g. held up by a slow consumer), not in grpc
        # messages read so far, and as of the last poll: a reader that still reads (grpc draining
        # buffered messages after the call ended) is never abandoned
        self._received = 0
        self._received_at_poll = 0
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(on_message,), name=name, daemon=True)
        self._thread.start()

    def _read(self, on_message: Callable[[Any], bool | None]) -> None:
        try:
            for response in self.call:
                self._received += 1
                self._handing_over = True
                try:
                    if on_message(response):
                        return
                finally:
                    self._handing_over = False
                self.listening_since = time.monotonic()
        except BaseException as err:  # noqa: BLE001 - handed to the owner, who decides
            self.error = err
        finally:
            self._finished.set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def over(self, grace_s: float = READER_GRACE_S) -> bool:
        """Poll: True once the reader has ended, or once the call has been over for `grace_s` while
        the reader is still blocked in grpc; that reader is then abandoned and `error` is the call
        itself (an RpcError with the call's status; None when that status is OK)."""
        if self._finished.is_set() or self.abandoned:
            return True
        progressed, self._received_at_poll = self._received != self._received_at_poll, self._received
        if progressed or self._handing_over or not self.call.done():
            # a reader held up by its consumer, or still reading messages grpc had buffered, may
            # have more to read: only time blocked in grpc without progress after the end counts
            self._over_since = None
            return False
        now = time.monotonic()
        self._over_since = now if self._over_since is None else self._over_since
        if now - self._over_since < grace_s or self._finished.is_set():
            return self._finished.is_set()
        self.abandoned = True
        ended_ok = getattr(self.call, "code", lambda: None)() == grpc.StatusCode.OK
        self.error = self.call if isinstance(self.call, grpc.RpcError) and not ended_ok else None
        return True

    def wait(self, *, poll_s: float = 0.25, grace_s: float = READER_GRACE_S,
             cancel_when: Callable[[], bool] | None = None) -> bool:
        """Block until the stream is over (see `over`). True when the reader ended by itself, False
        when it was abandoned. `cancel_when()` is asked every `poll_s`; when True the call is
        cancelled (e.g. a stream that stopped acknowledging)."""
        while not self._finished.wait(poll_s):
            if cancel_when is not None and cancel_when():
                self.call.cancel()
            if self.over(grace_s):
                break
        return not self.abandoned


def responses(call: Any, *, name: str, silence_s: float | None = None, poll_s: float = 0.25,
              max_buffered: int = 256) -> Iterator[Any]:
    """Yield the responses of a response stream, then raise the error that ended it (none for a
    clean end). The stream is read by a `StreamReader` through a queue of at most `max_buffered`
    responses, so a slow consumer still holds the reader back; a stream silent for `silence_s`
    (nothing read from it, whatever the consumer does meanwhile) is cancelled (it then ends with
    grpc's CANCELLED error). Closing the generator cancels the call.

    >>> class Two(grpc.RpcError):
    ...     def done(self): return True
    ...     def cancel(self): return False
    ...     def __iter__(self): return iter(["a", "b"])
    >>> list(responses(Two(), name="example"))
    ['a', 'b']
    """
    inbox: queue.Queue = queue.Queue(maxsize=max_buffered)
    closing = threading.Event()

    def hand_over(response: Any) -> bool:
        while not closing.is_set():
            try:
                inbox.put(response, timeout=poll_s)
                return False
            except queue.Full:
                continue
        return True  # the consumer went away: stop reading

    reader = StreamReader(call, hand_over, name=name)
    try:
        while True:
            try:
                response = inbox.get(timeout=poll_s)
            except queue.Empty:
                if reader.over():
                    break
                if silence_s is not None and time.monotonic() - reader.listening_since > silence_s:
                    call.cancel()
                continue
            yield response
        while not inbox.empty():  # what the reader handed over just before it ended
            yield inbox.get_nowait()
    finally:
        closing.set()
        call.cancel()
    if reader.error is not None:
        raise reader.error
